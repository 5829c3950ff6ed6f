"""The generative-function interface of a static program, as pure JAX functions.

Each function is the interpreter (:mod:`.interpreter`) run in one mode
(:mod:`.modes`); each is pure, and ``jit``, ``vmap`` and ``grad`` accept it.
Notation: ``p`` is the program's joint density on ``args``, ``x`` its latent
choices (a dict by address), ``y`` its observations (and factors), so that
``p(x, y) = p(x) p(y | x)``; ``x_S`` is the part of ``x`` at the addresses in
``S`` and ``x_{-S}`` the rest.

- ``simulate(key, args)``: ``x ~ p(x)``; the trace has ``log_prior = log p(x)`` and
  ``log_likelihood = log p(y | x)``.
- ``log_density(x, args) = log p(x, y)``.
- ``generate(key, args, c)``: ``x_C = c``, ``x_{-C} ~ p(x_{-C} | x_C)`` (ancestral, in program
  order); weight ``w = log p(x, y) - log p(x_{-C} | x_C) = log p(x_C, y | x_{-C})``, so that
  ``E[exp w] = p(c, y)`` (importance sampling with the prior as proposal).
- ``regenerate(key, args, x, S)``: ``x'_S ~ p(x'_S | parents)``, ``x'_{-S} = x_{-S}``; weight
  ``w = log p(x'_{-S}, y | x'_S) - log p(x_{-S}, y | x_S)``: the log acceptance ratio of the
  Metropolis-Hastings move that proposes ``S`` afresh from the prior.
- ``update(key, args, x, args', c)``: ``x' = x`` with ``x'_C = c`` (sites absent from ``x``
  drawn from the prior); weight ``w = log p'(x', y) - log p(x, y)`` less the prior terms
  of the fresh draws; ``discard = x_C``, the values ``c`` replaced.
- ``log_density_unconstrained(u, args) = log p(T(u), y) + log |det J_T(u)|``, where ``T``
  maps each site's unconstrained value onto its support.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ppl.semantics import ir
from ppl.semantics.compile.interpreter import Trace, nan_unless, run
from ppl.semantics.compile.modes import Generate, Given, Kept, Regenerate, ShapeProbe, Simulate, Unconstrained

__all__ = [
    "simulate",
    "log_density",
    "generate",
    "regenerate",
    "update",
    "Regenerated",
    "log_density_unconstrained",
    "constrain",
    "run_unconstrained",
    "site_log_densities",
    "unconstrained_shapes",
]


def simulate(program: ir.Program, key, args) -> Trace:
    """Run forwards, drawing every latent site from its prior: ``x ~ p(x)``."""
    return run(program, Simulate(), args, key=key)


def _density(trace: Trace):
    """The trace's joint log density, NaN where a distribution's parameters left their domain (the
    model is not defined there: a gradient method rejects the point, as Stan does, and a start point
    there is replayed in the eager engine, which names the site)."""
    return nan_unless(trace.valid, trace.log_joint)


def log_density(program: ir.Program, choices: dict, args):
    """``log p(x, y)`` at ``x = choices`` (NaN where a distribution's parameters are outside their domain)."""
    return _density(run(program, Given(), args, inputs=choices))


def generate(program: ir.Program, key, args, constraints: dict):
    """``(trace, log p(x_C, y | x_{-C}))`` with ``x_C = constraints`` and the rest from the prior."""
    trace = run(program, Generate(), args, inputs=constraints, key=key)
    return trace, trace.log_given + trace.log_likelihood


class Regenerated(NamedTuple):
    """What :func:`regenerate` returns: the new trace, the MH log weight, and each site's
    term on both sides (present only with ``record_terms``)."""

    trace: Trace
    log_weight: Any
    new_terms: dict | None = None
    old_terms: dict | None = None


def _masks(program: ir.Program, names, selection) -> dict:
    latent = program.latent_sites()
    if isinstance(selection, dict):
        return {b: selection.get(b, jnp.zeros(tuple(latent[b].loop_lengths), bool)) for b in names}
    chosen = set(selection)
    return {b: jnp.full(tuple(latent[b].loop_lengths), b in chosen, bool) for b in names}


def _absent(present: dict | None, b, program):
    """Where site ``b`` did not run (a branch not taken): it counts as fresh / gone."""
    if present is not None and b in present:
        return jnp.logical_not(jnp.asarray(present[b], bool))
    return jnp.zeros(tuple(program.latent_sites()[b].loop_lengths), bool)


def regenerate(program: ir.Program, key, args, choices: dict, selection, present: dict | None = None,
               record_terms: bool = False) -> Regenerated:
    """Redraw the selected sites from their priors; the weight is the MH log acceptance ratio.

    ``selection`` is a collection of addresses (whole sites) or a dict address -> boolean mask
    over the site's loop steps. ``present`` (a trace's) marks sites of branches that did not run:
    they are drawn afresh and excluded from the ratio, as are sites that leave the trace.
    """
    names = list(program.latent_sites())
    masks = _masks(program, names, selection)
    inputs = {b: (choices[b], masks[b], _absent(present, b, program)) for b in names}
    new = run(program, Regenerate(), args, inputs=inputs, key=key, record_terms=record_terms)
    new_trace, new_terms = new if record_terms else (new, None)
    back = {b: (choices[b], masks[b], _absent(new_trace.present, b, program)) for b in names}
    old = run(program, Kept(), args, inputs=back, record_terms=record_terms)
    old_trace, old_terms = old if record_terms else (old, None)
    log_w = (new_trace.log_given + new_trace.log_likelihood) - (old_trace.log_given + old_trace.log_likelihood)
    return Regenerated(new_trace, log_w, new_terms, old_terms)


def update(program: ir.Program, key, choices: dict, old_args, new_args, constraints: dict):
    """``(trace, log_weight, discard)``: the trace with ``constraints`` replacing choices (and the
    arguments changed to ``new_args``), its weight ``log p'(x', y') - log p(x, y)`` less the prior
    terms of sites drawn afresh, and the replaced values."""
    inputs = {**choices, **constraints}
    new = run(program, Generate(), new_args, inputs=inputs, key=key)
    old = log_density(program, choices, old_args)
    discard = {a: choices[a] for a in constraints if a in choices}
    return new, new.log_given + new.log_likelihood - old, discard


def log_density_unconstrained(program: ir.Program, u: dict, args):
    """``log p(T(u), y) + log |det J_T(u)|`` (NaN where a distribution's parameters are outside their domain)."""
    return _density(run(program, Unconstrained(), args, inputs=u))


def constrain(program: ir.Program, u: dict, args) -> dict:
    """``T(u)``: the latent values (and deterministic sites) at unconstrained coordinates ``u``."""
    return run(program, Unconstrained(), args, inputs=u).choices


def run_unconstrained(program: ir.Program, u: dict, args) -> Trace:
    """The whole trace at unconstrained coordinates ``u``."""
    return run(program, Unconstrained(), args, inputs=u)


def site_log_densities(program: ir.Program, choices: dict, args) -> dict:
    """Each site's log-density term (summed over its elements; stacked in loops)."""
    _, terms = run(program, Given(), args, inputs=choices, record_terms=True)
    return terms


_SHAPES: "weakref.WeakKeyDictionary[ir.Program, dict]" = weakref.WeakKeyDictionary()


def _arg_spec(args) -> tuple:
    leaves, tree = jax.tree.flatten(list(args))
    return (tree, tuple((jnp.shape(x), str(jnp.result_type(x))) for x in leaves))


def unconstrained_shapes(program: ir.Program, args) -> dict:
    """Each latent site's unconstrained shape (None for discrete sites), stacked in loops.

    Remembered per program and argument shapes (the shapes cannot depend on argument values).
    """
    table = _SHAPES.setdefault(program, {})
    spec = _arg_spec(args)
    got = table.get(spec)
    if got is None:
        got = table[spec] = _probe_shapes(program, args)
    return dict(got)


def _probe_shapes(program: ir.Program, args) -> dict:
    probe = ShapeProbe()
    loop_of = {a: s.loop_lengths for a, s in program.sites.items()}

    def go(*a):
        run(program, probe, a)
        return 0

    jax.eval_shape(go, *args)
    return {a: (None if sh is None else tuple(loop_of[a]) + sh) for a, sh in probe.shapes.items()}

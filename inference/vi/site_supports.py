"""A guide's supports against its model's: the rule, and how it is checked.

**The rule.** For every latent site, the support of the guide's distribution must be the support
of the model's, up to a set of measure zero for the site's reference measure: ``positive`` and
``nonnegative`` are the same half-line (a point has no mass), ``unit_interval`` is
``interval(0, 1)``, ``boolean`` is ``integer_interval(0, 1)``. Neither a subset nor a superset:

- a guide with mass outside the model's support draws points where the model's log density is
  ``-inf``: the objective is ``-inf`` or NaN;
- a guide that covers only part of the model's support has a finite ELBO, but its optimum is the
  posterior restricted to that part (``KL(p || q)`` is infinite, and the importance weights of
  IWELBO, RWS and PSIS never see the rest): a silent wrong answer. Uniform(0, 1) for a model's
  Uniform(0, 10) is refused for this reason.

Pyro and NumPyro's automatic guides meet this rule by construction (a transform onto the model's
support), as ours do; a guide written as a program is checked here. Discrete sites follow the same
rule (a guide over part of a Poisson's values fits a truncated posterior).

**The check.** Both programs run once, eagerly, on the concrete arguments: the guide draws its
latent values (its parameters at their initial values) and the model runs at those values, each
site's support recorded as its distribution states it. Bounds computed from data and constants are
therefore concrete and compared by value (elementwise, after broadcasting); bounds that depend on
latent values are compared at the guide's draw, where both are functions of the same values.
Sites inside loops and branches are traced by that run; where a bound comes out traced, both runs
are repeated under ``jax.disable_jit()``, so loops step in Python and each step's support is
concrete (a site's steps are stacked along a leading axis). A bound still traced after that (the
arguments themselves traced) leaves the supports undecided, which the caller refuses.

Limitation: a guide bound that depends on a ``ppl.param`` is compared at the parameter's initial
value. If training moves it past the model's support, the objective turns non-finite and the fit
stops with the error naming the site; if it moves inside, nothing sees it.
"""

from __future__ import annotations

import jax
import numpy as np

from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.stdlib import constraints as K
from ppl.stdlib.jax_compat import is_tracer

__all__ = ["compare_supports"]


class _Recorder(C.Mode):
    """``inner``'s choices, with each site's support recorded (one entry per step in loops)."""

    def __init__(self, inner: C.Mode):
        self.inner, self.found = inner, {}
        self.needs_key = inner.needs_key

    def sample(self, stmt, dist, inputs, key):
        self.found.setdefault(stmt.address, []).append(dist.support)
        return self.inner.sample(stmt, dist, inputs, key)


def _record(guide: ir.Program, guide_args, model: ir.Program, model_args):
    key = jax.random.key(0)
    in_guide = _Recorder(C.Simulate())
    trace = C.run(guide, in_guide, guide_args, key=key)
    in_model = _Recorder(C.Generate())
    C.run(model, in_model, model_args, inputs=dict(trace.choices), key=key)
    return in_guide.found, in_model.found


def _canonical(c):
    """``c`` as the set it is up to measure zero, in the form with explicit bounds."""
    if isinstance(c, (type(K.positive), type(K.nonnegative))):
        return K.greater_than(0.0)
    if isinstance(c, type(K.unit_interval)):
        return K.interval(0.0, 1.0)
    if isinstance(c, type(K.boolean)):
        return K.integer_interval(0, 1)
    return c


def _stacked(supports: list):
    """One constraint for a site's steps: the bounds stacked along a leading axis (a bound kept as
    it is where every step has the same); None where the steps differ in kind or a bound is traced."""
    first = supports[0]
    if len(supports) == 1:
        return first
    names = first._children
    if any(type(s) is not type(first) for s in supports) or any(
            is_tracer(getattr(s, n)) for s in supports for n in names):
        return None
    bounds = []
    for n in names:
        values = [np.asarray(getattr(s, n)) for s in supports]
        if all(v.shape == values[0].shape and np.array_equal(v, values[0]) for v in values):
            bounds.append(values[0])
        else:
            shape = np.broadcast_shapes(*(v.shape for v in values))
            bounds.append(np.stack([np.broadcast_to(v, shape) for v in values]))
    return jax.tree.unflatten(jax.tree.structure(first), bounds) if names else first


def _verdict(g_list, m_list):
    """``(same, guide's support, model's support)``: ``same`` True, False, or None (undecided)."""
    if not g_list or not m_list:
        return None, None, None
    g, m = _stacked(g_list), _stacked(m_list)
    if g is None or m is None:
        return None, g_list[0], m_list[0]
    return _canonical(g).same_set(_canonical(m)), g, m


def compare_supports(guide: ir.Program, guide_args, model: ir.Program, model_args, sites) -> dict:
    """For each address in ``sites``: ``(same, guide's support, model's support)``, ``same`` being
    True, False (the supports differ, by the rule of the module docstring) or None (undecided)."""
    found = _record(guide, guide_args, model, model_args)
    verdicts = {a: _verdict(found[0].get(a), found[1].get(a)) for a in sites}
    if any(v[0] is None for v in verdicts.values()):
        with jax.disable_jit():
            found = _record(guide, guide_args, model, model_args)
        verdicts = {a: _verdict(found[0].get(a), found[1].get(a)) for a in sites}
    return verdicts

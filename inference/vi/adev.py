"""The core transformation: a program's expectation -> a surrogate whose gradient is unbiased.

For a static program ``P`` (its random choices ``x``, each with an estimator)
and an integrand ``f`` of its trace, :func:`surrogate` returns ``(value, s)``
with (ADEV, Lew et al. POPL 2023, composed per site)::

    E[value] = E_{x ~ P(theta)}[f(x, theta)]        value == s  (forwards)
    E[grad_theta s] = grad_theta E_{x ~ P(theta)}[f(x, theta)]

built from one run of ``P`` in :class:`ADEVMode` (and, for ``"mvd"`` and
``"enum"`` sites, further runs): ``s = f + stop_gradient(f - b) * (S - stop_gradient(S))``
with ``S`` the log densities of the ``"reinforce"`` choices (``b`` a baseline
that does not depend on ``x``), plus for every ``"mvd"`` choice and parameter
``theta_j``: ``stop_gradient(c_j (f(x+_j) - f(x-_j))) * (theta_j - stop_gradient(theta_j))``;
the ``"enum"`` choices are summed out exactly: ``s = sum_v p_theta(v) s_v``
over the joint configurations ``v`` of the enumerated choices (a vmap).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics.cache import cached
from ppl.inference.vi.estimators import estimators_of, mvd_terms
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.stdlib.errors import ModelError

__all__ = ["ADEVMode", "PerDraw", "surrogate", "surrogate_many", "draw", "estimators", "MAX_CONFIGURATIONS"]

#: at most this many joint configurations of the "enum" choices of one program
MAX_CONFIGURATIONS = 4096

sg = jax.lax.stop_gradient


class PerDraw(NamedTuple):
    """What an integrand over K draws may return instead of a number: its ``value`` and one
    REINFORCE baseline per draw, ``baselines[k]`` computed from the *other* draws only (leave one
    out), so that ``E[(f - b_k) grad log q(x_k)] = E[f grad log q(x_k)]``: still unbiased."""

    value: Any
    baselines: Any


def _site_key(stmt, key):
    return jax.random.fold_in(key, C.address_hash(stmt.address))


class ADEVMode(C.Mode):
    """Law: each latent choice is drawn by its estimator: ``"reparam"``/``"implicit"``: ``x =
    sample(key)``, differentiable in the parameters; ``"reinforce"``/``"mvd"``: ``x =
    stop_gradient(sample(key))``; ``"enum"``: ``x`` = the configuration's value (``inputs``);
    the ``target`` (address, j, sign) of an MVD rerun takes ``x+_j`` or ``x-_j``. The log-density
    term is ``log p(x)`` (differentiable in the parameters) and never "given"."""

    needs_key = True

    def __init__(self, estimators: dict, target=None):
        self.estimators = estimators
        self.target = target
        self.mvd_sites: dict = {}  # address -> (dist, value, key): the main run's MVD choices

    def sample(self, stmt, dist, inputs, key):
        est = self.estimators[stmt.address]
        if est == "enum":
            value = jnp.asarray(inputs[stmt.address], stmt.out.dtype)
            return value, C.sum_terms(dist.log_density(value)), False
        k = _site_key(stmt, key)
        value = dist.sample(k)
        if est in ("reparam", "implicit"):
            return value, C.sum_terms(dist.log_density(value)), False
        value = sg(value)
        if est == "mvd":
            if self.target is not None and self.target[0] == stmt.address:
                _, j, sign = self.target
                _, _, xp, xm = mvd_terms(dist, jax.random.fold_in(k, 1), value)[j]
                value = jnp.asarray(xp if sign > 0 else xm, stmt.out.dtype)
            elif self.target is None:
                self.mvd_sites[stmt.address] = (dist, value, k)
        return value, C.sum_terms(dist.log_density(value)), False


def _estimators(program):
    return cached(program, ("adev-estimators",), lambda: estimators_of(program))


def estimators(program) -> dict:
    """Every latent site's estimator (checked), cached per program."""
    return _estimators(program)


def draw(program: ir.Program, key, args, sites=None):
    """One run of ``program`` under its estimators (no "enum" or "mvd" choices): ``(trace, S)`` with
    ``S`` the summed log density of its "reinforce" choices among ``sites`` (None: all), the score
    that a caller adds as ``stop_gradient(f - b) * (S - stop_gradient(S))`` for the ``f`` it computes."""
    est = _estimators(program)
    trace, terms = C.run(program, ADEVMode(est), args, key=key, record_terms=True)
    chosen = [a for a, e in est.items() if e == "reinforce" and (sites is None or a in sites)]
    return trace, _total(terms, chosen)


def _total(terms, addresses):
    out = jnp.zeros((), jnp.result_type(float))
    for a in addresses:
        if a in terms:
            out = out + jnp.sum(terms[a])
    return out


def _one(program, key, args, integrand, est, config, baseline):
    """(f, s, log p(config)) for one configuration of the enumerated choices."""
    mode = ADEVMode(est)
    trace, terms = C.run(program, mode, args, inputs=config, key=key, record_terms=True)
    f = jnp.asarray(integrand(trace), jnp.result_type(float))
    if f.shape != ():
        raise ModelError(f"an expectation needs a scalar integrand, but '{program.name}' gives shape {f.shape}",
                         span=program.span, hint="Return one number (sum or average the values).")
    score = _total(terms, [a for a, e in est.items() if e == "reinforce"])
    log_w = _total(terms, [a for a, e in est.items() if e == "enum"])
    s = f + sg(f - baseline) * (score - sg(score))
    for address, (dist, value, k) in mode.mvd_sites.items():
        for j, (theta, c, _, xm) in enumerate(mvd_terms(dist, jax.random.fold_in(k, 1), value)):
            plus = _rerun(program, key, args, integrand, est, config, (address, j, +1))
            minus = 0.0 if xm is None else _rerun(program, key, args, integrand, est, config, (address, j, -1))
            s = s + sg(c * (plus - minus)) * jnp.sum(theta - sg(theta))
    return f, s, log_w


def _rerun(program, key, args, integrand, est, config, target):
    trace = C.run(program, ADEVMode(est, target), args, inputs=config, key=key)
    return sg(jnp.asarray(integrand(trace), jnp.result_type(float)))


def _enum_sizes(program, args, addresses) -> dict:
    """Each enumerated choice's number of values (static), by a shape-only run."""
    sizes: dict = {}

    class Probe(C.Mode):
        def sample(self, stmt, dist, inputs, key):
            if stmt.address in addresses:
                sizes[stmt.address] = int(dist.enumerate_support().shape[0])
            return jnp.zeros(stmt.out.shape, stmt.out.dtype), jnp.zeros(()), False

    jax.eval_shape(lambda *a: (C.run(program, Probe(), a), 0)[1], *args)
    return sizes


def _configurations(program, args, addresses) -> dict:
    sizes = _enum_sizes(program, args, set(addresses))
    sites = program.latent_sites()
    shapes = {a: sites[a].stacked_shape for a in addresses}
    count = 1
    for a in addresses:
        count *= sizes[a] ** int(np.prod(shapes[a], dtype=int))
    if count > MAX_CONFIGURATIONS:
        first = sites[addresses[0]]
        raise ModelError(
            f"the choices with estimator='enum' ({', '.join(addresses)}) have {count} joint values, more than "
            f"{MAX_CONFIGURATIONS} to sum over", span=first.span,
            hint="Use estimator='reinforce' (or 'mvd') on some of them.")
    index = np.arange(count)
    radix = 1
    out = {}
    for a in addresses:
        n = int(np.prod(shapes[a], dtype=int))
        digits = np.stack([(index // (radix * sizes[a] ** i)) % sizes[a] for i in range(n)], axis=-1) if n else \
            np.zeros((count, 0), int)
        radix *= sizes[a] ** n
        out[a] = jnp.asarray(digits.reshape((count,) + tuple(shapes[a])), jnp.int32)
    return out


def surrogate(program: ir.Program, key, args, integrand, baseline=0.0):
    """``(value, s)`` for ``E_{x ~ program(args)}[integrand(trace)]`` (laws in the module docstring)."""
    est = _estimators(program)
    enum = [a for a, e in est.items() if e == "enum"]
    if not enum:
        f, s, _ = _one(program, key, args, integrand, est, {}, baseline)
        return f, s
    configs = _configurations(program, args, enum)
    f, s, log_w = jax.vmap(lambda cfg: _one(program, key, args, integrand, est, cfg, baseline))(configs)
    w = jnp.exp(log_w)
    safe = w > 0
    value = jnp.sum(jnp.where(safe, w * jnp.where(safe, f, 0.0), 0.0))
    return value, jnp.sum(jnp.where(safe, w * jnp.where(safe, s, 0.0), 0.0))


def surrogate_many(program: ir.Program, keys, args, integrand, baseline=0.0):
    """``(value, s)`` for ``E_{x_1..x_K iid ~ program(args)}[integrand(traces)]``, the K traces stacked
    along axis 0 (``keys`` has K keys). Estimators "reparam", "implicit" and "reinforce" only.

    The REINFORCE term is ``sum_k stop_gradient(f - b_k) (S_k - stop_gradient(S_k))`` with ``S_k`` the
    log density of draw k's "reinforce" choices and ``b_k = baseline`` (a number not computed from
    these draws), or the leave-one-out baselines of a :class:`PerDraw` the integrand returns."""
    est = _estimators(program)
    other = [a for a, e in est.items() if e in ("enum", "mvd")]
    if other:
        info = program.latent_sites()[other[0]]
        raise ModelError(f"an objective over several joint draws (IWELBO) does not take estimator="
                         f"{est[other[0]]!r} at '{other[0]}'", span=info.span,
                         hint="Use 'reparam' or 'reinforce' there, or the ELBO.")

    def run(k):
        trace, terms = C.run(program, ADEVMode(est), args, key=k, record_terms=True)
        return trace, _total(terms, [a for a, e in est.items() if e == "reinforce"])

    traces, scores = jax.vmap(run)(keys)
    out = integrand(traces)
    if isinstance(out, PerDraw):
        f = jnp.asarray(out.value, jnp.result_type(float))
        b = sg(jnp.asarray(out.baselines, jnp.result_type(float)))
    else:
        f = jnp.asarray(out, jnp.result_type(float))
        b = baseline
    return f, f + jnp.sum(sg(f - b) * (scores - sg(scores)))

"""``marginal(guide, over=..., K=...)``: a hierarchical guide with some of its sites marginalised by SIR.

A guide program ``q(u, z)`` draws auxiliary sites ``u`` (``over``) and then the model's latent
sites ``z``. Its marginal ``q(z) = int q(u) q(z | u) du`` has no closed form; the marginalised
guide stands in for it with a sampling-importance-resampling estimate (Becker et al. PLDI 2024,
genjax.vi's ``Marginal``; Sobolev & Vetrov 2019), with the guide's own ``q(u)`` as the proposal:

- *simulate* (``expect``): draw ``(u_1, z) ~ q`` jointly, ``u_2..u_K ~ q(u)`` afresh, and use
  ``log qhat(z) = log (1/K) sum_k q(z | u_k)``. Since ``u_1`` is a draw of ``q(u | z)``,
  ``E[1 / qhat(z)] = 1 / q(z)``, so ``E[log qhat(z)] >= log q(z)`` and an ELBO with ``log qhat``
  in place of ``log q`` is still a lower bound on ``log p(y)``; it tightens as K grows.
  K = 1 with ELBO is HVI (Ranganath et al. 2016, with ``r(u | z) = q(u)``); K > 1 with ELBO
  (IWELBO(1)) is IWHVI; with IWELBO(K') on top, DIWHVI.
- *density at given values* (``log_density``): ``u_1..u_K ~ q(u)``, the same formula: an unbiased
  estimate of ``q(z)`` (used by wake-sleep objectives).

With a learned reverse (auxiliary) model ``reverse=r``, a ppl program ``r(z)`` over the ``u`` sites
with its own ``ppl.param``s (Ranganath et al. 2016; Sobolev & Vetrov 2019), the fresh ``u_k`` are
drawn from ``r(u | z)`` instead and each weight is ``q(z, u_k) / r(u_k | z)``::

    log qhat(z) = log (1/K) [ q(z, u_1) / r(u_1 | z) + sum_{k=2..K} q(z, u_k) / r(u_k | z) ]

still ``E[1 / qhat(z)] = 1 / q(z)`` for any ``r`` covering ``q(u | z)``, so the bound stays a bound;
with ``r = q(u | z)`` every weight is ``q(z)`` and the bound is tight for any K (the ELBO of the
exact marginal). Training ``r`` with the objective raises the bound towards that. A parameter of
``r`` named as one of the guide's *is* the guide's (one value), so ``r`` may read the guide's
parameters; ``r(z)`` takes the dict of the kept sites' values.

Every draw, the fresh ``u_k`` included, is a random choice of the objective's expectation under
its own estimator, and its REINFORCE score is weighted by the whole integrand, so gradients stay
unbiased for the estimate they differentiate. The ``u`` sites must not depend on the ``z`` sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from ppl.inference.vi import adev
from ppl.inference.vi.adev import PerDraw
from ppl.inference.vi.paramset import ParamSet
from ppl.inference.vi.subsample import is_subsample
from ppl.semantics import compile as C
from ppl.semantics import params as P
from ppl.semantics.graph import dependency_graph
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["Marginal", "MarginalGuide"]

sg = jax.lax.stop_gradient


def _where(info) -> str:
    return f" (line {info.span.line})" if info.span is not None and info.span.line else ""


@dataclass(frozen=True)
class Marginal:
    """``ppl.marginal(guide, over, K, args)``: the guide ``guide(*args)`` with the sites ``over``
    marginalised by SIR with ``K`` particles (laws in the module docstring)."""

    guide: Any
    over: tuple
    K: int = 1
    args: tuple = ()
    reverse: Any = None

    def bind(self, program, args):
        return MarginalGuide(self, program, args)


class MarginalGuide:
    """A :class:`Marginal` bound to a model: the guide protocol of ``guides.py`` (``init``,
    ``constrained``, ``expect``, ``expect_many``, ``draw``) and ``log_density``."""

    density_is_estimated = True  # ``log_density`` takes a key
    named_params = True  # ``constrained(phi)`` maps each ppl.param's name to its value

    def __init__(self, spec: Marginal, model_program, model_args):
        program, leaves = spec.guide.program(*spec.args)
        if isinstance(program, Dynamic):
            raise ModelError(program.describe() + " A guide must be static.", span=program.span)
        self.program, self.args = program, leaves
        self.K = int(spec.K)
        if self.K < 1:
            raise ModelError(f"marginal(..., K={spec.K}): SIR needs at least one particle")
        over = (spec.over,) if isinstance(spec.over, str) else tuple(spec.over)
        self.over, self.kept = over, _check(program, over, model_program)
        self.params = ParamSet(program, leaves)
        self.reverse = spec.reverse
        if self.reverse is not None:
            self.reverse_params = _check_reverse(self, model_program)

    def init(self, key):
        phi = self.params.init()
        if self.reverse is not None:  # the reverse model's own parameters (shared names are the guide's)
            phi = {**self.reverse_params.init(), **phi}
        return phi

    def constrained(self, phi):
        out = self.params.constrained({a: phi[a] for a in self.params.infos})
        if self.reverse is not None:
            rest = {a: v for a, v in phi.items() if a not in self.params.infos}
            out = {**self.reverse_params.constrained(rest), **out}
        return out

    def _log_w(self, u, z):
        """``log q(z | u)`` (no reverse model), else ``log q(z, u) - log r(u | z)``, at ``u`` and ``z``."""
        terms = C.site_log_densities(self.program, {**u, **z}, self.args)
        log_w = sum(jnp.sum(terms[a]) for a in self.kept)
        if self.reverse is None:
            return log_w
        program, leaves = self._reverse_program(z)
        return log_w + sum(jnp.sum(terms[a]) for a in self.over) - C.log_density(program, u, leaves)

    def _reverse_program(self, z):
        program, leaves = self.reverse.program(z)
        return program, leaves

    def _fresh(self, keys, z):
        """``(log w_k for K-1 fresh u_k, their REINFORCE score)``: ``u_k ~ q(u)``, or ``r(u | z)``."""
        if self.reverse is None:
            program, args = self.program, self.args
        else:
            program, args = self._reverse_program(z)
        traces, scores = jax.vmap(lambda k: adev.draw(program, k, args, self.over))(keys)
        us = {a: traces.choices[a] for a in self.over}
        return jax.vmap(lambda u: self._log_w(u, z))(us), jnp.sum(scores)

    def _log_qhat(self, trace, key):
        """``(z, log qhat(z), S)`` for one joint draw ``trace`` and K-1 fresh ``u`` (keys from ``key``)."""
        z = {a: trace.choices[a] for a in self.kept}
        lw1 = self._log_w({a: trace.choices[a] for a in self.over}, z)
        if self.K == 1:
            return z, lw1, jnp.zeros_like(lw1)
        lws, score = self._fresh(jax.random.split(key, self.K - 1), z)
        all_w = jnp.concatenate([lw1[None], lws])
        return z, jax.nn.logsumexp(all_w) - jnp.log(self.K), score

    def expect(self, phi, key, f, baseline, args=None):
        k_joint, k_fresh = jax.random.split(key)

        def integrand(trace):
            z, log_q, score = self._log_qhat(trace, k_fresh)
            value = jnp.asarray(f(z, log_q), jnp.result_type(float))
            return value + sg(value - baseline) * (score - sg(score))

        with P.bound(self.constrained(phi)):
            return adev.surrogate(self.program, k_joint, self.args, integrand, baseline)

    def expect_many(self, phi, keys, f, baseline, args=None):
        fresh = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)

        def integrand(traces):
            z, log_q, score = jax.vmap(self._log_qhat)(traces, fresh)
            out = f(z, log_q)
            value, b = (out.value, out.baselines) if isinstance(out, PerDraw) else (out, baseline)
            value = jnp.asarray(value, jnp.result_type(float))
            s = value + jnp.sum(sg(value - b) * (score - sg(score)))
            return PerDraw(s, b) if isinstance(out, PerDraw) else s

        with P.bound(self.constrained(phi)):
            return adev.surrogate_many(self.program, keys, self.args, integrand, baseline)

    def draw(self, phi, key, args=None):
        with P.bound(self.constrained(phi)):
            trace = C.run(self.program, C.Simulate(), self.args, key=key)
        return {a: trace.choices[a] for a in self.kept}

    def log_density(self, phi, z, args=None, key=None):
        """An SIR estimate ``log (1/K) sum_k q(z | u_k)``, ``u_k ~ q(u)``: unbiased for ``q(z)`` (its log
        is biased low). Its gradient is that of the estimate (reparameterised ``u``)."""
        key = jax.random.key(0) if key is None else key
        with P.bound(self.constrained(phi)):
            lws, _ = self._fresh(jax.random.split(key, self.K), z)
        return jax.nn.logsumexp(lws) - jnp.log(self.K)


def _check(program, over, model_program) -> tuple:
    """The kept sites (the model's latent sites), after checking the guide against the model."""
    sites = program.latent_sites()
    m_sites = {a: info for a, info in model_program.latent_sites().items() if not is_subsample(info)}
    for a in over:
        if a not in sites:
            raise ModelError(f"marginal(over=...) names '{a}', which is not a random choice of the guide "
                             f"'{program.name}'", span=program.span,
                             hint=f"The guide's random choices are: {', '.join(sites)}.")
        if a in m_sites:
            raise ModelError(f"marginal(over=...) names '{a}', a latent site of the model '{model_program.name}'"
                             f"{_where(m_sites[a])}: the guide must draw it, not marginalise it",
                             span=sites[a].span, hint="Marginalise only the guide's auxiliary choices.")
    kept = tuple(a for a in sites if a not in over)
    for a, info in m_sites.items():
        if a not in sites:
            raise ModelError(f"the guide '{program.name}' has no random choice '{a}', a latent site of the model "
                             f"'{model_program.name}'{_where(info)}", span=program.span or info.span,
                             hint=f"Add ppl.sample({a!r}, ...) to the guide: it must draw every latent site.")
    for a in kept:
        if a not in m_sites:
            raise ModelError(f"the guide's random choice '{a}' is not a latent site of the model "
                             f"'{model_program.name}'", span=sites[a].span,
                             hint="Draw only the model's latent sites, or name it in marginal(over=...).")
        if sites[a].stacked_shape != m_sites[a].stacked_shape:
            raise ModelError(f"the guide draws '{a}' with shape {sites[a].stacked_shape}, but the model's '{a}' "
                             f"has shape {m_sites[a].stacked_shape}", span=sites[a].span)
    est = adev.estimators(program)
    for a, e in est.items():
        if e in ("enum", "mvd"):
            raise ModelError(f"a marginalised guide does not take estimator={e!r} at '{a}'", span=sites[a].span,
                             hint="Use 'reparam', 'implicit' or 'reinforce' in a guide given to ppl.marginal.")
    graph = dependency_graph(program)
    for a in over:
        late = graph.ancestors(a) & set(kept)
        if late:
            raise ModelError(f"the marginalised site '{a}' depends on '{min(late)}', a site the guide keeps",
                             span=sites[a].span, hint="Draw the auxiliary sites first, independently of the rest.")
    return kept


def _check_reverse(guide: "MarginalGuide", model_program) -> ParamSet:
    """The reverse model's parameters, after checking that it draws exactly the ``over`` sites."""
    zeros = {a: jnp.zeros(info.stacked_shape, jnp.result_type(float)) for a, info in
             model_program.latent_sites().items() if a in guide.kept}
    program, leaves = guide._reverse_program(zeros)
    if isinstance(program, Dynamic):
        raise ModelError(program.describe() + " A reverse model must be static.", span=program.span)
    sites, g_sites = program.latent_sites(), guide.program.latent_sites()
    if set(sites) != set(guide.over):
        raise ModelError(f"the reverse model '{program.name}' draws {sorted(sites)}, but marginal(over=...) "
                         f"marginalises {sorted(guide.over)}", span=program.span,
                         hint="The reverse model r(u | z) draws exactly the marginalised sites, with their names.")
    for a, info in sites.items():
        if info.stacked_shape != g_sites[a].stacked_shape:
            raise ModelError(f"the reverse model draws '{a}' with shape {info.stacked_shape}, but the guide's '{a}' "
                             f"has shape {g_sites[a].stacked_shape}", span=info.span)
    for a, info in program.sites.items():
        if info.kind in ("observe", "factor"):
            raise ModelError(f"the reverse model has an {info.kind} ('{a}'); it only draws the marginalised sites",
                             span=info.span)
    est = adev.estimators(program)
    for a, e in est.items():
        if e in ("enum", "mvd"):
            raise ModelError(f"a reverse model does not take estimator={e!r} at '{a}'", span=sites[a].span,
                             hint="Use 'reparam', 'implicit' or 'reinforce'.")
    return ParamSet(program, leaves)

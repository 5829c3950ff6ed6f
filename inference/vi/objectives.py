"""Variational objectives, written as short programs over first-class blocks.

An objective is a function ``(ctx, key) -> (value, s)``: an estimate of a number
to *maximise* and its gradient surrogate (``E[grad s]`` is the gradient the
objective asks for; ``s == value`` forwards). It is built from the blocks of a
:class:`Context`, which stand for the guide ``q_phi``, the model ``p_theta`` and the data ``y``:

- ``ctx.sim(key, f)``: ``E_{z ~ q}[f(z, log q(z))]`` -- simulate the guide, with its log
  density, each random choice under its estimator (the ADEV transformation, ``adev.py``).
  ``f`` may itself use the blocks, ``ctx.sim`` included: nested expectations compose;
- ``ctx.sim_many(keys, f)``: the same over K independent guide draws, stacked; ``f`` may
  return :class:`~ppl.inference.vi.adev.PerDraw` to give leave-one-out REINFORCE baselines;
- ``ctx.density(z)``: ``log p_theta(z, y)``, the model's joint log density at the guide's
  choices, with the data (``density``);
- ``ctx.draw(key)`` / ``ctx.guide_density(z)``: a draw of ``q`` that no gradient flows
  through, and ``log q_phi(z)`` at given values (what wake-sleep objectives need);
- a guide built with ``marginal(guide, over=..., K=...)`` (``marginal.py``) is simulated by the
  same ``ctx.sim``: its ``log q`` is then an SIR estimate of the marginal density, so
  hierarchical families (HVI, IWHVI, DIWHVI) need no objective of their own.

The library objectives below are each a few lines of these blocks; a user objective is written
the same way (``docs/vi.md`` shows a Renyi bound). ``num_particles`` averages that many
independent estimates (a vmap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ppl.inference.vi.adev import PerDraw
from ppl.inference.vi.paramset import WithModelParams
from ppl.semantics import compile as C
from ppl.semantics import params as P
from ppl.stdlib.errors import ModelError

__all__ = ["Context", "ELBO", "IWELBO", "VIMCO", "RWS", "log_mean_exp", "leave_one_out"]

sg = jax.lax.stop_gradient


class Context:
    """The blocks an objective is written with (see the module docstring). ``model_params``: the
    model's own ``ppl.param`` values (constrained), which ``density`` binds."""

    def __init__(self, guide, phi, model_program, model_args, baseline=0.0, model_params=None):
        self.guide, self.phi = guide, phi
        self.model_program, self.model_args = model_program, model_args
        self.baseline = baseline
        if model_params is None and hasattr(guide, "model_values"):  # the model's own ppl.param values
            model_params = guide.model_values(phi)
        self.model_params = {} if model_params is None else model_params

    def density(self, z):
        """``log p(z, y)``: the model's joint log density at the latent values ``z``."""
        with P.bound(self.model_params):
            return C.log_density(self.model_program, z, self.model_args)

    def sim(self, key, f, baseline=None):
        """``(value, s)`` for ``E_{z ~ q}[f(z, log q(z))]``."""
        b = self.baseline if baseline is None else baseline
        return self.guide.expect(self.phi, key, f, b, self.model_args)

    def sim_many(self, keys, f, baseline=None):
        """``(value, s)`` for ``E_{z_1..z_K ~ q}[f(zs, log q(zs))]``, the draws stacked on axis 0."""
        b = self.baseline if baseline is None else baseline
        value, s = self.guide.expect_many(self.phi, keys, f, b, self.model_args)
        if isinstance(value, PerDraw):  # a guide without REINFORCE choices has no use for the baselines
            value, s = value.value, s.value
        return value, s

    expect, expect_many = sim, sim_many  # the names of the first version

    def param_values(self) -> dict:
        """Every ``ppl.param`` value by name, the guide's and the model's (constrained): what an objective
        written as a program (``ppl.expectation`` with ``ppl.sim``/``ppl.density``) binds."""
        guide, phi = self.guide, self.phi
        if isinstance(guide, WithModelParams):
            guide, phi = guide.inner, phi["guide"]
        if not getattr(guide, "named_params", False):
            raise ModelError(f"an objective written as a program (ppl.expectation) needs a guide whose parameters "
                             f"are ppl.param sites, not {type(guide).__name__}",
                             hint="Write the guide as a @ppl.model with ppl.param (and ppl.sim it in the objective).")
        return {**guide.constrained(phi), **self.model_params}

    def draw(self, key):
        """One draw ``z ~ q`` that no gradient flows through."""
        return sg(self.guide.draw(self.phi, key, self.model_args))

    def guide_density(self, z, key=None):
        """``log q_phi(z)`` at given values ``z`` (differentiable in ``phi``); ``key`` for a guide whose
        density is itself estimated (a marginalised guide)."""
        guide, phi = self.guide, self.phi
        if isinstance(guide, WithModelParams):
            guide, phi = guide.inner, phi["guide"]
        own = getattr(guide, "log_density", None)
        if own is not None:
            if getattr(guide, "density_is_estimated", False):
                return own(phi, z, self.model_args, key=key)
            return own(phi, z, self.model_args)
        if hasattr(guide, "program") and hasattr(guide, "constrained") and hasattr(guide, "args"):
            with P.bound(guide.constrained(phi)):
                return C.log_density(guide.program, z, guide.args)
        raise ModelError(f"this objective needs the guide's density at given values, which "
                         f"{type(guide).__name__} does not offer",
                         hint="Use a guide written as a ppl model (with ppl.param), or the ELBO.")


def log_mean_exp(x, axis=0):
    return jax.nn.logsumexp(x, axis=axis) - math.log(x.shape[axis])


def leave_one_out(log_w, kind="arithmetic"):
    """The leave-one-out baselines of ``log (1/K) sum_k w_k`` for K >= 2: ``b_k`` is the same bound
    with ``w_k`` replaced by the mean of the other weights -- ``"arithmetic"``: ``b_k`` is then the
    bound of the other K - 1 draws; ``"geometric"``: VIMCO's (Mnih & Rezende 2016). Each ``b_k``
    depends on the other draws only."""
    k = log_w.shape[0]
    mask = jnp.eye(k, dtype=bool)  # row k: draw k left out
    others = jnp.where(mask, -jnp.inf, log_w[None, :])
    if kind == "arithmetic":
        return jax.nn.logsumexp(others, axis=1) - math.log(k - 1)
    if kind != "geometric":
        raise ModelError(f"leave_one_out kind must be 'arithmetic' or 'geometric', not {kind!r}")
    geo = (jnp.sum(log_w) - log_w) / (k - 1)  # log of the geometric mean of the others
    return jax.nn.logsumexp(jnp.where(mask, geo[:, None], log_w[None, :]), axis=1) - math.log(k)


def _count(value, what):
    n = int(value)
    if n < 1:
        raise ModelError(f"{what} must be at least 1, not {value}")
    return n


def averaged(n, one, key):
    """The mean of ``n`` independent estimates ``one(key_i) -> (value, s)``."""
    keys = jax.random.split(key, n)
    if n == 1:  # the same estimate without a batch axis of one, which costs the gradient transposed copies
        return one(keys[0])
    value, s = jax.vmap(one)(keys)
    return jnp.mean(value), jnp.mean(s)


@dataclass(frozen=True)
class ELBO:
    """``ELBO = E_{z ~ q}[log p(z, y) - log q(z)] <= log p(y)``, averaged over ``num_particles``.
    REINFORCE choices use the running-average baseline of the fit."""

    num_particles: int = 1

    def __call__(self, ctx: Context, key):
        def one(k):
            return ctx.sim(k, lambda z, log_q: ctx.density(z) - log_q)

        return averaged(_count(self.num_particles, "ELBO's num_particles"), one, key)


def _importance_bound(ctx, key, K, loo):
    """``log (1/K) sum_k p(z_k, y) / q(z_k)``, z_k ~ q, with leave-one-out baselines of kind ``loo``."""

    def bound(zs, log_qs):
        log_w = jax.vmap(ctx.density)(zs) - log_qs
        value = log_mean_exp(log_w)
        return value if K == 1 else PerDraw(value, leave_one_out(log_w, loo))

    return ctx.sim_many(jax.random.split(key, K), bound)


@dataclass(frozen=True)
class IWELBO:
    """``IWELBO_K = E_{z_1..K ~ q}[log (1/K) sum_k p(z_k, y) / q(z_k)]``; ``ELBO <= IWELBO_K <= log p(y)``.
    REINFORCE choices use leave-one-out baselines: ``b_k`` is the bound of the other K - 1 draws."""

    K: int = 5
    num_particles: int = 1

    def __call__(self, ctx: Context, key):
        k = _count(self.K, "IWELBO's K")
        return averaged(_count(self.num_particles, "IWELBO's num_particles"),
                        lambda kk: _importance_bound(ctx, kk, k, "arithmetic"), key)


@dataclass(frozen=True)
class VIMCO:
    """The IWELBO_K with VIMCO's control variates (Mnih & Rezende 2016): ``b_k`` is the bound with
    ``w_k`` replaced by the geometric mean of the other weights. Made for guides with discrete
    (REINFORCE) choices; the value is the IWELBO's."""

    K: int = 5
    num_particles: int = 1

    def __call__(self, ctx: Context, key):
        k = _count(self.K, "VIMCO's K")
        if k < 2:
            raise ModelError("VIMCO needs K >= 2 draws (its baselines leave one out)")
        return averaged(_count(self.num_particles, "VIMCO's num_particles"),
                        lambda kk: _importance_bound(ctx, kk, k, "geometric"), key)


@dataclass(frozen=True)
class RWS:
    """Reweighted wake-sleep (Bornschein & Bengio 2015; Le et al. 2019) with K draws ``z_k ~ q``,
    no gradient through them, and normalised weights ``wbar_k ~ p(z_k, y) / q(z_k)``:

    - wake-p: ``sum_k wbar_k grad_theta log p_theta(z_k, y)``, the model's parameters (an estimate of
      ``grad_theta log p_theta(y)``);
    - wake-q: ``sum_k wbar_k grad_phi log q_phi(z_k)``, the guide's (an estimate of
      ``-grad_phi KL(p(z | y) || q_phi)``: it fits q to the posterior from the other side).

    The value is the IWELBO_K estimate. RWS is not the gradient of one objective, and it needs no
    gradient through the draws: it suits discrete guides."""

    K: int = 5
    num_particles: int = 1

    def __call__(self, ctx: Context, key):
        K = _count(self.K, "RWS's K")

        def one(k):
            zs = jax.vmap(ctx.draw)(jax.random.split(k, K))
            log_p = jax.vmap(ctx.density)(zs)
            log_q = jax.vmap(ctx.guide_density)(zs, jax.random.split(jax.random.fold_in(k, 1), K))
            log_w = sg(log_p - log_q)
            wbar = jax.nn.softmax(log_w)
            value = log_mean_exp(log_w)
            return value, value + jnp.sum(wbar * ((log_p - sg(log_p)) + (log_q - sg(log_q))))

        return averaged(_count(self.num_particles, "RWS's num_particles"), one, key)

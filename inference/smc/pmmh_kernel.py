"""Particle marginal Metropolis-Hastings as a kernel (the contract of ``inference.mcmc.kernel``).

PMMH is Metropolis-Hastings on an *extended* target: a point is the static
parameters ``u`` (flat, unconstrained) together with the particle filter's
auxiliary randomness, which the kernel keeps through what it determines: the
log-evidence estimate ``log Z(u)`` and one particle's trajectory, drawn by its
final weight (``PMMHPoint``). The extended target has density proportional to
``Z(u) * q(aux | u)``; its marginal in ``u`` is the posterior, because ``Z(u)``
is unbiased for ``p(T(u)) |J(u)| p(y | T(u))`` (Andrieu, Doucet and Holenstein, 2010).

One transition (``PMMHKernel.step``)::

    u' = u + step_size * N(0, I)
    (log Z', picked') = estimate(key, u')        # a fresh run of the filter at u'
    accept with probability min(1, Z' / Z)

Law (invariance): the proposal of ``(u', aux')`` is a symmetric random walk in
``u`` times ``q(aux' | u')``, so the Metropolis-Hastings ratio of the extended
target is ``Z' / Z``, and the kernel leaves the extended target invariant for
every number of particles. ``init`` draws nothing (a point carries its estimate);
a point whose estimate is ``-inf`` moves to the first proposal with a finite one.

``family(step_size) -> PMMHKernel`` (the step size is a run-time value: changing
it compiles nothing); the driver runs it with ``warmup.Fixed`` (PMMH tunes nothing).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["PMMHPoint", "PMMHState", "PMMHInfo", "PMMHKernel", "PMMHFamily", "estimator", "point"]

Array = Any


class PMMHPoint(NamedTuple):
    """A point of the extended target: the parameters and what the filter's randomness gave at them."""

    u: Array  # (dim,) unconstrained parameters, flattened
    log_z: Array  # () the filter's log-evidence estimate at u (-inf where it is zero or NaN)
    picked: Any  # one particle's choices and return values, picked by final weight


class PMMHState(NamedTuple):
    position: PMMHPoint
    log_density: Array  # log Z(u): the extended target's log density up to q(aux | u)

    @property
    def record(self):
        """What a kept draw keeps: the picked particle's choices and return values."""
        return self.position.picked


class PMMHInfo(NamedTuple):
    accept_prob: Array


def estimator(f, unravel: Callable) -> Callable:
    """``estimate(key, args, flat) -> (log Z, picked)``: the compiled filter ``f`` at ``T(unravel(flat))``.

    ``picked`` is one particle, drawn with probability proportional to its final weight: its
    choices (the parameters included) and its return values.
    """

    def estimate(key, args, flat):
        out = f.at(key, args, unravel(flat))
        log_z = jnp.where(jnp.isnan(out.log_evidence), -jnp.inf, out.log_evidence)
        k_pick = jax.random.fold_in(key, 7)
        j = jax.random.categorical(k_pick, jnp.where(jnp.isnan(out.log_weights), -jnp.inf, out.log_weights))
        axes = f.sample_axes
        picked = {a: jnp.take(v, j, axis=axes[a]) for a, v in out.samples.items()}
        returns = [v if ax is None else jnp.take(v, j, axis=ax) for v, ax in zip(out.returns, f.return_axes)]
        return log_z, (picked, returns)

    return estimate


def point(estimate: Callable, key, args, flat) -> PMMHPoint:
    """The point at ``flat``, with a fresh estimate drawn from ``key``."""
    log_z, picked = estimate(key, args, flat)
    return PMMHPoint(flat, log_z, picked)


class PMMHKernel(NamedTuple):
    """The PMMH transition at a fixed step size (``init``/``step``, the MCMC kernel contract)."""

    estimate: Callable  # (key, args, flat) -> (log Z, picked)
    args: list
    step_size: Array

    def init(self, position: PMMHPoint) -> PMMHState:
        return PMMHState(position, position.log_z)

    def step(self, key, state: PMMHState) -> tuple[PMMHState, PMMHInfo]:
        here = state.position
        k_move, k_filter, k_accept = jax.random.split(key, 3)
        u = here.u + self.step_size * jax.random.normal(k_move, here.u.shape, here.u.dtype)
        there = point(self.estimate, k_filter, self.args, u)
        log_alpha = jnp.where(jnp.isfinite(here.log_z), there.log_z - here.log_z,
                              jnp.where(jnp.isfinite(there.log_z), 0.0, -jnp.inf))
        accept_prob = jnp.exp(jnp.minimum(0.0, log_alpha))
        accept = jax.random.uniform(k_accept, (), here.u.dtype) < accept_prob
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b), there, here)
        return PMMHState(new, new.log_z), PMMHInfo(accept_prob)


class PMMHFamily(NamedTuple):
    """``family(step_size) -> PMMHKernel`` on the run's arguments ``args``."""

    estimate: Callable
    args: list

    def __call__(self, step_size: Array) -> PMMHKernel:
        return PMMHKernel(self.estimate, self.args, step_size)

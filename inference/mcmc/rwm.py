"""Random-walk Metropolis on a log density, as a kernel (the contract of ``kernel``).

``Kernel(logdensity_fn, scale)``: ``init(position)`` and ``step(key, state)``
propose ``x' = x + scale * N(0, I)`` on the flat vector of the position
(``jax.flatten_util.ravel_pytree``; ``scale`` a number or one per coordinate)
and accept with probability ``min(1, exp(f(x') - f(x)))``. A NaN log density
counts as ``-inf`` (the proposal is rejected).

Law: the proposal is symmetric, so the kernel is reversible with respect to
``exp(f)`` and leaves it invariant.

The same kernel serves SMC's resample-move (``smc.rejuvenation.RandomWalk``)
and the chain driver: ``Builder()`` is a family over ``hmc.Params`` whose
scale is ``step_size * sqrt(diag(inverse_mass_matrix))``, so
``run_chains(..., rwm.Builder(), adapt=Adaptation(target_accept=0.3))`` tunes
it with Stan's warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = ["State", "Info", "Kernel", "Family", "Builder"]

Array = Any


class State(NamedTuple):
    position: Any
    log_density: Array


class Info(NamedTuple):
    accept_prob: Array
    accepted: Array


def _safe(logdensity_fn: Callable, position: Any) -> Array:
    lp = logdensity_fn(position)
    return jnp.where(jnp.isnan(lp), -jnp.inf, lp)


class Kernel(NamedTuple):
    """Random-walk Metropolis at proposal scale ``scale``."""

    logdensity_fn: Callable
    scale: Any

    def init(self, position: Any) -> State:
        return State(position, _safe(self.logdensity_fn, position))

    def step(self, key: Array, state: State) -> tuple[State, Info]:
        x, unravel = ravel_pytree(state.position)
        k_move, k_accept = jax.random.split(key)
        proposal = x + self.scale * jax.random.normal(k_move, x.shape, x.dtype)
        lp_new = _safe(self.logdensity_fn, unravel(proposal))
        log_alpha = lp_new - state.log_density
        accept = jnp.log(jax.random.uniform(k_accept, (), x.dtype)) < log_alpha
        accept_prob = jnp.exp(jnp.minimum(0.0, jnp.where(jnp.isnan(log_alpha), -jnp.inf, log_alpha)))
        new = State(unravel(jnp.where(accept, proposal, x)), jnp.where(accept, lp_new, state.log_density))
        return new, Info(accept_prob, accept)


class Family(NamedTuple):
    """``family(hmc.Params) -> Kernel`` with scale ``step_size * sqrt(diag(inverse_mass_matrix))``."""

    logdensity_fn: Callable

    def __call__(self, params) -> Kernel:
        imm = getattr(params.metric, "inverse_mass_matrix", params.metric)
        diag = jnp.diagonal(imm) if jnp.ndim(imm) == 2 else imm
        return Kernel(self.logdensity_fn, params.step_size * jnp.sqrt(diag))


@dataclass(frozen=True)
class Builder:
    """Random-walk Metropolis for ``run_chains`` (hashable; no options)."""

    def family(self, logdensity_fn: Callable) -> Family:
        return Family(logdensity_fn)

"""Rejuvenation kernels for resample-move SMC.

After resampling, many particles are copies of a few; an MCMC kernel that
leaves the current partial posterior invariant moves each copy a little,
restoring diversity without changing what the population targets
(Gilks and Berzuini, 2001; Chopin, 2002).

Interface: a kernel is any callable ::

    kernel(key, position, logdensity_fn) -> position

for *one* particle (SMC vmaps it over the population). ``position`` is a
dict ``address -> array`` of the static parameters — the continuous random
choices before the loop — in unconstrained coordinates;
``logdensity_fn(position)`` is the log density of the partial posterior
``p(theta, x_{0:t}, y_{0:t})`` as a function of those parameters, with the
particle's trajectory ``x_{0:t}`` and its discrete parameters held fixed
(Jacobians of the transforms included). It is a pure JAX function, jittable
and differentiable, so gradient-based kernels plug in as they are:
``HMCMove`` and ``NUTSMove`` run ppl's own HMC and NUTS transitions, and a
BlackJAX-style ``(init, step)`` pair wraps as
``lambda key, x, f: step(key, init(x, f), f).position``. ``RandomWalk`` is
random-walk Metropolis.

Law: if ``kernel(key, ., f)`` leaves the density ``exp(f)`` invariant, the
population's weighted measure is unchanged in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ppl.inference.mcmc import hmc, nuts
from ppl.stdlib.errors import ModelError

__all__ = ["RandomWalk", "HMCMove", "NUTSMove"]


@dataclass(frozen=True, kw_only=True)
class RandomWalk:
    """Random-walk Metropolis: ``num_steps`` Gaussian proposals of scale ``step_size``.

    Each step proposes ``x' = x + step_size * N(0, I)`` in unconstrained
    coordinates and accepts with probability ``min(1, exp(f(x') - f(x)))``:
    a symmetric proposal, so the kernel is reversible with respect to ``exp(f)``.
    """

    step_size: float = 0.1
    num_steps: int = 1

    def __post_init__(self):
        _positive_number("RandomWalk", "step_size", self.step_size)
        _positive_int("RandomWalk", "num_steps", self.num_steps)

    def __call__(self, key, position, logdensity_fn):
        flat, unravel = ravel_pytree(position)

        def f(x):
            lp = logdensity_fn(unravel(x))
            return jnp.where(jnp.isnan(lp), -jnp.inf, lp)

        def step(state, k):
            x, lp = state
            k_move, k_accept = jax.random.split(k)
            proposal = x + self.step_size * jax.random.normal(k_move, x.shape, x.dtype)
            lp_new = f(proposal)
            accept = jnp.log(jax.random.uniform(k_accept, (), x.dtype)) < lp_new - lp
            return (jnp.where(accept, proposal, x), jnp.where(accept, lp_new, lp)), None

        (x, _), _ = jax.lax.scan(step, (flat, f(flat)), jax.random.split(key, self.num_steps))
        return unravel(x)


def _positive_number(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ModelError(f"{owner}({name}=...) must be a positive number, not {value!r}")


def _positive_int(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{owner}({name}=...) must be a positive integer, not {value!r}")


def _gradient_moves(builder, step_size: float, num_moves: int, key, position, logdensity_fn):
    """``num_moves`` transitions of ``builder``'s kernel at ``step_size`` with a unit metric."""
    kernel = builder.build_kernel()
    flat, _ = ravel_pytree(position)
    inverse_mass = jnp.ones_like(flat)

    def safe(p):
        lp = logdensity_fn(p)
        return jnp.where(jnp.isnan(lp), -jnp.inf, lp)

    def step(state, k):
        state, _ = kernel(k, state, safe, step_size, inverse_mass)
        return state, None

    state, _ = jax.lax.scan(step, builder.init(position, safe), jax.random.split(key, num_moves))
    return state.position


@dataclass(frozen=True, kw_only=True)
class HMCMove:
    """``num_moves`` HMC transitions (``num_integration_steps`` leapfrog steps of ``step_size``).

    The metric is the identity on the unconstrained parameters, and the step
    size is fixed (SMC has no warm-up to adapt it): choose it on the scale of
    the posterior's narrowest direction. Each transition is reversible with
    respect to ``exp(f)``, so the move leaves the partial posterior invariant.
    """

    step_size: float = 0.1
    num_integration_steps: int = 10
    num_moves: int = 1

    def __post_init__(self):
        _positive_number("HMCMove", "step_size", self.step_size)
        _positive_int("HMCMove", "num_integration_steps", self.num_integration_steps)
        _positive_int("HMCMove", "num_moves", self.num_moves)

    def __call__(self, key, position, logdensity_fn):
        builder = hmc.Builder(num_integration_steps=self.num_integration_steps)
        return _gradient_moves(builder, float(self.step_size), self.num_moves, key, position, logdensity_fn)


@dataclass(frozen=True, kw_only=True)
class NUTSMove:
    """``num_moves`` NUTS transitions at a fixed ``step_size`` (identity metric).

    NUTS chooses each trajectory's length itself, so only the step size needs
    choosing; the transition leaves ``exp(f)`` invariant for any step size.
    """

    step_size: float = 0.1
    max_tree_depth: int = 8
    num_moves: int = 1

    def __post_init__(self):
        _positive_number("NUTSMove", "step_size", self.step_size)
        _positive_int("NUTSMove", "max_tree_depth", self.max_tree_depth)
        _positive_int("NUTSMove", "num_moves", self.num_moves)

    def __call__(self, key, position, logdensity_fn):
        builder = nuts.Builder(max_tree_depth=self.max_tree_depth)
        return _gradient_moves(builder, float(self.step_size), self.num_moves, key, position, logdensity_fn)

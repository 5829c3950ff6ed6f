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
and differentiable, so gradient-based kernels (HMC, NUTS) plug in as they are:
wrap a BlackJAX-style ``(init, step)`` pair as
``lambda key, x, f: step(key, init(x, f), f).position``.

Law: if ``kernel(key, ., f)`` leaves the density ``exp(f)`` invariant, the
population's weighted measure is unchanged in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ppl.stdlib.errors import ModelError

__all__ = ["RandomWalk"]


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
        if not isinstance(self.step_size, (int, float)) or isinstance(self.step_size, bool) or not self.step_size > 0:
            raise ModelError(f"RandomWalk(step_size=...) must be a positive number, not {self.step_size!r}")
        if not isinstance(self.num_steps, int) or isinstance(self.num_steps, bool) or self.num_steps < 1:
            raise ModelError(f"RandomWalk(num_steps=...) must be a positive integer, not {self.num_steps!r}")

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

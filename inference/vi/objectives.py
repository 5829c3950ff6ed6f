"""Variational objectives, written as short programs over two blocks.

An objective is a function ``(ctx, key) -> (value, s)``: an estimate of a number
to *maximise* and its gradient surrogate. It is built from the blocks of a
:class:`Context`:

- ``ctx.expect(key, f)``: ``E_{z ~ q}[f(z, log q(z))]`` — simulate the guide, with its
  log density, under each random choice's estimator (``sim``);
- ``ctx.expect_many(keys, f)``: the same over K independent guide draws, stacked;
- ``ctx.density(z)``: ``log p(z, y)``, the model's joint log density at the guide's
  choices, with the data (``density``).

A user objective is written the same way (``docs/vi.md`` shows a Rényi bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ppl.semantics import compile as C
from ppl.stdlib.errors import ModelError

__all__ = ["Context", "ELBO", "IWELBO", "log_mean_exp"]


class Context:
    """The blocks an objective is written with (see the module docstring)."""

    def __init__(self, guide, phi, model_program, model_args, baseline=0.0):
        self.guide, self.phi = guide, phi
        self.model_program, self.model_args = model_program, model_args
        self.baseline = baseline

    def density(self, z):
        """``log p(z, y)``: the model's joint log density at the latent values ``z``."""
        return C.log_density(self.model_program, z, self.model_args)

    def expect(self, key, f):
        """``(value, s)`` for ``E_{z ~ q}[f(z, log q(z))]``."""
        return self.guide.expect(self.phi, key, f, self.baseline, self.model_args)

    def expect_many(self, keys, f):
        """``(value, s)`` for ``E_{z_1..z_K ~ q}[f(zs, log q(zs))]``, the draws stacked on axis 0."""
        return self.guide.expect_many(self.phi, keys, f, self.baseline, self.model_args)


def log_mean_exp(x, axis=0):
    return jax.nn.logsumexp(x, axis=axis) - math.log(x.shape[axis])


def _count(value, what):
    n = int(value)
    if n < 1:
        raise ModelError(f"{what} must be at least 1, not {value}")
    return n


@dataclass(frozen=True)
class ELBO:
    """``ELBO = E_{z ~ q}[log p(z, y) - log q(z)] <= log p(y)``, averaged over ``num_particles``."""

    num_particles: int = 1

    def __call__(self, ctx: Context, key):
        n = _count(self.num_particles, "ELBO's num_particles")

        def particle(k):
            return ctx.expect(k, lambda z, log_q: ctx.density(z) - log_q)

        value, s = jax.vmap(particle)(jax.random.split(key, n))
        return jnp.mean(value), jnp.mean(s)


@dataclass(frozen=True)
class IWELBO:
    """``IWELBO_K = E_{z_1..K ~ q}[log (1/K) sum_k p(z_k, y) / q(z_k)]``; ``ELBO <= IWELBO_K <= log p(y)``."""

    K: int = 5

    def __call__(self, ctx: Context, key):
        k = _count(self.K, "IWELBO's K")

        def bound(zs, log_qs):
            return log_mean_exp(jax.vmap(ctx.density)(zs) - log_qs)

        return ctx.expect_many(jax.random.split(key, k), bound)

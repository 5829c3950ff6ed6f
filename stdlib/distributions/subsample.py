"""``SubsampleIndices(size, subsample_size)``: which rows a subsampled plate looks at.

A draw is ``subsample_size`` distinct indices in ``0 .. size - 1``, uniformly among the ordered
choices (a uniform random permutation, truncated). Law: every index is included with probability
``subsample_size / size``, so for any per-row terms ``l_i``,
``E[(size / subsample_size) * sum_{i in draw} l_i] = sum_i l_i`` (the scaled subsample sum is
unbiased for the full sum); ``ppl.plate(name, size, subsample_size=B)`` draws one and scales the
log-likelihood of the observations inside it by ``size / B``.

The density is the constant ``-log(size! / (size - B)!)`` on valid draws.

>>> import jax
>>> d = SubsampleIndices(10, 3)
>>> idx = d.sample(jax.random.key(0))
>>> idx.shape, bool(len(set(idx.tolist())) == 3)
((3,), True)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from ppl.stdlib import constraints as C

from .base import Distribution

__all__ = ["SubsampleIndices"]


class SubsampleIndices(Distribution):
    """``subsample_size`` distinct row indices of ``0 .. size - 1``, uniformly at random."""

    is_discrete = True

    def __init__(self, size: int, subsample_size: int):
        size, subsample_size = int(size), int(subsample_size)
        if not 1 <= subsample_size <= size:
            raise ValueError(f"SubsampleIndices needs 1 <= subsample_size <= size, not {subsample_size} of {size}")
        super().__init__({}, static={"size": size, "subsample_size": subsample_size})

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.subsample_size,)

    @property
    def support(self):
        return C.integer_interval(0, self.size - 1)

    def _sample(self, key, shape):
        n, b = self.size, self.subsample_size
        keys = jax.random.split(key, max(1, math.prod(shape)))
        draws = jax.vmap(lambda k: jax.random.permutation(k, n)[:b].astype(jnp.int32))(keys)
        return draws.reshape(tuple(shape) + (b,))

    def log_density(self, value):
        value = jnp.asarray(value)
        n, b = self.size, self.subsample_size
        batch = tuple(value.shape[:-1])
        ok = jnp.all((value >= 0) & (value < n), axis=-1)
        const = -(gammaln(n + 1.0) - gammaln(n - b + 1.0))
        return jnp.where(ok, const, -jnp.inf) * jnp.ones(batch)

    def in_support(self, value):
        value = jnp.asarray(value)
        return jnp.all((value >= 0) & (value < self.size), axis=-1)

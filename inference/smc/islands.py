"""Island resampling: the population as ``k`` independent sub-populations (one per device, say).

Each island of ``m = n / k`` particles is resampled on its own, from its own weights, when its
own effective sample size falls below ``threshold * m``; no particle moves between islands, so
on a mesh an island's resampling needs no communication between devices.

Law (the evidence): island ``i`` is an SMC run with ``m`` particles, whose estimate
``Z_i = prod over its resampling times of (mean w) * mean w_final`` is unbiased for ``p(y)``; the
islands are independent, so ``Z = (1/k) sum_i Z_i`` is unbiased too, with the variance of one
island's estimate over ``k`` (larger than that of one population of ``n`` with global
resampling). Giving particle ``j`` of island ``i`` the final weight ``Z'_i w_ij``, where ``Z'_i``
is the product of the island's means at its resampling times, makes the whole population a
weighted sample whose mean weight is ``Z``: the normalised weights then weigh each island by its
own evidence, which is the island estimate of the posterior.

>>> import jax, jax.numpy as jnp
>>> from ppl.inference.smc import resampling as R
>>> lw = jnp.log(jnp.array([1.0, 0.0, 0.0, 1.0]))
>>> ancestors(R.systematic, jax.random.key(0), lw, 2).tolist()
[0, 0, 3, 3]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppl.inference.smc import resampling as R

__all__ = ["summaries", "ancestors", "per_particle"]


def summaries(log_weights, k: int):
    """``(log mean w, ESS)`` of each island: two arrays of shape ``(k,)``."""
    return jax.vmap(R.summarise)(log_weights.reshape(k, -1))


def ancestors(scheme, key, log_weights, k: int):
    """Ancestor indices (into the whole population) drawn within each island by ``scheme``."""
    m = log_weights.shape[0] // k
    keys = jax.random.split(key, k)
    local = jax.vmap(scheme)(keys, log_weights.reshape(k, m))
    return (local + (jnp.arange(k, dtype=jnp.int32) * m)[:, None]).reshape(-1).astype(jnp.int32)


def per_particle(values, n: int):
    """An island's value (shape ``(k,)``) for each of its particles (shape ``(n,)``)."""
    return jnp.repeat(values, n // values.shape[0])

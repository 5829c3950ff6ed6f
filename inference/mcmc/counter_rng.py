"""Counter-based random numbers for the samplers' hot loops.

``jax.random`` lowers Threefry to a rolled loop on CPU: inside a sampler's
hot loop every ``split``/``normal`` becomes a nested loop of small kernels.
The kernels here take *key words* (a pair of uint32, drawn once per chain
with ``jax.random.bits``) and derive every number they need from Threefry-2x32
(20 rounds, Salmon et al. 2011), written out so that it fuses into the
surrounding elementwise code (``stdlib/threefry.py``). A draw is named by a counter and a stream tag;
distinct (counter, tag) pairs give independent numbers.

The helpers below only choose counters and stream tags and map words to floats.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppl.stdlib.threefry import threefry2x32

__all__ = ["threefry2x32", "key_words", "derive_key", "uniforms", "other_words", "standard_normal",
           "STREAM_KEY", "STREAM_MOMENTUM", "STREAM_STEP", "STREAM_OTHER"]

Array = Any

STREAM_KEY, STREAM_MOMENTUM, STREAM_STEP, STREAM_OTHER = 0, 1, 2, 3


def key_words(key: Array) -> Array:
    """A JAX PRNG key (typed or raw) as the uint32 pair the stepwise kernels use."""
    return jax.random.bits(key, (2,), jnp.uint32)


def derive_key(key: Array, counter: Array) -> Array:
    """A new key pair from ``key`` and ``counter`` (e.g. the key of transition ``counter``)."""
    c = jnp.asarray(counter).astype(jnp.uint32)
    y0, y1 = threefry2x32(key, c, jnp.uint32(STREAM_KEY))
    return jnp.stack([y0, y1])


def _unit(words: Array, dtype) -> Array:
    """uint32 -> float in (0, 1) on a 2^-24 grid, never 0."""
    return ((words >> 8).astype(dtype) + 0.5) * jnp.asarray(2.0**-24, dtype)


def uniforms(key: Array, counter: Array, dtype=jnp.float32) -> tuple[Array, Array]:
    """Two independent uniforms in (0, 1) for step ``counter`` of a trajectory."""
    y0, y1 = threefry2x32(key, jnp.asarray(counter).astype(jnp.uint32), jnp.uint32(STREAM_STEP))
    return _unit(y0, dtype), _unit(y1, dtype)


def other_words(key: Array, counter: int = 0) -> tuple[Array, Array]:
    """Two uint32 words for miscellaneous per-transition draws (directions, jitter, acceptance)."""
    return threefry2x32(key, jnp.uint32(counter), jnp.uint32(STREAM_OTHER))


def standard_normal(key: Array, shape: tuple, dtype) -> Array:
    """Independent standard normals of ``shape`` (Box-Muller on Threefry words)."""
    size = int(np.prod(shape)) if shape else 1
    half = (size + 1) // 2
    counters = jnp.arange(half, dtype=jnp.uint32)
    y0, y1 = threefry2x32(key, counters, jnp.full((half,), STREAM_MOMENTUM, jnp.uint32))
    radius = jnp.sqrt(-2.0 * jnp.log(_unit(y0, dtype)))
    angle = (2.0 * np.pi) * _unit(y1, dtype)
    z = jnp.concatenate([radius * jnp.cos(angle), radius * jnp.sin(angle)])[:size]
    return z.reshape(shape)

"""Keys for a population: one counter stream per particle under one shared key.

A step of SMC draws every particle's choices from its own key. Keys that differ
in their key words (``jax.random.split`` of the step's key, or the step's key
with the particle's index added to a word) cost the population a Threefry key
schedule per particle: under ``vmap`` the schedule becomes ``N``-wide arrays
that ``jax.random``'s rolled Threefry loop carries through its rounds. A
particle key here is instead ``(w0, w1, i)``: the step's key words, shared by
the whole population, and the particle's index ``i``, which goes into the
*counter*. Element ``j`` of a draw from it is the Threefry hash of the counter
``(i, j)`` under ``(w0, w1)``: the numbers a single key gives for the whole
population at once, as a hand-written filter draws them, and independent
between particles (distinct counters under one key).

Derived keys keep the index: ``fold_in(k, d)`` and ``split(k)`` hash the key
words with the counters ``(FOLD, d)`` and ``(SPLIT, c)``, two counter words no
particle index reaches, so the keys of particle ``i`` and its descendants name
streams that no other particle's keys name.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ppl.stdlib import jax_compat
from ppl.stdlib.threefry import threefry2x32

__all__ = ["particle_keys", "PARTICLE_KEY", "MAX_PARTICLES"]

_FOLD = 0xFFFFFFFE
_SPLIT = 0xFFFFFFFF
MAX_PARTICLES = _FOLD  # indices 0 .. MAX_PARTICLES - 1 never meet the derivation counters


def _random_bits(key, bit_width: int, shape: tuple):
    size = math.prod(shape)
    index = jnp.broadcast_to(key[2], (size,))
    y0, y1 = threefry2x32(key[:2], index, jax.lax.iota(jnp.uint32, size))
    if bit_width == 64:
        out = (y0.astype(jnp.uint64) << jnp.uint64(32)) | y1.astype(jnp.uint64)
    else:
        out = y0 ^ y1
        if bit_width < 32:
            out = out.astype(jnp.dtype(f"uint{bit_width}"))
    return out.reshape(shape)


def _derived(key, tag: int, counters):
    y0, y1 = threefry2x32(key[:2], jnp.full(counters.shape, tag, jnp.uint32), counters)
    index = jnp.broadcast_to(key[2], counters.shape)
    return jnp.stack([y0, y1, index], axis=-1)


def _split(key, shape: tuple):
    size = math.prod(shape)
    return _derived(key, _SPLIT, jax.lax.iota(jnp.uint32, size)).reshape(tuple(shape) + (3,))


def _fold_in(key, data):
    return _derived(key, _FOLD, jnp.asarray(data).astype(jnp.uint32).reshape(()))


def _seed(seed):
    words = jax.random.key_data(jax.random.key(seed, impl="threefry2x32"))
    return jnp.concatenate([words, jnp.zeros((1,), jnp.uint32)])


PARTICLE_KEY = jax_compat.define_prng_impl(
    key_shape=(3,), seed=_seed, split=_split, random_bits=_random_bits, fold_in=_fold_in,
    name="ppl_particle", tag="pp")


def particle_keys(key, n: int):
    """``n`` particle keys sharing ``key``'s stream: particle ``i`` draws from counters ``(i, .)``."""
    if n > MAX_PARTICLES:
        raise ValueError(f"at most {MAX_PARTICLES} particles share one key; got {n}")
    words = jax.random.bits(key, (2,), jnp.uint32)  # the key words, whatever the key's kind
    index = jax.lax.iota(jnp.uint32, n)[:, None]
    data = jnp.concatenate([jnp.broadcast_to(words, (n, 2)), index], axis=1)
    return jax.random.wrap_key_data(data, impl=PARTICLE_KEY)

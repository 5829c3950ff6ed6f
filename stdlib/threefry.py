"""Threefry-2x32, written out.

``jax.random`` lowers Threefry to a rolled loop on CPU, which carries its key
schedule through the loop as arrays when the keys are batched. Written out,
the 20 rounds are a few dozen elementwise operations that XLA fuses into the
code around them. Used by the samplers' counter-based draws
(``inference/mcmc/counter_rng.py``) and the SMC particles' keys
(``stdlib/particle_keys.py``).

Law: bit for bit JAX's own Threefry-2x32 block function (``tests/test_counter_rng.py``
checks it against ``jax.random``'s implementation and the Random123 known answers).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["threefry2x32"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x: Any, r: int) -> Any:
    # NumPy constants throughout: a jnp scalar is an array made eagerly at each of the ~100 uses per
    # trace, which was half the time the samplers spent tracing this function
    return lax.shift_left(x, np.uint32(r)) | lax.shift_right_logical(x, np.uint32(32 - r))


def threefry2x32(key: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
    """The Threefry-2x32 block function with 20 rounds (Salmon et al. 2011): a bijection of
    uint32 pairs ``(x0, x1)`` keyed by the uint32 pair ``key``."""
    k0, k1 = key[0].astype(jnp.uint32), key[1].astype(jnp.uint32)
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x0 = x0.astype(jnp.uint32) + ks[0]
    x1 = x1.astype(jnp.uint32) + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(block + 1) % 3]
        x1 = x1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1

"""The samplers' counter-based generator is JAX's Threefry-2x32, bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.mcmc import counter_rng
from ppl.stdlib import jax_compat as jc
from ppl.stdlib import threefry


def test_threefry_equals_jax_threefry_bit_for_bit():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**32, size=(64, 2), dtype=np.uint64).astype(np.uint32)
    x0 = rng.integers(0, 2**32, size=(64, 7), dtype=np.uint64).astype(np.uint32)
    x1 = rng.integers(0, 2**32, size=(64, 7), dtype=np.uint64).astype(np.uint32)
    for k, a, b in zip(keys, x0, x1):
        ours = counter_rng.threefry2x32(jnp.asarray(k), jnp.asarray(a), jnp.asarray(b))
        theirs = jc.threefry_2x32(jnp.asarray(k), jnp.concatenate([jnp.asarray(a), jnp.asarray(b)]))
        np.testing.assert_array_equal(np.concatenate([np.asarray(ours[0]), np.asarray(ours[1])]),
                                      np.asarray(theirs))


def test_a_wrong_round_constant_is_caught():
    """The comparison above can fail: a generator with one rotation changed disagrees."""
    k, a, b = jnp.asarray([1, 2], jnp.uint32), jnp.arange(4, dtype=jnp.uint32), jnp.ones(4, jnp.uint32)
    saved = threefry._ROTATIONS
    try:
        threefry._ROTATIONS = ((13, 15, 26, 7), saved[1])
        ours = threefry.threefry2x32(k, a, b)
    finally:
        threefry._ROTATIONS = saved
    theirs = jc.threefry_2x32(k, jnp.concatenate([a, b]))
    assert not np.array_equal(np.concatenate([np.asarray(ours[0]), np.asarray(ours[1])]), np.asarray(theirs))


def test_streams_are_distinct_and_counters_independent():
    key = counter_rng.key_words(jax.random.key(3))
    u = np.asarray(jax.vmap(lambda c: jnp.stack(counter_rng.uniforms(key, c)))(jnp.arange(20000)))
    assert np.all((u > 0) & (u < 1))
    n = u.shape[0]
    # means and the correlation of the two uniforms of one counter, within 4 standard errors
    assert np.all(np.abs(u.mean(0) - 0.5) < 4 * np.sqrt(1 / 12 / n))
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 4 / np.sqrt(n)
    assert not np.array_equal(np.asarray(counter_rng.derive_key(key, 0)), np.asarray(counter_rng.other_words(key, 0)))

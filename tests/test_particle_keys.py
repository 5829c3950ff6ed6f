"""Particle keys (stdlib/particle_keys.py): one shared key, the particle's index in the counter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppl.stdlib import particle_keys as pk
from ppl.stdlib.threefry import threefry2x32


def _words(key):
    return jax.random.bits(key, (2,), jnp.uint32)


def test_element_j_of_particle_i_is_the_hash_of_counter_i_j():
    key = jax.random.key(7)
    keys = pk.particle_keys(key, 5)
    bits = np.asarray(jax.vmap(lambda k: jax.random.bits(k, (3,), jnp.uint32))(keys))
    w = _words(key)
    for i in range(5):
        y0, y1 = threefry2x32(w, jnp.full((3,), i, jnp.uint32), jnp.arange(3, dtype=jnp.uint32))
        np.testing.assert_array_equal(bits[i], np.asarray(y0 ^ y1))
    # and the law can fail: particle 1's counters are not particle 0's
    assert not np.array_equal(bits[0], bits[1])


def test_batched_and_one_by_one_draws_agree():
    keys = pk.particle_keys(jax.random.key(1), 6)
    batched = np.asarray(jax.vmap(lambda k: jax.random.normal(k, (2,)))(keys))
    single = np.stack([np.asarray(jax.random.normal(keys[i], (2,))) for i in range(6)])
    np.testing.assert_array_equal(batched, single)


@pytest.mark.parametrize("dtype", [jnp.uint8, jnp.uint16, jnp.uint32])
def test_bit_widths(dtype):
    keys = pk.particle_keys(jax.random.key(2), 4)
    out = jax.vmap(lambda k: jax.random.bits(k, (5,), dtype))(keys)
    assert out.dtype == dtype and out.shape == (4, 5)
    assert len(np.unique(np.asarray(out).astype(np.uint64))) > 10


def test_derived_keys_keep_the_index_and_name_new_streams():
    keys = pk.particle_keys(jax.random.key(3), 4)
    data = np.asarray(jax.random.key_data(keys))
    folded = np.asarray(jax.random.key_data(jax.vmap(lambda k: jax.random.fold_in(k, 9))(keys)))
    children = np.asarray(jax.random.key_data(jax.vmap(lambda k: jax.random.split(k, 3))(keys)))
    np.testing.assert_array_equal(folded[:, 2], data[:, 2])
    np.testing.assert_array_equal(children[..., 2], np.broadcast_to(data[:, 2:3], (4, 3)))
    # new key words, the same for every particle (the index tells the particles apart) ...
    assert not np.array_equal(folded[0, :2], data[0, :2])
    assert np.all(folded[:, :2] == folded[0, :2])
    assert len({tuple(c) for c in children[0, :, :2]}) == 3
    # ... so the draws of particle i's derived keys differ from particle j's and from the parent's
    draws = lambda ks: np.asarray(jax.vmap(lambda k: jax.random.normal(k))(ks))
    parent, fold = draws(keys), draws(jax.vmap(lambda k: jax.random.fold_in(k, 9))(keys))
    assert len(set(parent) | set(fold)) == 8


def test_a_population_of_normals_is_standard_normal_and_uncorrelated():
    n = 40_000
    z = np.asarray(jax.vmap(lambda k: jax.random.normal(k))(pk.particle_keys(jax.random.key(11), n)), np.float64)
    se_mean, se_var = 1 / np.sqrt(n), np.sqrt(2 / n)
    assert abs(z.mean()) < 4 * se_mean
    assert abs(z.var() - 1) < 4 * se_var
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / np.sqrt(n)
    # two steps (two step keys) give uncorrelated populations
    z2 = np.asarray(jax.vmap(lambda k: jax.random.normal(k))(pk.particle_keys(jax.random.key(12), n)))
    assert abs(np.corrcoef(z, z2)[0, 1]) < 4 / np.sqrt(n)


def test_too_many_particles_is_refused():
    with pytest.raises(ValueError, match="at most"):
        pk.particle_keys(jax.random.key(0), pk.MAX_PARTICLES + 1)

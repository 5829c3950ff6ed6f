"""``ppl.plate(name, size, subsample_size=B)``: B random rows, each observation weighted size / B.

Law (stdlib/distributions/subsample.py): the scaled subsample log-likelihood is unbiased for the
full one. Checked on the compiled program's forward runs, whose log-likelihood is exactly the scaled
log-likelihood at the run's drawn rows (the model has no other random choice). A method that needs
the exact density (Importance, whose weight would be the exp of the estimate, and the other samplers)
refuses the plate: tests/test_vi_subsample.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import ppl
from ppl import dist
from ppl.semantics import compile as C

N, B = 50, 10
Y = np.random.default_rng(3).normal(1.0, 2.0, N).astype(np.float32)


@ppl.model
def subsampled(y, mu):
    with ppl.plate("data", y.shape[0], subsample_size=B) as idx:
        ppl.observe("y", dist.Normal(mu, 2.0), y[idx])


def test_scaled_subsample_log_likelihood_is_exact_per_draw_and_unbiased():
    program, leaves = subsampled.program(jnp.asarray(Y), 0.5)
    keys = jax.random.split(jax.random.key(0), 4000)
    runs = jax.jit(jax.vmap(lambda k: C.simulate(program, k, leaves)))(keys)
    idx = np.asarray(runs.choices["data"])
    assert idx.shape == (4000, B)
    assert all(len(set(row)) == B for row in idx[:200])  # distinct rows
    per_row = stats.norm(0.5, 2.0).logpdf(Y.astype(np.float64))
    expected = (N / B) * per_row[idx].sum(axis=1)
    lw = np.asarray(runs.log_likelihood, np.float64)
    np.testing.assert_allclose(lw, expected, rtol=1e-5)
    # unbiased: the mean over draws is the full log-likelihood, within 4 standard errors
    full = per_row.sum()
    assert abs(lw.mean() - full) < 4 * lw.std(ddof=1) / np.sqrt(lw.size)
    # and every row is used equally often
    counts = np.bincount(idx.ravel(), minlength=N)
    expected_count = 4000 * B / N
    assert np.all(np.abs(counts - expected_count) < 4 * np.sqrt(expected_count))


def test_subsampling_mistakes_are_clear():
    @ppl.model
    def too_many(y):
        with ppl.plate("data", y.shape[0], subsample_size=N + 5):
            ppl.observe("y", dist.Normal(0.0, 1.0), y)

    with pytest.raises(ppl.PPLError, match="subsample_size=55"):
        ppl.infer(too_many, jnp.asarray(Y), method=ppl.Importance(num_particles=10))

    @ppl.model
    def local_latent(y):
        with ppl.plate("data", y.shape[0], subsample_size=B) as idx:
            z = ppl.sample("z", dist.Normal(0.0, 1.0))
            ppl.observe("y", dist.Normal(z, 1.0), y[idx])

    with pytest.raises(ppl.PPLError, match="inside the subsampled plate 'data'"):
        ppl.infer(local_latent, jnp.asarray(Y), method=ppl.Importance(num_particles=10))

"""A factor inside plates is a term per plate element, as an observation is (and as in NumPyro): a
number counts once per element, an array must fit the plates, and a subsampled plate's rows stand
for all rows. A factor counted once inside plate(4) (posterior sd 0.97 against 0.50), summed 5 terms
inside plate(3) without a word, and was not scaled under subsampling (a custom likelihood weighed
B/N of an observation's). A .ppl loop run as a plate counted a constant factor once, not per step."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats

import ppl
from ppl import dist


@ppl.model
def observed(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    with ppl.plate("d", 4):
        ppl.observe("y", dist.Normal(mu, 1.0), y)


def factor_in_plate(size: int):
    @ppl.model
    def factored(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
        with ppl.plate("d", size):
            ppl.factor("lik", dist.Normal(mu, 1.0).log_density(y))

    return factored


factored = factor_in_plate(4)


def test_a_number_counts_once_per_plate_element():
    expected = stats.norm(0, 10).logpdf(0.0) + 4 * stats.norm.logpdf(2.0)
    assert float(factored.log_density({"mu": 0.0}, 2.0)) == pytest.approx(expected, rel=1e-5)
    assert float(observed.log_density({"mu": 0.0}, 2.0)) == pytest.approx(expected, rel=1e-5)


def test_a_factor_that_does_not_fit_its_plate_is_an_error():
    with pytest.raises(ppl.ShapeError, match="the factor 'lik' has size 5 in dimension -1, but it is inside "
                                             "plate 'd' of size 3") as err:
        factor_in_plate(3).log_density({"mu": 0.0}, np.arange(5.0))
    assert err.value.span is not None


Y10 = np.arange(10.0) / 3


@ppl.model
def observed_rows(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    with ppl.plate("d", 10, subsample_size=5) as idx:
        ppl.observe("y", dist.Normal(mu, 1.0), y[idx])


@ppl.model
def factored_rows(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    with ppl.plate("d", 10, subsample_size=5) as idx:
        ppl.factor("y", dist.Normal(mu, 1.0).log_density(y[idx]))


def test_a_factor_in_a_subsampled_plate_is_scaled_as_an_observation():
    for k in range(5):
        a = observed_rows.generate(jax.random.key(k), Y10, constraints={"mu": 1.0})[0]
        b = factored_rows.generate(jax.random.key(k), Y10, constraints={"mu": 1.0})[0]
        assert np.asarray(a.choices["d"]).tolist() == np.asarray(b.choices["d"]).tolist()
        rows = np.asarray(a.choices["d"])
        expected = 2.0 * stats.norm(1.0, 1.0).logpdf(Y10[rows]).sum()  # 10 / 5 per row
        assert float(a.log_likelihood) == pytest.approx(expected, rel=1e-5)
        assert float(b.log_likelihood) == pytest.approx(expected, rel=1e-5)


def test_a_constant_factor_in_a_ppl_loop_counts_at_every_step():
    model = ppl.loads("""
model m(y: real[]) {
  mu ~ normal(0, 1)
  for i in 0..len(y) {
    factor(-0.5)
    factor(-0.5 * (y[i] - mu) ^ 2)
  }
}""").m
    y = np.array([0.1, 0.2, 0.3])
    expected = stats.norm.logpdf(0.0) - 0.5 * 3 - 0.5 * np.sum(y ** 2)
    assert float(model.log_density({"mu": 0.0}, y)) == pytest.approx(expected, rel=1e-5)


@ppl.model
def half_plate():
    with ppl.plate("p", 2.5):
        ppl.sample("x", dist.Normal(0.0, 1.0))


def test_a_plate_size_that_is_not_a_whole_number_is_an_error():
    with pytest.raises(ppl.ShapeError, match="whole, non-negative number as its size, but got 2.5"):
        half_plate.simulate(jax.random.key(0))


@ppl.model
def far_prior(y):
    mu = ppl.sample("mu", dist.Normal(100.0, 10.0))
    with ppl.plate("d", len(y)):
        ppl.observe("y", dist.Normal(mu, 1.0), y)


def test_importance_warns_when_a_few_particles_carry_the_weight():
    y = np.linspace(0.0, 2.0, 20)
    with pytest.warns(ppl.SamplingWarning, match=r"effective sample size 1\.\d of 2000 particles"):
        ppl.infer(far_prior, y, method=ppl.Importance(num_particles=2000), seed=0)

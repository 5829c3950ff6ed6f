"""``log_density(d, x)`` in .ppl: iid(d, n) is one random choice (its n draws summed, as ``~``
scores it; the values were per element), the parameters are checked as ``~`` checks them (an
unnormalised categorical gave +0.69 and a posterior without a word), and a matrix that is not
symmetric is refused by ``cholesky`` and ``multi_normal`` (both read one triangle, so another,
symmetric matrix was used without a word)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats

import ppl

KEY = jax.random.key(0)


def value(body, params="", args=()):
    return np.asarray(ppl.loads(f"model m({params}) {{ return {body} }}").m.simulate(KEY, *args).retval)


def test_log_density_of_iid_is_the_sum_over_its_draws():
    assert float(value("log_density(iid(normal(0, 1), 2), [0.0, 1.0])")) == pytest.approx(
        stats.norm.logpdf([0.0, 1.0]).sum(), rel=1e-5)
    y = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    got = value("log_density(iid(normal(m, 1), 2), Y)", "m: real, Y: real[,]", (0.5, y))
    assert got.shape == (3,)
    assert got == pytest.approx(stats.norm.logpdf(y, 0.5).sum(axis=1), rel=1e-5)
    # a batch of d is kept: log_density stays elementwise over it
    got = value("log_density(iid(normal([0.0, 1.0], 1), 3), Y)", "Y: real[,]", (np.zeros((3, 2)),))
    assert got == pytest.approx(3 * stats.norm.logpdf([0.0, 0.0], [0.0, 1.0]), rel=1e-5)


def test_a_mixture_written_with_log_density_of_iid():
    model = ppl.loads("""
model mix(Y: real[,]) {
  m ~ normal(0, 3)
  lp1 = log(0.3) + log_density(iid(normal(m, 1), 2), Y)
  lp2 = log(0.7) + log_density(iid(normal(-m, 1), 2), Y)
  factor(sum(logsumexp([lp1, lp2], 0)))
}""").mix
    y = np.array([[1.0, 1.5], [-1.0, -0.5], [2.0, 0.0]])
    m = 0.8
    mix = np.logaddexp(np.log(0.3) + stats.norm.logpdf(y, m).sum(1), np.log(0.7) + stats.norm.logpdf(y, -m).sum(1))
    assert float(model.log_density({"m": m}, y)) == pytest.approx(stats.norm.logpdf(m, 0, 3) + mix.sum(), rel=1e-5)


def test_log_density_checks_the_parameters():
    assert np.isnan(value("log_density(categorical([1.0, 2.0, 1.0]), 1)"))
    assert np.isnan(value("log_density(bernoulli(p), 1)", "p: real", (1.5,)))
    model = ppl.loads("""
model z_of(y: int) {
  z ~ bernoulli(0.5)
  factor(log_density(categorical(if z == 1 then [1.0, 3.0] else [0.5, 0.5]), y))
  return z
}""").z_of
    with pytest.raises(ppl.PPLError) as err:
        ppl.infer(model, 1, method=ppl.Enumerate())
    assert err.value.span is not None and err.value.span.line == 4


def test_a_matrix_that_is_not_symmetric_is_refused():
    a = np.array([[4.0, 0.0], [2.0, 3.0]])
    lower = value("cholesky(A)", "A: real[,]", (a,))
    assert np.all(np.isnan(lower[np.tril_indices(2)]))  # NaN, which the methods report where it is used
    sym = np.array([[4.0, 1.0], [1.0, 3.0]])
    lower = value("cholesky(A)", "A: real[,]", (sym,))
    assert lower @ lower.T == pytest.approx(sym, rel=1e-5)
    with pytest.raises(ppl.ParameterError, match="symmetric"):
        ppl.dist.MultivariateNormal(np.zeros(2), covariance_matrix=a)
    model = ppl.loads("""
model m(y: real[,], S: real[,]) {
  mu ~ normal(0, 10)
  y ~ multi_normal([mu, mu], S)
}""").m
    with pytest.raises(ppl.ParameterError, match="covariance_matrix must be a symmetric positive-definite") as err:
        ppl.infer(model, np.array([[1.0, 2.0], [0.5, 1.5]]), np.array([[1.0, 0.9], [0.0, 1.0]]),
                  method=ppl.Importance(num_particles=100))
    assert err.value.span.line == 4

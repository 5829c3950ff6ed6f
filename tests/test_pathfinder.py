"""Pathfinder: exact on a Gaussian target, and as NUTS's initialisation.

On a Gaussian target with isotropic precision L-BFGS's inverse-Hessian estimate is exact from the first
curvature pair, so the best normal along the path *is* the posterior: every importance weight
``p(u) / q(u)`` equals ``p(y)``. With correlation (and the inexact line search of practice) it is close,
and Pareto-smoothed importance resampling corrects the rest.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import ppl
from ppl import dist
from ppl.inference.vi.pathfinder import lbfgs_inverse_hessian, mixture_log_density, run_paths
from test_vi_guides import COV, LOG_EVIDENCE, MEAN, X, Y, regression


def test_lbfgs_inverse_hessian_is_exact_after_d_conjugate_pairs_on_a_quadratic():
    """BFGS's hereditary property: with steps conjugate under H (as exact line searches make them on a
    quadratic), D updates give H^-1 exactly."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    H = A @ A.T + 4 * np.eye(4)  # the Hessian of f(x) = x^T H x / 2
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    S = (np.linalg.inv(np.linalg.cholesky(H)).T @ Q).T  # rows s_i with s_i^T H s_j = 0 for i != j
    Y_ = S @ H  # y = H s
    got = lbfgs_inverse_hessian(jnp.asarray(S), jnp.asarray(Y_), jnp.ones(4, bool))
    np.testing.assert_allclose(got, np.linalg.inv(H), rtol=1e-4, atol=1e-6)
    # a masked pair is skipped: with 3 of 4 pairs the estimate is not the inverse
    part = lbfgs_inverse_hessian(jnp.asarray(S), jnp.asarray(Y_), jnp.array([True, True, False, True]))
    assert np.max(np.abs(np.asarray(part) - np.linalg.inv(H))) > 1e-3


def test_mixture_log_density_matches_scipy():
    """The pooled draws are weighted against the equal-weight mixture of the paths' normals."""
    rng = np.random.default_rng(1)
    means = rng.normal(size=(3, 2))
    A = rng.normal(size=(3, 2, 2))
    covs = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(2)
    x = rng.normal(size=(7, 2))
    want = np.log(np.mean([stats.multivariate_normal(m, c).pdf(x) for m, c in zip(means, covs)], axis=0))
    got = mixture_log_density(jnp.asarray(x), jnp.asarray(means), jnp.asarray(covs))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # a failed path (its normal NaN) is left out of the mixture, not allowed to make every weight NaN
    bad_means, bad_covs = np.concatenate([means, np.full((1, 2), np.nan)]), np.concatenate([covs, np.full((1, 2, 2), np.nan)])
    got = mixture_log_density(jnp.asarray(x), jnp.asarray(bad_means), jnp.asarray(bad_covs))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@ppl.model
def isotropic(y):
    mu = ppl.sample("mu", dist.Normal(jnp.array([1.0, -2.0, 0.5]), 2.0))
    ppl.observe("y", dist.Normal(jnp.broadcast_to(mu, y.shape), 1.0), y)  # rows: independent draws


Y_ISO = np.array([[1.2, -0.4, 2.2], [0.3, -1.9, 0.8], [2.1, -0.7, 1.5], [0.9, -1.2, 0.1]], np.float32)


def _isotropic_exact():
    prec = 1 / 4 + Y_ISO.shape[0]  # the same for every coordinate
    mean = (np.array([1.0, -2.0, 0.5]) / 4 + Y_ISO.sum(0)) / prec
    marginal = stats.multivariate_normal(np.zeros(4), np.eye(4) + 4.0)
    log_z = sum(marginal.logpdf(Y_ISO[:, j] - m) for j, m in enumerate([1.0, -2.0, 0.5]))
    return mean, 1 / np.sqrt(prec), log_z


def test_pathfinder_is_exact_on_a_gaussian_posterior_with_isotropic_precision():
    """H = c I: L-BFGS's initial estimate (s.y / y.y) I is already H^-1 and every BFGS update keeps it, so
    the normal fitted at each iterate after the first is the posterior: every weight p(u)/q(u) is p(y)."""
    mean, sd, log_z = _isotropic_exact()
    program, leaves = isotropic.program(Y_ISO)
    _, x, log_p, log_q, best = run_paths(program, leaves, jax.random.key(0), num_paths=4, max_iters=50,
                                         history=6, num_elbo_draws=25, draws_per_path=1000, init_radius=2.0)
    assert np.max(np.abs((log_p - log_q) - log_z)) < 1e-3  # float32 rounding of log densities of size ~20
    post = ppl.infer(isotropic, Y_ISO, method=ppl.Pathfinder(max_iters=50, num_samples=4000), seed=1)
    assert abs(post.log_evidence - log_z) < 1e-3
    draws = post.samples["mu"].astype(np.float64)
    # resampling 4000 of 4000 equally weighted draws: the standard error is at most sqrt(2) times iid's
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * np.sqrt(2) * sd / np.sqrt(4000))
    assert np.all(np.abs(draws.std(0) - sd) < 4 * np.sqrt(2) * sd / np.sqrt(2 * 4000))


@pytest.mark.slow
def test_pathfinder_on_a_correlated_gaussian_is_close_and_psis_corrects_it():
    """With correlation, inexact line searches leave L-BFGS's estimate short of H^-1; the best normal is
    close (its ELBO within 0.5 of log p(y)) and the smoothed, resampled draws match the posterior."""
    _, x, log_p, log_q, best = run_paths(*regression.program(X, Y), jax.random.key(0), num_paths=4,
                                         max_iters=100, history=6, num_elbo_draws=25, draws_per_path=1000,
                                         init_radius=2.0)
    log_w = log_p - log_q
    elbo, se = np.mean(log_w), np.std(log_w) / np.sqrt(log_w.size)
    assert LOG_EVIDENCE - 0.5 < elbo < LOG_EVIDENCE + 4 * se  # a lower bound on log p(y), and a close one
    post = ppl.infer(regression, X, Y, method=ppl.Pathfinder(num_samples=4000), seed=1)
    assert abs(post.log_evidence - LOG_EVIDENCE) < 0.02
    assert float(post.sample_stats["pareto_k"]) < 0.7
    draws = post.samples["w"].astype(np.float64)
    sd = np.sqrt(np.diag(COV))
    assert np.all(np.abs(draws.mean(0) - MEAN) < 4 * np.sqrt(2) * sd / np.sqrt(4000))


@pytest.mark.slow
def test_nuts_initialised_by_pathfinder_runs_and_matches():
    post = ppl.infer(regression, X, Y, method=ppl.NUTS(init="pathfinder", num_warmup=300, num_samples=1000,
                                                      num_chains=2), seed=0)
    draws = post.samples["w"].reshape(-1, 3).astype(np.float64)
    sd = np.sqrt(np.diag(COV))
    # NUTS on a 3-d Gaussian: effective sample size above 500 of 2000 draws
    assert np.all(np.abs(draws.mean(0) - MEAN) < 4 * sd / np.sqrt(500))


@ppl.model
def positive_scale(y):
    s = ppl.sample("s", dist.HalfNormal(2.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", dist.Normal(0.0, s), y)


@pytest.mark.slow
def test_pathfinder_on_a_constrained_site_against_quadrature():
    y = np.array([0.8, -1.3, 2.1, 0.4, -0.7, 1.6, -2.2, 0.9, 0.1, -1.1], np.float32)
    grid = np.linspace(1e-3, 8, 40001)
    lp = -(grid ** 2) / 8 - y.size * np.log(grid) - np.sum(y ** 2) / (2 * grid ** 2)
    w = np.exp(lp - lp.max())
    mean = np.sum(grid * w) / np.sum(w)
    sd = np.sqrt(np.sum((grid - mean) ** 2 * w) / np.sum(w))
    post = ppl.infer(positive_scale, y, method=ppl.Pathfinder(num_samples=4000), seed=0)
    assert np.all(post.samples["s"] > 0)
    # a normal in log s is close but not exact; PSIS resampling corrects most of the gap
    assert abs(post.mean("s") - mean) < 0.05 * sd + 4 * np.sqrt(2) * sd / np.sqrt(4000)

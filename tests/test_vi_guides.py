"""Automatic guides (MVN, low-rank, Laplace, flow, with constrained and summed-out discrete sites) and
amortised guides, against exact answers.

The Gaussian target is Bayesian linear regression with known noise: its posterior is
``N(m, S)``, ``S = (I + X^T X / s^2)^-1``, ``m = S X^T y / s^2``, and ``log p(y)`` is a normal density.
"""

from __future__ import annotations

import numpy as np
import optax
import pytest
from scipy import stats

import jax
import jax.numpy as jnp

import ppl
from ppl import dist

X = np.array([[1.0, 0.9, 0.1], [0.8, 1.1, -0.3], [-0.5, -0.3, 0.2], [1.2, 0.7, 0.5], [0.1, 0.4, -0.8],
              [0.3, 0.2, 0.9]], np.float32)
Y = np.array([1.0, 1.5, -0.2, 1.1, 0.6, 0.4], np.float32)
S_NOISE = 0.5
PREC = np.eye(3) + X.T.astype(np.float64) @ X / S_NOISE ** 2
COV = np.linalg.inv(PREC)
MEAN = COV @ X.T @ Y / S_NOISE ** 2
LOG_EVIDENCE = stats.multivariate_normal(np.zeros(6), S_NOISE ** 2 * np.eye(6) + X @ X.T).logpdf(Y)


@ppl.model
def regression(X, y):
    w = ppl.sample("w", dist.Normal(jnp.zeros(3), 1.0))
    with ppl.plate("data", X.shape[0]):
        ppl.observe("y", dist.Normal(X @ w, S_NOISE), y)


def _fit(guide, steps=3000, lr=3e-2, particles=8, seed=0, model=regression, args=(X, Y)):
    opt = optax.adam(optax.exponential_decay(lr, steps, 0.02))
    return ppl.infer(model, *args, method=ppl.VI(guide=guide, objective=ppl.ELBO(particles), optimizer=opt,
                                               num_steps=steps, num_samples=4000, progress=False), seed=seed)


def _check_gaussian_fit(post):
    """The family contains the posterior, so the fitted guide is it: the ELBO equals log p(y) (within its
    Monte Carlo error, which vanishes at the optimum), and the fitted moments equal the exact ones up to
    the optimiser's noise; the draws' moments agree within 4 standard errors of 4000 draws."""
    cov = np.asarray(post.params["covariance"], np.float64)
    loc = np.asarray(post.params["loc"]["w"], np.float64)
    sd = np.sqrt(np.diag(COV))
    assert abs(post.log_evidence - LOG_EVIDENCE) < 0.01
    assert np.all(np.abs(loc - MEAN) < 0.05 * sd)
    assert np.all(np.abs(cov - COV) < 0.05 * np.outer(sd, sd))
    draws = post.samples["w"].astype(np.float64)
    assert np.all(np.abs(draws.mean(0) - MEAN) < 4 * sd / np.sqrt(4000))
    se_cov = np.sqrt((np.outer(sd, sd) ** 2 + COV ** 2) / 4000)  # sd of a sample covariance of normals
    assert np.all(np.abs(np.cov(draws.T) - COV) < 4 * se_cov + 0.05 * np.outer(sd, sd))


@pytest.mark.slow
def test_multivariate_normal_guide_recovers_the_posterior_covariance():
    _check_gaussian_fit(_fit(ppl.AutoMultivariateNormal()))


@pytest.mark.slow
def test_mean_field_cannot_and_its_bound_is_lower():
    mvn = _fit(ppl.AutoMultivariateNormal())
    mf = _fit(ppl.AutoNormal(), seed=1)  # the posterior is correlated (rho(w0, w1) ~ -0.8)
    assert mf.log_evidence < mvn.log_evidence - 0.1


@pytest.mark.slow
def test_low_rank_guide_recovers_the_posterior_covariance():
    # rank 2 + diagonal spans every 3 x 3 covariance (S - lambda_min I has rank 2)
    _check_gaussian_fit(_fit(ppl.AutoLowRank(rank=2), steps=5000))


def test_laplace_equals_the_analytic_hessian():
    post = _fit(ppl.AutoLaplace(), steps=1500, lr=0.1, particles=1)
    # the target is Gaussian: the mode is the mean and the inverse negative Hessian is the covariance
    np.testing.assert_allclose(post.params["loc"]["w"], MEAN, atol=1e-4)
    np.testing.assert_allclose(post.params["covariance"], COV, atol=1e-5)


@ppl.model
def gamma_poisson(counts):
    rate = ppl.sample("rate", dist.Gamma(2.0, 1.0))
    with ppl.plate("data", counts.shape[0]):
        ppl.observe("counts", dist.Poisson(rate), counts)


@pytest.mark.slow
def test_laplace_on_a_positive_site_is_in_log_coordinates():
    """rate > 0 is fitted as t = log rate: log p(t) = (a + sum y) t - (b + N) e^t + const (Jacobian
    included), whose mode is t* = log((a + sum y) / (b + N)) and negative Hessian a + sum y."""
    counts = np.array([3, 5, 2, 4, 6, 1, 3], np.int32)
    a, b = 2.0 + counts.sum(), 1.0 + counts.size
    post = _fit(ppl.AutoLaplace(), steps=1500, lr=0.1, particles=1, model=gamma_poisson, args=(counts,))
    np.testing.assert_allclose(post.params["loc"]["rate"], np.log(a / b), atol=1e-4)
    np.testing.assert_allclose(post.params["covariance"], [[1.0 / a]], rtol=1e-4)
    assert np.all(post.samples["rate"] > 0)


@ppl.model
def banana():
    x = ppl.sample("x", dist.Normal(0.0, 1.0))
    ppl.sample("y", dist.Normal(x ** 2, 0.3))


@pytest.mark.slow
def test_flow_fits_a_banana_better_than_mean_field():
    """The target is normalised (no data: log p(y) = 0), so each ELBO is minus KL(q || p). A mean-field
    normal cannot bend; the flow can: its ELBO is higher by many standard errors."""
    method = dict(objective=ppl.ELBO(8), num_steps=4000, num_final=400, progress=False,
                  optimizer=optax.adam(optax.exponential_decay(1e-2, 4000, 0.05)))
    mf = ppl.infer(banana, method=ppl.VI(guide=ppl.AutoNormal(), **method), seed=0)
    flow = ppl.infer(banana, method=ppl.VI(guide=ppl.AutoFlow(num_layers=4, transformer="spline"), **method),
                     seed=0)
    se = np.hypot(mf.result.log_evidence_se, flow.result.log_evidence_se)
    assert flow.log_evidence <= 4 * flow.result.log_evidence_se  # a lower bound on log p(y) = 0
    assert flow.log_evidence - mf.log_evidence > 4 * se
    assert flow.log_evidence > -0.15
    # the flow's draws bend: E[y] = E[x^2] = 1 under the target (mean-field also matches that); Cov(x^2, y) > 0
    xs, ys = flow.samples["x"], flow.samples["y"]
    assert np.corrcoef(xs ** 2, ys)[0, 1] > 0.5


@ppl.model
def two_groups(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 3.0))
    with ppl.plate("data", y.shape[0]):
        z = ppl.sample("z", dist.Bernoulli(probs=0.5))
        ppl.observe("y", dist.Normal(mu * z, 1.0), y)


@pytest.mark.slow
def test_auto_guides_sum_out_discrete_sites():
    """z[n] are summed out; the guide fits mu. Against quadrature of the exact marginal posterior of mu:
    the ELBO is a lower bound on log p(y), close to it (the posterior is near normal), and the fitted
    mean is near the exact one; the z draws follow their exact conditionals given mu."""
    y = np.array([2.1, 1.8, -0.3, 2.5, 0.2, 1.9, 2.2, -0.1], np.float32)
    grid = np.linspace(-4, 8, 20001)
    lik = np.sum(np.logaddexp(stats.norm.logpdf(y[None, :], grid[:, None], 1.0),
                              stats.norm.logpdf(y[None, :], 0.0, 1.0)) - np.log(2.0), axis=1)
    log_joint = stats.norm.logpdf(grid, 0.0, 3.0) + lik
    step = grid[1] - grid[0]
    log_z = np.logaddexp.reduce(log_joint) + np.log(step)
    post_mu = np.exp(log_joint - log_z)
    mean = np.sum(grid * post_mu) * step
    sd = np.sqrt(np.sum((grid - mean) ** 2 * post_mu) * step)
    for guide in (ppl.AutoNormal(), ppl.AutoMultivariateNormal()):
        post = _fit(guide, steps=2000, model=two_groups, args=(y,))
        assert post.log_evidence < log_z + 4 * post.result.log_evidence_se
        assert post.log_evidence > log_z - 0.1
        assert abs(post.mean("mu") - mean) < 0.1 * sd + 4 * sd / np.sqrt(4000)
        # z[n] | mu: P(z=1) = N(y; mu, 1) / (N(y; mu, 1) + N(y; 0, 1)), averaged over the guide's mu draws
        mu = post.samples["mu"][:, None]
        p1 = 1 / (1 + np.exp(stats.norm.logpdf(y, 0, 1) - stats.norm.logpdf(y, mu, 1)))
        freq = post.samples["z"].mean(0)
        assert np.all(np.abs(freq - p1.mean(0)) < 4 * np.sqrt(0.25 / 4000))


@pytest.mark.slow
def test_amortised_guide_with_an_equinox_encoder_learns_the_exact_posterior_map():
    """z_n ~ N(0, 1), x_n ~ N(z_n, 1): the exact posterior is z_n | x_n ~ N(x_n / 2, 1 / sqrt 2), an
    affine function of x_n. An Equinox linear encoder (x -> loc, log scale) learns it; the map holds on
    inputs it never saw."""
    eqx = pytest.importorskip("equinox")

    @ppl.model
    def latent(x):
        with ppl.plate("data", x.shape[0]):
            z = ppl.sample("z", dist.Normal(0.0, 1.0))
            ppl.observe("x", dist.Normal(z, 1.0), x)

    def encoder_guide(net, x):
        out = jax.vmap(net)(x[:, None])
        with ppl.plate("data", x.shape[0]):
            ppl.sample("z", dist.Normal(out[:, 0], jnp.exp(out[:, 1])))

    x = np.random.default_rng(0).normal(0.0, np.sqrt(2.0), 200).astype(np.float32)
    net = eqx.nn.Linear(1, 2, key=jax.random.key(0))
    post = _fit(ppl.Amortized(encoder_guide, net), steps=3000, lr=2e-2, model=latent, args=(x,))
    fitted = post.params
    new_x = jnp.array([[-2.0], [0.0], [1.5]])
    out = jax.vmap(fitted)(new_x)
    np.testing.assert_allclose(out[:, 0], new_x[:, 0] / 2, atol=0.05)
    np.testing.assert_allclose(np.exp(out[:, 1]), 1 / np.sqrt(2), atol=0.05)


def test_pareto_smoothing_matches_arviz():
    az = pytest.importorskip("arviz")
    if not hasattr(az, "psislw"):
        pytest.skip("ArviZ without psislw")
    from ppl.inference.vi.psis import psis

    rng = np.random.default_rng(0)
    for df in (1.5, 3.0, 10.0):
        log_w = 1.5 * rng.standard_t(df, 4000)
        ours, k = psis(log_w)
        theirs, k_az = az.psislw(log_w)
        assert abs(k - float(k_az)) < 1e-9
        np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_init_loc_map_and_values():
    """init_loc='map' starts the location at the mode (normal-normal: sum(y) / (n + 1), exactly the
    posterior mean); a dict maps constrained values through each site's bijector."""
    y = np.array([0.3, 1.2, -0.4, 2.0, 0.9], np.float32)

    @ppl.model
    def scaled(y):
        mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
        sigma = ppl.sample("sigma", ppl.dist.LogNormal(0.0, 0.1))
        with ppl.plate("data", y.shape[0]):
            ppl.observe("y", ppl.dist.Normal(mu, 1.0), y)
        return sigma

    program, leaves = scaled.program(y)
    g = ppl.AutoNormal(init_loc="map").bind(program, leaves)
    loc = g.init(jax.random.key(0))["loc"]
    # the mode in unconstrained coordinates: mu at sum(y) / (n + 1); u = log sigma has the density
    # log p + log|J| = log Normal(u; 0, 0.1), mode 0
    np.testing.assert_allclose(float(loc["mu"]), y.sum() / (y.size + 1), atol=1e-4)
    np.testing.assert_allclose(float(loc["sigma"]), 0.0, atol=1e-4)
    g = ppl.AutoMultivariateNormal(init_loc={"sigma": 2.0}).bind(program, leaves)
    np.testing.assert_allclose(np.asarray(g.init(jax.random.key(0))["loc"]), [0.0, np.log(2.0)], atol=1e-6)
    with pytest.raises(ppl.ModelError, match="init_loc names 'nu'"):
        ppl.AutoNormal(init_loc={"nu": 1.0}).bind(program, leaves).init(jax.random.key(0))


@pytest.mark.parametrize("cls", [ppl.AutoNormal, ppl.AutoDelta, ppl.AutoMultivariateNormal])
def test_a_guide_class_given_for_a_guide_says_to_call_it(cls):
    """``guide=ppl.AutoDelta`` (the class) raised "AutoDelta.bind() missing 1 required positional argument"."""
    with pytest.raises(ppl.ModelError, match=f"guide={cls.__name__} is a class, not a guide") as err:
        ppl.infer(regression, X, Y, method=ppl.VI(guide=cls, num_steps=5, progress=False))
    assert f"guide={cls.__name__}()" in str(err.value)

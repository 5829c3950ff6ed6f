"""Importance sampling on conjugate models: posterior means and log-evidence within
4 Monte Carlo standard errors of the analytic answers (fixed seeds)."""

import math

import jax.numpy as jnp
import numpy as np
from scipy import special, stats

import ppl
from ppl import dist

N = 20_000


def mc_se_of_mean(post, x):
    """Delta-method standard error of a self-normalised importance estimate of E[x]."""
    w = post.weights
    m = np.sum(w * x)
    return math.sqrt(np.sum(w**2 * (x - m) ** 2))


def mc_se_of_log_evidence(post):
    w = np.exp(post.log_weights - np.max(post.log_weights))
    return float(np.std(w) / (math.sqrt(len(w)) * np.mean(w)))


def check(post, name, exact_mean, exact_log_z):
    x = np.asarray(post.samples[name], dtype=np.float64)
    z = (post.mean(name) - exact_mean) / mc_se_of_mean(post, x)
    assert abs(z) < 4, f"posterior mean of {name}: z = {z:.2f}"
    z = (post.log_evidence - exact_log_z) / mc_se_of_log_evidence(post)
    assert abs(z) < 4, f"log evidence: z = {z:.2f}"


@ppl.model
def beta_bernoulli(flips):
    p = ppl.sample("p", dist.Beta(2.0, 2.0))
    with ppl.plate("flips", len(flips)):
        ppl.observe("y", dist.Bernoulli(probs=p), flips)
    return p


def test_beta_bernoulli():
    flips = [1, 1, 0, 1, 1, 1, 0, 1, 0, 1]
    h, t = sum(flips), len(flips) - sum(flips)
    post = ppl.infer(beta_bernoulli, flips, method=ppl.Importance(num_particles=N), seed=1)
    exact_mean = (2 + h) / (4 + h + t)
    exact_log_z = special.betaln(2 + h, 2 + t) - special.betaln(2, 2)
    check(post, "p", exact_mean, exact_log_z)
    assert np.allclose(post.returns, post.samples["p"])  # the model returns p


@ppl.model
def normal_normal(ys, sigma):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("data", ys.shape[0]):
        ppl.observe("y", dist.Normal(mu, sigma), ys)
    return mu


def test_normal_normal_known_variance():
    ys = jnp.array([0.8, 1.3, 0.2, 1.9, 1.1])
    sigma = 0.5
    post = ppl.infer(normal_normal, ys, sigma, method=ppl.Importance(num_particles=N), seed=2)
    n = ys.shape[0]
    prec = 1.0 + n / sigma**2
    exact_mean = float(jnp.sum(ys)) / sigma**2 / prec
    cov = sigma**2 * np.eye(n) + np.ones((n, n))
    exact_log_z = stats.multivariate_normal(np.zeros(n), cov).logpdf(np.asarray(ys))
    check(post, "mu", exact_mean, exact_log_z)


@ppl.model
def gamma_poisson(counts):
    rate = ppl.sample("rate", dist.Gamma(3.0, 1.0))
    with ppl.plate("counts", counts.shape[0]):
        ppl.observe("k", dist.Poisson(rate), counts)
    return rate


def test_gamma_poisson():
    counts = np.array([2, 4, 3, 5, 1, 3])
    a, b, n, s = 3.0, 1.0, len(counts), counts.sum()
    post = ppl.infer(gamma_poisson, jnp.asarray(counts), method=ppl.Importance(num_particles=N), seed=3)
    exact_mean = (a + s) / (b + n)
    exact_log_z = (a * math.log(b) - special.gammaln(a) + special.gammaln(a + s)
                   - (a + s) * math.log(b + n) - special.gammaln(counts + 1).sum())
    check(post, "rate", exact_mean, exact_log_z)


def test_importance_on_a_dynamic_model_runs_eagerly():
    @ppl.model
    def dyn(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        if mu > 0:  # dynamic
            ppl.observe("y", dist.Normal(mu, 1.0), y)
        else:
            ppl.observe("y", dist.Normal(-mu, 1.0), y)
        return mu

    post = ppl.infer(dyn, 1.0, method=ppl.Importance(num_particles=400), seed=0)
    assert post.engine == "eager"
    # p(mu | y) is symmetric in mu, so the mean is 0 and E|mu| is the half-normal posterior mean
    x = np.asarray(post.samples["mu"], dtype=np.float64)
    z = post.mean("mu") / mc_se_of_mean(post, x)
    assert abs(z) < 4

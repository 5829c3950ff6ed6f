"""Simulation-based calibration (Talts et al. 2018) of NUTS, MH and SMC.

For each of ``N`` replications: draw the parameters from the prior and data from the
likelihood (``model.simulate``), run the method on those data through ``ppl.infer``, take
``L`` posterior draws (MCMC: thinned to roughly independent draws; SMC: ``L`` draws from the
weighted particles), and record the rank of the true parameter among them. If the method draws
from the posterior, every rank ``0..L`` is equally likely. The ranks are counted in ``B`` bins of
equal probability (``(L + 1) % B == 0``) and a chi-square test rejects uniformity at
``p < P_REJECT`` = 0.001. Seeds are fixed, so each test is deterministic; with a correct method
a test fails for 1 in 1000 seeds. A negative control (a sampler given the wrong prior scale)
shows that the test has the power to fail.

Each model is written once: with ``ys=None`` it samples the data (for ``simulate``), with
data it observes them (for ``infer``). The data are arguments, not constants, so every
replication reuses one compiled sampler. The observations sit in a ``ppl.scan``, so SMC runs
a real filter over them (resampling as the weights degenerate), not one importance step.

The default suite runs one model per method with N = 100; ``-m slow`` runs every
(model, method) pair with N = 400 and the negative control for each method.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import ppl
from ppl import dist
from ppl.inference.mcmc.base import SamplingWarning
from ppl.inference.smc import RandomWalk

P_REJECT = 1e-3

# --- models: the same function simulates (ys=None) and conditions (ys given) ---------------------


def _site(name, d, y, simulate):
    return ppl.sample(name, d) if simulate else ppl.observe(name, d, y)


@ppl.model
def normal_normal(n, ys=None, prior_scale=1.0):
    """mu ~ Normal(0, prior_scale); y_t ~ Normal(mu, 1), t < n."""
    mu = ppl.sample("mu", dist.Normal(0.0, prior_scale))

    def step(carry, y):
        return carry, _site("y", dist.Normal(mu, 1.0), y, ys is None)

    ppl.scan(step, 0.0, ys, length=n)
    return mu


@ppl.model
def gamma_poisson(n, ys=None):
    """rate ~ Gamma(4, 2); y_t ~ Poisson(rate): a positive parameter (log transform for NUTS)."""
    rate = ppl.sample("rate", dist.Gamma(4.0, 2.0))

    def step(carry, y):
        return carry, _site("y", dist.Poisson(rate), y, ys is None)

    ppl.scan(step, 0.0, ys, length=n)
    return rate


@ppl.model
def regression(xs, ys=None):
    """slope ~ Normal(0, 1), sigma ~ Gamma(4, 4); y_t ~ Normal(slope x_t, sigma): two parameters."""
    slope = ppl.sample("slope", dist.Normal(0.0, 1.0))
    sigma = ppl.sample("sigma", dist.Gamma(4.0, 4.0))

    def step(carry, x_y):
        x, y = x_y
        return carry, _site("y", dist.Normal(slope * x, sigma), y, ys is None)

    ppl.scan(step, 0.0, (xs, ys))
    return slope


XS = jnp.linspace(-1.0, 1.0, 8)

# name -> (model, args for simulate, parameters checked)
MODELS = {
    "normal_normal": (normal_normal, (6,), ("mu",)),
    "gamma_poisson": (gamma_poisson, (5,), ("rate",)),
    "regression": (regression, (XS,), ("slope", "sigma")),
}


# --- the methods, tuned so that the L kept draws are roughly independent -------------------------
#
# MCMC keeps every ``thin``-th draw of 2 chains; the thinning was chosen from pilot runs so that
# the kept draws have a bulk ESS close to their number (NUTS on a one-dimensional Gaussian has a
# lag-1 autocorrelation of about 0.45, as BlackJAX's has; single-site MH proposes from the prior).
# Autocorrelated draws would make the ranks too often extreme: a false alarm, never a false pass.
# SMC: L draws with replacement from the weighted particles.

L = 99  # draws per replication: ranks 0..99, 100 values

# name -> (method, thinning of MCMC draws)
METHODS = {
    "NUTS": lambda: (ppl.NUTS(num_warmup=150, num_samples=150, num_chains=2), 3),
    "MH": lambda: (ppl.MH(num_warmup=100, num_samples=50, num_chains=2, thin=12), 1),
    "SMC": lambda: (ppl.SMC(num_particles=2000), None),
    "SMC+moves": lambda: (ppl.SMC(num_particles=1000, rejuvenation=RandomWalk(step_size=0.3, num_steps=2)), None),
}


def posterior_draws(post, name, thin, rng):
    """``L`` draws of ``name``: MCMC draws thinned (chains in turn), or ``L`` draws with
    replacement from weighted particles."""
    x = np.asarray(post.samples[name], dtype=np.float64)
    if post.weights is None:
        return x[:, ::thin].reshape(-1)[:L]
    return rng.choice(x, size=L, p=post.weights)


def sbc(model_name, method_name, num_reps, seed, **infer_kwargs):
    """Ranks ``(num_reps, num_params)`` of the true parameters among ``L`` posterior draws."""
    model, args, names = MODELS[model_name]
    method, thin = METHODS[method_name]()
    keys = jax.random.split(jax.random.key(seed), num_reps)
    truth = jax.vmap(lambda k: model.simulate(k, *args))(keys).choices
    rng = np.random.default_rng(seed)
    ranks = np.zeros((num_reps, len(names)), dtype=np.int64)
    for i in range(num_reps):
        with warnings.catch_warnings():
            # Short chains often fall below the 100-per-chain ESS floor of the run's diagnostics;
            # SBC judges the draws themselves, so those warnings are noise here.
            warnings.simplefilter("ignore", SamplingWarning)
            post = ppl.infer(model, *args, truth["y"][i], method=method, seed=seed * 100_003 + i,
                             **infer_kwargs)
        for j, name in enumerate(names):
            draws = posterior_draws(post, name, thin, rng)
            assert draws.shape == (L,)
            ranks[i, j] = int(np.sum(draws < float(truth[name][i])))
    return ranks


def uniformity_p_value(ranks, bins):
    """Chi-square test of ranks 0..L uniform, over ``bins`` equally likely bins."""
    assert (L + 1) % bins == 0
    counts = np.bincount(ranks * bins // (L + 1), minlength=bins)
    return float(stats.chisquare(counts).pvalue), counts


def assert_calibrated(ranks, names, bins):
    for j, name in enumerate(names):
        p, counts = uniformity_p_value(ranks[:, j], bins)
        assert p >= P_REJECT, f"ranks of '{name}' are not uniform: chi-square p = {p:.2g}, bin counts {counts}"


# --- the default suite: one model per method -------------------------------------------------------

DEFAULT = [("NUTS", "normal_normal"), ("MH", "gamma_poisson"), ("SMC", "regression")]


@pytest.mark.parametrize("method, model_name", DEFAULT, ids=[f"{m}-{n}" for m, n in DEFAULT])
def test_sbc_ranks_are_uniform(method, model_name):
    ranks = sbc(model_name, method, num_reps=100, seed=1)
    assert_calibrated(ranks, MODELS[model_name][2], bins=10)


def test_sbc_rejects_a_posterior_with_the_wrong_prior_scale():
    """Negative control: data from prior scale 1, inference with prior scale 0.5. The posterior
    is too narrow and pulled to 0, so true values of |mu| fall in the outer ranks too often."""
    ranks = sbc("normal_normal", "SMC", num_reps=100, seed=2, prior_scale=0.5)
    p, counts = uniformity_p_value(ranks[:, 0], bins=10)
    assert p < P_REJECT, f"the wrong posterior passed: p = {p:.2g}, counts {counts}"
    assert counts[0] + counts[-1] > 2 * 20, counts  # the U shape of an overconfident posterior


# --- everything (pytest -m slow) --------------------------------------------------------------------

ALL = [(m, n) for m in METHODS for n in MODELS]


@pytest.mark.slow
@pytest.mark.parametrize("method, model_name", ALL, ids=[f"{m}-{n}" for m, n in ALL])
def test_sbc_ranks_are_uniform_everywhere(method, model_name):
    ranks = sbc(model_name, method, num_reps=400, seed=3)
    assert_calibrated(ranks, MODELS[model_name][2], bins=20)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["NUTS", "MH", "SMC"])
def test_sbc_negative_control_for_each_method(method):
    ranks = sbc("normal_normal", method, num_reps=200, seed=4, prior_scale=0.5)
    p, counts = uniformity_p_value(ranks[:, 0], bins=10)
    assert p < P_REJECT, f"the wrong posterior passed under {method}: p = {p:.2g}, counts {counts}"


# --- conditioning the generative model on simulated data ----------------------------------------------


def test_condition_on_a_loop_site_observes_one_value_per_step():
    """``model.condition({'y': stacked})`` on a site inside ``ppl.scan``: step t observes row t
    (it used to observe the whole stack at every step, counting the data n times)."""
    ys = jnp.array([0.5, 1.0, -0.2, 2.0, 0.3, -1.1])
    mu = 0.3
    exact = stats.norm.logpdf(mu) + stats.norm.logpdf(np.asarray(ys), mu, 1.0).sum()
    conditioned = normal_normal.condition({"y": ys})
    assert float(conditioned.log_density({"mu": jnp.float32(mu)}, 6)) == pytest.approx(exact, abs=1e-4)
    # the same as passing the data as the loop's xs
    assert float(normal_normal.log_density({"mu": jnp.float32(mu)}, 6, ys)) == pytest.approx(exact, abs=1e-4)
    with pytest.raises(ppl.ShapeError, match="one row per step"):
        normal_normal.condition({"y": ys[:4]}).log_density({"mu": jnp.float32(mu)}, 6)

"""Trace MH preserves its target: chains against exact enumeration and conjugate posteriors.

Every comparison is a z-score with the chain's Monte Carlo standard error (ArviZ's
``mcse_mean``, which accounts for autocorrelation; floored by the i.i.d. error), fixed seeds.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference.mcmc.mh import MH

from chain_checks import Z_MAX, check_against_enumeration, z_score
from shared_models import hmm
from shared_models import sprinkler as sprinkler_static

# Short chains get R-hat / ESS SamplingWarnings (tests/test_warnings.py checks those); here the
# draws are checked against exact answers instead.
pytestmark = pytest.mark.filterwarnings("ignore::ppl.inference.mcmc.checks.SamplingWarning")


# --- the soft-evidence sprinkler ----------------------------------------------------------------


@ppl.model
def sprinkler_dynamic():
    rain = ppl.sample("rain", dist.Bernoulli(probs=0.3))
    if rain:
        ppl.factor("rain_evidence", math.log(0.2))
    on = ppl.sample("sprinkler", dist.Bernoulli(probs=0.1 if rain else 0.4))
    if on:
        ppl.factor("sprinkler_evidence", math.log(0.1))
    return rain


def test_single_site_mh_on_the_sprinkler_compiled():
    post = ppl.infer(sprinkler_static, method=MH(num_samples=3000, num_warmup=200), seed=1)
    assert post.engine == "compiled" and post.method == "MH"
    check_against_enumeration(post, sprinkler_static)


def test_single_site_mh_on_the_sprinkler_eager():
    post = ppl.infer(sprinkler_dynamic, method=MH(num_samples=600, num_warmup=50, num_chains=2), seed=2)
    assert post.engine == "eager"
    check_against_enumeration(post, sprinkler_static)


# --- a two-state hidden Markov model with 4 steps --------------------------------------------------


@ppl.model
def hmm_dynamic(ys):
    z = 0
    for t, y in enumerate(ys):
        z = int(ppl.sample(("z", t), dist.Bernoulli(probs=0.8 if z == 1 else 0.3)))
        ppl.observe(("y", t), dist.Normal(1.0 if z == 1 else -1.0, 1.0), y)
    return z


YS = jnp.array([0.5, -1.2, 1.4, 0.1])


def test_single_site_mh_on_the_hmm_compiled():
    post = ppl.infer(hmm, YS, method=MH(num_samples=2000, num_warmup=200), seed=3)
    assert post.samples["z"].shape == (4, 2000, 4)
    check_against_enumeration(post, hmm, YS)


def test_single_site_mh_on_the_hmm_eager():
    post = ppl.infer(hmm_dynamic, [float(y) for y in YS], method=MH(num_samples=400, num_warmup=30, num_chains=2),
                     seed=4)
    assert post.engine == "eager"
    assert post.samples["z"].shape == (2, 400, 4)  # 'z[0]', ... 'z[3]' stacked
    # a short chain: only the cells it visits often enough for its standard error to be estimated
    check_against_enumeration(post, hmm, YS, min_prob=0.05)
    exact = ppl.infer(hmm, YS, method=ppl.Enumerate()).mean("z")
    for t in range(4):
        assert abs(z_score(post.samples["z"][:, :, t], float(exact[t]))) < Z_MAX


@pytest.mark.slow
def test_block_mh_on_the_hmm():
    post = ppl.infer(hmm, YS, method=MH(selection=["z"], num_samples=4000, num_warmup=200), seed=5)
    check_against_enumeration(post, hmm, YS)


@pytest.mark.slow
def test_sweep_order_on_the_sprinkler():
    post = ppl.infer(sprinkler_static, method=MH(order="sweep", num_samples=3000, num_warmup=200), seed=6)
    check_against_enumeration(post, sprinkler_static)


# --- a conjugate normal-normal model -------------------------------------------------------


@ppl.model
def normal_normal(ys):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("data", ys.shape[0]):
        ppl.observe("y", dist.Normal(mu, 1.0), ys)
    return mu


DATA = jnp.asarray(np.random.default_rng(0).normal(1.0, 1.0, 10), jnp.float32)
POST_MEAN = float(DATA.sum()) / (1 + DATA.shape[0])
POST_SD = 1 / math.sqrt(1 + DATA.shape[0])


def test_conjugate_posterior_mean_within_mc_error():
    post = ppl.infer(normal_normal, DATA, method=MH(num_samples=3000, num_warmup=300), seed=7)
    mu = post.samples["mu"]
    assert abs(z_score(mu, POST_MEAN)) < Z_MAX
    assert abs(np.std(mu) - POST_SD) < 0.1 * POST_SD
    assert post.sample_stats["accept_prob"].shape == (4, 3000)
    assert np.allclose(post.returns, mu)


@ppl.model
def towards_the_data(choices, ys):
    """A non-symmetric proposal: half way from the current value to the data's mean."""
    target = 0.5 * choices["mu"] + 0.5 * jnp.mean(ys)
    ppl.sample("mu", dist.Normal(target, 0.4))


def test_user_proposal_with_a_reverse_density():
    post = ppl.infer(normal_normal, DATA, method=MH(proposal=towards_the_data, num_samples=3000, num_warmup=300),
                     seed=8)
    mu = post.samples["mu"]
    assert abs(z_score(mu, POST_MEAN)) < Z_MAX
    assert abs(np.std(mu) - POST_SD) < 0.1 * POST_SD
    assert 0.2 < post.sample_stats["accept_prob"].mean() < 1.0


# --- dynamic models: recursion and random-length structure ----------------------------------------


def geometric(p, depth=0):
    if ppl.sample(("flip", depth), dist.Bernoulli(probs=p)):
        return 0
    return 1 + geometric(p, depth + 1)


@ppl.model
def noisy_geometric(p, y):
    n = geometric(p)
    ppl.observe("y", dist.Normal(float(n), 1.0), y)
    return n


def test_geometric_by_recursion():
    post = ppl.infer(noisy_geometric, 0.3, 3.0, method=MH(num_samples=600, num_warmup=50, num_chains=2), seed=9)
    assert post.engine == "eager"
    exact = ppl.infer(noisy_geometric, 0.3, 3.0, method=ppl.Enumerate(max_depth=40))
    n = np.asarray(post.returns, dtype=np.float64)
    assert n.shape == (2, 600)
    assert abs(z_score(n, float(exact.mean()))) < Z_MAX
    for k in (1, 3, 5):
        p = float(exact.probs()[k])
        assert abs(z_score(n == k, p)) < Z_MAX


@ppl.model
def random_length(y):
    """n ~ 1 + Poisson(2) normal summands; y ~ Normal(sum, 1): p(y | n) = Normal(y; 0, sqrt(n + 1))."""
    n = 1 + int(ppl.sample("n", dist.Poisson(2.0)))
    total = 0.0
    for i in range(n):
        total = total + ppl.sample(("x", i), dist.Normal(0.0, 1.0))
    ppl.observe("y", dist.Normal(total, 1.0), y)
    return n


def test_random_length_structure():
    from scipy import stats

    post = ppl.infer(random_length, 4.0, method=MH(num_samples=500, num_warmup=50, num_chains=2), seed=10)
    ks = np.arange(0, 60)
    w = stats.poisson.pmf(ks, 2.0) * stats.norm.pdf(4.0, 0.0, np.sqrt(ks + 2.0))
    w /= w.sum()
    n = np.asarray(post.returns, dtype=np.float64)
    assert abs(z_score(n, float(np.sum(w * (ks + 1))))) < Z_MAX
    assert abs(z_score(n == 1, float(w[0]))) < Z_MAX


# --- options and errors -------------------------------------------------------------------------------


def test_thinning_and_chains_shape_the_draws():
    post = ppl.infer(sprinkler_dynamic, method=MH(num_samples=20, num_warmup=5, num_chains=3, thin=2))
    assert post.samples["rain"].shape == (3, 20)
    assert post.sample_stats["accept_prob"].shape == (3, 20)
    assert np.asarray(post.returns).shape == (3, 20)


def test_bad_options_are_reported():
    with pytest.raises(ppl.AddressError, match="'nope'"):
        ppl.infer(sprinkler_static, method=MH(selection=["nope"], num_samples=10))
    with pytest.raises(ppl.ModelError, match="order"):
        ppl.infer(sprinkler_static, method=MH(order="backwards"))
    with pytest.raises(ppl.ModelError, match="not both"):
        ppl.infer(sprinkler_static, method=MH(selection=["rain"], proposal=towards_the_data))


def test_a_proposal_must_name_the_model_s_sites():
    @ppl.model
    def stray(choices, ys):
        ppl.sample("nu", dist.Normal(0.0, 1.0))

    with pytest.raises(ppl.AddressError, match="'nu'"):
        ppl.infer(normal_normal, DATA, method=MH(proposal=stray, num_samples=10))

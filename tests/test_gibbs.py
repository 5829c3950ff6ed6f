"""Gibbs sampling preserves its target: chains against exact enumeration and conjugate answers.

z-scores use the chain's Monte Carlo standard error (ArviZ's ``mcse_mean``, floored by the
i.i.d. error), fixed seeds.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference.mcmc.gibbs import Gibbs

from chain_checks import Z_MAX, check_against_enumeration, z_score
from shared_models import hmm, sprinkler

# Short chains get R-hat / ESS SamplingWarnings (tests/test_warnings.py checks those); here the
# draws are checked against exact answers instead.
pytestmark = pytest.mark.filterwarnings("ignore::ppl.inference.mcmc.checks.SamplingWarning")


def test_gibbs_on_the_sprinkler():
    post = ppl.infer(sprinkler, method=Gibbs(num_samples=3000, num_warmup=100), seed=1)
    assert post.method == "Gibbs" and post.engine == "compiled"
    assert post.samples["rain"].shape == (4, 3000)
    assert np.all(post.sample_stats["accept_prob"] == 1.0)  # every update is an exact conditional draw
    check_against_enumeration(post, sprinkler)


YS = jnp.array([0.5, -1.2, 1.4, 0.1])


def test_gibbs_on_the_hmm():
    post = ppl.infer(hmm, YS, method=Gibbs(num_samples=3000, num_warmup=100), seed=2)
    assert post.samples["z"].shape == (4, 3000, 4)
    check_against_enumeration(post, hmm, YS)


@ppl.model
def mixture(y, w, mu):
    with ppl.plate("data", y.shape[0]):
        z = ppl.sample("z", dist.Categorical(probs=jnp.stack([1 - w, w])))
        ppl.observe("y", dist.Normal(mu[z], 1.0), y)


def test_plated_assignments_are_drawn_from_their_exact_conditionals():
    """Elements of a plate are updated in parallel, each from its own conditional."""
    y = jnp.array([-2.0, -0.3, 0.2, 2.5, 0.0, 1.0])
    w, mu = 0.4, jnp.array([-1.0, 1.2])
    post = ppl.infer(mixture, y, w, mu, method=Gibbs(num_samples=1000, num_warmup=10), seed=3)
    from ppl.inference.mcmc.gibbs import _Kernel

    kernel = _Kernel(*mixture.program(y, w, mu))
    assert kernel.updates[0].parallel == ("data",) and kernel.updates[0].sequential_size == 1
    comp = np.stack([np.log(1 - w) + jax.scipy.stats.norm.logpdf(y, mu[0], 1.0),
                     np.log(w) + jax.scipy.stats.norm.logpdf(y, mu[1], 1.0)])
    p1 = np.exp(comp[1] - np.logaddexp(comp[0], comp[1]))
    for n in range(y.shape[0]):
        assert abs(z_score(post.samples["z"][:, :, n], float(p1[n]))) < Z_MAX


@ppl.model
def switch(y):
    """A discrete choice of the prior mean of a continuous site: Gibbs and a random walk together."""
    b = ppl.sample("b", dist.Bernoulli(probs=0.5))
    mu = ppl.sample("mu", dist.Normal(jnp.where(b == 1, 3.0, 0.0), 1.0))
    ppl.observe("y", dist.Normal(mu, 1.0), y)
    return mu


def test_mixed_discrete_and_continuous_sites():
    y = 2.0
    post = ppl.infer(switch, y, method=Gibbs(num_samples=3000, num_warmup=500), seed=4)
    # y | b ~ Normal(3b, sqrt 2); mu | b, y ~ Normal((3b + y) / 2, sqrt(1/2))
    from scipy import stats

    like = np.array([stats.norm.pdf(y, 0.0, math.sqrt(2)), stats.norm.pdf(y, 3.0, math.sqrt(2))])
    p_b = like[1] / like.sum()
    mean_mu = (1 - p_b) * (0 + y) / 2 + p_b * (3 + y) / 2
    assert abs(z_score(post.samples["b"], p_b)) < Z_MAX
    assert abs(z_score(post.samples["mu"], mean_mu)) < Z_MAX
    assert 0.2 < post.sample_stats["accept_prob"].mean() < 0.9  # the random walk's scale was adapted


@pytest.mark.slow
def test_branching_discrete_sites():
    @ppl.model
    def branchy():
        a = ppl.sample("a", dist.Bernoulli(probs=0.4))

        def yes():
            c = ppl.sample("c", dist.Categorical(probs=jnp.array([0.2, 0.3, 0.5])))
            ppl.factor("fc", jnp.where(c == 2, -1.0, 0.0))
            return c

        def no():
            return jnp.asarray(0, jnp.int32)

        c = ppl.cond(a == 1, yes, no)
        ppl.factor("f", jnp.where(c == 1, 0.7, 0.0))
        return a + c

    post = ppl.infer(branchy, method=Gibbs(num_samples=3000, num_warmup=100), seed=5)
    exact = ppl.infer(branchy, method=ppl.Enumerate())
    returns = np.asarray(post.returns)
    for value, p in exact.probs().items():
        assert abs(z_score(returns == value, p)) < Z_MAX


def test_infinite_discrete_sites_take_integer_steps():
    @ppl.model
    def counts(y):
        n = ppl.sample("n", dist.Poisson(3.0))
        ppl.observe("y", dist.Normal(n * 1.0, 1.0), y)
        return n

    post = ppl.infer(counts, 5.0, method=Gibbs(num_samples=3000, num_warmup=100), seed=6)
    exact = ppl.infer(counts, 5.0, method=ppl.Enumerate(support_bound=40))
    assert abs(z_score(post.samples["n"], float(exact.mean("n")))) < Z_MAX


def test_dynamic_models_are_refused_with_a_pointer_to_mh():
    @ppl.model
    def dynamic():
        if ppl.sample("a", dist.Bernoulli(probs=0.5)):
            ppl.sample("b", dist.Normal(0.0, 1.0))

    with pytest.raises(ppl.ModelError, match="MH"):
        ppl.infer(dynamic, method=Gibbs(num_samples=10))

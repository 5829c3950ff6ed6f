"""The method ``ppl.infer`` (and ``ppl run``) picks when none is given."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.api import default_method


@ppl.model
def coins():
    a = ppl.sample("a", dist.Bernoulli(probs=0.3))
    b = ppl.sample("b", dist.Bernoulli(probs=jnp.where(a == 1, 0.9, 0.2)))
    return a + b


@ppl.model
def normal_mean(ys):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("n", ys.shape[0]):
        ppl.observe("y", dist.Normal(mu, 1.0), ys)


@ppl.model
def mixture(ys):
    mu = ppl.sample("mu", dist.Normal(0.0, 3.0))
    with ppl.plate("n", ys.shape[0]):
        z = ppl.sample("z", dist.Bernoulli(probs=0.5))
        ppl.observe("y", dist.Normal(jnp.where(z == 1, mu, -mu), 1.0), ys)


@ppl.model
def counting_walk(ys):
    """A Poisson latent count per step: discrete with unbounded support, so not enumerable."""

    def step(carry, y):
        n = ppl.sample("n", dist.Poisson(3.0))
        ppl.observe("y", dist.Normal(n.astype(jnp.float32), 1.0), y)
        return carry, n

    return ppl.scan(step, 0, ys)


@ppl.model
def count(y):
    n = ppl.sample("n", dist.Poisson(3.0))
    ppl.observe("y", dist.Normal(n.astype(jnp.float32), 1.0), y)


YS = np.array([1.0, -0.5, 2.0], np.float32)


def pick(model, *args):
    program, leaves = model.program(*args)
    return type(default_method(program, leaves)).__name__


def test_finite_discrete_models_are_enumerated():
    assert pick(coins) == "Enumerate"
    assert ppl.infer(coins).method == "Enumerate"


def test_continuous_static_models_get_nuts():
    assert pick(normal_mean, YS) == "NUTS"


def test_discrete_sites_that_can_be_summed_out_still_get_nuts():
    assert pick(mixture, YS) == "NUTS"


def test_a_loop_with_observations_and_unbounded_discrete_states_gets_smc():
    assert pick(counting_walk, np.array([2.0, 3.5, 1.0], np.float32)) == "SMC"


def test_otherwise_importance_sampling():
    assert pick(count, 2.0) == "Importance"


def test_nuts_on_a_mixture_sums_out_the_assignments():
    """The user does not marginalise by hand: NUTS sees mu only, z is drawn from its exact conditional."""
    ys = np.array([2.1, -1.8, 2.4, -2.2, 1.9, -2.0], np.float32)
    post = ppl.infer(mixture, ys, method=ppl.NUTS(num_warmup=300, num_samples=500, num_chains=2), seed=0)
    assert post.samples["z"].shape == (2, 500, 6)
    # exact posterior of mu on a grid: z summed out by hand
    grid = np.linspace(-6, 6, 4001)
    from scipy.stats import norm

    lik = 0.5 * norm.pdf(ys[None, :], grid[:, None], 1.0) + 0.5 * norm.pdf(ys[None, :], -grid[:, None], 1.0)
    logp = norm.logpdf(grid, 0, 3) + np.log(lik).sum(axis=1)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    exact_abs = float(np.sum(w * np.abs(grid)))  # |mu|: the sign is unidentified (label switching)
    from ppl.inference.diagnostics import mcse_mean

    draws = np.abs(np.asarray(post.samples["mu"], np.float64))
    assert abs(draws.mean() - exact_abs) / mcse_mean(draws) < 4
    # given mu > 0, z[n] = 1 exactly when y[n] is near +mu: check the assignment of the first datum
    mu = np.asarray(post.samples["mu"], np.float64)
    z0 = np.asarray(post.samples["z"][..., 0], np.float64)
    agree = np.mean((z0 == 1) == (mu > 0))
    assert agree > 0.95


def test_nuts_refuses_unbounded_discrete_sites_and_says_why():
    import pytest

    with pytest.raises(ppl.ModelError, match="'n' is discrete and cannot be summed out") as err:
        ppl.infer(count, 2.0, method=ppl.NUTS(num_warmup=10, num_samples=10))
    assert "Gibbs" in str(err.value) or "MH" in str(err.value)


def test_a_truncated_discrete_model_gets_exact_enumeration():
    # Truncated's support is finite per instance (the class cannot say): the default method probes it
    @ppl.model
    def truncated_poisson():
        return ppl.sample("k", ppl.dist.Truncated(ppl.dist.Poisson(2.0), low=0, high=4))

    post = ppl.infer(truncated_poisson)
    assert post.method == "Enumerate"
    weights = [2.0**k / math.factorial(k) for k in range(5)]
    for k, w in enumerate(weights):
        assert post.probs()[k] == pytest.approx(w / sum(weights), abs=1e-6)


@pytest.mark.parametrize("method", [ppl.NUTS(num_warmup=5, num_samples=5, num_chains=1, progress=False),
                                    ppl.HMC(num_warmup=5, num_samples=5, num_chains=1, progress=False)],
                         ids=["NUTS", "HMC"])
def test_a_gradient_sampler_on_an_all_discrete_model_says_what_to_use(method):
    @ppl.model
    def coin():
        return ppl.sample("x", ppl.dist.Bernoulli(0.3))

    with pytest.raises(ppl.ModelError, match="every latent site of 'coin' is discrete") as err:
        ppl.infer(coin, method=method)
    assert "ppl.Enumerate()" in err.value.hint

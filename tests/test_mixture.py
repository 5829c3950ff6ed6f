"""Finite mixtures in the Python front end: ``dist.Mixture`` and ``dist.MixtureSameFamily``.

Densities against scipy and against the .ppl library ``stdlib.mixtures`` (the same density);
moments exact and draws within Monte Carlo error; NUTS on a continuous mixture; exact
enumeration with a mixture observation and with a discrete mixture as a latent.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import ppl
from ppl import dist as D
from ppl.stdlib.errors import ModelError, ShapeError

from chain_checks import Z_MAX, z_score


def test_mixture_of_two_families_matches_scipy():
    m = D.Mixture([0.3, 0.7], [D.Normal(-1.0, 1.0), D.StudentT(4.0, 2.0, 0.5)])
    x = np.array([-3.0, -1.0, 0.0, 2.0, 5.0])
    ref = np.log(0.3 * st.norm(-1, 1).pdf(x) + 0.7 * st.t(4, 2, 0.5).pdf(x))
    np.testing.assert_allclose(np.asarray(m.log_density(x)), ref, rtol=1e-5)
    # the mixing distribution may be given as a Categorical
    m2 = D.Mixture(D.Categorical(probs=jnp.array([0.3, 0.7])), [D.Normal(-1.0, 1.0), D.StudentT(4.0, 2.0, 0.5)])
    np.testing.assert_allclose(np.asarray(m2.log_density(x)), ref, rtol=1e-5)


def test_mixture_same_family_matches_scipy_and_batches():
    w = jnp.array([[0.2, 0.8], [0.5, 0.5]])
    comp = D.Normal(jnp.array([[0.0, 3.0], [-1.0, 1.0]]), jnp.array([[1.0, 2.0], [0.5, 0.5]]))
    m = D.MixtureSameFamily(D.Categorical(probs=w), comp)
    assert m.batch_shape == (2,) and m.event_shape == ()
    x = np.array([[0.5, -0.2], [2.0, 1.1]])  # (2 values) x (batch 2)
    ref = np.stack([
        np.log(0.2 * st.norm(0, 1).pdf(x[:, 0]) + 0.8 * st.norm(3, 2).pdf(x[:, 0])),
        np.log(0.5 * st.norm(-1, 0.5).pdf(x[:, 1]) + 0.5 * st.norm(1, 0.5).pdf(x[:, 1])),
    ], axis=1)
    np.testing.assert_allclose(np.asarray(m.log_density(x)), ref, rtol=1e-5)


def test_mixture_same_family_of_multivariate_components():
    locs = jnp.array([[0.0, 0.0], [3.0, 1.0]])
    m = D.MixtureSameFamily(D.Categorical(probs=jnp.array([0.25, 0.75])),
                            D.MultivariateNormal(locs, covariance_matrix=jnp.eye(2)))
    assert m.event_shape == (2,)
    x = np.array([1.0, 0.5])
    ref = np.log(0.25 * st.multivariate_normal([0, 0]).pdf(x) + 0.75 * st.multivariate_normal([3, 1]).pdf(x))
    assert float(m.log_density(x)) == pytest.approx(ref, rel=1e-5)
    np.testing.assert_allclose(np.asarray(m.mean), [2.25, 0.75], rtol=1e-6)
    assert m.sample(jax.random.key(0), (5,)).shape == (5, 2)


def test_moments_exact_and_draws_within_mc_error():
    m = D.Mixture([0.3, 0.7], [D.Normal(-1.0, 1.0), D.StudentT(5.0, 2.0, 1.0)])
    mean = 0.3 * -1.0 + 0.7 * 2.0
    second = 0.3 * (1.0 + 1.0) + 0.7 * (5.0 / 3.0 + 4.0)
    assert float(m.mean) == pytest.approx(mean, rel=1e-6)
    assert float(m.variance) == pytest.approx(second - mean**2, rel=1e-6)
    draws = np.asarray(m.sample(jax.random.key(3), (40000,)))
    assert abs(z_score(draws[None], mean)) < Z_MAX
    # the mixing weights: the fraction of negative draws
    p = 0.3 * st.norm(-1, 1).cdf(0.0) + 0.7 * st.t(5, 2, 1).cdf(0.0)
    assert abs(np.mean(draws < 0) - p) / math.sqrt(p * (1 - p) / draws.size) < Z_MAX


STDLIB_USER = """
import stdlib.mixtures

model mix(theta: real, y: real[]) {
  return normal_mix_log_density(theta, -1, 1, 2, 0.5, y)
}
"""


def test_same_density_as_stdlib_mixtures():
    mod = ppl.loads(STDLIB_USER)
    y = np.array([-2.0, 0.0, 1.5, 3.0])
    from_ppl = np.asarray(mod.mix.simulate(jax.random.key(0), 0.3, y).retval)
    m = D.Mixture([0.3, 0.7], [D.Normal(-1.0, 1.0), D.Normal(2.0, 0.5)])
    np.testing.assert_allclose(np.asarray(m.log_density(y)), from_ppl, rtol=1e-6)
    ms = D.MixtureSameFamily(D.Categorical(probs=jnp.array([0.3, 0.7])),
                             D.Normal(jnp.array([-1.0, 2.0]), jnp.array([1.0, 0.5])))
    np.testing.assert_allclose(np.asarray(ms.log_density(y)), from_ppl, rtol=1e-6)


def test_nuts_on_a_continuous_mixture():
    # a latent drawn from an (overlapping) mixture and nothing observed: the posterior is the mixture
    mixture = D.Mixture([0.4, 0.6], [D.Normal(-0.5, 1.0), D.Normal(1.0, 1.5)])

    @ppl.model
    def m():
        return ppl.sample("x", mixture)

    post = ppl.infer(m, method=ppl.NUTS(num_samples=1000, num_warmup=500, num_chains=4), seed=0)
    assert abs(z_score(np.asarray(post.samples["x"]), float(mixture.mean))) < Z_MAX


def test_enumeration_with_a_mixture_observation():
    # z picks the mixing weight; y is observed under the mixture: exact posterior of z by hand
    y = 1.2

    def lik(w):
        return w * st.norm(0, 1).pdf(y) + (1 - w) * st.norm(2, 1).pdf(y)

    @ppl.model
    def m():
        z = ppl.sample("z", D.Bernoulli(probs=0.3))
        w = jnp.where(z == 1, 0.9, 0.2)
        ppl.observe("y", D.MixtureSameFamily(D.Categorical(probs=jnp.stack([w, 1 - w])),
                                             D.Normal(jnp.array([0.0, 2.0]), 1.0)), y)
        return z

    post = ppl.infer(m, method=ppl.Enumerate())
    p1 = 0.3 * lik(0.9) / (0.3 * lik(0.9) + 0.7 * lik(0.2))
    assert post.probs()[1] == pytest.approx(p1, rel=1e-5)


def test_enumeration_of_a_discrete_mixture_latent():
    mix = D.Mixture([0.5, 0.5], [D.Bernoulli(probs=0.2), D.Bernoulli(probs=0.9)])
    assert mix.is_discrete and mix.has_enumerate_support

    @ppl.model
    def m():
        k = ppl.sample("k", mix)
        ppl.observe("y", D.Normal(k * 1.0, 1.0), 0.8)
        return k

    post = ppl.infer(m, method=ppl.Enumerate())
    prior1 = 0.5 * 0.2 + 0.5 * 0.9
    a, b = prior1 * st.norm(1, 1).pdf(0.8), (1 - prior1) * st.norm(0, 1).pdf(0.8)
    assert post.probs()[1] == pytest.approx(a / (a + b), rel=1e-5)


def test_bad_mixtures_are_clear_errors():
    with pytest.raises(ModelError, match="share one support"):
        D.Mixture([0.5, 0.5], [D.Normal(0.0, 1.0), D.Gamma(2.0, 1.0)]).support  # noqa: B018
    with pytest.raises(ShapeError, match="2 weights but 3 components"):
        D.Mixture([0.5, 0.5], [D.Normal(0.0, 1.0)] * 3)
    with pytest.raises(ModelError, match="non-empty list"):
        D.Mixture([1.0], D.Normal(0.0, 1.0))
    with pytest.raises(ModelError, match="all discrete or all continuous"):
        D.Mixture([0.5, 0.5], [D.Poisson(1.0), D.Normal(0.0, 1.0)])
    with pytest.raises(ShapeError, match="last batch axis"):
        D.MixtureSameFamily(D.Categorical(probs=jnp.array([0.5, 0.5])), D.Normal(jnp.zeros(3), 1.0))
    with pytest.raises(ModelError, match="must be a Categorical"):
        D.MixtureSameFamily(D.Bernoulli(probs=0.5), D.Normal(jnp.zeros(2), 1.0))


def test_mixture_inside_a_plate_expands():
    @ppl.model
    def m(y):
        mu = ppl.sample("mu", D.Normal(0.0, 1.0))
        with ppl.plate("data", len(y)):
            ppl.observe("y", D.MixtureSameFamily(D.Categorical(probs=jnp.array([0.9, 0.1])),
                                                 D.Normal(jnp.stack([mu, mu]), jnp.array([1.0, 5.0]))), y)
            ppl.observe("z", D.Mixture([0.5, 0.5], [D.Normal(mu, 1.0), D.Normal(-mu, 1.0)]), y)

    y = np.array([0.2, 1.4, -0.3])
    lp = float(m.log_density({"mu": 0.5}, jnp.asarray(y)))
    ref = (st.norm.logpdf(0.5) + np.log(0.9 * st.norm(0.5, 1).pdf(y) + 0.1 * st.norm(0.5, 5).pdf(y)).sum()
           + np.log(0.5 * st.norm(0.5, 1).pdf(y) + 0.5 * st.norm(-0.5, 1).pdf(y)).sum())
    assert lp == pytest.approx(ref, rel=1e-5)


def test_mixture_distribution_functions_and_truncation():
    m = D.Mixture([0.3, 0.7], [D.Normal(-1.0, 1.0), D.StudentT(4.0, 2.0, 0.5)])
    refs = [(0.3, st.norm(-1, 1)), (0.7, st.t(4, 2, 0.5))]
    x = np.array([-6.0, -1.0, 0.0, 2.0, 8.0])
    cdf = sum(w * r.cdf(x) for w, r in refs)
    sf = sum(w * r.sf(x) for w, r in refs)
    assert m.has_cdf
    np.testing.assert_allclose(np.asarray(m.cdf(x)), cdf, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(m.log_cdf(x)), np.log(cdf), rtol=1e-5, atol=1e-7)  # float32 near 0
    np.testing.assert_allclose(np.asarray(m.log_ccdf(x)), np.log(sf), rtol=1e-5, atol=1e-7)
    q = np.asarray(m.icdf(jnp.array([0.05, 0.5, 0.95])))
    np.testing.assert_allclose(sum(w * r.cdf(q) for w, r in refs), [0.05, 0.5, 0.95], atol=1e-5)
    # a truncated mixture: renormalised by the mixture's mass above 0, drawn by its inverse cdf
    t = D.Truncated(m, low=0.0)
    pdf = lambda v: sum(w * r.pdf(v) for w, r in refs)  # noqa: E731
    mass = sum(w * r.sf(0.0) for w, r in refs)
    assert float(t.log_density(1.0)) == pytest.approx(math.log(pdf(1.0) / mass), rel=1e-5)
    draws = np.asarray(jax.jit(lambda k: t.sample(k, (10000,)))(jax.random.key(4)))
    assert draws.min() >= 0.0
    from scipy.integrate import quad

    exact = quad(lambda v: v * pdf(v), 0.0, np.inf)[0] / mass
    assert abs(z_score(draws[None], exact)) < Z_MAX
    # components without a cdf: none for the mixture either
    mv = D.MixtureSameFamily(D.Categorical(probs=jnp.array([0.5, 0.5])),
                             D.MultivariateNormal(jnp.zeros((2, 2)), covariance_matrix=jnp.eye(2)))
    assert not mv.has_cdf
    with pytest.raises(ModelError, match="has no cdf"):
        mv.cdf(jnp.zeros(2))


def test_mixture_with_traced_support_bounds():
    # Uniform(a, b) components whose bounds are traced (a latent, or any value inside jit): the
    # supports are compared at run time, not refused when the mixture is built
    def density(a, x):
        return D.Mixture([0.4, 0.6], [D.Uniform(a, 2.0), D.Uniform(a, 2.0)]).log_density(x)

    assert float(jax.jit(density)(-1.0, 0.5)) == pytest.approx(math.log(1 / 3), rel=1e-6)
    assert float(jax.jit(density)(-1.0, 2.5)) == -math.inf

    @ppl.model
    def m(y):
        a = ppl.sample("a", D.Normal(0.0, 1.0))
        ppl.observe("y", D.Mixture([0.4, 0.6], [D.Uniform(a, 2.0), D.Uniform(a, 2.0)]), y)

    ref = st.norm.logpdf(-1.0) + math.log(1 / 3)
    assert float(m.log_density({"a": -1.0}, jnp.asarray(0.5))) == pytest.approx(ref, rel=1e-6)

    # supports that turn out to differ when the bounds have values: an invalid parameter (NaN, and
    # params_ok false), never a silently wrong density
    def differing(a, x):
        m = D.Mixture([0.4, 0.6], [D.Uniform(a, 2.0), D.Uniform(a, 3.0)])
        return m.log_density(x), m.params_ok()

    lp, ok = jax.jit(differing)(-1.0, 0.5)
    assert math.isnan(float(lp)) and not bool(ok)
    assert bool(jax.jit(lambda a: D.Mixture([0.4, 0.6], [D.Uniform(a, 2.0), D.Uniform(a, 2.0)]).params_ok())(-1.0))

    @ppl.model
    def m2(y):
        a = ppl.sample("a", D.Normal(0.0, 1.0))
        ppl.observe("y", D.Mixture([0.4, 0.6], [D.Uniform(a, 2.0), D.Uniform(a, 3.0)]), y)

    assert math.isnan(float(m2.log_density({"a": -1.0}, jnp.asarray(0.5))))


def test_mixture_supports_provably_different_are_refused_when_traced():
    # a traced interval is never the real line; concrete bounds that differ are refused as before
    with pytest.raises(ModelError, match="share one support"):
        jax.jit(lambda a: D.Mixture([0.5, 0.5], [D.Uniform(a, 2.0), D.Normal(0.0, 1.0)]).log_density(0.5))(0.0)
    with pytest.raises(ModelError, match="share one support"):
        D.Mixture([0.5, 0.5], [D.Uniform(0.0, 2.0), D.Uniform(0.0, 3.0)])
    # concrete bounds equal after broadcasting are one support
    m = D.Mixture([0.5, 0.5], [D.Uniform(0.0, 1.0), D.Uniform(jnp.zeros(3), jnp.ones(3))])
    np.testing.assert_allclose(np.asarray(m.log_density(0.5)), [0.0, 0.0, 0.0], atol=1e-7)

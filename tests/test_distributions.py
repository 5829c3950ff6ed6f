"""Distributions: densities against scipy.stats, sample moments, enumeration, shapes,
transformations (jit, vmap, grad), validation and supports.

Tolerance tiers:
- densities in float64 agree with scipy to 1e-8 (both sides are exact to ~1e-13; the slack
  is for scipy's and XLA's different special-function algorithms);
- densities in float32 agree to 1e-5 relative plus 1e-5 absolute: a log density is a sum
  of O(1)-O(50) terms, each rounded at float32 eps = 1.2e-7, so values near 0 carry an
  absolute (not relative) error of a few 1e-6;
- sample means and variances lie within 4 standard errors (20,000 draws, seed below);
- enumerated probabilities sum to 1 within 1e-6 (float32 sums of at most a dozen terms).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logit

from ppl.stdlib import constraints as C
from ppl.stdlib.distributions import (
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Cauchy,
    Delta,
    Dirichlet,
    Distribution,
    Exponential,
    Flat,
    Gamma,
    Geometric,
    HalfCauchy,
    HalfNormal,
    InverseGamma,
    LogNormal,
    MultivariateNormal,
    NegativeBinomial,
    Normal,
    Poisson,
    StudentT,
    Uniform,
    flat,
    is_concrete,
)
from ppl.stdlib.errors import ImproperSampleError, ModelError, ParameterError, ShapeError

SEED = 20240611
def float64():
    """A context in which JAX computes in float64 (``jax.enable_x64``, or its older home)."""
    enable = getattr(jax, "enable_x64", None)
    if enable is not None:
        return enable(True)
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()  # pragma: no cover


KEY = jax.random.PRNGKey(SEED)


@jax.jit
def log_density(dist, value):
    return dist.log_density(value)


# ---------------------------------------------------------------------------
# Densities against scipy.stats


def _categorical_ref(k, probs):
    return np.log(np.take_along_axis(np.broadcast_to(probs, k.shape + probs.shape[-1:]), k[..., None], -1)[..., 0])


def _dirichlet_ref(x, concentration):
    return np.array([st.dirichlet.logpdf(row, concentration) for row in x])


def _mvn_ref(x, loc, cov):
    return st.multivariate_normal.logpdf(x, loc, cov)


P3 = np.array([0.1, 0.45, 0.9])
COV = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])
MVN_X = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [3.0, 1.0, -1.0]])
CAT_P = np.array([[0.2, 0.3, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]])

# (id, builder, parameters, values, scipy reference)
SCIPY_CASES = [
    ("Normal", lambda p: Normal(p["loc"], p["scale"]),
     {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.3, 4.0]},
     [[-1.0, 0.0, 3.0], [0.5, 1.6, -2.0], [10.0, 2.0, 0.0]],
     lambda x, p: st.norm.logpdf(x, p["loc"], p["scale"])),
    ("HalfNormal", lambda p: HalfNormal(p["scale"]),
     {"scale": [1.0, 0.5, 3.0]}, [[0.0, 0.1, 2.0], [1.0, 3.0, 0.01]],
     lambda x, p: st.halfnorm.logpdf(x, scale=p["scale"])),
    ("Cauchy", lambda p: Cauchy(p["loc"], p["scale"]),
     {"loc": [0.0, 1.0, -3.0], "scale": [1.0, 0.2, 5.0]}, [[0.0, 1.5, 40.0], [-2.0, 0.9, -3.0]],
     lambda x, p: st.cauchy.logpdf(x, p["loc"], p["scale"])),
    ("HalfCauchy", lambda p: HalfCauchy(p["scale"]),
     {"scale": [1.0, 0.2, 5.0]}, [[0.0, 1.5, 40.0], [2.0, 0.01, 3.0]],
     lambda x, p: st.halfcauchy.logpdf(x, scale=p["scale"])),
    ("StudentT", lambda p: StudentT(p["df"], p["loc"], p["scale"]),
     {"df": [1.0, 3.5, 30.0], "loc": [0.0, 1.0, -1.0], "scale": [1.0, 2.0, 0.5]},
     [[0.0, 1.0, 2.0], [-5.0, 7.0, -1.2]],
     lambda x, p: st.t.logpdf(x, p["df"], p["loc"], p["scale"])),
    ("LogNormal", lambda p: LogNormal(p["loc"], p["scale"]),
     {"loc": [0.0, 1.0, -1.0], "scale": [1.0, 0.25, 2.0]}, [[1.0, 2.5, 0.01], [0.3, 3.0, 20.0]],
     lambda x, p: st.lognorm.logpdf(x, p["scale"], scale=np.exp(p["loc"]))),
    ("Exponential", lambda p: Exponential(p["rate"]),
     {"rate": [1.0, 0.1, 7.0]}, [[0.0, 3.0, 0.2], [2.0, 30.0, 1.0]],
     lambda x, p: st.expon.logpdf(x, scale=1 / p["rate"])),
    ("Gamma", lambda p: Gamma(p["concentration"], p["rate"]),
     {"concentration": [0.5, 1.0, 7.5], "rate": [1.0, 2.0, 0.5]}, [[0.3, 0.0, 15.0], [2.0, 1.0, 4.0]],
     lambda x, p: st.gamma.logpdf(x, p["concentration"], scale=1 / p["rate"])),
    ("InverseGamma", lambda p: InverseGamma(p["concentration"], p["rate"]),
     {"concentration": [0.5, 3.0, 7.5], "rate": [1.0, 2.0, 0.5]}, [[0.3, 1.0, 0.05], [2.0, 0.1, 4.0]],
     lambda x, p: st.invgamma.logpdf(x, p["concentration"], scale=p["rate"])),
    ("Beta", lambda p: Beta(p["concentration1"], p["concentration0"]),
     {"concentration1": [0.5, 1.0, 6.0], "concentration0": [0.7, 3.0, 2.0]},
     [[0.3, 0.0, 0.9], [0.999, 0.5, 0.01]],
     lambda x, p: st.beta.logpdf(x, p["concentration1"], p["concentration0"])),
    ("Uniform", lambda p: Uniform(p["low"], p["high"]),
     {"low": [0.0, -3.0, 10.0], "high": [1.0, 5.0, 10.5]}, [[0.5, 0.0, 10.2], [1.0, -3.0, 10.0]],
     lambda x, p: st.uniform.logpdf(x, p["low"], p["high"] - p["low"])),
    ("Bernoulli-probs", lambda p: Bernoulli(probs=p["p"]),
     {"p": P3}, [[0, 1, 1], [1, 0, 0]], lambda k, p: st.bernoulli.logpmf(k, p["p"])),
    ("Bernoulli-logits", lambda p: Bernoulli(logits=logit(p["p"])),
     {"p": P3}, [[0, 1, 1], [1, 0, 0]], lambda k, p: st.bernoulli.logpmf(k, p["p"])),
    ("Binomial-probs", lambda p: Binomial(p["n"], probs=p["p"]),
     {"n": [10.0, 1.0, 25.0], "p": P3}, [[0, 1, 20], [10, 0, 25], [3, 1, 0]],
     lambda k, p: st.binom.logpmf(k, p["n"], p["p"])),
    ("Binomial-logits", lambda p: Binomial(p["n"], logits=logit(p["p"])),
     {"n": [10.0, 1.0, 25.0], "p": P3}, [[0, 1, 20], [10, 0, 25], [3, 1, 0]],
     lambda k, p: st.binom.logpmf(k, p["n"], p["p"])),
    ("Categorical-probs", lambda p: Categorical(probs=p["p"]),
     {"p": CAT_P}, [[0, 3], [2, 1], [1, 0]], lambda k, p: _categorical_ref(k, p["p"])),
    ("Categorical-logits", lambda p: Categorical(logits=np.log(p["p"], out=np.full_like(p["p"], -np.inf), where=p["p"] > 0) + 3.0),
     {"p": CAT_P}, [[0, 3], [2, 1], [1, 0]], lambda k, p: _categorical_ref(k, p["p"])),
    ("Poisson", lambda p: Poisson(p["rate"]),
     {"rate": [0.5, 3.0, 40.0]}, [[0, 3, 40], [4, 0, 20]], lambda k, p: st.poisson.logpmf(k, p["rate"])),
    ("NegativeBinomial-probs", lambda p: NegativeBinomial(p["n"], probs=p["p"]),
     {"n": [1.0, 2.5, 10.0], "p": P3}, [[0, 3, 1], [12, 0, 4]],
     lambda k, p: st.nbinom.logpmf(k, p["n"], p["p"])),
    ("NegativeBinomial-logits", lambda p: NegativeBinomial(p["n"], logits=logit(p["p"])),
     {"n": [1.0, 2.5, 10.0], "p": P3}, [[0, 3, 1], [12, 0, 4]],
     lambda k, p: st.nbinom.logpmf(k, p["n"], p["p"])),
    ("Geometric-probs", lambda p: Geometric(probs=p["p"]),
     {"p": P3}, [[0, 3, 1], [12, 0, 4]], lambda k, p: st.geom.logpmf(k + 1, p["p"])),
    ("Geometric-logits", lambda p: Geometric(logits=logit(p["p"])),
     {"p": P3}, [[0, 3, 1], [12, 0, 4]], lambda k, p: st.geom.logpmf(k + 1, p["p"])),
    ("Dirichlet", lambda p: Dirichlet(p["a"]),
     {"a": [0.5, 2.0, 4.0]}, [[0.2, 0.3, 0.5], [0.01, 0.01, 0.98], [0.6, 0.3, 0.1]],
     lambda x, p: _dirichlet_ref(x, p["a"])),
    ("MultivariateNormal-covariance", lambda p: MultivariateNormal(p["loc"], covariance_matrix=p["cov"]),
     {"loc": [0.5, -1.0, 0.0], "cov": COV}, MVN_X, lambda x, p: _mvn_ref(x, p["loc"], p["cov"])),
    ("MultivariateNormal-scale_tril", lambda p: MultivariateNormal(p["loc"], scale_tril=np.linalg.cholesky(p["cov"])),
     {"loc": [0.5, -1.0, 0.0], "cov": COV}, MVN_X, lambda x, p: _mvn_ref(x, p["loc"], p["cov"])),
    ("MultivariateNormal-precision", lambda p: MultivariateNormal(p["loc"], precision_matrix=np.linalg.inv(p["cov"])),
     {"loc": [0.5, -1.0, 0.0], "cov": COV}, MVN_X, lambda x, p: _mvn_ref(x, p["loc"], p["cov"])),
]
SCIPY_IDS = [c[0] for c in SCIPY_CASES]


def _build_case(build, params, values, float_dtype, int_dtype):
    cast = {k: np.asarray(v, np.float64).astype(float_dtype) for k, v in params.items()}
    dist = build(cast)
    return dist, np.asarray(values).astype(int_dtype if dist.is_discrete else float_dtype)


@jax.jit
def _log_densities(dists, values):
    return [d.log_density(v) for d, v in zip(dists, values)]


@pytest.fixture(scope="module")
def scipy_table():
    """name -> (float64 result, float32 result, scipy's); every case in one jit per dtype,
    since compiling dominates the cost of these small evaluations."""
    expected = [
        ref(np.asarray(values), {k: np.asarray(v, np.float64) for k, v in params.items()})
        for _, _, params, values, ref in SCIPY_CASES
    ]
    with float64():
        cases = [_build_case(b, p, v, np.float64, np.int64) for _, b, p, v, _ in SCIPY_CASES]
        got64 = [np.asarray(x) for x in _log_densities(*map(list, zip(*cases)))]
    cases = [_build_case(b, p, v, np.float32, np.int32) for _, b, p, v, _ in SCIPY_CASES]
    got32 = [np.asarray(x) for x in _log_densities(*map(list, zip(*cases)))]
    return {name: (g64, g32, e) for name, g64, g32, e in zip(SCIPY_IDS, got64, got32, expected)}


@pytest.mark.parametrize("name", SCIPY_IDS)
def test_log_density_matches_scipy(scipy_table, name):
    got64, got32, expected = scipy_table[name]
    assert got64.shape == got32.shape == expected.shape
    assert (got64.dtype, got32.dtype) == (np.float64, np.float32)
    np.testing.assert_allclose(got64, expected, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(got32, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# Sample moments

N_DRAWS = 20_000

MOMENT_CASES = [
    ("Normal", Normal(jnp.array([0.0, 3.0]), jnp.array([1.0, 0.5]))),
    ("HalfNormal", HalfNormal(2.0)),
    ("StudentT", StudentT(jnp.array([6.0, 9.0]), 1.0, 2.0)),
    ("LogNormal", LogNormal(0.3, 0.5)),
    ("Exponential", Exponential(jnp.array([0.5, 4.0]))),
    ("Gamma", Gamma(jnp.array([0.5, 3.0]), 2.0)),
    ("InverseGamma", InverseGamma(jnp.array([6.0, 9.0]), 2.0)),
    ("Beta", Beta(jnp.array([0.5, 2.0]), jnp.array([0.5, 5.0]))),
    ("Uniform", Uniform(-1.0, 3.0)),
    ("Bernoulli", Bernoulli(probs=jnp.array([0.1, 0.7]))),
    ("Binomial", Binomial(jnp.array([10.0, 3.0]), logits=jnp.array([0.3, -1.0]))),
    ("Categorical", Categorical(probs=jnp.array([0.2, 0.3, 0.1, 0.4]))),
    ("Poisson", Poisson(jnp.array([0.5, 12.0]))),
    ("NegativeBinomial", NegativeBinomial(jnp.array([2.5, 10.0]), probs=jnp.array([0.3, 0.8]))),
    ("Geometric", Geometric(probs=jnp.array([0.2, 0.9]))),
    ("Dirichlet", Dirichlet(jnp.array([0.5, 2.0, 4.0]))),
    ("MultivariateNormal", MultivariateNormal(jnp.array([1.0, -1.0, 0.0]), covariance_matrix=jnp.asarray(COV, jnp.float32))),
    ("Delta", Delta(jnp.array([1.5, -2.0]))),
]


@pytest.fixture(scope="module")
def draws():
    """name -> N_DRAWS samples; every family in one jit (one compilation instead of 18)."""

    @jax.jit
    def sample_all(dists, key):
        return [(d.sample(jax.random.fold_in(key, i), (N_DRAWS,)), d.mean, d.variance) for i, d in enumerate(dists)]

    out = sample_all([d for _, d in MOMENT_CASES], KEY)
    return {name: x for (name, _), x in zip(MOMENT_CASES, out)}


@pytest.mark.parametrize("name,dist", MOMENT_CASES, ids=[c[0] for c in MOMENT_CASES])
def test_sample_mean_and_variance_within_four_standard_errors(draws, name, dist):
    x, mean, var = draws[name]
    assert x.shape == (N_DRAWS,) + dist.batch_shape + dist.event_shape
    assert x.dtype == (jnp.int32 if dist.is_discrete else jnp.float32)
    assert np.all(dist.support.check_now(x))
    x = np.asarray(x, np.float64)
    mean, var = np.asarray(mean, np.float64), np.asarray(var, np.float64)
    se_mean = np.sqrt(var / N_DRAWS)
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 4 * se_mean + 1e-12)
    # the variance estimate's own standard error, from the draws' fourth moment
    sq = (x - x.mean(0)) ** 2
    se_var = sq.std(0) / np.sqrt(N_DRAWS)
    np.testing.assert_array_less(np.abs(sq.mean(0) - var), 4 * se_var + 1e-12)


def test_moments_of_heavy_tailed_families():
    assert bool(jnp.isnan(Cauchy(0.0, 1.0).mean)) and bool(jnp.isnan(Cauchy(0.0, 1.0).variance))
    assert float(HalfCauchy(1.0).mean) == np.inf
    t = StudentT(jnp.array([0.5, 1.5, 3.0]))
    np.testing.assert_array_equal(np.isnan(t.mean), [True, False, False])
    np.testing.assert_allclose(t.variance, [np.nan, np.inf, 3.0])
    np.testing.assert_allclose(InverseGamma(jnp.array([0.5, 1.5, 3.0]), 2.0).mean, [np.inf, 4.0, 1.0])


def test_reparameterized_samples_carry_gradients():
    def mean_of_draws(loc, scale, rate):
        return jnp.mean(Normal(loc, scale).sample(KEY, (1000,))) + jnp.mean(Gamma(3.0, rate).sample(KEY, (1000,)))

    @jax.jit
    def run():
        return jax.grad(mean_of_draws, argnums=(0, 1, 2))(1.0, 2.0, 2.0), jnp.mean(Normal(0.0, 1.0).sample(KEY, (1000,)))

    (g_loc, g_scale, g_rate), mean_eps = run()
    np.testing.assert_allclose(g_loc, 1.0, rtol=1e-6)
    np.testing.assert_allclose(g_scale, mean_eps, rtol=1e-5, atol=1e-6)  # x = loc + scale * eps
    assert np.isfinite(float(g_rate)) and float(g_rate) < 0  # x = gamma / rate
    assert Normal(0.0, 1.0).reparameterized and not Bernoulli(probs=0.5).reparameterized


# ---------------------------------------------------------------------------
# Enumeration


@jax.jit
def _total_probability(dist, values):
    return jnp.sum(jnp.exp(dist.log_density(values)), axis=0)


@pytest.mark.parametrize(
    "dist,k",
    [
        (Bernoulli(logits=jnp.array([-2.0, 0.0, 3.0])), 2),
        (Binomial(jnp.array([3.0, 5.0, 0.0]), probs=jnp.array([0.2, 0.5, 0.7])), 6),
        (Categorical(probs=jnp.asarray(CAT_P, jnp.float32)), 4),
        (Categorical(logits=jnp.zeros((2, 3, 5))), 5),
    ],
    ids=["Bernoulli", "Binomial", "Categorical-probs", "Categorical-logits"],
)
def test_enumerate_support_sums_to_one(dist, k):
    assert dist.has_enumerate_support
    values = dist.enumerate_support()
    assert values.shape == (k,) + dist.batch_shape and values.dtype == jnp.int32
    expected = np.broadcast_to(np.arange(k).reshape((k,) + (1,) * len(dist.batch_shape)), values.shape)
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_allclose(_total_probability(dist, values), 1.0, atol=1e-6)


def test_enumerate_countable_support_needs_a_bound():
    for dist in (Poisson(2.0), Geometric(probs=0.3), NegativeBinomial(2.0, probs=0.5)):
        assert not dist.has_enumerate_support
        with pytest.raises(ModelError, match="bound"):
            dist.enumerate_support()
    p = Geometric(probs=jnp.array([0.3, 0.6]))
    values = p.enumerate_support(bound=20)
    assert values.shape == (20, 2)
    np.testing.assert_allclose(_total_probability(p, values), 1 - (1 - np.array([0.3, 0.6])) ** 20, rtol=1e-5)
    poisson = Poisson(3.0)
    np.testing.assert_allclose(_total_probability(poisson, poisson.enumerate_support(30)), 1.0, atol=1e-6)
    with pytest.raises(ModelError, match="no finite support"):
        Normal(0.0, 1.0).enumerate_support()


def test_binomial_enumeration_needs_a_concrete_total_count():
    def values(n):
        return Binomial(n, probs=0.5).enumerate_support()

    with pytest.raises(ModelError, match="total_count"):
        jax.jit(values)(3.0)


# ---------------------------------------------------------------------------
# Shapes, expand, pytrees


def test_batch_and_event_shapes():
    cases = [
        (Normal(jnp.zeros(3), 1.0), (3,), ()),
        (Normal(jnp.zeros((2, 1)), jnp.ones(3)), (2, 3), ()),
        (Categorical(probs=jnp.full((2, 4), 0.25)), (2,), ()),
        (Dirichlet(jnp.ones((5, 3))), (5,), (3,)),
        (MultivariateNormal(jnp.zeros((4, 2)), scale_tril=jnp.eye(2)), (4,), (2,)),
        (MultivariateNormal(0.0, covariance_matrix=jnp.broadcast_to(jnp.eye(3), (2, 3, 3))), (2,), (3,)),
        (Binomial(jnp.array([1.0, 2.0]), logits=jnp.zeros((3, 1))), (3, 2), ()),
        (flat(C.simplex, shape=(4, 3)), (4,), (3,)),
        (flat(C.positive, shape=(2,)), (2,), ()),
        (flat(C.interval(0.0, jnp.ones(3))), (3,), ()),
    ]
    for dist, batch, event in cases:
        assert (dist.batch_shape, dist.event_shape) == (batch, event), dist

    def shape_of(fn, *args):
        return jax.eval_shape(fn, *args).shape  # traces without compiling

    d = Normal(jnp.zeros(3), 1.0)
    assert shape_of(lambda: d.sample(KEY, (5, 2))) == (5, 2, 3)
    assert shape_of(lambda: d.sample(KEY, 4)) == (4, 3)
    assert shape_of(d.log_density, jnp.zeros((4, 1))) == (4, 3)
    mvn = MultivariateNormal(jnp.zeros((4, 2)), scale_tril=jnp.eye(2))
    assert shape_of(lambda: mvn.sample(KEY, (7,))) == (7, 4, 2)
    assert shape_of(mvn.log_density, jnp.zeros((6, 1, 2))) == (6, 4)
    with pytest.raises(ShapeError):
        d.log_density(jnp.zeros(4))
    with pytest.raises(ShapeError):
        mvn.log_density(jnp.zeros(3))


def test_expand_broadcasts_parameters():
    d = Normal(jnp.array([0.0, 1.0, 2.0]), 1.0).expand((2, 3))
    assert d.batch_shape == (2, 3) and d.loc.shape == (2, 3) and d.scale.shape == (2, 3)
    assert jax.eval_shape(lambda: d.sample(KEY, (4,))).shape == (4, 2, 3)
    np.testing.assert_allclose(log_density(d, jnp.zeros((2, 3)))[1], st.norm.logpdf(0.0, [0.0, 1.0, 2.0]), rtol=1e-6)
    c = Categorical(probs=jnp.array([0.2, 0.8])).expand((5,))
    assert c.batch_shape == (5,) and c.probs.shape == (5, 2) and c.event_shape == ()
    mvn = MultivariateNormal(jnp.zeros(2), scale_tril=jnp.eye(2)).expand((3,))
    assert (mvn.batch_shape, mvn.event_shape, mvn.scale_tril.shape) == ((3,), (2,), (3, 2, 2))
    f = flat(C.ordered, shape=(2,)).expand((4,))
    assert (f.batch_shape, f.event_shape) == ((4,), (2,))
    with pytest.raises(ShapeError):
        Normal(jnp.zeros(3), 1.0).expand((2,))
    with pytest.raises(ShapeError, match="broadcast"):
        Normal(jnp.zeros(3), jnp.ones(2))


def test_distributions_are_pytrees_for_jit_and_vmap():
    d = Normal(jnp.array([0.0, 1.0]), jnp.array([1.0, 2.0]))
    leaves, tree = jax.tree.flatten(d)
    assert len(leaves) == 2
    assert repr(jax.tree.unflatten(tree, leaves)) == repr(d)
    out = jax.vmap(lambda dist: dist.log_density(0.0))(d)
    np.testing.assert_allclose(out, st.norm.logpdf(0.0, [0.0, 1.0], [1.0, 2.0]), rtol=1e-6)
    b = Bernoulli(logits=jnp.zeros(3))
    assert len(jax.tree.leaves(b)) == 1
    assert jax.tree.structure(b) != jax.tree.structure(Bernoulli(probs=jnp.full(3, 0.5)))
    f = flat(C.interval(0.0, jnp.ones(2)))
    assert len(jax.tree.leaves(f)) == 2
    np.testing.assert_array_equal(log_density(f, jnp.array([0.5, 2.0])), [0.0, -np.inf])


def test_vmap_and_grad_through_parameters():
    cov = jnp.asarray(COV, jnp.float32)
    x3 = jnp.array([1.0, 0.0, -1.0])
    locs = jnp.array([0.0, 1.0, -2.0])

    def lp(loc, scale, x):
        return Normal(loc, scale).log_density(x)

    def lp_all(a, b, n_logit):
        return (
            Gamma(a, b).log_density(1.5)
            + Beta(a, b).log_density(0.3)
            + Binomial(10.0, logits=n_logit).log_density(3)
            + Dirichlet(jnp.stack([a, b, a + b])).log_density(jnp.array([0.2, 0.3, 0.5]))
            + StudentT(a, 0.0, b).log_density(0.7)
        )

    @jax.jit
    def run():
        return (
            jax.vmap(lp, (0, None, None))(locs, 2.0, 0.5),
            jax.grad(lp, argnums=(0, 1, 2))(1.0, 2.0, 0.0),
            jax.grad(lp_all, argnums=(0, 1, 2))(2.0, 3.0, 0.1),
            jax.grad(lambda l: Binomial(10.0, logits=l).log_density(3))(0.1),
            jax.grad(lambda v: MultivariateNormal(jnp.zeros(3), covariance_matrix=cov).log_density(v))(x3),
        )

    batched, normal_grads, grads, binomial_grad, mvn_grad = run()
    np.testing.assert_allclose(batched, st.norm.logpdf(0.5, locs, 2.0), rtol=1e-6)
    # d/dloc = (x - loc)/s^2, d/dscale = -1/s + (x - loc)^2/s^3, d/dx = -(x - loc)/s^2
    np.testing.assert_allclose(normal_grads, [-0.25, -0.5 + 0.125, 0.25], rtol=1e-6)
    assert all(np.isfinite(float(g)) for g in grads)
    # d/dlogit of Binomial(10, sigmoid(l)).log_density(3) = 3 - 10 sigmoid(l)
    np.testing.assert_allclose(binomial_grad, 3 - 10 * jax.nn.sigmoid(0.1), rtol=1e-5)
    # MultivariateNormal: d/dx log p = -inv(S) (x - m)
    np.testing.assert_allclose(mvn_grad, -np.linalg.solve(COV, np.asarray(x3)), rtol=1e-4)


def test_gradients_stay_finite_outside_the_support():
    @jax.jit
    def run():
        return (
            jax.grad(lambda r, x: Exponential(r).log_density(x), argnums=(0, 1))(2.0, -1.0),
            jax.grad(lambda a: Beta(a, 2.0).log_density(1.5))(0.5),
            jax.grad(lambda h: Uniform(0.0, h).log_density(2.0))(1.0),
        )

    (g_rate, g_x), g_beta, g_uniform = run()
    assert [float(g) for g in (g_rate, g_x, g_beta, g_uniform)] == [0.0, 0.0, 0.0, 0.0]


def test_traced_parameters_are_not_validated():
    out = jax.jit(lambda s: Normal(0.0, s).log_density(1.0))(-1.0)
    assert np.isnan(float(out))  # the engine turns this NaN into a DensityError
    assert is_concrete(1.0) and is_concrete(jnp.ones(2))
    seen = []
    jax.jit(lambda s: seen.append(is_concrete(s)) or s)(1.0)
    assert seen == [False]


# ---------------------------------------------------------------------------
# Validation and supports

INVALID = [
    ("Normal", "scale", lambda: Normal(0.0, -1.0), "a positive real number", "-1.0"),
    ("Normal", "loc", lambda: Normal(np.nan, 1.0), "a real number", "nan"),
    ("HalfNormal", "scale", lambda: HalfNormal(0.0), "a positive real number", "0.0"),
    ("Cauchy", "scale", lambda: Cauchy(0.0, -2.0), "a positive real number", "-2.0"),
    ("HalfCauchy", "scale", lambda: HalfCauchy(-1.0), "a positive real number", "-1.0"),
    ("StudentT", "df", lambda: StudentT(0.0), "a positive real number", "0.0"),
    ("LogNormal", "scale", lambda: LogNormal(0.0, jnp.array([1.0, -3.0])), "positive", "-3.0 at index (1,)"),
    ("Exponential", "rate", lambda: Exponential(-0.5), "a positive real number", "-0.5"),
    ("Gamma", "concentration", lambda: Gamma(-1.0, 1.0), "a positive real number", "-1.0"),
    ("InverseGamma", "rate", lambda: InverseGamma(1.0, 0.0), "a positive real number", "0.0"),
    ("Beta", "concentration0", lambda: Beta(1.0, -1.0), "a positive real number", "-1.0"),
    ("Uniform", "high", lambda: Uniform(2.0, 1.0), "greater than low", "low=2.0"),
    ("Bernoulli", "probs", lambda: Bernoulli(probs=1.5), "a probability", "1.5"),
    ("Bernoulli", "logits", lambda: Bernoulli(logits=np.nan), "a real number or -inf", "nan"),
    ("Binomial", "total_count", lambda: Binomial(2.5, probs=0.5), "a nonnegative integer", "2.5"),
    ("Binomial", "probs", lambda: Binomial(3, probs=-0.1), "a probability", "-0.1"),
    ("Categorical", "probs", lambda: Categorical(probs=jnp.array([0.5, 0.6])), "sums to 1", "[0.5, 0.6]"),
    ("Poisson", "rate", lambda: Poisson(-1.0), "a nonnegative real number", "-1.0"),
    ("NegativeBinomial", "total_count", lambda: NegativeBinomial(0.0, probs=0.5), "a positive real number", "0.0"),
    ("Geometric", "probs", lambda: Geometric(probs=2.0), "a probability", "2.0"),
    ("Dirichlet", "concentration", lambda: Dirichlet(jnp.array([1.0, 0.0])), "a positive real number", "0.0 at index (1,)"),
    ("MultivariateNormal", "covariance_matrix",
     lambda: MultivariateNormal(jnp.zeros(2), covariance_matrix=jnp.array([[1.0, 2.0], [2.0, 1.0]])),
     "a symmetric positive-definite matrix", "[[1., 2.],"),
    ("MultivariateNormal", "scale_tril",
     lambda: MultivariateNormal(jnp.zeros(2), scale_tril=jnp.array([[1.0, 0.0], [0.5, -1.0]])),
     "lower-triangular matrix with a positive diagonal", "-1."),
    ("Delta", "log_weight", lambda: Delta(0.0, log_density=np.inf), "a real number or -inf", "inf"),
]


@pytest.mark.parametrize("family,param,make,expected,found", INVALID, ids=[f"{c[0]}-{c[1]}" for c in INVALID])
def test_invalid_parameters_raise_parameter_error(family, param, make, expected, found):
    with pytest.raises(ParameterError) as info:
        make()
    message = info.value.message
    assert message.startswith(f"{family}'s {param} must be") or message.startswith(f"{family}'s high must be")
    assert expected in message and found in message


def test_probs_and_logits_exactly_one():
    for family in (Bernoulli, Categorical, Geometric):
        with pytest.raises(ParameterError, match=f"{family.__name__} takes exactly one of probs= or logits=, but got both"):
            family(probs=0.5, logits=0.0)
        with pytest.raises(ParameterError, match="but got neither"):
            family()
    with pytest.raises(ParameterError, match="exactly one of covariance_matrix"):
        MultivariateNormal(jnp.zeros(2))
    with pytest.raises(ShapeError, match="square"):
        MultivariateNormal(jnp.zeros(2), covariance_matrix=jnp.ones((2, 3)))
    with pytest.raises(ShapeError, match="loc"):
        MultivariateNormal(jnp.zeros(3), covariance_matrix=jnp.eye(2))


def test_validate_false_skips_checks_and_validate_params_rechecks():
    d = Normal(0.0, -1.0, validate=False)
    with pytest.raises(ParameterError, match="Normal's scale"):
        d.validate_params()
    Normal(0.0, 1.0).validate_params()


OUTSIDE = [
    (Normal(0.0, 1.0), [np.nan, np.inf]),
    (HalfNormal(1.0), [-0.1]),
    (LogNormal(0.0, 1.0), [0.0, -1.0]),
    (Exponential(1.0), [-1e-3]),
    (Gamma(2.0, 1.0), [-1.0]),
    (InverseGamma(2.0, 1.0), [0.0, -1.0]),
    (Beta(2.0, 2.0), [1.5, -0.5]),
    (Uniform(0.0, 1.0), [1.01, -1.0]),
    (Bernoulli(probs=0.5), [2, -1]),
    (Binomial(10, probs=0.5), [11, -1]),
    (Categorical(probs=jnp.array([0.5, 0.5])), [2, -1]),
    (Poisson(2.0), [-1]),
    (NegativeBinomial(2.0, logits=0.0), [-1]),
    (Geometric(probs=0.5), [-2]),
    (Delta(1.0), [1.5]),
    (flat(C.positive), [-1.0, 0.0]),
]


@pytest.fixture(scope="module")
def outside_results():
    @jax.jit
    def run(dists, values):
        return [(d.log_density(v), d.in_support(v)) for d, v in zip(dists, values)]

    return run([d for d, _ in OUTSIDE], [jnp.asarray(v) for _, v in OUTSIDE])


@pytest.mark.parametrize("index", range(len(OUTSIDE)), ids=[type(d).__name__ for d, _ in OUTSIDE])
def test_values_outside_the_support_have_minus_infinite_density(outside_results, index):
    lp, inside = outside_results[index]
    np.testing.assert_array_equal(lp, -np.inf)
    if not isinstance(OUTSIDE[index][0], Delta):  # a Delta's support is the real line; its density is -inf off the point
        assert not np.asarray(inside).any()


def test_non_integer_and_vector_values_outside_the_support():
    np.testing.assert_array_equal(Poisson(2.0).log_density(jnp.array([1.5, 2.0])) == -np.inf, [True, False])
    np.testing.assert_array_equal(Bernoulli(probs=0.3).log_density(jnp.array([0.5, 1.0])) == -np.inf, [True, False])
    d = Dirichlet(jnp.ones(3))
    np.testing.assert_allclose(log_density(d, jnp.array([[0.2, 0.3, 0.5], [0.5, 0.6, -0.1]])), [np.log(2.0), -np.inf], rtol=1e-5)
    mvn = MultivariateNormal(jnp.zeros(2), scale_tril=jnp.eye(2))
    np.testing.assert_array_equal(log_density(mvn, jnp.array([[0.0, np.inf], [0.0, np.nan]])), -np.inf)


def test_supports_depend_on_parameters():
    assert repr(Uniform(0.0, 2.0).support) == "interval(0.0, 2.0)"
    assert repr(Binomial(5, probs=0.5).support) == "integer_interval(0, 5.0)"
    assert repr(Categorical(probs=jnp.ones(3) / 3).support) == "integer_interval(0, 2)"
    assert Normal(0.0, 1.0).support is C.real and Dirichlet(jnp.ones(2)).support is C.simplex
    assert Bernoulli(probs=0.2).is_discrete and not Normal(0.0, 1.0).is_discrete


# ---------------------------------------------------------------------------
# Delta, Flat, repr


def test_delta_is_a_point_mass():
    d = Delta(jnp.array([1.0, 2.0]), log_density=-0.5)
    np.testing.assert_array_equal(log_density(d, jnp.array([1.0, 3.0])), [-0.5, -np.inf])
    np.testing.assert_array_equal(d.sample(KEY, (2,)), [[1.0, 2.0], [1.0, 2.0]])
    count = Delta(jnp.int32(3))
    assert count.is_discrete and count.sample(KEY).dtype == jnp.int32
    assert float(count.log_density(3)) == 0.0


def test_flat_priors():
    for support, shape, inside, outside in [
        (C.positive, (), 2.0, -1.0),
        (C.interval(0.0, 1.0), (), 0.5, 1.5),
        (C.simplex, (3,), [0.2, 0.3, 0.5], [0.5, 0.6, 0.1]),
        (C.ordered, (2,), [0.0, 1.0], [1.0, 0.0]),
        (C.real, (2,), [0.0, 1e3], [np.nan, 0.0]),
    ]:
        f = flat(support, shape=shape)
        assert f.support is support and isinstance(f, Flat) and isinstance(f, Distribution)
        assert float(jnp.sum(log_density(f, jnp.asarray(inside)))) == 0.0
        assert float(jnp.min(log_density(f, jnp.asarray(outside)))) == -np.inf
        with pytest.raises(ImproperSampleError, match="improper flat prior cannot be sampled from.*NUTS"):
            f.sample(KEY)
    with pytest.raises(ShapeError, match="shape="):
        flat(C.simplex)
    with pytest.raises(ParameterError, match="constraint"):
        flat("positive")
    assert Flat(C.nonnegative_integer).is_discrete


def test_flat_with_bounds_that_depend_on_another_variable():
    def lp(alpha1, x):
        return flat(C.interval(0.0, 1.0 - alpha1)).log_density(x)

    out = jax.jit(lp)(jnp.array([0.2, 0.7]), jnp.array([0.5, 0.5]))
    np.testing.assert_array_equal(out, [0.0, -np.inf])


def test_reprs():
    assert repr(Normal(0.0, 1.0)) == "Normal(loc=0.0, scale=1.0)"
    assert repr(Bernoulli(probs=0.3)) == "Bernoulli(probs=0.3)"
    assert repr(Binomial(10, logits=0.0)) == "Binomial(total_count=10.0, logits=0.0)"
    assert repr(flat(C.simplex, shape=(3,))) == "flat(simplex, shape=(3,))"
    assert repr(flat(C.interval(0, 1))) == "flat(interval(0, 1))"
    assert repr(Delta(1.0)) == "Delta(value=1.0, log_density=0.0)"
    assert repr(Normal(jnp.zeros(2), 1.0)) == "Normal(loc=[0., 0.], scale=[1., 1.])"
    for cls in (Normal, Gamma, InverseGamma, Binomial, Categorical, NegativeBinomial, Geometric, MultivariateNormal, Flat):
        assert "log p" in cls.__doc__, cls

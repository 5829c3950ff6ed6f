"""Distribution functions (stdlib/distributions/cdf.py): cdf, log_cdf, log_ccdf and icdf of every
univariate family against scipy.stats, including the far tails where cdf rounds to 0 or 1.

In float64 the two sides agree to ~1e-12 except where an incomplete gamma/beta series is
involved (~1e-10), so 1e-6 relative (absolute for cdf values) is the tolerance; in float32
(the default dtype) 2e-4 relative on the log forms, whose whole point is the tails.
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
from ppl.stdlib.errors import ModelError


def float64():
    enable = getattr(jax, "enable_x64", None)
    if enable is not None:
        return enable(True)
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()  # pragma: no cover


CONTINUOUS = [
    ("Normal", lambda: D.Normal(1.0, 2.0), st.norm(1.0, 2.0)),
    ("HalfNormal", lambda: D.HalfNormal(1.5), st.halfnorm(scale=1.5)),
    ("Cauchy", lambda: D.Cauchy(-1.0, 0.5), st.cauchy(-1.0, 0.5)),
    ("HalfCauchy", lambda: D.HalfCauchy(2.0), st.halfcauchy(scale=2.0)),
    ("StudentT", lambda: D.StudentT(3.5, 1.0, 2.0), st.t(3.5, 1.0, 2.0)),
    ("LogNormal", lambda: D.LogNormal(0.5, 0.8), st.lognorm(0.8, scale=math.exp(0.5))),
    ("Exponential", lambda: D.Exponential(2.5), st.expon(scale=1 / 2.5)),
    ("Gamma", lambda: D.Gamma(2.5, 1.5), st.gamma(2.5, scale=1 / 1.5)),
    ("InverseGamma", lambda: D.InverseGamma(3.0, 2.0), st.invgamma(3.0, scale=2.0)),
    ("Beta", lambda: D.Beta(2.0, 5.0), st.beta(2.0, 5.0)),
    ("Uniform", lambda: D.Uniform(-1.0, 3.0), st.uniform(-1.0, 4.0)),
]

DISCRETE = [
    ("Bernoulli", lambda: D.Bernoulli(probs=0.3), st.bernoulli(0.3), np.arange(-1, 3)),
    ("Bernoulli-logits", lambda: D.Bernoulli(logits=-1.2), st.bernoulli(1 / (1 + math.exp(1.2))), np.arange(-1, 3)),
    ("Binomial", lambda: D.Binomial(20, probs=0.35), st.binom(20, 0.35), np.arange(-1, 22)),
    ("Poisson", lambda: D.Poisson(3.5), st.poisson(3.5), np.arange(-1, 40)),
    ("NegativeBinomial", lambda: D.NegativeBinomial(4.5, probs=0.4), st.nbinom(4.5, 0.4), np.arange(-1, 60)),
    ("Geometric", lambda: D.Geometric(probs=0.2), st.geom(0.2, loc=-1), np.arange(-1, 80)),
]

# quantile levels: the far tails (where cdf itself rounds to 0 or 1 in float32), and the middle
LEVELS = np.array([1e-30, 1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999])


def _points(ref):
    lo = ref.ppf(LEVELS)
    hi = ref.isf(LEVELS)
    x = np.concatenate([lo, hi])
    return x[np.isfinite(x)]


@pytest.mark.parametrize("name,make,ref", CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_against_scipy_float64(name, make, ref):
    with float64():
        d = make()
        x = _points(ref)
        np.testing.assert_allclose(np.asarray(d.cdf(x)), ref.cdf(x), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(np.asarray(d.log_cdf(x)), ref.logcdf(x), rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(np.asarray(d.log_ccdf(x)), ref.logsf(x), rtol=1e-6, atol=1e-10)
        p = np.array([1e-9, 1e-4, 0.05, 0.5, 0.95, 1 - 1e-4])
        np.testing.assert_allclose(np.asarray(d.icdf(p)), ref.ppf(p), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name,make,ref", CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_against_scipy_float32(name, make, ref):
    d = make()
    x = _points(ref).astype(np.float32).astype(np.float64)  # the reference at the values float32 holds
    np.testing.assert_allclose(np.asarray(d.cdf(x)), ref.cdf(x), rtol=1e-4, atol=1e-6)
    # the log forms keep their digits in the tails, far below float32's 1 - cdf resolution
    mask = np.abs(ref.logcdf(x)) < 60
    np.testing.assert_allclose(np.asarray(d.log_cdf(x))[mask], ref.logcdf(x)[mask], rtol=2e-4, atol=1e-6)
    mask = np.abs(ref.logsf(x)) < 60
    np.testing.assert_allclose(np.asarray(d.log_ccdf(x))[mask], ref.logsf(x)[mask], rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("name,make,ref,ks", DISCRETE, ids=[c[0] for c in DISCRETE])
def test_discrete_against_scipy_float64(name, make, ref, ks):
    with float64():
        d = make()
        k = ks.astype(float)
        np.testing.assert_allclose(np.asarray(d.cdf(k)), ref.cdf(k), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(np.asarray(d.cdf(k + 0.5)), ref.cdf(k), rtol=1e-6, atol=1e-12)
        lc, ls = ref.logcdf(k), ref.logsf(k)
        np.testing.assert_allclose(np.asarray(d.log_cdf(k)), lc, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(np.asarray(d.log_ccdf(k)), ls, rtol=1e-6, atol=1e-10)
        p = np.array([1e-6, 0.05, 0.3, 0.5, 0.7, 0.95, 1 - 1e-6])
        np.testing.assert_array_equal(np.asarray(d.icdf(p)), ref.ppf(p).astype(int))


def test_normal_log_cdf_far_tail_float32():
    # 40 standard deviations out: cdf is 0 in float32 but log_cdf is about -804.6
    d = D.Normal(0.0, 1.0)
    assert float(d.cdf(-40.0)) == 0.0
    assert float(d.log_cdf(-40.0)) == pytest.approx(st.norm.logcdf(-40.0), rel=1e-5)
    assert float(d.log_ccdf(40.0)) == pytest.approx(st.norm.logsf(40.0), rel=1e-5)


def test_batched_parameters_broadcast_with_values():
    d = D.Normal(jnp.array([0.0, 1.0, 2.0]), 1.0)
    out = d.cdf(jnp.array([[0.0], [1.0]]))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(out), st.norm.cdf([[0.0], [1.0]], loc=[0.0, 1.0, 2.0]), rtol=1e-5)


def test_icdf_inverts_cdf_and_is_differentiable():
    # the bisection quantile (Gamma has no closed form) differentiates by the implicit function theorem
    with float64():
        def q(a):
            return D.Gamma(a, 2.0).icdf(0.3)

        a = 2.5
        h = 1e-5
        numeric = (st.gamma(a + h, scale=0.5).ppf(0.3) - st.gamma(a - h, scale=0.5).ppf(0.3)) / (2 * h)
        assert float(jax.grad(q)(a)) == pytest.approx(numeric, rel=1e-5)
        assert float(q(a)) == pytest.approx(st.gamma(a, scale=0.5).ppf(0.3), rel=1e-8)


def test_gradient_of_log_cdf_matches_density():
    # d/dx log F(x) = p(x) / F(x)
    d = D.StudentT(4.0, 0.5, 1.5)
    x = 0.3
    g = float(jax.grad(lambda x: d.log_cdf(x))(x))
    ref = st.t(4.0, 0.5, 1.5)
    assert g == pytest.approx(ref.pdf(x) / ref.cdf(x), rel=1e-4)


def test_no_cdf_is_a_clear_error():
    d = D.Dirichlet(jnp.ones(3))
    assert not d.has_cdf
    with pytest.raises(ModelError, match="Dirichlet has no cdf"):
        d.cdf(jnp.ones(3) / 3)
    assert D.Normal(0.0, 1.0).has_cdf


# ------------------------------------------------------------------ the .ppl names

# valid parameters for each .ppl family with distribution functions, and a point to evaluate at
PPL_PARAMS = {
    "normal": ([1.0, 2.0], 0.3), "half_normal": ([1.5], 0.7), "cauchy": ([-1.0, 0.5], 0.2),
    "half_cauchy": ([2.0], 1.1), "student_t": ([3.5, 1.0, 2.0], -0.4), "lognormal": ([0.5, 0.8], 1.3),
    "exponential": ([2.5], 0.4), "gamma": ([2.5, 1.5], 1.2), "inverse_gamma": ([3.0, 2.0], 0.9),
    "beta": ([2.0, 5.0], 0.3), "uniform": ([-1.0, 3.0], 0.5), "bernoulli": ([0.3], 0.0),
    "bernoulli_logit": ([-1.2], 0.0), "binomial": ([20, 0.35], 6.0), "binomial_logit": ([20, 0.4], 9.0),
    "poisson": ([3.5], 2.0), "negative_binomial": ([4.5, 0.4], 5.0), "geometric": ([0.2], 3.0),
}


def test_every_family_with_a_cdf_has_its_ppl_names():
    from ppl.stdlib.distributions.cdf import FAMILIES
    from ppl.syntax.builtins import DISTRIBUTIONS, FUNCTIONS
    from ppl.syntax.builtins.dist_functions import DIST_FUNCTIONS, HAS_CDF

    assert HAS_CDF == set(FAMILIES)
    with_cdf = {n for n, s in DISTRIBUTIONS.items() if s.cls in HAS_CDF}
    assert with_cdf == set(PPL_PARAMS)
    for name in with_cdf:
        for suffix in ("cdf", "lcdf", "lccdf"):
            assert f"{name}_{suffix}" in FUNCTIONS and f"{name}_{suffix}" in DIST_FUNCTIONS


def test_ppl_distribution_functions_match_the_python_methods():
    from ppl.syntax.builtins import DISTRIBUTIONS

    lines = []
    for name, (params, x) in PPL_PARAMS.items():
        args = ", ".join(repr(float(p)) if not isinstance(p, int) else str(p) for p in params)
        sep = " | " if len(lines) % 2 == 0 else ", "  # Stan's bar, and the comma, both accepted
        lines.append(f"model m_{name}() {{\n  return [{name}_cdf({x}{sep}{args}), {name}_lcdf({x}{sep}{args}), "
                     f"{name}_lccdf({x}{sep}{args})]\n}}\n")
    mod = ppl.loads("\n".join(lines))
    for name, (params, x) in PPL_PARAMS.items():
        got = np.asarray(getattr(mod, f"m_{name}").simulate(jax.random.key(0)).retval)
        spec = DISTRIBUTIONS[name]
        d = getattr(D, spec.cls)(**dict(zip(spec.params, [jnp.asarray(p, jnp.float32) for p in params])))
        want = np.array([float(d.cdf(x)), float(d.log_cdf(x)), float(d.log_ccdf(x))])
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7, err_msg=name)  # compiled vs eager float32


def test_ppl_distribution_function_bad_parameter_names_the_line():
    mod = ppl.loads("model m(s: real) {\n  x ~ normal(0, 1)\n  factor(normal_lcdf(x | 0, s))\n}\n")
    # compiled, the scale is traced: the value is NaN, which inference reports at the factor's line
    with pytest.raises(ppl.PPLError, match="NaN") as e:
        ppl.infer(mod.m, -1.0, method=ppl.Importance(num_particles=10))
    assert "line 3" in str(e.value)
    # eagerly, the bad parameter itself is named
    with pytest.raises(ppl.ParameterError, match="scale must be a positive"):
        D.Normal(0.0, -1.0).cdf(0.3)
    assert np.isnan(float(jax.jit(lambda s: D.Normal(0.0, s, validate=False).log_cdf(0.3))(-1.0)))


# ------------------------------------------------------------------ properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(
    index=hs.integers(0, len(CONTINUOUS) - 1),
    z=hs.floats(-30.0, 30.0, allow_nan=False),
)
def test_cdf_and_ccdf_are_complementary_and_monotone(index, z):
    """P(X <= x) + P(X > x) = 1 in the log forms, and the cdf does not decrease."""
    name, make, ref = CONTINUOUS[index]
    with float64():
        d = make()
        lo, hi = ref.support()
        x = float(np.clip(float(ref.median()) + z * float(ref.std() if np.isfinite(ref.std()) else 1.0),
                          lo if np.isfinite(lo) else -np.inf, hi if np.isfinite(hi) else np.inf))
        lc, ls = float(d.log_cdf(x)), float(d.log_ccdf(x))
        assert lc <= 0.0 and ls <= 0.0
        assert float(np.logaddexp(lc, ls)) == pytest.approx(0.0, abs=1e-9)
        c1, c2 = float(d.cdf(x)), float(d.cdf(x + 0.01 * (1 + abs(x))))
        assert c1 <= c2 + 1e-15


def test_gradients_in_shape_parameters_of_incomplete_beta_families():
    """JAX's betainc has no derivative in a and b; the families built on it (StudentT's df,
    Beta's concentrations, NegativeBinomial's total_count) still differentiate."""
    with float64():
        h = 1e-6
        g = float(jax.grad(lambda df: D.StudentT(df, 0.0, 1.0).log_cdf(-1.3))(3.0))
        fd = (st.t(3.0 + h).logcdf(-1.3) - st.t(3.0 - h).logcdf(-1.3)) / (2 * h)
        assert g == pytest.approx(fd, rel=1e-5)
        g = jax.grad(lambda a, b: D.Beta(a, b).log_ccdf(0.4), argnums=(0, 1))(2.0, 3.0)
        fa = (st.beta(2.0 + h, 3.0).logsf(0.4) - st.beta(2.0 - h, 3.0).logsf(0.4)) / (2 * h)
        fb = (st.beta(2.0, 3.0 + h).logsf(0.4) - st.beta(2.0, 3.0 - h).logsf(0.4)) / (2 * h)
        assert float(g[0]) == pytest.approx(fa, rel=1e-5) and float(g[1]) == pytest.approx(fb, rel=1e-5)
    # in a model: a latent degrees-of-freedom under a truncated Student's t (the truncation's mass
    # depends on nu), compiled and differentiated as NUTS does
    mod = ppl.loads("model m(y: real[]) {\n  nu ~ gamma(2, 0.1)\n  y ~ student_t(nu, 0, 1) T[-1, ]\n}\n")
    f = mod.m.log_density_function(np.array([0.3, 2.5, -0.4]), unconstrained=True)
    val, grad = jax.value_and_grad(lambda u: f({"nu": u}))(jnp.asarray(1.0))
    assert np.isfinite(float(val)) and np.isfinite(float(grad))

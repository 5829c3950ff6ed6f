"""Truncated distributions: ``dist.Truncated(base, low, high)`` and Stan's ``T[low, high]`` in .ppl.

Densities against scipy (truncnorm, and base logpdf minus the log mass from scipy's cdf);
draws' moments within Monte Carlo error (z < 4, fixed seeds); NUTS on a truncated-normal
posterior against its analytic mean; exact enumeration of a truncated Poisson.
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
from ppl.stdlib.errors import ModelError, ParameterError, PPLError

from chain_checks import Z_MAX, z_score

INF = math.inf


def float64():
    enable = getattr(jax, "enable_x64", None)
    if enable is not None:
        return enable(True)
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()  # pragma: no cover


@pytest.mark.parametrize("low,high", [(0.0, None), (None, 2.0), (-1.0, 3.5), (4.0, 6.0), (10.0, 12.0), (-12.0, -10.0)])
def test_normal_log_density_matches_truncnorm(low, high):
    loc, scale = 1.0, 1.0
    a = -INF if low is None else (low - loc) / scale
    b = INF if high is None else (high - loc) / scale
    ref = st.truncnorm(a, b, loc, scale)
    with float64():
        d = D.Truncated(D.Normal(loc, scale), low, high)
        x = ref.ppf([0.01, 0.3, 0.5, 0.9, 0.999])
        np.testing.assert_allclose(np.asarray(d.log_density(x)), ref.logpdf(x), rtol=1e-8)
    # outside the bounds: -inf
    out = (low - 0.5) if low is not None else (high + 0.5)
    assert float(D.Truncated(D.Normal(loc, scale), low, high).log_density(out)) == -INF


def test_normal_ten_sigmas_out_is_normalised_in_float32():
    # the mass of N(0, 1) above 10 is 7.6e-24: cdf rounds to 1, the log forms keep it
    d = D.Truncated(D.Normal(0.0, 1.0), low=10.0)
    ref = st.truncnorm(10.0, INF)
    x = np.array([10.01, 10.1, 10.5])
    np.testing.assert_allclose(np.asarray(d.log_density(x)), ref.logpdf(x), rtol=1e-5)


CONTINUOUS = [
    ("StudentT", lambda: D.StudentT(3.0, 0.5, 2.0), st.t(3.0, 0.5, 2.0), 0.0, 5.0),
    ("Gamma", lambda: D.Gamma(2.0, 1.5), st.gamma(2.0, scale=1 / 1.5), None, 1.0),
    ("Beta", lambda: D.Beta(2.0, 3.0), st.beta(2.0, 3.0), 0.2, 0.6),
    ("LogNormal", lambda: D.LogNormal(0.0, 0.5), st.lognorm(0.5), 1.5, None),
    ("Cauchy", lambda: D.Cauchy(0.0, 1.0), st.cauchy(), -2.0, 1.0),
    ("Exponential", lambda: D.Exponential(2.0), st.expon(scale=0.5), 0.5, 2.0),
]


@pytest.mark.parametrize("name,make,ref,low,high", CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_log_density_and_draws(name, make, ref, low, high):
    lo = -INF if low is None else low
    hi = INF if high is None else high
    mass = ref.cdf(hi) - ref.cdf(lo)
    with float64():
        d = D.Truncated(make(), low, high)
        x = np.linspace(max(lo, ref.ppf(0.01)), min(hi, ref.ppf(0.99)), 7)[1:-1]
        np.testing.assert_allclose(np.asarray(d.log_density(x)), ref.logpdf(x) - np.log(mass), rtol=1e-7)
    draws = np.asarray(jax.jit(lambda k: D.Truncated(make(), low, high).sample(k, (10000,)))(jax.random.key(7)))
    assert draws.min() >= lo and draws.max() <= hi
    exact_mean = ref.expect(lambda t: t, lb=lo, ub=hi, conditional=True)
    assert abs(z_score(draws[None], exact_mean)) < Z_MAX
    # the truncated median: half the draws below it
    median = ref.ppf(0.5 * (ref.cdf(lo) + ref.cdf(hi)))
    frac = np.mean(draws <= median)
    assert abs(frac - 0.5) / math.sqrt(0.25 / draws.size) < Z_MAX


def test_normal_moments_and_draws():
    d = D.Truncated(D.Normal(1.0, 2.0), low=0.0, high=3.0)
    ref = st.truncnorm(-0.5, 1.0, 1.0, 2.0)
    assert float(d.mean) == pytest.approx(ref.mean(), rel=1e-5)
    assert float(d.variance) == pytest.approx(ref.var(), rel=1e-5)
    draws = np.asarray(d.sample(jax.random.key(0), (40000,)))
    assert abs(z_score(draws[None], ref.mean())) < Z_MAX
    # the variance: the sample variance's standard error is about sqrt((m4 - var^2) / n)
    m4 = ref.expect(lambda t: (t - ref.mean()) ** 4)
    assert abs(draws.var() - ref.var()) / math.sqrt((m4 - ref.var() ** 2) / draws.size) < Z_MAX


def test_support_and_bijector():
    assert repr(D.Truncated(D.Normal(0.0, 1.0), low=0.0).support) == "greater_than(0.0)"
    assert repr(D.Truncated(D.Normal(0.0, 1.0), high=1.0).support) == "less_than(1.0)"
    assert repr(D.Truncated(D.Gamma(2.0, 1.0), high=4.0).support) == "interval(0.0, 4.0)"
    assert repr(D.Truncated(D.Beta(2.0, 2.0), low=0.5).support) == "interval(0.5, 1.0)"
    # an infinite bound is no bound
    d = D.Truncated(D.Normal(0.0, 1.0), low=-INF, high=INF)
    assert float(d.log_density(0.3)) == pytest.approx(float(D.Normal(0.0, 1.0).log_density(0.3)))


def test_discrete_truncation_pmf_draws_and_enumeration():
    d = D.Truncated(D.Poisson(3.0), low=2, high=6)
    assert d.is_discrete
    ks = np.arange(0, 9)
    ref = np.where((ks >= 2) & (ks <= 6), st.poisson(3.0).pmf(ks), 0.0)
    ref = ref / ref.sum()
    np.testing.assert_allclose(np.exp(np.asarray(d.log_density(ks))), ref, rtol=1e-5, atol=1e-12)
    draws = np.asarray(d.sample(jax.random.key(1), (20000,)))
    assert draws.dtype == np.int32
    freq = np.bincount(draws, minlength=9)[:9] / draws.size
    for k in range(9):
        se = math.sqrt(max(ref[k] * (1 - ref[k]), 1e-12) / draws.size)
        assert abs(freq[k] - ref[k]) / se < Z_MAX if ref[k] > 0 else freq[k] == 0

    @ppl.model
    def m():
        return ppl.sample("k", D.Truncated(D.Poisson(3.0), high=4))

    post = ppl.infer(m, method=ppl.Enumerate())
    probs = post.probs("k")
    ref = st.poisson(3.0).pmf(np.arange(5)) / st.poisson(3.0).cdf(4)
    for k in range(5):
        assert probs[k] == pytest.approx(ref[k], rel=1e-5)


def test_bad_truncations_are_clear_errors():
    with pytest.raises(ParameterError, match="upper bound must be greater than its lower bound"):
        D.Truncated(D.Normal(0.0, 1.0), 2.0, 1.0)
    with pytest.raises(ModelError, match="only univariate distributions can be truncated, but Dirichlet"):
        D.Truncated(D.Dirichlet(jnp.ones(3)), 0.0, 1.0)
    with pytest.raises(ModelError, match="Categorical cannot be truncated"):
        D.Truncated(D.Categorical(probs=jnp.ones(3) / 3), 0, 1)
    with pytest.raises(ModelError, match="needs a distribution"):
        D.Truncated(3.0, 0.0, 1.0)


# ------------------------------------------------------------------------------ .ppl


SRC = """
model half_t(y: real[]) {
  sigma ~ student_t(3, 0, 1) T[0, ]
  y ~ normal(0, sigma)
}

model bounded(y: real) {
  mu ~ normal(0, 10)
  y ~ normal(mu, 1) T[-1, 2]
}

model data_bounds(lo: real, hi: real) {
  x ~ normal(0, 1) T[lo, hi]
}

model posterior(y: real[]) {
  mu ~ normal(0, 10) T[0, ]
  y ~ normal(mu, 1)
}
"""


def test_ppl_half_student_t_density():
    mod = ppl.loads(SRC)
    y = np.array([0.3, -1.2, 0.8])
    lp = float(mod.half_t.log_density({"sigma": 1.5}, y))
    ref = math.log(2) + st.t(3).logpdf(1.5) + st.norm(0, 1.5).logpdf(y).sum()
    assert lp == pytest.approx(ref, rel=1e-5)
    assert float(D.Truncated(D.StudentT(3.0, 0.0, 1.0), low=0.0).log_density(-1.5)) == -INF


def test_ppl_truncated_observation_density():
    mod = ppl.loads(SRC)
    lp = float(mod.bounded.log_density({"mu": 0.5}, 1.0))
    ref = st.norm(0, 10).logpdf(0.5) + st.truncnorm(-1.5, 1.5, 0.5, 1).logpdf(1.0)
    assert lp == pytest.approx(ref, rel=1e-5)


def test_ppl_data_bounds_checked_at_run_time():
    mod = ppl.loads(SRC)
    tr = mod.data_bounds.simulate(jax.random.key(0), 0.5, 0.7)
    assert 0.5 <= float(tr.choices["x"]) <= 0.7
    # compiled, the bounds are traced: the density is NaN (the trace is not valid), never a number
    tr = mod.data_bounds.simulate(jax.random.key(0), 1.0, 0.0)
    assert np.isnan(float(tr.log_prior)) and not bool(tr.valid)
    # inference checks the concrete bounds first, and names the line
    with pytest.raises(PPLError, match="upper bound must be greater than its lower bound") as e:
        ppl.infer(mod.data_bounds, 1.0, 0.0, method=ppl.Importance(num_particles=10))
    assert "line 13" in str(e.value)


def test_nuts_on_truncated_normal_posterior_matches_analytic_mean():
    # mu ~ N(0, 10) T[0, ], y_i ~ N(mu, 1): the posterior is N(m, s) truncated to [0, inf)
    y = np.array([-0.4, 0.3, -0.9, 0.1, -0.2])
    prec = 1 / 100 + len(y)
    s = math.sqrt(1 / prec)
    m = y.sum() / prec
    exact = st.truncnorm((0 - m) / s, INF, m, s).mean()
    mod = ppl.loads(SRC)
    post = ppl.infer(mod.posterior, y, method=ppl.NUTS(num_samples=1000, num_warmup=500, num_chains=4), seed=2)
    draws = np.asarray(post.samples["mu"])
    assert draws.min() >= 0.0
    assert abs(z_score(draws, exact)) < Z_MAX


# ------------------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(
    family=hs.sampled_from(["Normal", "StudentT", "Gamma", "Cauchy"]),
    a=hs.floats(-6.0, 6.0),
    width=hs.floats(0.05, 8.0),
)
def test_truncated_density_integrates_to_one(family, a, width):
    """Wherever the bounds fall (tails included), the renormalised density has total mass 1."""
    base = {"Normal": lambda: D.Normal(0.5, 1.5), "StudentT": lambda: D.StudentT(2.5, 0.0, 1.0),
            "Gamma": lambda: D.Gamma(3.0, 2.0), "Cauchy": lambda: D.Cauchy(0.0, 0.5)}[family]
    low, high = a, a + width
    if family == "Gamma":
        low, high = abs(a) / 2, abs(a) / 2 + width
    with float64():
        d = D.Truncated(base(), low, high)
        x = np.linspace(low, high, 4001)
        p = np.exp(np.asarray(d.log_density(x)))
        mass = np.sum((p[1:] + p[:-1]) / 2 * np.diff(x))
    # the trapezoid rule's error on a smooth density over 4000 intervals is far below 1e-4
    assert mass == pytest.approx(1.0, abs=1e-4)


def test_t_stays_a_name_where_it_is_not_a_truncation():
    from ppl.syntax import ast as A
    from ppl.syntax import parse

    m = parse("model m(y: real, T: real[3]) {\n  mu ~ normal(0, 1) T[0, ]\n  x ~ normal(0, 1)\n"
              "  T[0] = 1.0; T[1] = 2.0\n  z = x + T[2]\n  y ~ normal(mu, 1) T [T[0], T[1]]\n}\n")
    stmts = m.models["m"].body.stmts
    assert isinstance(stmts[0].dist, A.Call) and stmts[0].dist.func.id == "truncated"
    assert [type(s).__name__ for s in stmts[2:4]] == ["IndexAssign", "IndexAssign"]
    assert isinstance(stmts[4].value.right, A.Index) and stmts[4].value.right.base.id == "T"
    low, high = stmts[5].dist.args[1:]
    assert isinstance(low, A.Index) and low.base.id == "T" and isinstance(high, A.Index)

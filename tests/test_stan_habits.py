"""Stan and NumPyro habits: Stan's syntax gets an error that says how to write it
in ppl (ppl/syntax/habits.py; the golden files tests/errors/*stan*), NumPyro's
``obs=`` and ``dim=`` are accepted, and a data-only left of ``~`` is an observation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import ppl
from ppl import dist
from ppl.stdlib.errors import ModelError, PPLError, ShapeError
from ppl.syntax import CheckErrors, check, parse
from ppl.syntax.habits import stan_syntax_error, stan_unbound_name


def _message(src: str) -> str:
    try:
        errors = check(parse(src, "m.ppl"))
    except PPLError as e:
        return e.render()
    return CheckErrors(errors).render() if errors else "no errors"


# ------------------------------------------------------------------ Stan's syntax

@pytest.mark.parametrize("line,words", [
    ("  target += normal_lpdf(y | mu, 1);", "Write y ~ normal(mu, 1)"),
    ("  target += bernoulli_logit_lpmf(k | a + b);", "Write k ~ bernoulli_logit(a + b)"),
    ("  target += -0.5 * x ^ 2", "Write factor(e) to add e to the log density"),
    ("  real mu;", "mu ~ normal(0, 1)"),
    ("  real<lower=0, upper=1> p;", "p ~ beta(1, 1)"),
    ("  simplex[K] theta;", "theta ~ dirichlet(ones(K))"),
    ("  matrix[N, K] X;", "model m(X: real[N, K])"),
    ("  vector<lower=0>[N] y;", "model m(y: real[N])"),
    ("  for (i in 2:N) {", "for i in 2..N + 1"),
    ("  /* a comment */", "Comments start with '#'"),
])
def test_stan_lines_get_a_translation(line, words):
    src = f"model m(y: real) {{\n  x ~ normal(0, 1)\n{line}\n}}\n"
    got = _message(src)
    assert "m.ppl', line 3" in got, got
    assert words in got, got


def test_a_valid_program_is_never_taken_for_stan():
    # the recogniser only speaks when the parser has failed on that line
    src = "model m(y: real[]) {\n  real_mu ~ normal(0, 1)\n  y ~ normal(real_mu, 1);\n}\n"
    assert _message(src) == "no errors"
    assert stan_syntax_error(src, "m.ppl", 2) is None


def test_trailing_semicolons_are_fine():
    module = ppl.loads("model m(y: real) {\n  mu ~ normal(0, 1);\n  y ~ normal(mu, 1);\n}\n")
    got = module.m.log_density({"mu": 0.3}, 1.0)
    np.testing.assert_allclose(float(got), stats.norm.logpdf(0.3) + stats.norm.logpdf(1.0, 0.3), rtol=1e-6)


def test_unbound_stan_names():
    assert "factor" in stan_unbound_name("target")[1]
    assert "log_density(poisson(...), y)" in stan_unbound_name("poisson_lpmf")[1]
    assert "sample(normal(...))" in stan_unbound_name("normal_rng")[1]
    assert stan_unbound_name("nromal_lpdf") is None  # not a distribution: the ordinary 'did you mean'
    assert stan_unbound_name("mu") is None


# ---------------------------------------------------------------- NumPyro's obs=

Y = jnp.array([0.5, 1.5, 1.0])


@ppl.model
def with_obs(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("n", len(y), dim=-1):
        ppl.sample("y", dist.Normal(mu, 1.0), obs=y)
    return mu


@ppl.model
def with_observe(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("n", len(y)):
        ppl.observe("y", dist.Normal(mu, 1.0), y)
    return mu


@ppl.model
def with_obs_dynamic(y):
    k = ppl.sample("k", dist.Bernoulli(0.5))
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    if k > 0:  # Python control flow on a random value: the eager engine
        with ppl.plate("n", len(y)):
            ppl.sample("y", dist.Normal(mu, 1.0), obs=y)
    return mu


def test_obs_is_an_observation_in_the_compiled_engine():
    assert with_obs.is_static(Y)
    want = stats.norm.logpdf(0.3) + stats.norm.logpdf(np.asarray(Y), 0.3, 1.0).sum()
    np.testing.assert_allclose(float(with_obs.log_density({"mu": 0.3}, Y)), want, rtol=1e-6)
    np.testing.assert_allclose(float(with_observe.log_density({"mu": 0.3}, Y)), want, rtol=1e-6)
    assert sorted(with_obs.simulate(jax.random.key(0), Y).choices) == ["mu"]


def test_obs_is_an_observation_in_the_eager_engine():
    assert not with_obs_dynamic.is_static(Y)
    want = np.log(0.5) + stats.norm.logpdf(0.3) + stats.norm.logpdf(np.asarray(Y), 0.3, 1.0).sum()
    got = with_obs_dynamic.log_density({"mu": 0.3, "k": 1}, Y)
    np.testing.assert_allclose(float(got), want, rtol=1e-6)


def test_obs_posterior_matches_observe():
    a = ppl.infer(with_obs, Y, method=ppl.Importance(num_particles=4000), seed=1)
    b = ppl.infer(with_observe, Y, method=ppl.Importance(num_particles=4000), seed=1)
    np.testing.assert_allclose(float(a.log_evidence), float(b.log_evidence), rtol=1e-6)


def test_plate_dim_must_agree():
    @ppl.model
    def wrong(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        with ppl.plate("n", len(y), dim=-2):
            ppl.observe("y", dist.Normal(mu, 1.0), y)

    with pytest.raises(ShapeError, match="owns dimension -1"):
        wrong.simulate(jax.random.key(0), Y)

    @ppl.model
    def sub(y):
        with ppl.plate("n", len(y), subsample_size=2):
            ppl.observe("y", dist.Normal(0.0, 1.0), y)

    with pytest.raises(ShapeError, match="plate 'n' subsamples 2 of them"):  # y, not y[idx]
        sub.simulate(jax.random.key(0), Y)


def test_an_observation_broadcast_to_a_larger_shape_is_an_error():
    """y of shape (5, 1) against parameters of shape (5,) broadcast to (5, 5): every theta_i was fitted to
    all five observations (the posterior means came out near mean(y) = 2 instead of near y_i), silently.
    Stan rejects the size mismatch; so does ppl, in both front ends, at the observation's line."""
    col = np.arange(5.0).reshape(5, 1)

    @ppl.model
    def column(y):
        theta = ppl.sample("theta", dist.Normal(jnp.zeros(5), 10.0))
        ppl.observe("y", dist.Normal(theta, 1.0), y)

    with pytest.raises(ShapeError, match=r"shape \(5, 1\).*broadcast to \(5, 5\).*5 times") as err:
        column.simulate(jax.random.key(0), col)
    assert err.value.span is not None and "ppl.observe" in err.value.span.source_line(err.value.span.line)

    src = "model m(N: int, y: real[N, 1]) {\n  theta ~ iid(normal(0, 10), N)\n  y ~ normal(theta, 1)\n}\n"
    with pytest.raises(ShapeError, match=r"broadcast to \(5, 5\)") as err:
        ppl.loads(src).m.simulate(jax.random.key(0), 5, col)
    assert err.value.span.line == 3

    @ppl.model
    def scalar(y):  # Stan's vectorisation: one observation scored under each of five normals
        theta = ppl.sample("theta", dist.Normal(jnp.zeros(5), 10.0))
        ppl.observe("y", dist.Normal(theta, 1.0), y)

    trace = scalar.simulate(jax.random.key(0), 2.0)
    theta = np.asarray(trace.choices["theta"], np.float64)
    np.testing.assert_allclose(float(trace.log_likelihood), stats.norm(theta, 1.0).logpdf(2.0).sum(), rtol=1e-5)
    np.testing.assert_allclose(  # the same through the density
        float(scalar.log_density({"theta": np.zeros(5)}, 2.0)),
        stats.norm(0.0, 10.0).logpdf(np.zeros(5)).sum() + stats.norm(0.0, 1.0).logpdf(2.0) * 5, rtol=1e-5)


# ----------------------------------------------------- a data-only left of '~'

EARN = np.array([1000.0, 20000.0, 5000.0, 250.0])


def test_transformed_data_name_is_observed():
    module = ppl.loads("""
model earnings(earn: real[]) {
  mu ~ normal(0, 10)
  sigma ~ half_normal(1)
  let log10_earn = log10(earn)
  log10_earn ~ normal(mu, sigma)
}
""")
    got = module.earnings.log_density({"mu": 3.5, "sigma": 0.7}, EARN)
    want = (stats.norm.logpdf(3.5, 0, 10) + stats.halfnorm.logpdf(0.7)
            + stats.norm.logpdf(np.log10(EARN), 3.5, 0.7).sum())
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    assert sorted(module.earnings.simulate(jax.random.key(0), EARN).choices) == ["mu", "sigma"]


def test_expression_of_data_is_observed():
    module = ppl.loads("model m(y: real[]) {\n  mu ~ normal(0, 1)\n  log(y) ~ normal(mu, 2)\n}\n")
    got = module.m.log_density({"mu": -0.4}, EARN)
    want = stats.norm.logpdf(-0.4) + stats.norm.logpdf(np.log(EARN), -0.4, 2).sum()
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_derived_data_in_a_loop_and_rebinding_a_parameter():
    module = ppl.loads("""
model m(y: real[]) {
  mu ~ normal(0, 1)
  for i in 0..len(y) {
    z = (y[i] - 1) * 2
    z ~ normal(mu, 1)
  }
}
model r(y: real[]) {
  mu ~ normal(0, 1)
  y = log(y)
  y ~ normal(mu, 1)
}
""")
    y = np.array([0.5, 2.0, 1.25])
    np.testing.assert_allclose(float(module.m.log_density({"mu": 0.2}, y)),
                               stats.norm.logpdf(0.2) + stats.norm.logpdf((y - 1) * 2, 0.2).sum(), rtol=1e-5)
    np.testing.assert_allclose(float(module.r.log_density({"mu": 0.2}, y)),
                               stats.norm.logpdf(0.2) + stats.norm.logpdf(np.log(y), 0.2).sum(), rtol=1e-5)


@pytest.mark.parametrize("body,words", [
    ("  s ~ half_normal(1)\n  log(s) ~ normal(0, 1)", "Jacobian"),
    ("  s ~ half_normal(1)\n  t = 2 * s\n  t ~ normal(0, 1)", "Jacobian"),
    ("  z = y\n  if flip(0.5) {\n    z = 2 * y\n  }\n  z ~ normal(0, 1)", "not computed from data"),
])
def test_random_left_sides_stay_errors(body, words):
    got = _message(f"model m(y: real) {{\n{body}\n}}\n")
    assert got.startswith("Semantic error"), got
    assert words in got, got


# ------------------------------------------------------- the recogniser is total

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PIECES = st.sampled_from([
    "real", "int", "vector", "array", "matrix", "<lower=0>", "<", ">", "[N]", "[", "]", "target", "+=",
    "normal_lpdf", "(", ")", "|", ",", "mu", "y", "for", "in", "1:N", ":", ";", "//", "/*", "data", "{", "}",
    "model", "parameters", "=", " ", "~", "print", "0",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=8).map(" ".join), max_size=5))
def test_the_recogniser_never_fails(lines):
    source = "\n".join(lines)
    for line in range(0, len(lines) + 2):
        got = stan_syntax_error(source, "m.ppl", line)
        assert got is None or (got.span.line >= 1 and got.message)
    # and the front end as a whole answers with an error or a program, never a raw exception
    try:
        check(parse(source, "m.ppl"))
    except PPLError:
        pass

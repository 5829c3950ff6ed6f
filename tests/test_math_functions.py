"""Stan's math functions as .ppl builtins (ppl/syntax/builtins/stan.py),
each checked against numpy/scipy through the whole front end (parse, check, evaluate, run)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.special as sps
from scipy import stats

import ppl
from ppl.syntax import CheckErrors
from ppl.syntax.builtins import FUNCTIONS
from ppl.syntax.builtins.stan import STAN_FUNCTIONS

X = np.array([0.3, 1.7, 2.5, 4.0])  # positive reals
U = np.array([0.05, 0.3, 0.5, 0.9])  # in (0, 1)
Z = np.array([-3.0, -0.5, 0.0, 0.7, 2.0])  # any reals
NEG = np.array([-40.0, -3.0, -0.5, -1e-6])  # negative


def _logit(p):
    return np.log(p) - np.log1p(-p)


UNARY = [
    ("log10", X, np.log10(X)),
    ("log2", X, np.log2(X)),
    ("exp2", Z, np.exp2(Z)),
    ("log1m", U, np.log1p(-U)),
    ("log1p_exp", np.array([-50.0, -1.0, 0.0, 3.0, 50.0]), np.logaddexp(0, [-50.0, -1.0, 0.0, 3.0, 50.0])),
    ("log1m_exp", NEG, np.log(-np.expm1(NEG))),
    ("inv_logit", Z, sps.expit(Z)),
    ("log_inv_logit", Z, np.log(sps.expit(Z))),
    ("log1m_inv_logit", Z, np.log1p(-sps.expit(Z))),
    ("inv_cloglog", Z, 1 - np.exp(-np.exp(Z))),
    ("Phi", Z, stats.norm.cdf(Z)),
    ("Phi_approx", Z, sps.expit(0.07056 * Z**3 + 1.5976 * Z)),
    ("inv_Phi", U, stats.norm.ppf(U)),
    ("tgamma", X, sps.gamma(X)),
    ("trigamma", X, sps.polygamma(1, X)),
    ("erfc", Z, sps.erfc(Z)),
    ("fabs", Z, np.abs(Z)),
    ("cbrt", np.array([-8.0, 0.5, 27.0]), np.cbrt([-8.0, 0.5, 27.0])),
    ("inv", X, 1 / X),
    ("inv_sqrt", X, 1 / np.sqrt(X)),
    ("inv_square", X, 1 / X**2),
    ("step", Z, np.where(Z < 0, 0.0, 1.0)),
    ("cumulative_sum", X, np.cumsum(X)),
]


def _run(body: str, **data):
    """Evaluate ``body`` (an expression of the data) in a .ppl model and return the value."""
    params = ", ".join(f"{k}: real[]" for k in data)
    module = ppl.loads(f"model m({params}) {{\n  return {body}\n}}\n")
    trace = module.m.simulate(jax.random.key(0), *[np.asarray(v) for v in data.values()])
    return np.asarray(trace.retval)


@pytest.mark.parametrize("name,x,want", UNARY, ids=[u[0] for u in UNARY])
def test_unary_against_numpy(name, x, want):
    np.testing.assert_allclose(_run(f"{name}(x)", x=x), want, rtol=2e-5, atol=1e-6)


def test_log1m_exp_is_accurate_at_both_ends():
    got = _run("log1m_exp(x)", x=np.array([-1e-7, -50.0]))
    np.testing.assert_allclose(got, [np.log(1e-7), -np.exp(-50.0)], rtol=1e-4)


BINARY = [
    ("log_diff_exp", np.array([1.0, 0.0, 5.0]), np.array([0.0, -2.0, 4.5]),
     lambda a, b: np.log(np.exp(a) - np.exp(b))),
    ("lbeta", X, X[::-1], lambda a, b: sps.betaln(a, b)),
    ("lchoose", np.array([5.0, 10.0, 7.5]), np.array([2.0, 3.0, 2.5]),
     lambda n, k: np.log(sps.binom(n, k))),
    ("binomial_coefficient_log", np.array([5.0, 10.0]), np.array([2.0, 10.0]),
     lambda n, k: np.log(sps.binom(n, k))),
    ("fmin", Z, Z[::-1], np.fmin),
    ("fmax", Z, Z[::-1], np.fmax),
    ("hypot", np.array([3.0, 1e30]), np.array([4.0, 1e30]), np.hypot),
    ("fmod", np.array([5.5, -5.5, 7.0]), np.array([2.0, 2.0, -3.0]), np.fmod),
    ("log_sum_exp", np.array([1.0, -3.0, 700.0]), np.array([2.0, -3.0, 699.0]), np.logaddexp),
]


@pytest.mark.parametrize("name,x,y,fn", BINARY, ids=[b[0] for b in BINARY])
def test_binary_against_numpy(name, x, y, fn):
    np.testing.assert_allclose(_run(f"{name}(x, y)", x=x, y=y), fn(x, y), rtol=2e-5, atol=2e-6)


def test_log_diff_exp_of_equal_and_reversed_arguments():
    got = _run("log_diff_exp(x, y)", x=np.array([1.0, 0.0]), y=np.array([1.0, 1.0]))
    assert got[0] == -np.inf and np.isnan(got[1])


def test_reductions_and_constructors():
    x = np.array([1.0, -2.0, 3.5])
    y = np.array([0.5, 4.0, -1.0])
    np.testing.assert_allclose(_run("log_sum_exp(x)", x=x), sps.logsumexp(x), rtol=1e-6)
    np.testing.assert_allclose(_run("dot_product(x, y)", x=x, y=y), x @ y, rtol=1e-6)
    np.testing.assert_allclose(_run("dot_self(x)", x=x), x @ x, rtol=1e-6)
    np.testing.assert_allclose(_run("fma(x, y, x)", x=x, y=y), x * y + x, rtol=1e-6)
    np.testing.assert_array_equal(_run("int_step(x)", x=np.array([-1.0, 0.0, 2.0])), [0, 0, 1])
    np.testing.assert_array_equal(_run("rep_vector(x[0], 3)", x=x), np.full(3, 1.0))
    np.testing.assert_array_equal(_run("rep_array(x, 2)", x=x), np.stack([x, x]))
    np.testing.assert_array_equal(_run("rep_array(x[1], 2, 3)", x=x), np.full((2, 3), -2.0))
    # the functions of Stan's library that builtins already had, by the same names
    np.testing.assert_allclose(_run("sd(x)", x=x), np.std(x, ddof=1), rtol=1e-6)
    np.testing.assert_allclose(_run("variance(x)", x=x), np.var(x, ddof=1), rtol=1e-6)
    np.testing.assert_allclose(_run("log1p(x[0]) + expm1(x[0]) + lgamma(x[0])", x=x),
                               np.log1p(1.0) + np.expm1(1.0) + sps.gammaln(1.0), rtol=1e-6)


def test_integers_are_converted_to_reals():
    module = ppl.loads("c = log10(1000)\nd = lchoose(5, 2)\ne = int_step(3)\n")
    np.testing.assert_allclose(float(module.c), 3.0, rtol=1e-6)
    np.testing.assert_allclose(float(module.d), np.log(10.0), rtol=1e-6)
    assert int(module.e) == 1


def test_gradients_are_finite():
    module = ppl.loads("model m(y: real) {\n  mu ~ normal(0, 1)\n"
                       "  factor(log1m_exp(-exp(mu)) + log_inv_logit(mu) + Phi(mu) + lbeta(exp(mu), 2.0))\n}\n")
    f = module.m.log_density_function(0.0)
    g = jax.grad(f)({"mu": 0.3})["mu"]
    eps = 1e-3
    fd = (f({"mu": 0.3 + eps}) - f({"mu": 0.3 - eps})) / (2 * eps)
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-2)


def test_in_a_vectorised_loop():
    module = ppl.loads("model m(y: real[]) {\n  mu ~ normal(0, 1)\n"
                       "  for i in 0..len(y) {\n    observe log10(y[i]) ~ normal(mu, 1)\n  }\n}\n")
    y = np.array([10.0, 100.0, 3.0])
    got = module.m.log_density({"mu": 0.5}, y)
    want = stats.norm.logpdf(0.5) + stats.norm.logpdf(np.log10(y), 0.5, 1).sum()
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_every_stan_function_is_registered_and_documented():
    import pathlib
    import re

    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text(encoding="utf-8")
    tested = {u[0] for u in UNARY} | {b[0] for b in BINARY} | {
        "log_sum_exp", "dot_product", "dot_self", "fma", "int_step", "rep_vector", "rep_array"}
    assert set(STAN_FUNCTIONS) == tested
    for name in STAN_FUNCTIONS:
        assert FUNCTIONS[name] is STAN_FUNCTIONS[name]
        assert re.search(rf"`{name}\(", doc), name


@pytest.mark.parametrize("src,words", [
    ("model m(x: real[]) {\n  return dot_self(rep_array(x, 2))\n}", "dot_self() takes a vector"),
    ("model m(x: real[]) {\n  return rep_vector(x, 3)\n}", "rep_vector() repeats a single number"),
    ("model m(x: real[]) {\n  return rep_vector(1.0, 2.5)\n}", "expects an integer as its second argument"),
    ("model m(x: real[]) {\n  return fma(x, x)\n}", "fma() takes"),
    ("model m(x: real[]) {\n  return log10(\"a\")\n}", "log10() expects a number"),
])
def test_type_rules(src, words):
    with pytest.raises(CheckErrors) as err:
        ppl.loads(src)
    assert words in str(err.value)

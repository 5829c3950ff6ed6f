"""Checks that read only the data, made once per run (semantics/compile/data_only.py, data_checks.py).

Laws checked here:

- the analysis finds the observations whose value is computed from the arguments alone (not
  from a random choice, not from a ``ppl.param``, not inside an ``if``), and the checked indices
  whose indices are;
- inside ``trusting(program)`` the compiled density equals the checked one wherever the data
  passed ``check_data`` (1e-6), and its program has no support test on the data left;
- a support that depends on a latent value stays checked in every evaluation;
- ``check_data`` raises the same error, at the same site, step and line, as the checked eager
  run; through ``ppl.infer`` with NUTS and VI as well.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.semantics import compile as C
from ppl.semantics.index_check import IndexRangeError
from ppl.stdlib.errors import SupportError


def _line(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


@ppl.model
def logreg(X, y):
    w = ppl.sample("w", dist.Normal(jnp.zeros(X.shape[1]), 1.0))
    with ppl.plate("data", X.shape[0]):
        ppl.observe("y", dist.Bernoulli(logits=X @ w), y)


@ppl.model
def grouped(g, y):
    theta = ppl.sample("theta", dist.Normal(jnp.zeros(3), 1.0))

    def body(c, gy):
        gi, yi = gy
        ppl.observe("y", dist.Poisson(jnp.exp(theta[gi])), yi)
        return c, None

    ppl.scan(body, 0, (g, y))


@ppl.model
def shifted(y):
    rate = ppl.sample("rate", dist.Gamma(2.0, 1.0))
    ppl.observe("y", dist.Poisson(rate), (y - 1).astype(jnp.int32))  # a value computed from the data


@ppl.model
def uniform_wall(y):
    theta = ppl.sample("theta", dist.Exponential(1.0))
    ppl.observe("y", dist.Uniform(0.0, theta), y)


@ppl.model
def observes_latent(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    ppl.observe("y", dist.Normal(0.0, 1.0), y + mu)


X = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
Y = (np.arange(30) % 2).astype(np.float32)
G = np.array([0, 1, 2, 1, 0])
COUNTS = np.array([1, 2, 3, 1, 0])


def _program(model, *args):
    program, leaves = model.program(*args)
    return program, list(leaves)


def _observes(found):
    return sorted(s.address for s in found.observes)


# ----------------------------------------------------------------------------- the analysis


def test_analysis_finds_data_observations_and_data_indices():
    program, _ = _program(logreg, X, Y)
    found = C.data_only_checks(program)
    assert _observes(found) == ["y"]
    assert next(iter(found.observes.values())).source == 1  # y is the second argument itself

    program, _ = _program(grouped, G, COUNTS)
    found = C.data_only_checks(program)
    assert _observes(found) == ["y"]
    assert list(found.indices.values()) == [(5,)]  # theta[gi], checked at each of the 5 steps
    assert next(iter(found.observes.values())).loops == (5,)


def test_analysis_leaves_latent_values_and_branches_alone():
    program, _ = _program(observes_latent, jnp.zeros(()))
    assert not C.data_only_checks(program)

    @ppl.model
    def branch(y):
        z = ppl.sample("z", dist.Bernoulli(probs=0.5))
        ppl.cond(z == 1, lambda: ppl.observe("y", dist.Poisson(2.0), y), lambda: ppl.observe("y", dist.Poisson(5.0), y))

    program, _ = _program(branch, jnp.asarray(3))
    assert not C.data_only_checks(program)

    @ppl.model
    def learned(y):
        shift = ppl.param("shift", jnp.zeros(()))
        ppl.observe("y", dist.Normal(0.0, 1.0), y - shift)

    program, _ = _program(learned, jnp.zeros(()))
    assert not C.data_only_checks(program)  # a ppl.param changes between runs: not data


# ----------------------------------------------------------------------------- trusted densities


def _density(program, args, u, trusted: bool):
    def f(u):
        if trusted:
            with C.trusting(program):
                return C.log_density_unconstrained(program, u, args)
        return C.log_density_unconstrained(program, u, args)

    return f, jax.jit(f)(u)


@pytest.mark.parametrize("model,args,u", [
    (logreg, (X, Y), {"w": jnp.asarray([0.3, -1.2, 0.5])}),
    (grouped, (G, COUNTS), {"theta": jnp.asarray([0.1, -0.4, 0.9])}),
    (shifted, (COUNTS + 1,), {"rate": jnp.asarray(0.3)}),
])
def test_trusted_density_equals_the_checked_one_on_valid_data(model, args, u):
    program, leaves = _program(model, *args)
    C.check_data(program, leaves)
    f_checked, checked = _density(program, leaves, u, trusted=False)
    f_trusted, trusted = _density(program, leaves, u, trusted=True)
    np.testing.assert_allclose(float(trusted), float(checked), rtol=1e-6)
    g_checked = jax.grad(f_checked)(u)
    g_trusted = jax.grad(f_trusted)(u)
    for a in u:
        np.testing.assert_allclose(np.asarray(g_trusted[a]), np.asarray(g_checked[a]), rtol=1e-6, atol=1e-6)


def test_trusted_density_leaves_the_support_test_out():
    program, leaves = _program(logreg, X, Y)
    u = {"w": jnp.zeros(3)}
    f_checked, _ = _density(program, leaves, u, trusted=False)
    f_trusted, _ = _density(program, leaves, u, trusted=True)

    def data_tests(f):  # equality tests of the observed y against the support's values {0, 1}
        text = str(jax.make_jaxpr(f)(u))
        return text.count("bool[30] = eq")

    assert data_tests(f_checked) >= 2
    assert data_tests(f_trusted) < data_tests(f_checked)


def test_a_latent_support_stays_checked_when_trusted():
    program, leaves = _program(uniform_wall, jnp.asarray(2.0))
    C.check_data(program, leaves)
    outside = {"theta": jnp.log(jnp.asarray(1.0))}  # theta = 1 < y = 2: density zero
    inside = {"theta": jnp.log(jnp.asarray(3.0))}
    assert float(_density(program, leaves, outside, trusted=True)[1]) == -np.inf
    np.testing.assert_allclose(float(_density(program, leaves, inside, trusted=True)[1]),
                               float(_density(program, leaves, inside, trusted=False)[1]), rtol=1e-6)


# ----------------------------------------------------------------------------- the errors


def test_bad_observation_names_site_and_line():
    y = Y.copy()
    y[7] = 2.0
    program, leaves = _program(logreg, X, y)
    with pytest.raises(SupportError, match=r"observed value at 'y' is outside the support of Bernoulli") as err:
        C.check_data(program, leaves)
    assert "(7,): 2.0" in str(err.value)
    assert err.value.span.line == _line(logreg.fn, 'ppl.observe("y"')


def test_bad_observation_in_a_loop_names_the_step():
    counts = COUNTS.copy()
    counts[2] = -3
    program, leaves = _program(grouped, G, counts)
    with pytest.raises(SupportError, match=r"'y\[2\]' is outside the support of Poisson.*got -3"):
        C.check_data(program, leaves)


def test_bad_computed_observation_is_found_by_the_compiled_check():
    program, leaves = _program(shifted, np.array([1, 3, 0]))  # y - 1 = -1 at index 2
    with pytest.raises(SupportError, match=r"'y' is outside the support of Poisson.*\(2,\): -1"):
        C.check_data(program, leaves)


def test_bad_data_index_names_the_line():
    program, leaves = _program(grouped, np.array([0, 1, 5, 1, 0]), COUNTS)
    with pytest.raises(IndexRangeError, match="index 5 is out of range") as err:
        C.check_data(program, leaves)
    assert err.value.span.line == _line(grouped.fn, "theta[gi]")


@pytest.mark.parametrize("method", [
    ppl.NUTS(num_warmup=10, num_samples=10, num_chains=1, progress=False),
    ppl.VI(num_steps=5, num_samples=5, num_final=2, progress=False),
])
def test_methods_report_bad_data_before_their_loop(method):
    y = Y.copy()
    y[3] = -1.0
    with pytest.raises(SupportError, match=r"observed value at 'y' is outside the support of Bernoulli"):
        ppl.infer(logreg, X, y, method=method, seed=0)


# -- draw-major products: ``X @ w`` with data X and latent w is evaluated as ``w @ X^T`` ----------------


@ppl.model
def two_products(X, Z, y):
    w = ppl.sample("w", dist.Normal(jnp.zeros(X.shape[1]), 1.0))
    data_only_product = Z @ jnp.ones(Z.shape[1])  # data times data: left as it is
    ppl.observe("y", dist.Normal(X @ w + data_only_product, 1.0), y)


def _dots(jaxpr):
    return [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]


def test_a_data_matrix_times_a_latent_vector_is_a_draw_major_product():
    rng = np.random.default_rng(0)
    X, Z = rng.normal(size=(30, 4)).astype(np.float32), rng.normal(size=(30, 2)).astype(np.float32)
    y = rng.normal(size=30).astype(np.float32)
    program, leaves = two_products.program(X, Z, y)
    found = C.data_only_checks(program).products
    assert len(found) == 1
    (prod,) = found
    assert prod.args[0].shape == (30, 4) and prod.args[1].shape == (4,)
    # the same density as the unswapped product (float32 rounding of a 4-term sum)
    ws = rng.normal(size=(5, 4)).astype(np.float32)
    got = jax.vmap(lambda w: C.log_density(program, {"w": w}, leaves))(ws)
    want = [np.sum(-0.5 * (y - X.astype(np.float64) @ w - Z.sum(1)) ** 2) - 0.5 * 30 * np.log(2 * np.pi)
            + np.sum(-0.5 * w.astype(np.float64) ** 2) - 2 * np.log(2 * np.pi) for w in ws]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # vmapped over draws, the product's output has the draw axis first: (5, 30), not (30, 5)
    jaxpr = jax.make_jaxpr(jax.vmap(lambda w: C.log_density(program, {"w": w}, leaves)))(ws)
    shapes = sorted(tuple(e.outvars[0].aval.shape) for e in _dots(jaxpr.jaxpr))
    assert shapes == [(5, 30), (30,)]


# -- observations whose elements are all elements of an argument: checked on the host ----------------

ROWS = ppl.loads("""
model rows(G: int, y: real[4, 3]) {
  mu ~ normal(0, 5)
  theta ~ iid(normal(mu, 1), 4)
  for g in 0..G {
    y[g] ~ normal(theta[g], 1)
  }
}
""").rows

GOOD_ROWS = np.arange(12, dtype=np.float32).reshape(4, 3)


def _no_compiled_check(monkeypatch):
    from ppl.semantics.compile import data_checks

    def refuse(*a, **k):
        raise AssertionError("the compiled data check ran")

    monkeypatch.setattr(data_checks, "_program", refuse)


def test_rows_of_an_argument_observed_in_a_loop_are_checked_on_the_host(monkeypatch):
    program, leaves = _program(ROWS, 4, GOOD_ROWS)
    (obs,) = C.data_only_checks(program).observes.values()
    assert obs.source is None  # y[g] is a dynamic slice of y, not the loop's own slice
    assert obs.loops == (4,)
    np.testing.assert_array_equal(np.asarray(leaves[obs.elements_of]), GOOD_ROWS)  # y's elements
    _no_compiled_check(monkeypatch)
    C.check_data(program, leaves)  # nothing compiled, no error


def test_a_bad_row_observed_in_a_loop_still_names_its_step():
    y = GOOD_ROWS.copy()
    y[2, 1] = np.nan
    program, leaves = _program(ROWS, 4, y)
    with pytest.raises(SupportError, match=r"'y\[2\]' is outside the support of Normal"):
        C.check_data(program, leaves)


def test_a_bad_element_that_no_step_observes_is_no_error():
    y = GOOD_ROWS.copy()
    y[3, 0] = np.inf  # the loop observes rows 0..2 only
    program, leaves = _program(ROWS, 3, y)
    C.check_data(program, leaves)


def test_a_value_computed_from_an_argument_is_not_taken_for_its_elements():
    computed = ppl.loads("""
model computed(y: real[3]) {
  mu ~ normal(0, 5)
  for i in 0..3 {
    y[i] - 1 ~ normal(mu, 1)
  }
}
""").computed
    program, _ = _program(computed, np.zeros(3, np.float32))
    (obs,) = C.data_only_checks(program).observes.values()
    assert obs.elements_of is None


REVERSED = ppl.loads("""
model reversed(y: real[]) {
  mu ~ normal(0, 10)
  for g in 1..len(y) {
    y[-g] ~ normal(mu, 1)
  }
}
""").reversed


@pytest.mark.parametrize("method", [
    ppl.NUTS(num_warmup=10, num_samples=10, num_chains=1, progress=False),
    ppl.Importance(num_particles=10),
])
def test_an_index_into_values_a_loop_computed_is_not_passed_off_as_a_data_position(method):
    # The loop is made into a plate over g = 1..4 observing y[-g]: y[1] (the NaN) is its element 3.
    y = np.array([1.0, np.nan, 5.0, 2.0, 3.0], np.float32)
    with pytest.raises(SupportError, match=r"index \(3,\): nan \(the index counts the elements of plate 'g' \(4\)"):
        ppl.infer(REVERSED, y, method=method, seed=0)


def test_an_observation_of_the_data_itself_shows_its_index_plainly():
    y = Y.copy()
    y[7] = 2.0
    program, leaves = _program(logreg, X, y)
    with pytest.raises(SupportError) as err:
        C.check_data(program, leaves)
    assert "(7,): 2.0" in str(err.value) and "counts the elements" not in str(err.value)


@ppl.model
def plated(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", dist.Normal(mu, 1.0), y)


@pytest.mark.parametrize("method", [
    ppl.NUTS(num_warmup=10, num_samples=10, num_chains=1, progress=False),
    ppl.Importance(num_particles=10),
])
def test_the_data_itself_observed_in_a_plate_shows_its_index_plainly_in_every_engine(method):
    y = np.zeros(4, np.float32)
    y[3] = np.nan
    with pytest.raises(SupportError) as err:
        ppl.infer(plated, y, method=method, seed=0)
    assert "(3,): nan" in str(err.value) and "counts the elements" not in str(err.value)

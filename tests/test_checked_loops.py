"""Checked indexing where the tracer cannot see the index (semantics/checked_eval.py):

- inside opaque loops: a ``jax.lax.while_loop``, a ``fori_loop`` whose trip count is known only
  at run time, a user ``jax.jit`` helper, without random choices inside;
- in the eager engine, which runs a dynamic Python model (control flow on a random value) on
  concrete arrays, where ``y[5]`` would be JAX's clamped read of ``y[2]``.

Either way an index outside its array is an IndexRangeError at the user's line (compiled: a NaN
log density first, which the methods report by replaying the draw), never a clamped value.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import ppl
from ppl import dist
from ppl.semantics import ir
from ppl.semantics.index_check import IndexRangeError

Y = jnp.asarray([1.0, 2.0, 3.0])


def _line(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def _importance(model, *args):
    return ppl.infer(model, *args, method=ppl.Importance(num_particles=10), seed=0)


# --------------------------------------------------------------------------- opaque loops


@ppl.model
def fori_sum(y, n):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))

    def add(i, s):
        return s + y[i]

    s = jax.lax.fori_loop(0, n, add, 0.0)  # n is an array: a while_loop
    ppl.observe("s", dist.Normal(mu, 1.0), s)
    return s


def test_a_fori_loop_with_a_run_time_trip_count_is_checked():
    program = fori_sum.ir(Y, jnp.asarray(3))
    assert any(isinstance(s, ir.Prim) and s.check_index for s in ir.walk(program.block.stmts))
    want = stats.norm(0, 10).logpdf(0.5) + stats.norm(0.5, 1).logpdf(6.0)
    assert float(fori_sum.log_density({"mu": 0.5}, Y, jnp.asarray(3))) == pytest.approx(want, rel=1e-5)
    # four steps read y[3]: not the clamped 1 + 2 + 3 + 3, a NaN density, then the error at the index
    assert np.isnan(float(fori_sum.log_density({"mu": 0.5}, Y, jnp.asarray(4))))
    with pytest.raises(IndexRangeError) as info:
        _importance(fori_sum, Y, jnp.asarray(4))
    assert info.value.span.line == _line(fori_sum.fn, "return s + y[i]")
    assert "index 3 is out of range for the array, which has 3 elements" in info.value.message


@ppl.model
def while_walk(y, start):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))

    def more(state):
        return state[0] > -5

    def step(state):
        i, s = state
        return i - 1, s + y[i]  # walks down from start: y[-4] is one too far

    _, s = jax.lax.while_loop(more, step, (start, 0.0))
    ppl.observe("s", dist.Normal(mu, 1.0), s)


def test_a_while_loop_names_the_index_below_minus_n():
    with pytest.raises(IndexRangeError) as info:
        _importance(while_walk, Y, jnp.asarray(2))
    assert info.value.span.line == _line(while_walk.fn, "s + y[i]")
    assert "index -4 is out of range" in info.value.message


@ppl.model
def nested_scan_in_while(y, n):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))

    def row(s, j):
        return s + y[j], None

    def body(k, s):
        inner, _ = jax.lax.scan(row, 0.0, jnp.arange(2) + k)
        return s + inner

    s = jax.lax.fori_loop(0, n, body, 0.0)
    ppl.observe("s", dist.Normal(mu, 1.0), s)


@pytest.mark.slow
def test_a_scan_inside_a_while_loop_is_checked():
    # n = 2: y[0] + y[1] + y[1] + y[2]; n = 3 reads y[3]
    want = stats.norm(0, 10).logpdf(0.5) + stats.norm(0.5, 1).logpdf(8.0)
    assert float(nested_scan_in_while.log_density({"mu": 0.5}, Y, jnp.asarray(2))) == pytest.approx(want, rel=1e-5)
    with pytest.raises(IndexRangeError) as info:
        _importance(nested_scan_in_while, Y, jnp.asarray(3))
    assert info.value.span.line == _line(nested_scan_in_while.fn, "s + y[j], None")


@ppl.model
def carried_scan(y, start):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))

    def step(state, _):
        j, s = state
        return (j + 1, s + y[j]), None  # the index is carried: known only as the loop runs

    (_, s), _ = jax.lax.scan(step, (start, 0.0), None, length=3)
    ppl.observe("s", dist.Normal(mu, 1.0), s)


def test_a_user_lax_scan_without_random_choices_checks_a_carried_index():
    want = stats.norm(0, 10).logpdf(0.5) + stats.norm(0.5, 1).logpdf(6.0)
    assert float(carried_scan.log_density({"mu": 0.5}, Y, jnp.asarray(0))) == pytest.approx(want, rel=1e-5)
    assert np.isnan(float(carried_scan.log_density({"mu": 0.5}, Y, jnp.asarray(1))))
    with pytest.raises(IndexRangeError) as info:
        _importance(carried_scan, Y, jnp.asarray(1))
    assert info.value.span.line == _line(carried_scan.fn, "s + y[j]") and "index 3" in info.value.message


@jax.jit
def _pick(y, i):
    return y[i]


@ppl.model
def jitted_helper(y, g):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    ppl.observe("x", dist.Normal(mu, 1.0), _pick(y, g))


def test_a_user_jit_helper_is_checked_at_run_time():
    assert float(jitted_helper.log_density({"mu": 0.0}, Y, jnp.asarray(1))) == pytest.approx(
        stats.norm(0, 10).logpdf(0.0) + stats.norm(0, 1).logpdf(2.0), rel=1e-5)
    with pytest.raises(IndexRangeError) as info:
        _importance(jitted_helper, Y, jnp.asarray(7))
    assert info.value.span.line == _line(_pick, "return y[i]") and "index 7" in info.value.message


# --------------------------------------------------------------------------- the eager engine


@ppl.model
def eager_read(y, k):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    if mu > 0:  # Python control flow on a draw: the model runs in the eager engine
        v = y[k]
    else:
        v = y[k] + 0.0
    return v


@pytest.mark.parametrize("k", [5, 3, -4, -9])
def test_eager_indices_outside_the_array_raise_at_the_users_line(k):
    assert not eager_read.is_static(Y, k)
    with pytest.raises(IndexRangeError) as info:
        eager_read.simulate(jax.random.key(0), Y, k)
    assert info.value.span.file == __file__
    assert info.value.span.line in (_line(eager_read.fn, "v = y[k]"), _line(eager_read.fn, "v = y[k] + 0.0"))
    assert f"index {k} is out of range for the array, which has 3 elements" in info.value.message
    with pytest.raises(IndexRangeError):
        _importance(eager_read, Y, k)


@pytest.mark.parametrize("k", [0, 2, -1, -3])
def test_eager_indices_inside_the_array_read_their_element(k):
    post = _importance(eager_read, Y, k)
    assert post.engine == "eager"
    assert np.all(np.asarray(post.returns) == float(Y[k]))


@ppl.model
def eager_gather_and_loop(y, g, n):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    if mu > 5:
        return 0.0
    picked = y[g]  # an index array: one element outside is enough
    s = jax.lax.fori_loop(0, n, lambda i, s: s + y[i], 0.0)
    return picked.sum() + s + _pick(y, n - 1)


def test_eager_gathers_loops_and_jit_calls_are_checked():
    ok = eager_gather_and_loop.simulate(jax.random.key(1), Y, jnp.array([0, 2]), 3)
    assert float(ok.retval) == pytest.approx(4.0 + 6.0 + 3.0)
    with pytest.raises(IndexRangeError) as info:
        eager_gather_and_loop.simulate(jax.random.key(1), Y, jnp.array([0, 4]), 3)
    assert info.value.span.line == _line(eager_gather_and_loop.fn, "picked = y[g]")
    with pytest.raises(IndexRangeError) as info:
        eager_gather_and_loop.simulate(jax.random.key(1), Y, jnp.array([0, 1]), 4)
    assert info.value.span.line == _line(eager_gather_and_loop.fn, "s + y[i], 0.0)")


@ppl.model
def eager_scatter(y, k):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    if mu > 5:
        return y
    return y.at[k].set(mu)  # JAX drops an update outside the array


def test_eager_scatters_are_checked():
    assert np.asarray(eager_scatter.simulate(jax.random.key(2), Y, 1).retval)[0] == 1.0
    with pytest.raises(IndexRangeError, match="index 3 is out of range"):
        eager_scatter.simulate(jax.random.key(2), Y, 3)


def test_ppls_own_index_operations_in_an_eager_run_are_not_the_users():
    """A categorical draw (ppl's and JAX's own gathers) inside an eager model: no false alarm."""

    @ppl.model
    def mixture(y):
        z = ppl.sample("z", dist.Categorical(probs=jnp.array([0.2, 0.3, 0.5])))
        if z > 0:
            ppl.observe("y", dist.Normal(y[z], 1.0), 2.0)
        return z

    post = _importance(mixture, Y)
    assert post.engine == "eager" and set(np.unique(np.asarray(post.returns))) <= {0, 1, 2}


# --------------------------------------------------------------------------- properties

FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FEW
@given(st.integers(1, 4), st.integers(-7, 7))
def test_property_eager_reads_their_element_or_name_the_index(n, k):
    """``y[k]`` in an eagerly run model: NumPy's element, or an error at the index."""
    y = jnp.asarray([float(v) for v in range(10, 10 + n)])

    def body(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        if mu > 100.0:
            return 0.0
        return y[k]

    m = ppl.model(body)
    if -n <= k < n:
        assert float(m.simulate(jax.random.key(0), y).retval) == float(10 + (k % n))
        return
    with pytest.raises(IndexRangeError) as info:
        m.simulate(jax.random.key(0), y)
    assert f"index {k} is out of range" in info.value.message
    assert info.value.span.line == _line(body, "return y[k]")


LOOPS = (st.integers(1, 4), st.integers(0, 6), st.integers(-4, 4))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(*LOOPS)
def test_property_opaque_loops_give_the_exact_density_or_name_the_index(n, steps, c):
    opaque_loop_case(n, steps, c)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(*LOOPS)
def test_property_opaque_loops_many(n, steps, c):
    opaque_loop_case(n, steps, c)


def opaque_loop_case(n, steps, c):
    """``fori_loop(0, steps, s + y[i + c])`` with a run-time trip count, on data of length n."""
    y = np.round(np.linspace(-1.0, 1.0, n), 3)

    def body(y, steps):
        mu = ppl.sample("mu", dist.Normal(0.0, 10.0))

        def add(i, s):
            return s + y[i + c]

        ppl.observe("s", dist.Normal(mu, 1.0), jax.lax.fori_loop(0, steps, add, 0.0))

    m = ppl.model(body)
    idx = [i + c for i in range(steps)]
    args = (jnp.asarray(y, jnp.float32), jnp.asarray(steps))
    if all(-n <= j < n for j in idx):
        # JAX reads a negative index from the end, as NumPy does
        want = stats.norm(0, 10).logpdf(0.3) + stats.norm(0.3, 1).logpdf(sum(y[j] for j in idx))
        assert float(m.log_density({"mu": 0.3}, *args)) == pytest.approx(want, rel=1e-4, abs=1e-4)
        return
    assert np.isnan(float(m.log_density({"mu": 0.3}, *args)))
    with pytest.raises(IndexRangeError) as info:
        _importance(m, *args)
    bad = next(j for j in idx if not -n <= j < n)
    assert f"index {bad} is out of range" in info.value.message
    assert info.value.span.line == _line(body, "s + y[i + c]")

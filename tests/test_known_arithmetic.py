"""The tracer's known values computed with NumPy (``ppl.known_arithmetic``) equal JAX's own
results bit for bit wherever NumPy answers; and reading a model or starting a run compiles no
XLA program for them (each one cost a process's first run tens of milliseconds)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppl
from ppl import known_arithmetic
from ppl.stdlib import jax_compat as jc

INT32 = np.iinfo(np.int32)


def jax_result(fn, *operands):
    """The single equation of ``fn``'s jaxpr, evaluated by NumPy and by JAX."""
    closed = jax.make_jaxpr(fn)(*operands)
    (eqn,) = [e for e in closed.jaxpr.eqns]
    values = [np.asarray(x) for x in operands]
    ours = known_arithmetic.evaluate(eqn.primitive.name, values, dict(eqn.params),
                                     [a.aval for a in eqn.invars], [v.aval for v in eqn.outvars])
    theirs = [np.asarray(x) for x in jc.bind(eqn.primitive, values, dict(eqn.params))]
    return ours, theirs


def assert_same(ours, theirs):
    assert ours is not None
    assert len(ours) == len(theirs) == 1
    assert ours[0].shape == theirs[0].shape and ours[0].dtype == theirs[0].dtype
    np.testing.assert_array_equal(ours[0], theirs[0])


BINARY = [jax.lax.add, jax.lax.sub, jax.lax.mul, jax.lax.max, jax.lax.min, jax.lax.lt, jax.lax.le,
          jax.lax.gt, jax.lax.ge, jax.lax.eq, jax.lax.ne, jax.lax.bitwise_and, jax.lax.bitwise_or]
ints = st.lists(st.integers(INT32.min, INT32.max), min_size=3, max_size=3)


@settings(max_examples=40, deadline=None)
@given(a=ints, b=ints, op=st.sampled_from(BINARY))
def test_integer_operations_wrap_and_compare_as_xla_does(a, b, op):
    assert_same(*jax_result(op, np.array(a, np.int32), np.array(b, np.int32)))


@settings(max_examples=40, deadline=None)
@given(a=ints, b=st.lists(st.integers(-7, 7), min_size=3, max_size=3), op=st.sampled_from([jax.lax.div, jax.lax.rem]))
def test_integer_division_rounds_toward_zero_or_is_left_to_jax(a, b, op):
    ours, theirs = jax_result(op, np.array(a, np.int32), np.array(b, np.int32))
    if 0 in b:
        assert ours is None  # XLA's answer to a zero divisor is its own
    else:
        assert_same(ours, theirs)


floats = st.lists(st.floats(-1e6, 1e6, width=32), min_size=3, max_size=3)


@settings(max_examples=20, deadline=None)
@given(a=floats, b=floats, op=st.sampled_from([jax.lax.add, jax.lax.mul, jax.lax.div, jax.lax.lt]))
def test_float_arithmetic_and_comparisons_are_left_to_jax(a, b, op):
    # XLA on the CPU flushes subnormals to zero (0 + 1e-45 is 0 there), NumPy does not
    ours, _ = jax_result(op, np.array(a, np.float32), np.array(b, np.float32))
    assert ours is None


def test_floats_are_moved_exactly_subnormals_included():
    x = np.array([1.4e-45, -0.0, np.inf, 2.5], np.float32)
    assert_same(*jax_result(lambda v: jax.lax.broadcast_in_dim(v, (2, 4), (1,)), x))
    assert_same(*jax_result(lambda v: jax.lax.slice(v, (1,), (3,)), x))
    assert_same(*jax_result(lambda p, v, w: jax.lax.select(p, v, w), np.array([True, False, True, False]), x, -x))


@pytest.mark.parametrize("fn, operands", [
    (lambda x: jax.lax.broadcast_in_dim(x, (2, 3, 4), (1,)), (np.arange(3, dtype=np.int32),)),
    (lambda x: jax.lax.reshape(x, (3, 2)), (np.arange(6, dtype=np.int32),)),
    (lambda x: jax.lax.squeeze(x, (0,)), (np.arange(3, dtype=np.int32)[None],)),
    (lambda x, y: jax.lax.concatenate([x, y], 0), (np.arange(3, dtype=np.int32), np.arange(2, dtype=np.int32))),
    (lambda x: jax.lax.transpose(x, (1, 0)), (np.arange(6, dtype=np.int32).reshape(2, 3),)),
    (lambda x: jax.lax.slice(x, (1,), (6,), (2,)), (np.arange(7, dtype=np.int32),)),
    (lambda p, x, y: jax.lax.select(p, x, y), (np.array([True, False]), np.array([1, 2], np.int32),
                                               np.array([3, 4], np.int32))),
    (lambda p, x, y: jax.lax.select(p, x, y), (np.array(False), np.int32(7), np.int32(-3))),
    (lambda w, x, y, z: jax.lax.select_n(w, x, y, z), (np.array([2, 0, 1], np.int32), np.zeros(3, np.int32),
                                                       np.ones(3, np.int32), np.full(3, 5, np.int32))),
    (lambda lo, x, hi: jax.lax.clamp(lo, x, hi), (np.int32(0), np.array([-3, 2, 9], np.int32), np.int32(5))),
    (lambda x: jax.lax.convert_element_type(x, np.float32), (np.array([3, -2**30 - 1, 2**24 + 1], np.int32),)),
    (lambda x: jax.lax.convert_element_type(x, np.int32), (np.array([True, False]),)),
    (lambda x: jax.lax.neg(x), (np.array([INT32.min, 0, 5], np.int32),)),
    (lambda x: jax.lax.abs(x), (np.array([INT32.min, -4, 5], np.int32),)),
    (lambda x: jax.lax.sign(x), (np.array([-4, 0, 5], np.int32),)),
    (lambda x: jax.lax.bitwise_not(x), (np.array([True, False]),)),
    (lambda: jax.lax.iota(np.int32, 5), ()),
    (lambda: jax.lax.broadcasted_iota(np.int32, (2, 3), 1), ()),
])
def test_shapes_selections_and_conversions_equal_jax(fn, operands):
    assert_same(*jax_result(fn, *operands))


def test_a_float_to_integer_conversion_is_left_to_jax():
    ours, _ = jax_result(lambda x: jax.lax.convert_element_type(x, np.int32), np.array([2.7, np.nan], np.float32))
    assert ours is None


def compiles_during(fn) -> int:
    """How many XLA compilations ``fn()`` starts."""
    count = [0]

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            count[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return count[0]


HIERARCHICAL = """
model hierarchical(G: int, N: int, y: real[G, N]) {
  mu ~ normal(0, 5)
  tau ~ half_normal(5)
  theta ~ iid(normal(mu, tau), G)
  for g in 0..G {
    y[g] ~ normal(theta[g], 1)
  }
}
"""


def test_reading_a_model_with_checked_loop_indices_compiles_nothing():
    # a fresh shape (G = 13, N = 7) so no earlier test has compiled JAX's eager operations for it
    model = ppl.loads(HIERARCHICAL).hierarchical
    y = np.zeros((13, 7), np.float32)
    assert compiles_during(lambda: model.program(13, 7, y)) == 0
    with pytest.raises(ppl.PPLError, match="index"):  # the loop's indices are still checked
        ppl.loads(HIERARCHICAL.replace("y[g] ~", "y[g + 1] ~")).hierarchical.program(13, 7, y)


def test_a_seed_becomes_a_key_without_compiling_and_equal_to_jax_random_key():
    for seed in (0, 3, -5, 2**31 - 1):
        assert compiles_during(lambda: jc.key_from_seed(seed)) == 0
        np.testing.assert_array_equal(jax.random.key_data(jc.key_from_seed(seed)),
                                      jax.random.key_data(jax.random.key(seed)))
    assert jnp.issubdtype(jc.key_from_seed(1).dtype, jax.dtypes.prng_key)

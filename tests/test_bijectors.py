"""Constraints and bijectors: membership, round trips, and log-determinants against autodiff.

Tolerances: round trips run in float32 at 1e-5 (a few roundings of exp/log/sigmoid of
O(1) inputs); log-determinants are compared with ``slogdet`` of the autodiff Jacobian in
float64, where both sides are exact up to ~1e-12, so 1e-9 leaves room without hiding bugs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppl.stdlib import constraints as C
from ppl.stdlib.bijectors import (
    Covariance,
    Exp,
    Identity,
    Interval,
    LowerBound,
    Ordered,
    PositiveOrdered,
    StickBreaking,
    UpperBound,
    biject_to,
)
from ppl.stdlib.errors import ModelError, ShapeError

def float64():
    """A context in which JAX computes in float64 (``jax.enable_x64``, or its older home)."""
    enable = getattr(jax, "enable_x64", None)
    if enable is not None:
        return enable(True)
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()  # pragma: no cover


KEY = jax.random.PRNGKey(20240611)


def tril_entries(x):
    rows, cols = np.tril_indices(x.shape[-1])
    return x[..., rows, cols]


# (id, constraint factory, constrained shape of one element, projection of x onto the
#  coordinates whose Jacobian with respect to u is square)
CASES = [
    ("real", lambda: C.real, (4,), lambda x: x),
    ("real_vector", lambda: C.real_vector, (4,), lambda x: x),
    ("positive", lambda: C.positive, (4,), lambda x: x),
    ("nonnegative", lambda: C.nonnegative, (4,), lambda x: x),
    ("unit_interval", lambda: C.unit_interval, (4,), lambda x: x),
    ("interval", lambda: C.interval(jnp.array([-1.0, 0.0, 2.0, -5.0]), jnp.array([1.0, 0.5, 7.0, -4.5])), (4,), lambda x: x),
    ("greater_than", lambda: C.greater_than(jnp.array([-1.0, 0.0, 2.0, 3.0])), (4,), lambda x: x),
    ("less_than", lambda: C.less_than(2.5), (4,), lambda x: x),
    ("simplex", lambda: C.simplex, (5,), lambda x: x[..., :-1]),
    ("ordered", lambda: C.ordered, (5,), lambda x: x),
    ("positive_ordered", lambda: C.positive_ordered, (5,), lambda x: x),
    ("lower_cholesky", lambda: C.lower_cholesky, (3, 3), tril_entries),
    ("positive_definite", lambda: C.positive_definite, (3, 3), tril_entries),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,make,shape,project", CASES, ids=IDS)
def test_round_trip_and_membership_float32(name, make, shape, project):
    constraint = make()
    bij = biject_to(constraint)
    ushape = bij.unconstrained_shape(shape)
    assert bij.constrained_shape(ushape) == shape
    u = jax.random.normal(KEY, (6,) + ushape, jnp.float32)
    if name == "positive_definite":
        u = 0.5 * u  # keep the condition number modest so float32 Cholesky is accurate

    @jax.jit
    def round_trip(v):
        x = bij.forward(v)
        return x, constraint.check(x), bij.inverse(x), bij.log_det_jacobian(v)

    x, inside, back, ldj = round_trip(u)
    assert x.shape == (6,) + shape and x.dtype == jnp.float32
    assert bool(jnp.all(inside))
    tol = 1e-4 if name == "positive_definite" else 1e-5  # Cholesky of L L^T loses ~cond * eps
    np.testing.assert_allclose(back, u, rtol=tol, atol=tol)
    expected_shape = (6,) + ushape if constraint.event_dim == 0 else (6,)
    assert ldj.shape == expected_shape


@pytest.mark.parametrize("name,make,shape,project", CASES, ids=IDS)
def test_log_det_jacobian_matches_autodiff_float64(name, make, shape, project):
    with float64():
        constraint = make()
        if name == "interval":
            constraint = C.interval(jnp.asarray(constraint.low, jnp.float64), jnp.asarray(constraint.high, jnp.float64))
        bij = biject_to(constraint)
        ushape = bij.unconstrained_shape(shape)

        @jax.jit
        @jax.vmap
        def both(v):
            jac = jax.jacobian(lambda w: jnp.ravel(project(bij.forward(w))))(v).reshape(-1, v.size)
            return jnp.linalg.slogdet(jac), jnp.sum(bij.log_det_jacobian(v))

        u = 1.5 * jax.random.normal(KEY, (3,) + ushape, jnp.float64)
        (sign, logdet), ldj = both(u)
        assert ldj.dtype == jnp.float64
        assert np.all(np.asarray(sign) != 0.0)
        np.testing.assert_allclose(ldj, logdet, rtol=1e-9, atol=1e-9)


def test_log_det_has_the_batch_shape():
    def ldj_shape(constraint, shape):
        return jax.eval_shape(biject_to(constraint).log_det_jacobian, jax.ShapeDtypeStruct(shape, jnp.float32)).shape

    assert ldj_shape(C.positive, (2, 3)) == (2, 3)
    assert ldj_shape(C.real, (2, 3)) == (2, 3)
    assert ldj_shape(C.interval(0.0, jnp.ones(3)), (2, 3)) == (2, 3)
    assert ldj_shape(C.real_vector, (2, 3)) == (2,)
    assert ldj_shape(C.simplex, (2, 3)) == (2,)
    assert ldj_shape(C.ordered, (2, 3)) == (2,)
    assert ldj_shape(C.positive_definite, (2, 6)) == (2,)


def test_biject_to_picks_stan_transforms():
    assert isinstance(biject_to(C.real), Identity)
    assert isinstance(biject_to(C.positive), Exp)
    assert isinstance(biject_to(C.interval(0.0, 2.0)), Interval)
    assert isinstance(biject_to(C.greater_than(1.0)), LowerBound)
    assert isinstance(biject_to(C.less_than(1.0)), UpperBound)
    assert isinstance(biject_to(C.simplex), StickBreaking)
    assert isinstance(biject_to(C.ordered), Ordered)
    assert isinstance(biject_to(C.positive_ordered), PositiveOrdered)
    assert isinstance(biject_to(C.positive_definite), Covariance)

    @jax.jit
    def centres():
        return (
            biject_to(C.simplex).forward(jnp.zeros(3)),
            biject_to(C.interval(2.0, 4.0)).forward(0.0),
            biject_to(C.positive).forward(0.0),
            biject_to(C.ordered).forward(jnp.array([1.0, 0.0, 0.0])),
            biject_to(C.positive_definite).forward(jnp.zeros(3)),
        )

    # u = 0 is the centre: the uniform probability vector, the interval's midpoint, 1, I
    simplex, mid, one, steps, eye = centres()
    np.testing.assert_allclose(simplex, jnp.full(4, 0.25), rtol=1e-6)
    np.testing.assert_allclose(mid, 3.0, rtol=1e-7)
    np.testing.assert_allclose(one, 1.0, rtol=1e-7)
    np.testing.assert_allclose(steps, [1.0, 2.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(eye, np.eye(2), atol=1e-7)


def test_extreme_inputs_stay_finite_float32():
    u = jnp.array([-40.0, -15.0, 0.0, 15.0, 40.0], jnp.float32)
    interval = biject_to(C.interval(-1.0, 1.0))
    simplex = biject_to(C.simplex)

    def total(v):
        return jnp.sum(simplex.log_det_jacobian(v)) + jnp.sum(interval.log_det_jacobian(v))

    @jax.jit
    def run(u):
        return (
            interval.forward(u),
            interval.log_det_jacobian(u),
            simplex.forward(u[:4]),
            simplex.log_det_jacobian(u[:4]),
            jax.grad(total)(u[:4]),
        )

    x, ldj, probs, ldj_simplex, grad = run(u)
    assert bool(jnp.all((x >= -1) & (x <= 1)))
    # near the upper end x is the float32 just below 1 - 2 sigmoid(-15) (within one ulp, 6e-8),
    # not a rounded 1.0 on the boundary
    assert float(x[3]) < 1.0
    np.testing.assert_allclose(1.0 - x[3], 2 * jax.nn.sigmoid(-15.0), atol=6e-8)
    assert bool(jnp.all(jnp.isfinite(ldj)))
    np.testing.assert_allclose(jnp.sum(probs), 1.0, rtol=1e-6)
    assert bool(jnp.isfinite(ldj_simplex))
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_interval_with_traced_bounds_jits_and_differentiates():
    def density_of_u(alpha, u):
        bij = biject_to(C.interval(0.0, 1.0 - alpha))
        return jnp.sum(bij.forward(u) + bij.log_det_jacobian(u))

    value, grad = jax.jit(jax.value_and_grad(density_of_u))(0.25, jnp.array([0.0, 1.0]))
    x0 = 0.75 * jax.nn.sigmoid(jnp.array([0.0, 1.0]))
    expected = jnp.sum(x0 + jnp.log(0.75) + jax.nn.log_sigmoid(jnp.array([0.0, 1.0])) * 2 - jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert np.isfinite(float(grad))


def test_bijectors_and_constraints_are_pytrees():
    assert jax.tree.leaves(C.positive) == []
    assert jax.tree.leaves(C.simplex) == []
    c = C.interval(0.0, jnp.array([1.0, 2.0]))
    leaves, tree = jax.tree.flatten(c)
    assert len(leaves) == 2
    c2 = jax.tree.unflatten(tree, leaves)
    assert repr(c2) == "interval(0.0, [1., 2.])"
    bij = biject_to(c)
    assert len(jax.tree.leaves(bij)) == 2
    out = jax.jit(lambda b, u: b.forward(u))(bij, jnp.zeros(2))
    np.testing.assert_allclose(out, [0.5, 1.0], rtol=1e-6)


def test_discrete_constraints_have_no_bijector():
    for c in (C.boolean, C.nonnegative_integer, C.integer_interval(0, 3)):
        with pytest.raises(ModelError, match="cannot be mapped"):
            biject_to(c)


def test_shape_helpers_reject_bad_shapes():
    with pytest.raises(ShapeError):
        biject_to(C.positive_definite).constrained_shape((4,))
    with pytest.raises(ShapeError):
        biject_to(C.positive_definite).unconstrained_shape((2, 3))
    assert biject_to(C.positive_definite).constrained_shape((7, 6)) == (7, 3, 3)
    assert biject_to(C.simplex).unconstrained_shape((2, 4)) == (2, 3)


# ---------------------------------------------------------------------------
# Constraints


@pytest.mark.parametrize(
    "constraint,inside,outside",
    [
        (C.real, [0.0, -3.0, 1e30], [np.nan, np.inf]),
        (C.positive, [1e-30, 2.0], [0.0, -1.0, np.nan, np.inf]),
        (C.nonnegative, [0.0, 2.0], [-1e-30, np.nan]),
        (C.unit_interval, [0.0, 0.5, 1.0], [-0.1, 1.1, np.nan]),
        (C.interval(-1.0, 2.0), [-1.0, 2.0, 0.0], [-1.5, 2.5, np.nan]),
        (C.greater_than(3.0), [3.5], [3.0, 2.0]),
        (C.less_than(3.0), [2.5], [3.0, 4.0]),
        (C.boolean, [0, 1, 1.0], [2, -1, 0.5]),
        (C.nonnegative_integer, [0, 4, 7.0], [-1, 0.5, np.inf]),
        (C.integer_interval(1, 3), [1, 3, 2.0], [0, 4, 1.5]),
        (C.extended_real, [-np.inf, 0.0], [np.inf, np.nan]),
    ],
    ids=repr,
)
def test_scalar_constraint_membership(constraint, inside, outside):
    assert constraint.event_dim == 0

    @jax.jit
    def run(inside, outside):
        return constraint.check(inside), constraint.check(outside), constraint.check(constraint.feasible_like(inside))

    ok_in, ok_out, ok_feasible = run(jnp.asarray(inside, jnp.float32), jnp.asarray(outside, jnp.float32))
    assert np.asarray(ok_in).all()
    assert not np.asarray(ok_out).any()
    assert np.asarray(ok_feasible).all()
    # the NumPy twin used for validating concrete parameters agrees with the jittable test
    np.testing.assert_array_equal(constraint.check_now(np.asarray(inside, np.float32)), ok_in)
    np.testing.assert_array_equal(constraint.check_now(np.asarray(outside, np.float32)), ok_out)


def test_vector_and_matrix_constraints_reduce_over_event_dims():
    x = jnp.array([[0.2, 0.3, 0.5], [0.5, 0.6, -0.1], [0.5, 0.6, 0.0]])
    y = jnp.array([[1.0, 2.0, 3.0], [1.0, 1.0, 2.0], [-1.0, 0.0, 1.0]])
    z = jnp.array([[1.0, np.nan], [0.0, 1.0]])
    m = jnp.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.5, 1.0]]])

    @jax.jit
    def run(x, y, z, m):
        return (
            C.simplex.check(x),
            C.ordered.check(y),
            C.positive_ordered.check(y),
            C.real_vector.check(z),
            C.positive_definite.check(m),
            C.lower_cholesky.check(m),
        )

    simplex, ordered, positive_ordered, real_vector, pd, chol = run(x, y, z, m)
    np.testing.assert_array_equal(simplex, [True, False, False])
    np.testing.assert_array_equal(ordered, [True, False, True])
    np.testing.assert_array_equal(positive_ordered, [True, False, False])
    np.testing.assert_array_equal(real_vector, [False, True])
    np.testing.assert_array_equal(pd, [True, False, False])
    np.testing.assert_array_equal(chol, [False, False, True])
    assert (C.simplex.event_dim, C.positive_definite.event_dim) == (1, 2)
    assert C.boolean.is_discrete and not C.positive.is_discrete


def test_constraint_reprs_and_descriptions():
    assert repr(C.positive) == "positive"
    assert repr(C.interval(0, 1)) == "interval(0, 1)"
    assert repr(C.integer_interval(0, 3)) == "integer_interval(0, 3)"
    assert C.positive.describe() == "a positive real number"
    assert C.simplex.describe() == "a probability vector that sums to 1"
    assert C.interval(0, 1).describe() == "a real number from 0 to 1"
    seen = []
    jax.jit(lambda a: seen.append(repr(C.interval(0, a))) or a)(1.0)
    assert seen == ["interval(0, <traced ()>)"]


def test_interval_check_with_traced_bounds():
    def inside(alpha, x):
        return C.interval(0.0, 1.0 - alpha).check(x)

    np.testing.assert_array_equal(jax.jit(inside)(0.5, jnp.array([0.25, 0.75])), [True, False])
    np.testing.assert_array_equal(jax.vmap(inside, in_axes=(0, None))(jnp.array([0.0, 0.9]), 0.5), [True, False])

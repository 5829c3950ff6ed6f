"""Constraints: the sets that distributions live on and that parameters must lie in.

A constraint is a small value (a JAX pytree); its interface (``event_dim``,
``is_discrete``, ``check``, ``check_now``, ``feasible_like``, ``describe``, ``same_set``)
is that of ``Constraint`` (``constraint_base.py``).

Bounds of ``interval``, ``greater_than``, ``less_than`` and ``integer_interval`` are
pytree leaves, so they may be traced arrays that depend on other random variables::

    >>> interval(0.0, 1.0)
    interval(0.0, 1.0)
    >>> bool(positive.check(2.0)), bool(positive.check(-1.0))
    (True, False)
    >>> simplex.describe()
    'a probability vector that sums to 1'

Law: ``check(feasible_like(x))`` is all true for every ``x`` of a suitable shape.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ppl.stdlib.constraint_base import Constraint, _all_last, _fmt, _is_integer, nan_unless
from ppl.stdlib.jax_compat import is_tracer

__all__ = [
    "Constraint",
    "real",
    "real_vector",
    "extended_real",
    "positive",
    "nonnegative",
    "unit_interval",
    "interval",
    "greater_than",
    "less_than",
    "simplex",
    "ordered",
    "positive_ordered",
    "boolean",
    "nonnegative_integer",
    "integer_interval",
    "positive_definite",
    "lower_cholesky",
]


# ---------------------------------------------------------------------------
# Continuous scalar sets


class _Real(Constraint):
    def _check(self, xp, x):
        return xp.isfinite(x)

    def feasible_like(self, x):
        return jnp.zeros_like(x)

    def describe(self):
        return "a real number"

    def __repr__(self):
        return "real"


class _RealVector(Constraint):
    event_dim = 1

    def _check(self, xp, x):
        return _all_last(xp, xp.isfinite(x), 1)

    def feasible_like(self, x):
        return jnp.zeros_like(x)

    def describe(self):
        return "a vector of real numbers"

    def __repr__(self):
        return "real_vector"


class _ExtendedReal(Constraint):
    """The reals together with -inf: a log-weight (``-inf`` is probability zero)."""

    def _check(self, xp, x):
        return (x == x) & (x < xp.inf)

    def feasible_like(self, x):
        return jnp.zeros_like(x)

    def describe(self):
        return "a real number or -inf"

    def __repr__(self):
        return "extended_real"


class _Positive(Constraint):
    def _check(self, xp, x):
        return (x > 0) & xp.isfinite(x)

    def feasible_like(self, x):
        return jnp.ones_like(x)

    def describe(self):
        return "a positive real number"

    def __repr__(self):
        return "positive"


class _Nonnegative(Constraint):
    def _check(self, xp, x):
        return (x >= 0) & xp.isfinite(x)

    def feasible_like(self, x):
        return jnp.ones_like(x)

    def describe(self):
        return "a nonnegative real number"

    def __repr__(self):
        return "nonnegative"


class _UnitInterval(Constraint):
    def _check(self, xp, x):
        return (x >= 0) & (x <= 1)

    def feasible_like(self, x):
        return jnp.full_like(x, 0.5)

    def describe(self):
        return "a probability (a real number from 0 to 1)"

    def __repr__(self):
        return "unit_interval"


class interval(Constraint):
    """The closed interval ``[low, high]``; the bounds may be arrays or tracers."""

    _children = ("low", "high")

    def __init__(self, low, high):
        self.low = low
        self.high = high

    def _check(self, xp, x):
        return (x >= self.low) & (x <= self.high)

    def feasible_like(self, x):
        return jnp.zeros_like(x) + (jnp.asarray(self.low) + jnp.asarray(self.high)) / 2

    def describe(self):
        return f"a real number from {_fmt(self.low)} to {_fmt(self.high)}"

    def __repr__(self):
        return f"interval({_fmt(self.low)}, {_fmt(self.high)})"


class greater_than(Constraint):
    """The open half-line ``(low, inf)``."""

    _children = ("low",)

    def __init__(self, low):
        self.low = low

    def _check(self, xp, x):
        return (x > self.low) & xp.isfinite(x)

    def feasible_like(self, x):
        return jnp.zeros_like(x) + jnp.asarray(self.low) + 1

    def describe(self):
        return f"a real number greater than {_fmt(self.low)}"

    def __repr__(self):
        return f"greater_than({_fmt(self.low)})"


class less_than(Constraint):
    """The open half-line ``(-inf, high)``."""

    _children = ("high",)

    def __init__(self, high):
        self.high = high

    def _check(self, xp, x):
        return (x < self.high) & xp.isfinite(x)

    def feasible_like(self, x):
        return jnp.zeros_like(x) + jnp.asarray(self.high) - 1

    def describe(self):
        return f"a real number less than {_fmt(self.high)}"

    def __repr__(self):
        return f"less_than({_fmt(self.high)})"


# ---------------------------------------------------------------------------
# Vector sets


def _sum_tolerance(x, k):
    """How far from 1 the sum of ``k`` rounded probabilities may honestly be."""
    eps = float(np.finfo(x.dtype).eps) if np.issubdtype(x.dtype, np.floating) else 1e-7
    return max(1e-6, 8 * k * eps)


class _Simplex(Constraint):
    event_dim = 1

    def _check(self, xp, x):
        k = x.shape[-1] if x.ndim else 1
        total = xp.sum(x, axis=-1)
        return _all_last(xp, x >= 0, 1) & (xp.abs(total - 1) <= _sum_tolerance(x, k))

    def feasible_like(self, x):
        x = jnp.asarray(x)
        return jnp.full_like(x, 1.0 / x.shape[-1])

    def describe(self):
        return "a probability vector that sums to 1"

    def __repr__(self):
        return "simplex"


class _Ordered(Constraint):
    event_dim = 1

    def _check(self, xp, x):
        return _all_last(xp, xp.isfinite(x), 1) & _all_last(xp, x[..., 1:] > x[..., :-1], 1)

    def feasible_like(self, x):
        x = jnp.asarray(x)
        return jnp.zeros_like(x) + jnp.arange(x.shape[-1], dtype=x.dtype)

    def describe(self):
        return "a vector of real numbers in strictly increasing order"

    def __repr__(self):
        return "ordered"


class _PositiveOrdered(Constraint):
    event_dim = 1

    def _check(self, xp, x):
        return ordered._check(xp, x) & _all_last(xp, x > 0, 1)

    def feasible_like(self, x):
        x = jnp.asarray(x)
        return jnp.zeros_like(x) + jnp.arange(1, x.shape[-1] + 1, dtype=x.dtype)

    def describe(self):
        return "a vector of positive real numbers in strictly increasing order"

    def __repr__(self):
        return "positive_ordered"


# ---------------------------------------------------------------------------
# Discrete sets


class _Boolean(Constraint):
    is_discrete = True

    def _check(self, xp, x):
        return (x == 0) | (x == 1)

    def feasible_like(self, x):
        return jnp.zeros_like(x)

    def describe(self):
        return "0 or 1"

    def __repr__(self):
        return "boolean"


class _NonnegativeInteger(Constraint):
    is_discrete = True

    def _check(self, xp, x):
        return _is_integer(xp, x) & (x >= 0)

    def feasible_like(self, x):
        return jnp.zeros_like(x)

    def describe(self):
        return "a nonnegative integer (0, 1, 2, ...)"

    def __repr__(self):
        return "nonnegative_integer"


class integer_interval(Constraint):
    """The integers ``low, low + 1, ..., high`` (both ends included)."""

    is_discrete = True
    _children = ("low", "high")

    def __init__(self, low, high):
        self.low = low
        self.high = high

    def _check(self, xp, x):
        return _is_integer(xp, x) & (x >= self.low) & (x <= self.high)

    def feasible_like(self, x):
        return jnp.zeros_like(x) + jnp.asarray(self.low).astype(jnp.asarray(x).dtype)

    def describe(self):
        return f"an integer from {_fmt(self.low)} to {_fmt(self.high)}"

    def __repr__(self):
        return f"integer_interval({_fmt(self.low)}, {_fmt(self.high)})"


# ---------------------------------------------------------------------------
# Matrix sets


def symmetric_now_or_nan(x, what: str = "the matrix"):
    """``x`` when it is symmetric (to rounding); a concrete ``x`` that is not raises a
    ParameterError naming ``what``; a traced one becomes NaN, which the methods report at the
    site that uses it. Cholesky factorisations read one triangle only, so a matrix that is not
    symmetric would otherwise stand for another one without a word."""
    from ppl.stdlib.errors import ParameterError

    if not is_tracer(x):
        if not bool(np.all(_symmetric(np, np.asarray(x)))):
            raise ParameterError(f"{what} must be symmetric, but it is not (A[i, j] != A[j, i])",
                                 hint="Symmetrise it ((A + transpose(A)) / 2) if the difference is rounding.")
        return x
    return nan_unless(_symmetric(jnp, x)[..., None, None], x)


def _symmetric(xp, x):
    scale = xp.max(xp.abs(x), axis=(-2, -1), keepdims=True)
    tol = 1e-6 if x.dtype == np.float32 else 1e-10
    return _all_last(xp, xp.abs(x - xp.swapaxes(x, -1, -2)) <= tol * (1 + scale), 2)


class _PositiveDefinite(Constraint):
    event_dim = 2

    def _check(self, xp, x):
        if not xp.issubdtype(x.dtype, xp.floating):
            x = x.astype(jnp.result_type(float))
        finite = _all_last(xp, xp.isfinite(x), 2)
        safe = xp.where(finite[..., None, None], x, xp.eye(x.shape[-1], dtype=x.dtype))
        eig = xp.linalg.eigvalsh(safe)
        return finite & _symmetric(xp, x) & xp.all(eig > 0, axis=-1)

    def feasible_like(self, x):
        x = jnp.asarray(x)
        return jnp.zeros_like(x) + jnp.eye(x.shape[-1], dtype=x.dtype)

    def describe(self):
        return "a symmetric positive-definite matrix"

    def __repr__(self):
        return "positive_definite"


class _LowerCholesky(Constraint):
    event_dim = 2

    def _check(self, xp, x):
        upper = xp.triu(x, k=1)
        diag = xp.diagonal(x, axis1=-2, axis2=-1)
        return _all_last(xp, xp.isfinite(x), 2) & _all_last(xp, upper == 0, 2) & xp.all(diag > 0, axis=-1)

    def feasible_like(self, x):
        x = jnp.asarray(x)
        return jnp.zeros_like(x) + jnp.eye(x.shape[-1], dtype=x.dtype)

    def describe(self):
        return "a lower-triangular matrix with a positive diagonal (a Cholesky factor)"

    def __repr__(self):
        return "lower_cholesky"


# ---------------------------------------------------------------------------
# The instances users write

real = _Real()
real_vector = _RealVector()
extended_real = _ExtendedReal()
positive = _Positive()
nonnegative = _Nonnegative()
unit_interval = _UnitInterval()
simplex = _Simplex()
ordered = _Ordered()
positive_ordered = _PositiveOrdered()
boolean = _Boolean()
nonnegative_integer = _NonnegativeInteger()
positive_definite = _PositiveDefinite()
lower_cholesky = _LowerCholesky()

"""Bijectors: smooth invertible maps from unconstrained reals onto a constraint's set.

Gradient-based inference (HMC, NUTS, VI) moves in unconstrained space ``u`` and
reads the model at ``x = forward(u)``; the density of ``u`` is the density of
``x`` times ``|det dx/du|``. These are Stan's transforms:

===================  =========================================================
constraint           ``forward(u)``
===================  =========================================================
real, real_vector    ``u``
positive,            ``exp(u)``
nonnegative
greater_than(a)      ``a + exp(u)``
less_than(b)         ``b - exp(u)``
interval(a, b),      ``a + (b - a) * sigmoid(u)``
unit_interval
simplex              stick-breaking, ``R^(K-1) -> K`` probabilities
ordered              ``x_0 = u_0``, ``x_k = x_(k-1) + exp(u_k)``
positive_ordered     ``x = cumsum(exp(u))``
lower_cholesky       lower triangle from ``u``, diagonal exponentiated
positive_definite    ``L L^T`` with ``L`` as for lower_cholesky
===================  =========================================================

Every bijector has ``forward``, ``inverse``, ``log_det_jacobian(u)`` (log |det dx/du|
summed over the event axes, so its shape is the batch shape),
``forward_and_log_det(u)``, ``unconstrained_shape(shape)`` and
``constrained_shape(shape)``. Laws: ``inverse(forward(u)) == u``;
``log_det_jacobian(u) == log|det jacobian(forward)(u)|`` (for the simplex, of the
map onto the first K-1 coordinates; for matrices, onto the lower triangle).

    >>> from ppl.stdlib.constraints import positive
    >>> float(biject_to(positive).forward(0.0))
    1.0
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import constraints as C
from .errors import ModelError, ShapeError
from .leaf_fields import LeafFields

__all__ = [
    "Bijector",
    "Identity",
    "Exp",
    "LowerBound",
    "UpperBound",
    "Interval",
    "StickBreaking",
    "Ordered",
    "PositiveOrdered",
    "CholeskyFactor",
    "Covariance",
    "biject_to",
]


def _float(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


class Bijector(LeafFields):
    """A map from unconstrained reals onto a constrained set; see the module docstring."""

    event_dim: int = 0  # trailing axes of the constrained value that form one element

    def forward(self, u):
        raise TypeError(f"{type(self).__name__} does not define forward")  # pragma: no cover

    def inverse(self, x):
        raise TypeError(f"{type(self).__name__} does not define inverse")  # pragma: no cover

    def log_det_jacobian(self, u):
        raise TypeError(f"{type(self).__name__} does not define log_det_jacobian")  # pragma: no cover

    def forward_and_log_det(self, u):
        """``(forward(u), log_det_jacobian(u))``."""
        return self.forward(u), self.log_det_jacobian(u)

    def unconstrained_shape(self, shape):
        return tuple(shape)

    def constrained_shape(self, shape):
        return tuple(shape)

    def __repr__(self):
        args = ", ".join(C._fmt(getattr(self, n)) for n in self._children)
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------------------
# Elementwise maps


class Identity(Bijector):
    """``x = u`` on scalars (``event_dim=0``) or vectors (``event_dim=1``)."""

    def __init__(self, event_dim: int = 0):
        self.event_dim = event_dim

    def _flatten(self):
        return (), self.event_dim

    @classmethod
    def _unflatten(cls, aux, children):
        return cls(aux)

    def forward(self, u):
        return _float(u)

    def inverse(self, x):
        return _float(x)

    def log_det_jacobian(self, u):
        u = _float(u)
        return jnp.zeros(u.shape[: u.ndim - self.event_dim], u.dtype)

    def __repr__(self):
        return f"Identity(event_dim={self.event_dim})"


class Exp(Bijector):
    """``x = exp(u)`` onto the positive reals; log|dx/du| = u."""

    def forward(self, u):
        return jnp.exp(_float(u))

    def inverse(self, x):
        return jnp.log(_float(x))

    def log_det_jacobian(self, u):
        return _float(u)


class LowerBound(Bijector):
    """``x = low + exp(u)`` onto ``(low, inf)``; log|dx/du| = u."""

    _children = ("low",)

    def __init__(self, low):
        self.low = low

    def forward(self, u):
        return self.low + jnp.exp(_float(u))

    def inverse(self, x):
        return jnp.log(_float(x) - self.low)

    def log_det_jacobian(self, u):
        u = _float(u)
        return u + jnp.zeros_like(jnp.asarray(self.low), dtype=u.dtype)


class UpperBound(Bijector):
    """``x = high - exp(u)`` onto ``(-inf, high)``; log|dx/du| = u."""

    _children = ("high",)

    def __init__(self, high):
        self.high = high

    def forward(self, u):
        return self.high - jnp.exp(_float(u))

    def inverse(self, x):
        return jnp.log(self.high - _float(x))

    def log_det_jacobian(self, u):
        u = _float(u)
        return u + jnp.zeros_like(jnp.asarray(self.high), dtype=u.dtype)


class Interval(Bijector):
    """``x = low + (high - low) sigmoid(u)`` onto ``(low, high)``.

    log|dx/du| = log(high - low) + log sigmoid(u) + log sigmoid(-u). The forward map
    measures from the nearer end so that values close to ``high`` keep their precision.
    """

    _children = ("low", "high")

    def __init__(self, low, high):
        self.low = low
        self.high = high

    def forward(self, u):
        u = _float(u)
        width = self.high - self.low
        return jnp.where(u > 0, self.high - width * jax.nn.sigmoid(-u), self.low + width * jax.nn.sigmoid(u))

    def inverse(self, x):
        x = _float(x)
        return jnp.log(x - self.low) - jnp.log(self.high - x)

    def log_det_jacobian(self, u):
        u = _float(u)
        return jnp.log(self.high - self.low) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)


# ---------------------------------------------------------------------------
# Vector maps


def _vector_shape(shape, what: str) -> tuple[int, ...]:
    shape = tuple(shape)
    if len(shape) < 1:
        raise ShapeError(f"{what} needs a vector, but got a value of shape {shape}")
    return shape


class StickBreaking(Bijector):
    """Stan's stick-breaking map from ``R^(K-1)`` onto the ``K``-simplex.

    ``z_k = sigmoid(u_k - log(K-1-k))``, ``x_k = z_k (1 - sum_{j<k} x_j)`` for
    ``k < K-1`` and ``x_(K-1)`` the rest of the stick; ``u = 0`` maps to the uniform
    vector. Computed in log space: log|det| = sum_k log z_k + log(1-z_k) + log rest_k.
    """

    event_dim = 1

    @staticmethod
    def _pieces(u):
        u = _float(u)
        k = u.shape[-1] + 1
        t = u - jnp.log(jnp.arange(k - 1, 0, -1, dtype=u.dtype))
        log_z = jax.nn.log_sigmoid(t)
        log_1mz = jax.nn.log_sigmoid(-t)
        # log of the stick left before piece k: exclusive cumulative sum of log(1 - z)
        log_rest = jnp.concatenate([jnp.zeros_like(t[..., :1]), jnp.cumsum(log_1mz, axis=-1)], axis=-1)
        return log_z, log_1mz, log_rest

    def forward(self, u):
        log_z, _, log_rest = self._pieces(u)
        head = jnp.exp(log_rest[..., :-1] + log_z)
        return jnp.concatenate([head, jnp.exp(log_rest[..., -1:])], axis=-1)

    def inverse(self, x):
        x = _float(x)
        k = x.shape[-1]
        rest = jnp.flip(jnp.cumsum(jnp.flip(x, -1), axis=-1), -1)  # rest_j = sum_{i >= j} x_i
        return jnp.log(x[..., :-1]) - jnp.log(rest[..., 1:]) + jnp.log(jnp.arange(k - 1, 0, -1, dtype=x.dtype))

    def log_det_jacobian(self, u):
        log_z, log_1mz, log_rest = self._pieces(u)
        return jnp.sum(log_z + log_1mz + log_rest[..., :-1], axis=-1)

    def unconstrained_shape(self, shape):
        shape = _vector_shape(shape, "the simplex transform")
        return shape[:-1] + (shape[-1] - 1,)

    def constrained_shape(self, shape):
        shape = _vector_shape(shape, "the simplex transform")
        return shape[:-1] + (shape[-1] + 1,)


class Ordered(Bijector):
    """``x_0 = u_0``, ``x_k = x_(k-1) + exp(u_k)``: strictly increasing vectors.

    log|det| = sum_(k>=1) u_k.
    """

    event_dim = 1

    def forward(self, u):
        u = _float(u)
        steps = jnp.concatenate([u[..., :1], jnp.exp(u[..., 1:])], axis=-1)
        return jnp.cumsum(steps, axis=-1)

    def inverse(self, x):
        x = _float(x)
        return jnp.concatenate([x[..., :1], jnp.log(jnp.diff(x, axis=-1))], axis=-1)

    def log_det_jacobian(self, u):
        return jnp.sum(_float(u)[..., 1:], axis=-1)


class PositiveOrdered(Bijector):
    """``x = cumsum(exp(u))``: strictly increasing positive vectors; log|det| = sum u."""

    event_dim = 1

    def forward(self, u):
        return jnp.cumsum(jnp.exp(_float(u)), axis=-1)

    def inverse(self, x):
        x = _float(x)
        return jnp.log(jnp.diff(x, axis=-1, prepend=jnp.zeros_like(x[..., :1])))

    def log_det_jacobian(self, u):
        return jnp.sum(_float(u), axis=-1)


# ---------------------------------------------------------------------------
# Matrix maps (unconstrained side: a vector of the K(K+1)/2 lower-triangle entries)


def _matrix_size(m: int) -> int:
    k = (math.isqrt(8 * m + 1) - 1) // 2
    if k * (k + 1) // 2 != m:
        raise ShapeError(f"a vector of length {m} is not the lower triangle of a square matrix")
    return k


def _lower_from_vector(u):
    """The lower-triangular matrix (rows in order) with its diagonal exponentiated."""
    u = _float(u)
    k = _matrix_size(u.shape[-1])
    rows, cols = np.tril_indices(k)
    on_diag = rows == cols
    entries = jnp.where(on_diag, jnp.exp(jnp.where(on_diag, u, 0)), u)
    return jnp.zeros(u.shape[:-1] + (k, k), u.dtype).at[..., rows, cols].set(entries)


def _vector_from_lower(lower):
    k = lower.shape[-1]
    rows, cols = np.tril_indices(k)
    entries = lower[..., rows, cols]
    return jnp.where(rows == cols, jnp.log(jnp.where(rows == cols, entries, 1)), entries)


def _diag_u(u):
    k = _matrix_size(u.shape[-1])
    rows, cols = np.tril_indices(k)
    return _float(u)[..., np.flatnonzero(rows == cols)]


class _MatrixBijector(Bijector):
    event_dim = 2

    def unconstrained_shape(self, shape):
        shape = tuple(shape)
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ShapeError(f"{type(self).__name__} needs square matrices, but got shape {shape}")
        k = shape[-1]
        return shape[:-2] + (k * (k + 1) // 2,)

    def constrained_shape(self, shape):
        shape = _vector_shape(shape, type(self).__name__)
        k = _matrix_size(shape[-1])
        return shape[:-1] + (k, k)


class CholeskyFactor(_MatrixBijector):
    """Vector -> lower-triangular ``L`` with ``L_kk = exp(u_kk)``; log|det| = sum of diagonal u."""

    def forward(self, u):
        return _lower_from_vector(u)

    def inverse(self, x):
        return _vector_from_lower(_float(x))

    def log_det_jacobian(self, u):
        return jnp.sum(_diag_u(u), axis=-1)


class Covariance(_MatrixBijector):
    """Vector -> ``L L^T`` (``L`` as in CholeskyFactor): positive-definite matrices.

    log|det| (onto the lower triangle) = K log 2 + sum_k (K - k + 1) u_kk, k = 0..K-1.
    """

    def forward(self, u):
        lower = _lower_from_vector(u)
        return lower @ jnp.swapaxes(lower, -1, -2)

    def inverse(self, x):
        return _vector_from_lower(jnp.linalg.cholesky(_float(x)))

    def log_det_jacobian(self, u):
        d = _diag_u(u)
        k = d.shape[-1]
        powers = jnp.arange(k + 1, 1, -1, dtype=d.dtype)
        return k * math.log(2.0) + jnp.sum(powers * d, axis=-1)


# ---------------------------------------------------------------------------
# biject_to

_REGISTRY = {
    type(C.real): lambda c: Identity(0),
    type(C.real_vector): lambda c: Identity(1),
    type(C.positive): lambda c: Exp(),
    type(C.nonnegative): lambda c: Exp(),
    type(C.unit_interval): lambda c: Interval(0.0, 1.0),
    C.interval: lambda c: Interval(c.low, c.high),
    C.greater_than: lambda c: LowerBound(c.low),
    C.less_than: lambda c: UpperBound(c.high),
    type(C.simplex): lambda c: StickBreaking(),
    type(C.ordered): lambda c: Ordered(),
    type(C.positive_ordered): lambda c: PositiveOrdered(),
    type(C.lower_cholesky): lambda c: CholeskyFactor(),
    type(C.positive_definite): lambda c: Covariance(),
}


def biject_to(constraint) -> Bijector:
    """The bijector from unconstrained reals onto ``constraint``'s set.

    Raises ModelError for discrete sets (they have no smooth parameterisation).
    """
    make = _REGISTRY.get(type(constraint))
    if make is not None:
        return make(constraint)
    if getattr(constraint, "is_discrete", False):
        raise ModelError(
            f"the discrete set {constraint!r} ({constraint.describe()}) cannot be mapped "
            "onto unconstrained real numbers",
            hint="Marginalise the discrete choice (enumeration) or use a method that samples it directly, "
            "such as Gibbs, importance sampling or SMC.",
        )
    raise ModelError(
        f"there is no transform onto {constraint!r} from unconstrained real numbers",
        hint="Use a constraint from ppl.stdlib.constraints: real, positive, interval, simplex, ordered, ...",
    )

"""Multivariate families (event shape ``(K,)``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve, solve_triangular
from jax.scipy.special import gammaln, xlogy

from .. import constraints as C
from ..errors import ParameterError, ShapeError
from .base import Distribution, as_float, check_param, is_concrete

__all__ = ["Dirichlet", "MultivariateNormal"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Dirichlet(Distribution):
    """Dirichlet(concentration a) on the K-simplex (K = a.shape[-1]):
    log p(x) = sum_k (a_k - 1) log x_k + lgamma(sum_k a_k) - sum_k lgamma(a_k)."""

    arg_constraints = {"concentration": C.positive}
    param_event_dims = {"concentration": 1}
    support = C.simplex
    reparameterized = True

    def __init__(self, concentration, *, validate=True):
        super().__init__({"concentration": as_float(concentration)}, validate=validate)

    @property
    def event_shape(self):
        return tuple(self.concentration.shape[-1:])

    def _sample(self, key, shape):
        alpha = jnp.broadcast_to(self.concentration, shape + self.event_shape)
        return jax.random.dirichlet(key, alpha, shape, alpha.dtype)

    def _log_density(self, x):
        a = self.concentration
        return jnp.sum(xlogy(a - 1, x), axis=-1) + gammaln(jnp.sum(a, axis=-1)) - jnp.sum(gammaln(a), axis=-1)

    @property
    def mean(self):
        a = self.concentration
        return a / jnp.sum(a, axis=-1, keepdims=True)

    @property
    def variance(self):
        a = self.concentration
        total = jnp.sum(a, axis=-1, keepdims=True)
        return a * (total - a) / (total**2 * (total + 1))


def _precision_to_scale_tril(precision):
    """The lower Cholesky factor of ``inv(precision)`` without forming the inverse.

    With J the reversal permutation, cholesky(J P J) = Lf gives P = U U^T for the upper
    triangular U = J Lf J, so inv(P) = U^-T U^-1 and its lower factor is U^-T.
    """
    lf = jnp.linalg.cholesky(jnp.flip(precision, (-2, -1)))
    upper = jnp.flip(lf, (-2, -1))
    eye = jnp.broadcast_to(jnp.eye(precision.shape[-1], dtype=precision.dtype), precision.shape)
    return jnp.swapaxes(solve_triangular(upper, eye, lower=False), -1, -2)


class MultivariateNormal(Distribution):
    """MultivariateNormal(loc m, covariance S = L L^T), given by exactly one of covariance_matrix,
    scale_tril (L) or precision_matrix (inv(S)):
    log p(x) = -|L^-1 (x - m)|^2 / 2 - sum_k log L_kk - K log(2 pi) / 2."""

    arg_constraints = {"loc": C.real, "scale_tril": C.lower_cholesky}
    param_event_dims = {"loc": 1, "scale_tril": 2}
    support = C.real_vector
    reparameterized = True

    def __init__(self, loc=0.0, covariance_matrix=None, scale_tril=None, precision_matrix=None, *, validate=True):
        given = [
            (name, m)
            for name, m in (
                ("covariance_matrix", covariance_matrix),
                ("scale_tril", scale_tril),
                ("precision_matrix", precision_matrix),
            )
            if m is not None
        ]
        if len(given) != 1:
            found = "none" if not given else " and ".join(name for name, _ in given)
            raise ParameterError(
                "MultivariateNormal takes exactly one of covariance_matrix=, scale_tril= or "
                f"precision_matrix=, but got {found}"
            )
        name, matrix = given[0]
        matrix = as_float(matrix)
        if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2]:
            raise ShapeError(
                f"MultivariateNormal's {name} must be a square matrix (or a batch of them), "
                f"but got shape {tuple(matrix.shape)}"
            )
        if validate and name != "scale_tril":
            check_param("MultivariateNormal", name, matrix, C.positive_definite)
        if name != "scale_tril" and not is_concrete(matrix):  # known only in the run: NaN unless symmetric
            matrix = C.symmetric_now_or_nan(matrix, f"MultivariateNormal's {name}")
        if name == "covariance_matrix":
            matrix = jnp.linalg.cholesky(matrix)
        elif name == "precision_matrix":
            matrix = _precision_to_scale_tril(matrix)
        k = matrix.shape[-1]
        loc = as_float(loc)
        if loc.ndim == 0:
            loc = jnp.broadcast_to(loc, (k,))
        elif loc.shape[-1] != k:
            raise ShapeError(
                f"MultivariateNormal's loc has {loc.shape[-1]} entries in its last axis, "
                f"but its {name} is {k} x {k}"
            )
        static = {} if name == "scale_tril" else {"built_from": name}
        super().__init__({"loc": loc, "scale_tril": matrix}, static=static, validate=validate)

    def validate_params(self) -> None:
        built = self._static.get("built_from")
        lower = self._params["scale_tril"]
        if built and is_concrete(lower) and not bool(jnp.all(jnp.isfinite(lower))):
            raise ParameterError(f"MultivariateNormal's {built} must be a symmetric positive-definite matrix, "
                                 "but it is not (its Cholesky factorisation failed)")
        super().validate_params()

    @property
    def event_shape(self):
        return tuple(self.loc.shape[-1:])

    @property
    def covariance_matrix(self):
        lower = self.scale_tril
        return lower @ jnp.swapaxes(lower, -1, -2)

    @property
    def precision_matrix(self):
        lower = self.scale_tril
        eye = jnp.broadcast_to(jnp.eye(lower.shape[-1], dtype=lower.dtype), lower.shape)
        return cho_solve((lower, True), eye)

    def _sample(self, key, shape):
        eps = jax.random.normal(key, shape + self.event_shape, self.loc.dtype)
        return self.loc + jnp.einsum("...ij,...j->...i", self.scale_tril, eps)

    def _log_density(self, x):
        lower = self.scale_tril
        k = lower.shape[-1]
        diff = x - self.loc
        batch = jnp.broadcast_shapes(diff.shape[:-1], lower.shape[:-2])
        z = solve_triangular(
            jnp.broadcast_to(lower, batch + (k, k)), jnp.broadcast_to(diff, batch + (k,))[..., None], lower=True
        )[..., 0]
        half_log_det = jnp.sum(jnp.log(jnp.diagonal(lower, axis1=-2, axis2=-1)), axis=-1)
        return -0.5 * jnp.sum(z * z, axis=-1) - half_log_det - k * _HALF_LOG_2PI

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return jnp.sum(self.scale_tril**2, axis=-1)

"""Delta: a point mass, for deterministic sites."""

from __future__ import annotations

import jax.numpy as jnp

from .. import constraints as C
from .base import Distribution, format_param

__all__ = ["Delta"]


class Delta(Distribution):
    """Delta(value v, log_density w): all mass at v, with log p(x) = w if x == v else -inf.

    ``w`` (default 0) lets a deterministic site carry a weight. Samples equal ``v``; the
    distribution is discrete when ``v`` has an integer dtype.
    """

    arg_constraints = {"log_weight": C.extended_real}
    support = C.real
    reparameterized = True

    def __init__(self, value, log_density=0.0, *, validate=True):
        value = jnp.asarray(value)
        weight = jnp.asarray(log_density, dtype=jnp.result_type(float))
        discrete = bool(jnp.issubdtype(value.dtype, jnp.integer) or value.dtype == jnp.bool_)
        super().__init__({"value": value, "log_weight": weight}, static={"discrete": discrete}, validate=validate)

    @property
    def is_discrete(self):
        return self._static["discrete"]

    def _sample(self, key, shape):
        return jnp.broadcast_to(self.value, shape)

    def _log_density(self, x):
        return jnp.where(x == self.value, self.log_weight, -jnp.inf)

    @property
    def mean(self):
        return self.value

    @property
    def variance(self):
        return jnp.zeros(jnp.shape(self.value), jnp.result_type(self.value, float))

    def __repr__(self):
        return f"Delta(value={format_param(self.value)}, log_density={format_param(self.log_weight)})"

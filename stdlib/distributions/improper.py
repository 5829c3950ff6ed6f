"""Improper flat priors: log density 0 on a constraint's set, -inf outside it."""

from __future__ import annotations

import jax.numpy as jnp

from .. import constraints as C
from ..errors import ImproperSampleError, ParameterError, ShapeError
from .base import Distribution

__all__ = ["Flat", "flat"]


class Flat(Distribution):
    """Flat(support, shape): the improper prior with log p(x) = 0 on ``support``, -inf elsewhere.

    ``shape`` is the value's shape; its trailing ``support.event_dim`` axes are the event
    shape (``flat(simplex, shape=(3,))`` is over 3-vectors), the rest, broadcast with the
    constraint's bounds, the batch shape (``flat(interval(0, 1 - a))`` with a of shape (2,)
    has batch shape (2,)). It cannot be sampled from; inference must start elsewhere.
    """

    reparameterized = False

    def __init__(self, support, shape=(), *, validate=True):
        if not isinstance(support, C.Constraint):
            raise ParameterError(
                f"flat's support must be a constraint such as positive or interval(0, 1), but got {support!r}"
            )
        shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
        if len(shape) < support.event_dim:
            what = "vectors" if support.event_dim == 1 else "matrices"
            example = "(K,)" if support.event_dim == 1 else "(K, K)"
            raise ShapeError(
                f"flat({support!r}) is over {what}, so it needs shape={example}, but got shape={shape}"
            )
        self.__dict__["_params"] = {"support": support}
        self.__dict__["_static"] = {"shape": shape}
        if validate:
            self.validate_params()

    @property
    def support(self):
        return self._params["support"]

    @property
    def is_discrete(self):
        return self.support.is_discrete

    @property
    def event_shape(self):
        shape, ed = self._static["shape"], self.support.event_dim
        return shape[len(shape) - ed :]

    @property
    def batch_shape(self):
        shape, ed = self._static["shape"], self.support.event_dim
        try:
            return tuple(jnp.broadcast_shapes(shape[: len(shape) - ed], self.support.batch_shape))
        except ValueError:
            raise ShapeError(
                f"flat's shape {shape} does not broadcast with the shape {self.support.batch_shape} "
                f"of the bounds of {self.support!r}"
            ) from None

    def validate_params(self):
        """Check that ``shape`` broadcasts with the bounds (raises ShapeError if not)."""
        _ = self.batch_shape

    def sample(self, key, sample_shape=()):
        raise ImproperSampleError(
            "an improper flat prior cannot be sampled from; use an inference method that does not "
            "draw from the prior, such as NUTS",
            hint="Give NUTS or HMC an initial value, or replace the flat prior by a proper one.",
        )

    def _log_density(self, x):
        ed = self.support.event_dim
        return jnp.zeros(jnp.shape(x)[: jnp.ndim(x) - ed], jnp.result_type(x, float))

    def expand(self, batch_shape):
        batch_shape = tuple(batch_shape)
        try:
            ok = jnp.broadcast_shapes(self.batch_shape, batch_shape) == batch_shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"cannot expand flat with batch shape {self.batch_shape} to {batch_shape}")
        return self._from_parts({"support": self.support}, {"shape": batch_shape + self.event_shape})

    @property
    def mean(self):
        return self._undefined()

    @property
    def variance(self):
        return self._undefined()

    def _undefined(self):
        return jnp.full(self.batch_shape + self.event_shape, jnp.nan, jnp.result_type(float))

    def __repr__(self):
        shape = self._static["shape"]
        return f"flat({self.support!r})" if not shape else f"flat({self.support!r}, shape={shape})"


def flat(support, shape=()) -> Flat:
    """The improper flat prior on ``support``: ``flat(positive)``, ``flat(simplex, shape=(3,))``."""
    return Flat(support, shape)

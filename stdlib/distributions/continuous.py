"""Continuous univariate families (event shape ``()``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betaln, gammaln, xlog1py, xlogy

from .. import constraints as C
from ..errors import ParameterError
from .base import Distribution, as_float, is_concrete

__all__ = [
    "Normal",
    "HalfNormal",
    "Cauchy",
    "HalfCauchy",
    "StudentT",
    "LogNormal",
    "Exponential",
    "Gamma",
    "InverseGamma",
    "Beta",
    "Uniform",
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_PI = math.log(math.pi)


class Normal(Distribution):
    """Normal(loc, scale): log p(x) = -((x - loc)/scale)^2 / 2 - log scale - log(2 pi) / 2."""

    arg_constraints = {"loc": C.real, "scale": C.positive}
    support = C.real
    reparameterized = True

    def __init__(self, loc=0.0, scale=1.0, *, validate=True):
        super().__init__({"loc": as_float(loc), "scale": as_float(scale)}, validate=validate)

    def _sample(self, key, shape):
        return self.loc + self.scale * jax.random.normal(key, shape, self.loc.dtype)

    def _log_density(self, x):
        z = (x - self.loc) / self.scale
        return -0.5 * z * z - jnp.log(self.scale) - _HALF_LOG_2PI

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale**2


class HalfNormal(Distribution):
    """HalfNormal(scale) (|Normal(0, scale)|): log p(x) = log(2/pi)/2 - log scale - (x/scale)^2 / 2, x >= 0."""

    arg_constraints = {"scale": C.positive}
    support = C.nonnegative
    reparameterized = True

    def __init__(self, scale=1.0, *, validate=True):
        super().__init__({"scale": as_float(scale)}, validate=validate)

    def _sample(self, key, shape):
        return self.scale * jnp.abs(jax.random.normal(key, shape, self.scale.dtype))

    def _log_density(self, x):
        z = x / self.scale
        return 0.5 * math.log(2 / math.pi) - jnp.log(self.scale) - 0.5 * z * z

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self):
        return self.scale**2 * (1 - 2 / math.pi)


class Cauchy(Distribution):
    """Cauchy(loc, scale): log p(x) = -log pi - log scale - log(1 + ((x - loc)/scale)^2).

    Its mean and variance do not exist (NaN).
    """

    arg_constraints = {"loc": C.real, "scale": C.positive}
    support = C.real
    reparameterized = True

    def __init__(self, loc=0.0, scale=1.0, *, validate=True):
        super().__init__({"loc": as_float(loc), "scale": as_float(scale)}, validate=validate)

    def _sample(self, key, shape):
        return self.loc + self.scale * jax.random.cauchy(key, shape, self.loc.dtype)

    def _log_density(self, x):
        z = (x - self.loc) / self.scale
        return -_LOG_PI - jnp.log(self.scale) - jnp.log1p(z * z)

    @property
    def mean(self):
        return self._undefined()

    @property
    def variance(self):
        return self._undefined()


class HalfCauchy(Distribution):
    """HalfCauchy(scale) (|Cauchy(0, scale)|): log p(x) = log(2/pi) - log scale - log(1 + (x/scale)^2), x >= 0.

    Its mean and variance are infinite.
    """

    arg_constraints = {"scale": C.positive}
    support = C.nonnegative
    reparameterized = True

    def __init__(self, scale=1.0, *, validate=True):
        super().__init__({"scale": as_float(scale)}, validate=validate)

    def _sample(self, key, shape):
        return self.scale * jnp.abs(jax.random.cauchy(key, shape, self.scale.dtype))

    def _log_density(self, x):
        z = x / self.scale
        return math.log(2 / math.pi) - jnp.log(self.scale) - jnp.log1p(z * z)

    @property
    def mean(self):
        return jnp.full(self.batch_shape, jnp.inf, self.scale.dtype)

    @property
    def variance(self):
        return jnp.full(self.batch_shape, jnp.inf, self.scale.dtype)


class StudentT(Distribution):
    """StudentT(df, loc, scale): log p(x) = lgamma((df+1)/2) - lgamma(df/2) - log(df pi)/2 - log scale
    - (df+1)/2 log(1 + z^2/df), z = (x - loc)/scale.

    The mean is ``loc`` for df > 1 (else NaN); the variance is scale^2 df/(df-2) for df > 2,
    infinite for 1 < df <= 2 and NaN for df <= 1.
    """

    arg_constraints = {"df": C.positive, "loc": C.real, "scale": C.positive}
    support = C.real
    reparameterized = True

    def __init__(self, df, loc=0.0, scale=1.0, *, validate=True):
        super().__init__({"df": as_float(df), "loc": as_float(loc), "scale": as_float(scale)}, validate=validate)

    def _sample(self, key, shape):
        return self.loc + self.scale * jax.random.t(key, self.df, shape, self.loc.dtype)

    def _log_density(self, x):
        df = self.df
        z = (x - self.loc) / self.scale
        return (
            gammaln(0.5 * (df + 1))
            - gammaln(0.5 * df)
            - 0.5 * jnp.log(df * math.pi)
            - jnp.log(self.scale)
            - 0.5 * (df + 1) * jnp.log1p(z * z / df)
        )

    @property
    def mean(self):
        return jnp.where(self.df > 1, self.loc, jnp.nan)

    @property
    def variance(self):
        df = self.df
        finite = self.scale**2 * df / jnp.where(df > 2, df - 2, 1.0)
        return jnp.where(df > 2, finite, jnp.where(df > 1, jnp.inf, jnp.nan))


class LogNormal(Distribution):
    """LogNormal(loc, scale) (exp of Normal(loc, scale)):
    log p(x) = -((log x - loc)/scale)^2 / 2 - log scale - log(2 pi)/2 - log x, x > 0."""

    arg_constraints = {"loc": C.real, "scale": C.positive}
    support = C.positive
    reparameterized = True

    def __init__(self, loc=0.0, scale=1.0, *, validate=True):
        super().__init__({"loc": as_float(loc), "scale": as_float(scale)}, validate=validate)

    def _sample(self, key, shape):
        return jnp.exp(self.loc + self.scale * jax.random.normal(key, shape, self.loc.dtype))

    def _log_density(self, x):
        log_x = jnp.log(x)
        z = (log_x - self.loc) / self.scale
        return -0.5 * z * z - jnp.log(self.scale) - _HALF_LOG_2PI - log_x

    @property
    def mean(self):
        return jnp.exp(self.loc + 0.5 * self.scale**2)

    @property
    def variance(self):
        s2 = self.scale**2
        return jnp.expm1(s2) * jnp.exp(2 * self.loc + s2)


class Exponential(Distribution):
    """Exponential(rate): log p(x) = log rate - rate x, x >= 0."""

    arg_constraints = {"rate": C.positive}
    support = C.nonnegative
    reparameterized = True

    def __init__(self, rate=1.0, *, validate=True):
        super().__init__({"rate": as_float(rate)}, validate=validate)

    def _sample(self, key, shape):
        return jax.random.exponential(key, shape, self.rate.dtype) / self.rate

    def _log_density(self, x):
        return jnp.log(self.rate) - self.rate * x

    @property
    def mean(self):
        return 1 / self.rate

    @property
    def variance(self):
        return 1 / self.rate**2


class Gamma(Distribution):
    """Gamma(concentration a, rate b): log p(x) = a log b - lgamma(a) + (a-1) log x - b x, x >= 0."""

    arg_constraints = {"concentration": C.positive, "rate": C.positive}
    support = C.nonnegative
    reparameterized = True

    def __init__(self, concentration, rate=1.0, *, validate=True):
        super().__init__({"concentration": as_float(concentration), "rate": as_float(rate)}, validate=validate)

    def _sample(self, key, shape):
        a = jnp.broadcast_to(self.concentration, shape)
        return jax.random.gamma(key, a, shape, a.dtype) / self.rate

    def _log_density(self, x):
        a, b = self.concentration, self.rate
        return xlogy(a, b) - gammaln(a) + xlogy(a - 1, x) - b * x

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def variance(self):
        return self.concentration / self.rate**2


class InverseGamma(Distribution):
    """InverseGamma(concentration a, rate b) (1/X for X ~ Gamma(a, b); b is the scale of
    scipy.stats.invgamma): log p(x) = a log b - lgamma(a) - (a+1) log x - b/x, x > 0.

    The mean b/(a-1) exists for a > 1, the variance b^2/((a-1)^2 (a-2)) for a > 2 (else inf).
    """

    arg_constraints = {"concentration": C.positive, "rate": C.positive}
    support = C.positive
    reparameterized = True

    def __init__(self, concentration, rate=1.0, *, validate=True):
        super().__init__({"concentration": as_float(concentration), "rate": as_float(rate)}, validate=validate)

    def _sample(self, key, shape):
        a = jnp.broadcast_to(self.concentration, shape)
        return self.rate / jax.random.gamma(key, a, shape, a.dtype)

    def _log_density(self, x):
        a, b = self.concentration, self.rate
        return a * jnp.log(b) - gammaln(a) - (a + 1) * jnp.log(x) - b / x

    @property
    def mean(self):
        a = self.concentration
        return jnp.where(a > 1, self.rate / jnp.where(a > 1, a - 1, 1.0), jnp.inf)

    @property
    def variance(self):
        a = self.concentration
        safe = jnp.where(a > 2, a, 3.0)
        return jnp.where(a > 2, self.rate**2 / ((safe - 1) ** 2 * (safe - 2)), jnp.inf)


class Beta(Distribution):
    """Beta(concentration1 a, concentration0 b):
    log p(x) = (a-1) log x + (b-1) log(1-x) - log B(a, b), 0 <= x <= 1."""

    arg_constraints = {"concentration1": C.positive, "concentration0": C.positive}
    support = C.unit_interval
    reparameterized = True

    def __init__(self, concentration1, concentration0, *, validate=True):
        super().__init__(
            {"concentration1": as_float(concentration1), "concentration0": as_float(concentration0)},
            validate=validate,
        )

    def _sample(self, key, shape):
        a = jnp.broadcast_to(self.concentration1, shape)
        b = jnp.broadcast_to(self.concentration0, shape)
        return jax.random.beta(key, a, b, shape, a.dtype)

    def _log_density(self, x):
        a, b = self.concentration1, self.concentration0
        return xlogy(a - 1, x) + xlog1py(b - 1, -x) - betaln(a, b)

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def variance(self):
        a, b = self.concentration1, self.concentration0
        total = a + b
        return a * b / (total**2 * (total + 1))


class Uniform(Distribution):
    """Uniform(low, high): log p(x) = -log(high - low), low <= x <= high."""

    arg_constraints = {"low": C.real, "high": C.real}
    reparameterized = True

    def __init__(self, low=0.0, high=1.0, *, validate=True):
        super().__init__({"low": as_float(low), "high": as_float(high)}, validate=validate)

    def _validate_together(self):
        low, high = self.low, self.high
        if is_concrete(low) and is_concrete(high):
            bad = ~(np.asarray(high) > np.asarray(low))
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
                at = f" at index {index}" if index else ""
                raise ParameterError(
                    f"Uniform's high must be greater than low, but got low={np.asarray(low)[index].item()!r} "
                    f"and high={np.asarray(high)[index].item()!r}{at}"
                )

    @property
    def support(self):
        return C.interval(self.low, self.high)

    def _sample(self, key, shape):
        return self.low + (self.high - self.low) * jax.random.uniform(key, shape, self.low.dtype)

    def _log_density(self, x):
        return -jnp.log(self.high - self.low) + jnp.zeros_like(x)

    @property
    def mean(self):
        return 0.5 * (self.low + self.high)

    @property
    def variance(self):
        return (self.high - self.low) ** 2 / 12

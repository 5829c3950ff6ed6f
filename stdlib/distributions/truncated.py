"""Truncated(base, low=None, high=None): ``base`` conditioned on low <= X <= high.

NumPyro's TruncatedDistribution and Stan's ``T[low, high]``:

- ``log_density(x) = base.log_density(x) - log P(low <= X <= high)`` inside the bounds, -inf outside;
  the mass is computed from ``log_cdf``/``log_ccdf`` on whichever side keeps its digits
  (a normal truncated 10 standard deviations out is still normalised correctly);
- draws by the inverse CDF: ``u`` uniform on the bounds' probability range, ``x = icdf(u)``;
- the support is the base support intersected with the bounds (``interval``,
  ``greater_than``, ``less_than``; integers for a discrete base), so NUTS and VI get the
  right bijector.

A discrete base (Poisson, Binomial, ...) is truncated to the integers ``low..high`` (both
included): P(low <= K <= high) = F(high) - F(low - 1). A missing or infinite bound is no bound.
The base needs distribution functions (``base.has_cdf``); ``Truncated(...)`` builds a
``TruncatedContinuous`` or ``TruncatedDiscrete`` (so the class says whether it is discrete).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import constraints as C
from ..errors import ModelError, ParameterError
from .base import _DEFERRED, Distribution, as_float, format_param, is_concrete
from .base import params_ok as _params_ok
from .cdf import logdiffexp

__all__ = ["Truncated", "TruncatedContinuous", "TruncatedDiscrete"]

_LOG_HALF = float(np.log(0.5))


class _IntegerAtLeast(C.Constraint):
    """The integers ``low, low + 1, ...``."""

    is_discrete = True
    _children = ("low",)

    def __init__(self, low):
        self.low = low

    def _check(self, xp, x):
        return (xp.floor(x) == x) & (x >= self.low) & xp.isfinite(x)

    def feasible_like(self, x):
        return jnp.zeros_like(x) + jnp.asarray(self.low).astype(jnp.asarray(x).dtype)

    def describe(self):
        return f"an integer at least {self.low}"

    def __repr__(self):
        return f"integers_from({format_param(self.low)})"


def _given(bound, sign: float) -> bool:
    """Whether a bound was given: not None and not (concretely) infinite in its own direction."""
    if bound is None:
        return False
    if is_concrete(bound):
        b = np.asarray(bound)
        return not bool(np.all(b == sign * np.inf))
    return True


def _support_bounds(support):
    """(lower, upper) of a scalar support, None where unbounded."""
    if isinstance(support, (C.interval, C.integer_interval)):
        return support.low, support.high
    if isinstance(support, C.greater_than):
        return support.low, None
    if isinstance(support, C.less_than):
        return None, support.high
    if support in (C.positive, C.nonnegative, C.nonnegative_integer):
        return 0.0, None
    if support == C.unit_interval or support == C.boolean:
        return 0.0, 1.0
    return None, None


class Truncated(Distribution):
    """``base`` restricted to [low, high] and renormalised (see the module docstring)."""

    def __new__(cls, base=None, low=None, high=None, *, validate=True):
        if cls is Truncated:
            cls = TruncatedDiscrete if getattr(base, "is_discrete", False) else TruncatedContinuous
        return object.__new__(cls)

    def __init__(self, base, low=None, high=None, *, validate=True):
        if not isinstance(base, Distribution):
            raise ModelError(f"Truncated needs a distribution to truncate, but got {type(base).__name__}")
        if isinstance(base, Truncated):
            raise ModelError("this distribution is already truncated",
                             hint="Give both bounds at once: Truncated(base, low, high).")
        if tuple(base.event_shape) != ():
            raise ModelError(f"only univariate distributions can be truncated, but {type(base).__name__} "
                             f"has values of shape {tuple(base.event_shape)}")
        if not base.has_cdf:
            raise ModelError(
                f"{type(base).__name__} cannot be truncated: it has no cdf here",
                hint="Truncate a univariate family with distribution functions: normal, student_t, "
                "gamma, beta, poisson, ...",
            )
        has_low, has_high = _given(low, -1.0), _given(high, 1.0)
        dtype = jnp.result_type(float)
        low_arr = as_float(low) if has_low else jnp.asarray(-jnp.inf, dtype)
        high_arr = as_float(high) if has_high else jnp.asarray(jnp.inf, dtype)
        try:
            batch = jnp.broadcast_shapes(tuple(base.batch_shape), jnp.shape(low_arr), jnp.shape(high_arr))
        except ValueError:
            raise ParameterError(
                f"Truncated's bounds (shapes {jnp.shape(low_arr)} and {jnp.shape(high_arr)}) do not broadcast "
                f"with the batch shape {tuple(base.batch_shape)} of {type(base).__name__}"
            ) from None
        if tuple(base.batch_shape) != batch:
            base = base.expand(batch)
        self.__dict__["_params"] = {
            "base": base,
            "low": jnp.broadcast_to(low_arr, batch),
            "high": jnp.broadcast_to(high_arr, batch),
        }
        self.__dict__["_static"] = {"has_low": has_low, "has_high": has_high}
        if validate and not _DEFERRED.get():
            self.validate_params()

    # -- parameters -------------------------------------------------------------
    def validate_params(self) -> None:
        self.base.validate_params()
        low, high = self.low, self.high
        if self.has_low and self.has_high and is_concrete(low) and is_concrete(high):
            bad = ~(np.asarray(high) > np.asarray(low))
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
                at = f" at index {index}" if index else ""
                raise ParameterError(
                    f"a truncation's upper bound must be greater than its lower bound, but got "
                    f"low={np.asarray(low)[index].item()!r} and high={np.asarray(high)[index].item()!r}{at}"
                )
        for name, given, value in (("low", self.has_low, low), ("high", self.has_high, high)):
            if given and is_concrete(value) and np.isnan(np.asarray(value)).any():
                raise ParameterError(f"a truncation's {name} bound must be a number, but got NaN")

    def params_ok(self):
        """Whether the base's parameters are in their domains and low < high (a traced boolean)."""
        ok = _params_ok(self.base)
        if self.has_low and self.has_high:
            ok = ok & jnp.all(self.high > self.low)
        return ok

    @property
    def batch_shape(self):
        return tuple(self.base.batch_shape)

    @property
    def reparameterized(self):  # draws are icdf(u): differentiable wherever the base's cdf is
        return bool(self.base.reparameterized) and not self.is_discrete

    def expand(self, batch_shape):
        batch_shape = tuple(batch_shape)
        params = {"base": self.base.expand(batch_shape), "low": jnp.broadcast_to(self.low, batch_shape),
                  "high": jnp.broadcast_to(self.high, batch_shape)}
        return self._from_parts(params, dict(self._static))

    def __repr__(self):
        low = format_param(self.low) if self.has_low else "None"
        high = format_param(self.high) if self.has_high else "None"
        return f"Truncated({self.base!r}, low={low}, high={high})"

    # -- the mass inside the bounds ----------------------------------------------
    def _lower_edge(self):
        """The point whose cdf is the mass below the bounds (low; low - 1 for integers)."""
        return self.low - 1.0 if self.is_discrete else self.low

    def _tails(self):
        """(log F(lower edge), log F(high), log S(lower edge), log S(high)), with missing bounds exact."""
        b = self.base
        edge = self._lower_edge()
        zero = jnp.zeros(self.batch_shape, jnp.result_type(self.low))
        if self.has_low:
            safe = jnp.where(jnp.isfinite(edge), edge, 0.0)
            lf_lo = jnp.where(jnp.isneginf(edge), -jnp.inf, b.log_cdf(safe))
            ls_lo = jnp.where(jnp.isneginf(edge), 0.0, b.log_ccdf(safe))
        else:
            lf_lo, ls_lo = zero - jnp.inf, zero
        if self.has_high:
            safe = jnp.where(jnp.isfinite(self.high), self.high, 0.0)
            lf_hi = jnp.where(jnp.isposinf(self.high), 0.0, b.log_cdf(safe))
            ls_hi = jnp.where(jnp.isposinf(self.high), -jnp.inf, b.log_ccdf(safe))
        else:
            lf_hi, ls_hi = zero, zero - jnp.inf
        return lf_lo, lf_hi, ls_lo, ls_hi

    def _log_mass_parts(self):
        lf_lo, lf_hi, ls_lo, ls_hi = self._tails()
        # above the median work with survival probabilities, below it with the cdf
        upper = ls_lo < _LOG_HALF
        from_cdf = logdiffexp(lf_hi, jnp.minimum(lf_lo, lf_hi))
        from_sf = logdiffexp(ls_lo, jnp.minimum(ls_hi, ls_lo))
        return jnp.where(upper, from_sf, from_cdf), upper, (lf_lo, ls_hi)

    def log_mass(self):
        """log P(low <= X <= high) under the base distribution."""
        return self._log_mass_parts()[0]

    def _log_density(self, x):
        return self.base.log_density(x) - self.log_mass()

    def log_density(self, value):
        """As for the base, renormalised; NaN (not a density) where the bounds are traced and high <= low."""
        out = super().log_density(value)
        if self.has_low and self.has_high:
            out = jnp.where(self.high > self.low, out, jnp.nan)
        return out

    # -- sampling -------------------------------------------------------------------
    def _sample(self, key, shape):
        log_mass, upper, (lf_lo, ls_hi) = self._log_mass_parts()
        dtype = jnp.result_type(self.low)
        u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
        # lower side: log F(x) = log(F(lo) + u * mass); upper side: log S(x) = log(S(hi) + (1 - u) * mass)
        target = jnp.where(upper, jnp.logaddexp(ls_hi, jnp.log1p(-u) + log_mass),
                           jnp.logaddexp(lf_lo, jnp.log(u) + log_mass))
        x = self.base.expand(tuple(shape))._quantile(target, jnp.broadcast_to(upper, shape))
        lo = jnp.where(self.has_low, self.low, -jnp.inf)
        hi = jnp.where(self.has_high, self.high, jnp.inf)
        if self.is_discrete:
            return jnp.clip(x, jnp.maximum(lo, -(2.0**30)), jnp.minimum(hi, 2.0**30)).astype(jnp.int32)
        return jnp.clip(x, lo, hi)

    # -- moments ----------------------------------------------------------------------
    @property
    def mean(self):
        raise ModelError(f"the mean of a truncated {type(self.base).__name__} is not available in closed form",
                         hint="Estimate it from draws: d.sample(key, (10000,)).mean(0).")

    @property
    def variance(self):
        raise ModelError(f"the variance of a truncated {type(self.base).__name__} is not available in closed "
                         "form", hint="Estimate it from draws: d.sample(key, (10000,)).var(0).")


class TruncatedContinuous(Truncated):
    """A truncated continuous distribution (see ``Truncated``)."""

    is_discrete = False

    @property
    def support(self):
        base_low, base_high = _support_bounds(self.base.support)
        low = self.low if self.has_low else None
        high = self.high if self.has_high else None
        if base_low is not None:
            low = base_low if low is None else jnp.maximum(low, base_low)
        if base_high is not None:
            high = base_high if high is None else jnp.minimum(high, base_high)
        if low is not None and high is not None:
            return C.interval(low, high)
        if low is not None:
            return C.greater_than(low)
        if high is not None:
            return C.less_than(high)
        return self.base.support

    @property
    def mean(self):
        if type(self.base).__name__ != "Normal":
            return super().mean
        a, b, phi_a, phi_b, log_mass = self._normal_parts()
        return self.base.loc + self.base.scale * (phi_a - phi_b) / jnp.exp(log_mass)

    @property
    def variance(self):
        if type(self.base).__name__ != "Normal":
            return super().variance
        a, b, phi_a, phi_b, log_mass = self._normal_parts()
        z = jnp.exp(log_mass)
        a_phi = jnp.where(jnp.isfinite(a), a * phi_a, 0.0)
        b_phi = jnp.where(jnp.isfinite(b), b * phi_b, 0.0)
        return self.base.scale**2 * (1 + (a_phi - b_phi) / z - ((phi_a - phi_b) / z) ** 2)

    def _normal_parts(self):
        loc, scale = self.base.loc, self.base.scale
        a = jnp.where(self.has_low, (self.low - loc) / scale, -jnp.inf)
        b = jnp.where(self.has_high, (self.high - loc) / scale, jnp.inf)
        phi = lambda z: jnp.where(jnp.isfinite(z), jnp.exp(-0.5 * z * z) / jnp.sqrt(2 * jnp.pi), 0.0)  # noqa: E731
        return a, b, phi(a), phi(b), self.log_mass()


class TruncatedDiscrete(Truncated):
    """A truncated discrete distribution over the integers low..high (see ``Truncated``)."""

    is_discrete = True

    @property
    def support(self):
        base_low, base_high = _support_bounds(self.base.support)
        low = jnp.ceil(self.low) if self.has_low else None
        high = jnp.floor(self.high) if self.has_high else None
        if base_low is not None:
            low = base_low if low is None else jnp.maximum(low, base_low)
        if base_high is not None:
            high = base_high if high is None else jnp.minimum(high, base_high)
        if high is not None:
            return C.integer_interval(low if low is not None else -(2**31), high)
        return _IntegerAtLeast(low if low is not None else -(2**31))

    @property
    def has_enumerate_support(self):
        return self.has_high or bool(getattr(self.base, "has_enumerate_support", False))

    def _lower_edge(self):
        return jnp.ceil(self.low) - 1.0

    def enumerate_support(self, bound=None):
        """The integers 0..max(high) (values outside low..high have probability 0 there); without an
        upper bound, as the base distribution enumerates (``bound`` for an infinite one)."""
        if self.has_high:
            high = self.high
            if not is_concrete(high):
                raise ModelError("a truncation bound depends on a traced value, so the support cannot be enumerated",
                                 hint="Give the bounds as data (concrete numbers) to enumerate this choice.")
            top = int(np.floor(np.max(np.asarray(high))))
            return self._enumerate_range(max(top, 0) + 1)
        return self.base.enumerate_support(bound)

"""The ``Distribution`` base class: parameters as pytree leaves, shapes, masking, validation.

A distribution over values of shape ``batch_shape + event_shape`` is a JAX pytree whose
leaves are its parameters (broadcast to a common batch shape when it is built) and whose
static data (which of ``probs``/``logits`` was given, a Flat's shape, ...) is aux data, so
it can be passed into and returned from ``jit``, ``vmap`` and ``grad``.

Subclasses supply ``_sample(key, shape)``, ``_log_density(value)`` (for values inside the
support), ``mean`` and ``variance``; the base class supplies shape checks, the ``-inf``
outside the support (with gradients kept finite there), ``expand``, parameter validation
and ``repr``. Law: ``log_density(x) == -inf`` exactly when ``not in_support(x)``.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ppl.stdlib.jax_compat import is_tracer

from .. import constraints as C
from ..constraint_base import format_concrete
from ..errors import ModelError, ParameterError, ShapeError

__all__ = ["is_concrete", "Distribution", "as_float", "check_param", "format_param", "probs_or_logits", "params_ok"]


_DEFERRED: ContextVar[bool] = ContextVar("ppl_defer_validation", default=False)


@contextlib.contextmanager
def deferred_validation():
    """Inside a model run, parameters are checked at the random choice that uses the
    distribution (so the error can name the site), not when the distribution is built."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def is_concrete(x) -> bool:
    """True when ``x`` has a value now (it is not a JAX tracer), so it can be checked."""
    return not is_tracer(x)


def as_float(x):
    """``x`` as a JAX array of a floating dtype (integers become the default float)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def format_param(x) -> str:
    """A parameter as a person would read it."""
    if isinstance(x, C.Constraint):
        return repr(x)
    if not is_concrete(x):
        return f"<traced {jnp.asarray(x).dtype}{list(jnp.shape(x))}>"
    return format_concrete(x, 8)


def check_param(dist: str, name: str, value, constraint) -> None:
    """Raise ParameterError if the concrete ``value`` of ``dist``'s parameter ``name``
    is outside ``constraint``; values being traced are not checked."""
    if not is_concrete(value):
        return
    ok = constraint.check_now(value)
    if ok.all():
        return
    a = np.asarray(value)
    if a.ndim <= constraint.event_dim:
        found = format_param(a)
    else:
        index = tuple(int(i) for i in np.argwhere(~np.broadcast_to(ok, a.shape[: a.ndim - constraint.event_dim]))[0])
        found = f"{format_param(a[index])} at index {index} (of an array of shape {a.shape})"
    raise ParameterError(f"{dist}'s {name} must be {constraint.describe()}, but got {found}")


def probs_or_logits(dist: str, probs, logits) -> tuple[str, Any]:
    """The one of ``probs=``/``logits=`` that was given, as ``(name, float array)``."""
    if (probs is None) == (logits is None):
        given = "both" if probs is not None else "neither"
        raise ParameterError(f"{dist} takes exactly one of probs= or logits=, but got {given}")
    return ("probs", as_float(probs)) if probs is not None else ("logits", as_float(logits))


def params_ok(d):
    """Whether every parameter of ``d`` lies in its domain, as a traced boolean (a composite
    distribution, such as Truncated or Mixture, answers through its own ``params_ok``)."""
    own = getattr(d, "params_ok", None)
    if callable(own):
        return own()
    ok = jnp.asarray(True)
    for name, constraint in type(d).arg_constraints.items():
        if name in d._params:
            ok = ok & jnp.all(constraint.check(d._params[name]))
    return ok


def _quantile_coordinate(d):
    """(map v -> x, low v, high v): an increasing map from a bracket of v onto the support of d,
    wide enough for quantiles down to about 1e-35 in float32, for the bisection of ``icdf``."""
    support = d.support
    if isinstance(support, C.interval):
        low, high = jnp.asarray(support.low), jnp.asarray(support.high)
        return (lambda v: low + (high - low) * jax.nn.sigmoid(v)), -80.0, 80.0
    if support in (C.positive, C.nonnegative):
        return jnp.exp, -80.0, 80.0
    if support == C.unit_interval:
        return jax.nn.sigmoid, -80.0, 80.0
    loc = jnp.asarray(getattr(d, "loc", 0.0)) if "loc" in d._params else 0.0
    scale = jnp.asarray(getattr(d, "scale", 1.0)) if "scale" in d._params else 1.0
    return (lambda v: loc + scale * jnp.sinh(v)), -45.0, 45.0


class Distribution:
    """A probability distribution over arrays of shape ``batch_shape + event_shape``.

    Interface: ``batch_shape``, ``event_shape``, ``support``, ``is_discrete``,
    ``has_enumerate_support``, ``reparameterized``, ``sample(key, sample_shape)``,
    ``log_density(value)``, ``enumerate_support(bound=None)``, ``expand(batch_shape)``,
    ``mean``, ``variance``, ``in_support(value)``, ``validate_params()``.
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}
    param_event_dims: ClassVar[dict[str, int]] = {}  # trailing parameter axes that are not batch axes
    support: Any = C.real
    is_discrete: ClassVar[bool] = False
    has_enumerate_support: ClassVar[bool] = False
    reparameterized: ClassVar[bool] = False

    # -- pytree -------------------------------------------------------------

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, cls._tree_flatten, cls._tree_unflatten)

    def _tree_flatten(self):
        params = self.__dict__["_params"]
        static = tuple(sorted(self.__dict__["_static"].items()))
        return tuple(params.values()), (tuple(params.keys()), static)

    @classmethod
    def _tree_unflatten(cls, aux, children):
        names, static = aux
        return cls._from_parts(dict(zip(names, children)), dict(static))

    @classmethod
    def _from_parts(cls, params: dict, static: dict):
        obj = object.__new__(cls)
        obj.__dict__["_params"] = params
        obj.__dict__["_static"] = static
        return obj

    def __getattr__(self, name):
        d = self.__dict__
        if name in d.get("_params", ()):
            return d["_params"][name]
        if name in d.get("_static", ()):
            return d["_static"][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- construction -------------------------------------------------------

    def __init__(self, params: dict, *, static: dict | None = None, validate: bool = True):
        self.__dict__["_params"] = self._broadcast_params(dict(params))
        self.__dict__["_static"] = dict(static or {})
        if validate and not _DEFERRED.get():
            self.validate_params()

    def _broadcast_params(self, params: dict) -> dict:
        name = type(self).__name__
        batches = []
        for key, value in params.items():
            ed = self.param_event_dims.get(key, 0)
            if jnp.ndim(value) < ed:
                axes = "one axis" if ed == 1 else f"{ed} axes"
                raise ShapeError(f"{name}'s {key} must have at least {axes}, but got shape {jnp.shape(value)}")
            batches.append(jnp.shape(value)[: jnp.ndim(value) - ed])
        try:
            batch = jnp.broadcast_shapes(*batches)
        except ValueError:
            shapes = ", ".join(f"{k} {jnp.shape(v)}" for k, v in params.items())
            raise ShapeError(f"{name}'s parameters do not broadcast together: {shapes}") from None
        out = {}
        for key, value in params.items():
            ed = self.param_event_dims.get(key, 0)
            shape = batch + jnp.shape(value)[jnp.ndim(value) - ed :]
            out[key] = value if jnp.shape(value) == shape else jnp.broadcast_to(value, shape)
        return out

    def validate_params(self) -> None:
        """Check every concrete parameter against its constraint (ParameterError if not)."""
        name = type(self).__name__
        for key, constraint in self.arg_constraints.items():
            if key in self._params:
                check_param(name, key, self._params[key], constraint)
        self._validate_together()

    def _validate_together(self) -> None:
        """Conditions that join several parameters (``Uniform``: low < high)."""

    # -- shapes -------------------------------------------------------------

    @property
    def batch_shape(self) -> tuple[int, ...]:
        key, value = next(iter(self._params.items()))
        ed = self.param_event_dims.get(key, 0)
        return tuple(jnp.shape(value)[: jnp.ndim(value) - ed])

    @property
    def event_shape(self) -> tuple[int, ...]:
        return ()

    # -- sampling -----------------------------------------------------------

    def sample(self, key, sample_shape=()):
        """Draws of shape ``sample_shape + batch_shape + event_shape``."""
        if isinstance(sample_shape, (int, np.integer)):
            sample_shape = (int(sample_shape),)
        return self._sample(key, tuple(sample_shape) + self.batch_shape)

    def _sample(self, key, shape):
        raise TypeError(f"{type(self).__name__} does not define _sample")  # pragma: no cover

    # -- densities ----------------------------------------------------------

    def _value_batch_shape(self, value) -> tuple[int, ...]:
        n = len(self.event_shape)
        if value.ndim < n or tuple(value.shape[value.ndim - n :]) != self.event_shape:
            raise ShapeError(
                f"{type(self).__name__} is over values with event shape {self.event_shape}, "
                f"but got a value of shape {tuple(value.shape)}"
            )
        vb = tuple(value.shape[: value.ndim - n])
        try:
            return jnp.broadcast_shapes(vb, self.batch_shape)
        except ValueError:
            raise ShapeError(
                f"a value with batch shape {vb} does not broadcast with the batch shape "
                f"{self.batch_shape} of {type(self).__name__}"
            ) from None

    def _as_value(self, value):
        value = jnp.asarray(value)
        return value if self.is_discrete else as_float(value)

    def log_density(self, value):
        """log p(value); ``-inf`` outside the support. Shape: value's batch axes broadcast with batch_shape."""
        value = self._as_value(value)
        out_shape = self._value_batch_shape(value)
        support = self.support
        ok = support.check(value)
        ok_event = jnp.reshape(ok, jnp.shape(ok) + (1,) * support.event_dim)
        safe = jnp.where(ok_event, value, support.feasible_like(value))
        lp = self._log_density(safe)
        return jnp.broadcast_to(jnp.where(ok, lp, -jnp.inf), out_shape)

    def log_density_in_support(self, value):
        """``log_density(value)`` for a value already known to lie in the support, without the support
        test (the compiled engine uses it for data checked once before a run). Law: equal to
        ``log_density(value)`` wherever ``in_support(value)``; unspecified elsewhere."""
        if type(self).log_density is not Distribution.log_density:
            return self.log_density(value)  # a family with its own log_density keeps its own checks
        value = self._as_value(value)
        return jnp.broadcast_to(self._log_density(value), self._value_batch_shape(value))

    def _log_density(self, value):
        raise TypeError(f"{type(self).__name__} does not define _log_density")  # pragma: no cover

    def in_support(self, value):
        """Whether each value lies in the support (shape as for log_density)."""
        value = self._as_value(value)
        return jnp.broadcast_to(self.support.check(value), self._value_batch_shape(value))

    # -- distribution functions -----------------------------------------------

    @property
    def has_cdf(self) -> bool:
        """Whether ``cdf``/``log_cdf``/``log_ccdf``/``icdf`` are defined for this family."""
        from .cdf import family_of

        return family_of(self) is not None

    def _family(self, what: str):
        from .cdf import family_of

        fam = family_of(self)
        if fam is None:
            raise ModelError(
                f"{type(self).__name__} has no {what} here",
                hint="Distribution functions (cdf, log_cdf, log_ccdf, icdf) exist for the univariate "
                "families: Normal, StudentT, Gamma, Beta, Poisson, Binomial, ...",
            )
        return fam

    def _cdf_value(self, value):
        value = as_float(jnp.asarray(value))
        return jnp.broadcast_to(value, jnp.broadcast_shapes(jnp.shape(value), self.batch_shape))

    def _or_nan(self, out):
        """``out``, or NaN where the parameters are outside their domains (traced, so not raised)."""
        return jnp.where(params_ok(self), out, jnp.nan)

    def cdf(self, value):
        """P(X <= value), elementwise over a batch (for a discrete family, of floor(value))."""
        return self._or_nan(self._family("cdf").cdf(self, self._cdf_value(value)))

    def log_cdf(self, value):
        """log P(X <= value), computed stably in the lower tail (Stan's ``_lcdf``)."""
        return self._or_nan(self._family("log_cdf").log_cdf(self, self._cdf_value(value)))

    def log_ccdf(self, value):
        """log P(X > value), computed stably in the upper tail (Stan's ``_lccdf``)."""
        return self._or_nan(self._family("log_ccdf").log_ccdf(self, self._cdf_value(value)))

    def icdf(self, p):
        """The quantile function: the x with P(X <= x) = p (for a discrete family, the smallest
        integer with P(X <= k) >= p). Closed form where one exists, else solved by bisection
        (differentiable through the implicit function theorem)."""
        self._family("icdf")
        p = self._cdf_value(p)
        upper = p > 0.5
        log_p = jnp.where(upper, jnp.log1p(-p), jnp.log(p))
        q = self._quantile(log_p, upper)
        return q if self.is_discrete else self._or_nan(q)

    def _quantile(self, log_p, upper):
        """The x with log F(x) = log_p, or log S(x) = log_p where ``upper`` (broadcast arrays)."""
        from .cdf import bisect_quantile

        fam = self._family("icdf")
        log_p, upper = jnp.broadcast_arrays(jnp.asarray(log_p), jnp.asarray(upper))
        if fam.icdf is not None and fam.isf is not None and not self.is_discrete:
            q = jnp.exp(log_p)
            return jnp.where(upper, fam.isf(self, q), fam.icdf(self, q))
        if self.is_discrete:
            lo = jnp.full(log_p.shape, -1.0, log_p.dtype)
            hi = jnp.full(log_p.shape, 2.0**30, log_p.dtype)
            k = bisect_quantile(lambda x: fam.log_cdf(self, x), lambda x: fam.log_ccdf(self, x),
                                log_p, lo, hi, upper, integer=True)
            return k.astype(jnp.int32)
        to_x, v_lo, v_hi = _quantile_coordinate(self)
        lcdf = lambda v: fam.log_cdf(self, to_x(v))  # noqa: E731
        lccdf = lambda v: fam.log_ccdf(self, to_x(v))  # noqa: E731
        lo = jnp.full(log_p.shape, v_lo, log_p.dtype)
        hi = jnp.full(log_p.shape, v_hi, log_p.dtype)
        x = jax.lax.stop_gradient(to_x(bisect_quantile(lcdf, lccdf, jax.lax.stop_gradient(log_p), lo, hi, upper)))
        # implicit differentiation: G(x, params) = log_p with G = log F (or log S)
        g = jnp.where(upper, fam.log_ccdf(self, x), fam.log_cdf(self, x)) - log_p
        slope = jnp.exp(self.log_density(x) - jnp.where(upper, fam.log_ccdf(self, x), fam.log_cdf(self, x)))
        slope = jnp.where(upper, -slope, slope)
        slope = jax.lax.stop_gradient(jnp.where(slope == 0, 1.0, slope))
        return x - (g - jax.lax.stop_gradient(g)) / slope

    # -- enumeration --------------------------------------------------------

    def enumerate_support(self, bound=None):
        """The support's values along a new axis 0, broadcast against the batch shape."""
        raise ModelError(
            f"{type(self).__name__} has no finite support to enumerate",
            hint="Enumerate only discrete choices (Bernoulli, Categorical, Binomial, ...).",
        )

    def _enumerate_range(self, count: int):
        values = jnp.arange(count, dtype=jnp.int32)
        return jnp.broadcast_to(values.reshape((count,) + (1,) * len(self.batch_shape)), (count,) + self.batch_shape)

    def _bounded_range(self, bound):
        if bound is None:
            raise ModelError(
                f"{type(self).__name__} has infinitely many values (0, 1, 2, ...), so enumerating it needs a bound",
                hint="Pass bound=N to enumerate 0..N-1; the mass P(X >= N) is left out.",
            )
        if not is_concrete(bound) or int(bound) < 1:
            raise ModelError(f"the enumeration bound must be a positive integer known before tracing, but got {bound!r}")
        return self._enumerate_range(int(bound))

    # -- other --------------------------------------------------------------

    def expand(self, batch_shape) -> "Distribution":
        """The same distribution with parameters broadcast to ``batch_shape``."""
        batch_shape = tuple(batch_shape)
        try:
            ok = jnp.broadcast_shapes(self.batch_shape, batch_shape) == batch_shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"cannot expand {type(self).__name__} with batch shape {self.batch_shape} to {batch_shape}")
        params = {}
        for key, value in self._params.items():
            ed = self.param_event_dims.get(key, 0)
            params[key] = jnp.broadcast_to(value, batch_shape + jnp.shape(value)[jnp.ndim(value) - ed :])
        return self._from_parts(params, dict(self._static))

    @property
    def mean(self):
        raise TypeError(f"{type(self).__name__} does not define mean")  # pragma: no cover

    @property
    def variance(self):
        raise TypeError(f"{type(self).__name__} does not define variance")  # pragma: no cover

    def _undefined(self):
        """An array of NaN for a moment that does not exist."""
        dtype = jnp.result_type(*[v for v in self._params.values() if hasattr(v, "dtype")], float)
        return jnp.full(self.batch_shape + self.event_shape, jnp.nan, dtype)

    def __repr__(self):
        args = ", ".join(f"{k}={format_param(v)}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

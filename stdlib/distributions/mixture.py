"""Finite mixtures, with the component index summed out of the density.

- ``MixtureSameFamily(mixing, component)`` (NumPyro's semantics): ``mixing`` a Categorical
  with batch shape B over K components, ``component`` one distribution with batch shape
  B + (K,) (the last batch axis indexes the components);
- ``Mixture(mixing, components)``: ``mixing`` a Categorical or the vector of weights
  (``probs``, last axis K), ``components`` a list of K distributions of any families with
  the same support and event shape (NumPyro's MixtureGeneral).

``log p(x) = logsumexp_k (log w_k + log p_k(x))``: differentiable in every parameter, so a
mixture keeps a model continuous for NUTS; draws pick a component by the mixing
distribution, then draw from it. ``stdlib.mixtures`` (``log_mix``,
``normal_mix_log_density``) in ``.ppl`` is the two-component instance of the same density.
A mixture of discrete families is discrete (``Mixture(...)`` builds the discrete class then).
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ..errors import ModelError, ShapeError
from .base import _DEFERRED, Distribution, as_float
from .base import params_ok as _params_ok
from .discrete import Categorical

__all__ = ["MixtureSameFamily", "Mixture"]


def _discrete(d) -> bool:
    return bool(getattr(d, "is_discrete", False))


def _as_mixing(mixing, where: str) -> Categorical:
    if isinstance(mixing, Categorical):
        return mixing
    if isinstance(mixing, Distribution):
        raise ModelError(f"{where}'s mixing distribution must be a Categorical, but got {type(mixing).__name__}",
                         hint="Pass Categorical(probs=w), or the weights w themselves.")
    return Categorical(probs=as_float(mixing))


def _check_supports(comps) -> None:
    """ModelError when two components' supports are provably different sets. Supports whose
    bounds are traced (Uniform(a, b) with a latent ``a``) are compared where they can be: their
    kinds now, their bound values at run time by ``Mixture.params_ok``."""
    first = comps[0].support
    for i, c in enumerate(comps[1:], 1):
        if first.same_set(c.support) is False:
            raise ModelError(
                f"Mixture's components must share one support, but component 0 is on {first!r} "
                f"and component {i} on {c.support!r}",
                hint="Mix distributions over the same set of values (e.g. normal and student_t).",
            )


class _MixtureBase(Distribution, metaclass=abc.ABCMeta):
    """Shared by both mixtures: log density by logsumexp, draws by selection, moments."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def _init_parts(self, params, validate):
        self.__dict__["_params"] = params
        self.__dict__["_static"] = {}
        if validate and not _DEFERRED.get():
            self.validate_params()

    @property
    def mixing_distribution(self) -> Categorical:
        return self._params["mixing"]

    @property
    def batch_shape(self):
        return tuple(self.mixing_distribution.batch_shape)

    @property
    def num_components(self) -> int:
        return self.mixing_distribution.num_categories

    def params_ok(self):
        """Whether the mixing and every component's parameters are in their domains (traced)."""
        parts = [self.mixing_distribution] + list(self._components())
        ok = jnp.asarray(True)
        for d in parts:
            ok = ok & _params_ok(d)
        return ok

    @abc.abstractmethod
    def _components(self):
        """Supplied by each mixture kind (Mixture, MixtureSameFamily)."""

    @abc.abstractmethod
    def _component_log_densities(self, value):  # shape batch + (K,)
        """Supplied by each mixture kind (Mixture, MixtureSameFamily)."""

    # -- distribution functions: P(X <= x) = sum_k w_k F_k(x) -------------------------------
    @property
    def has_cdf(self) -> bool:
        return not self.event_shape and all(c.has_cdf for c in self._components())

    def _family(self, what: str):
        from .cdf import Family

        if not self.has_cdf:
            raise ModelError(f"this {type(self).__name__} has no {what}: its components need one "
                             "(univariate families such as Normal, StudentT, Gamma, Poisson)")
        log_w = lambda: self.mixing_distribution._log_probs()  # noqa: E731

        def mixed(method):
            return lambda d, x: logsumexp(log_w() + self._component_functions(x, method), axis=-1)

        return Family(cdf=lambda d, x: jnp.exp(mixed("log_cdf")(d, x)), lcdf=mixed("log_cdf"),
                      lccdf=mixed("log_ccdf"))

    @abc.abstractmethod
    def _component_functions(self, x, method):  # shape batch + (K,)
        """Supplied by each mixture kind (Mixture, MixtureSameFamily)."""

    @abc.abstractmethod
    def _component_draws(self, key, shape):  # shape sample + batch + (K,) + event
        """Supplied by each mixture kind (Mixture, MixtureSameFamily)."""

    @abc.abstractmethod
    def _component_moments(self):  # (means, variances), each batch + (K,) + event
        """Supplied by each mixture kind (Mixture, MixtureSameFamily)."""

    def _log_density(self, value):
        log_w = self.mixing_distribution._log_probs()
        return logsumexp(self._component_log_densities(value) + log_w, axis=-1)

    def component_log_probs(self, value):
        """log w_k + log p_k(value) per component (last axis): the posterior over the component
        given ``value`` is ``softmax`` of this."""
        value = self._as_value(value)
        self._value_batch_shape(value)
        return self._component_log_densities(value) + self.mixing_distribution._log_probs()

    def _sample(self, key, shape):
        key_index, key_draw = jax.random.split(key)
        index = self.mixing_distribution.sample(key_index, shape[: len(shape) - len(self.batch_shape)])
        draws = self._component_draws(key_draw, shape)
        n_event = len(self.event_shape)
        axis = len(shape)
        idx = index.reshape(index.shape + (1,) * (1 + n_event))
        idx = jnp.broadcast_to(idx, draws.shape[:axis] + (1,) + draws.shape[axis + 1:])
        return jnp.squeeze(jnp.take_along_axis(draws, idx, axis=axis), axis=axis)

    def _weights_event(self):
        w = self.mixing_distribution.probs
        return w.reshape(w.shape + (1,) * len(self.event_shape))

    @property
    def mean(self):
        means, _ = self._component_moments()
        k_axis = len(self.batch_shape)
        return jnp.sum(self._weights_event() * means, axis=k_axis)

    @property
    def variance(self):
        means, variances = self._component_moments()
        k_axis = len(self.batch_shape)
        w = self._weights_event()
        mean = jnp.sum(w * means, axis=k_axis)
        second = jnp.sum(w * (variances + means**2), axis=k_axis)
        return second - mean**2

    def expand(self, batch_shape):
        """The same mixture with its weights and components broadcast to ``batch_shape``."""
        batch_shape = tuple(batch_shape)
        try:
            ok = jnp.broadcast_shapes(self.batch_shape, batch_shape) == batch_shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"cannot expand {type(self).__name__} with batch shape {self.batch_shape} to {batch_shape}")
        params = {"mixing": self.mixing_distribution.expand(batch_shape)}
        params.update(self._expanded_components(batch_shape))
        return self._from_parts(params, dict(self._static))

    @abc.abstractmethod
    def _expanded_components(self, batch_shape) -> dict:
        """Supplied by each mixture kind (Mixture, MixtureSameFamily)."""


class MixtureSameFamily(_MixtureBase):
    """A mixture whose K components are the last batch axis of one distribution."""

    def __new__(cls, mixing_distribution=None, component_distribution=None, *, validate=True):
        if cls is MixtureSameFamily and _discrete(component_distribution):
            cls = DiscreteMixtureSameFamily
        return object.__new__(cls)

    def __init__(self, mixing_distribution, component_distribution, *, validate=True):
        mixing = _as_mixing(mixing_distribution, "MixtureSameFamily")
        comp = component_distribution
        if not isinstance(comp, Distribution):
            raise ModelError(f"MixtureSameFamily's component must be a distribution, but got {type(comp).__name__}")
        cb = tuple(comp.batch_shape)
        k = mixing.num_categories
        if not cb or cb[-1] != k:
            raise ShapeError(
                f"MixtureSameFamily's component distribution must have its {k} components as its last batch "
                f"axis, but its batch shape is {cb}",
                hint=f"Build the components with parameters of shape (..., {k}), e.g. Normal(mus, sigmas).",
            )
        try:
            batch = jnp.broadcast_shapes(tuple(mixing.batch_shape), cb[:-1])
        except ValueError:
            raise ShapeError(f"the mixing batch shape {tuple(mixing.batch_shape)} does not broadcast with the "
                             f"components' batch shape {cb[:-1]}") from None
        if tuple(mixing.batch_shape) != batch:
            mixing = mixing.expand(batch)
        if cb != batch + (k,):
            comp = comp.expand(batch + (k,))
        self._init_parts({"mixing": mixing, "component": comp}, validate)

    @property
    def component_distribution(self):
        return self._params["component"]

    def _components(self):
        return [self.component_distribution]

    def _expanded_components(self, batch_shape):
        return {"component": self.component_distribution.expand(batch_shape + (self.num_components,))}

    @property
    def event_shape(self):
        return tuple(self.component_distribution.event_shape)

    @property
    def support(self):
        return self.component_distribution.support

    @property
    def reparameterized(self):
        return False

    def validate_params(self):
        self.mixing_distribution.validate_params()
        self.component_distribution.validate_params()

    def _component_log_densities(self, value):
        n_event = len(self.event_shape)
        x = jnp.expand_dims(value, axis=value.ndim - n_event)
        return self.component_distribution.log_density(x)

    def _component_draws(self, key, shape):
        sample_shape = shape[: len(shape) - len(self.batch_shape)]
        return self.component_distribution.sample(key, sample_shape)

    def _component_functions(self, x, method):
        return getattr(self.component_distribution, method)(jnp.expand_dims(x, -1))

    def _component_moments(self):
        c = self.component_distribution
        return c.mean, c.variance

    def __repr__(self):
        return f"MixtureSameFamily({self.mixing_distribution!r}, {self.component_distribution!r})"


class DiscreteMixtureSameFamily(MixtureSameFamily):
    """A MixtureSameFamily of a discrete family."""

    is_discrete = True

    @property
    def has_enumerate_support(self):
        return bool(getattr(self.component_distribution, "has_enumerate_support", False))

    def enumerate_support(self, bound=None):
        """The component family's values (the same for every component), broadcast to the batch shape."""
        return self.component_distribution.enumerate_support(bound)[..., 0]


class Mixture(_MixtureBase):
    """A mixture of K distributions given as a list (any families, one support and event shape)."""

    def __new__(cls, mixing=None, components=None, *, validate=True):
        comps = list(components) if isinstance(components, (list, tuple)) else []
        if cls is Mixture and comps and all(_discrete(c) for c in comps):
            cls = DiscreteMixture
        return object.__new__(cls)

    def __init__(self, mixing, components, *, validate=True):
        mixing = _as_mixing(mixing, "Mixture")
        if not isinstance(components, (list, tuple)) or not components:
            raise ModelError("Mixture's components must be a non-empty list of distributions",
                             hint="Mixture([0.3, 0.7], [Normal(-1, 1), Normal(2, 0.5)])")
        comps = tuple(components)
        for i, c in enumerate(comps):
            if not isinstance(c, Distribution):
                raise ModelError(f"Mixture's component {i} is a {type(c).__name__}, not a distribution")
        if len(comps) != mixing.num_categories:
            raise ShapeError(f"Mixture has {mixing.num_categories} weights but {len(comps)} components")
        kinds = {_discrete(c) for c in comps}
        if len(kinds) > 1:
            raise ModelError("Mixture's components must be all discrete or all continuous")
        events = {tuple(c.event_shape) for c in comps}
        if len(events) > 1:
            raise ShapeError(f"Mixture's components have different event shapes: {sorted(events)}")
        try:
            batch = jnp.broadcast_shapes(tuple(mixing.batch_shape), *[tuple(c.batch_shape) for c in comps])
        except ValueError:
            shapes = ", ".join(str(tuple(c.batch_shape)) for c in comps)
            raise ShapeError(f"Mixture's batch shapes do not broadcast together: mixing "
                             f"{tuple(mixing.batch_shape)}, components {shapes}") from None
        _check_supports(comps)
        if tuple(mixing.batch_shape) != batch:
            mixing = mixing.expand(batch)
        comps = tuple(c if tuple(c.batch_shape) == batch else c.expand(batch) for c in comps)
        self._init_parts({"mixing": mixing, "components": comps}, validate)

    @property
    def component_distributions(self):
        return self._params["components"]

    def _components(self):
        return list(self.component_distributions)

    def _expanded_components(self, batch_shape):
        return {"components": tuple(c.expand(batch_shape) for c in self.component_distributions)}

    @property
    def event_shape(self):
        return tuple(self.component_distributions[0].event_shape)

    @property
    def support(self):
        return self.component_distributions[0].support

    @property
    def reparameterized(self):
        return False

    def validate_params(self):
        self.mixing_distribution.validate_params()
        for c in self.component_distributions:
            c.validate_params()

    def _supports_agree(self):
        """``True`` when the components' supports are equal as far as ``__init__`` could tell; where a
        support bound is traced (Uniform(a, b) with a latent ``a``), a traced boolean that compares
        the bound values at run time."""
        first = self.component_distributions[0].support
        ok = True
        for c in self.component_distributions[1:]:
            if first.same_set(c.support) is not True:
                ok = ok & first.same_set_traced(c.support)
        return ok

    def params_ok(self):
        """Whether the parameters are in their domains and the components' supports agree (traced)."""
        return super().params_ok() & jnp.asarray(self._supports_agree())

    def _log_density(self, value):
        """The mixture density; NaN (an invalid parameter) where traced support bounds turn out
        to differ between components."""
        lp = super()._log_density(value)
        agree = self._supports_agree()
        return lp if agree is True else jnp.where(agree, lp, jnp.nan)

    def _component_log_densities(self, value):
        return jnp.stack([c.log_density(value) for c in self.component_distributions], axis=-1)

    def _component_draws(self, key, shape):
        sample_shape = shape[: len(shape) - len(self.batch_shape)]
        keys = jax.random.split(key, len(self.component_distributions))
        draws = [c.sample(k, sample_shape) for k, c in zip(keys, self.component_distributions)]
        dtype = jnp.result_type(*draws)
        return jnp.stack([d.astype(dtype) for d in draws], axis=len(shape))

    def _component_functions(self, x, method):
        return jnp.stack([getattr(c, method)(x) for c in self.component_distributions], axis=-1)

    def _component_moments(self):
        axis = len(self.batch_shape)
        means = jnp.stack([jnp.asarray(c.mean) for c in self.component_distributions], axis=axis)
        variances = jnp.stack([jnp.asarray(c.variance) for c in self.component_distributions], axis=axis)
        return means, variances

    def __repr__(self):
        comps = ", ".join(repr(c) for c in self.component_distributions)
        return f"Mixture({self.mixing_distribution!r}, [{comps}])"


class DiscreteMixture(Mixture):
    """A Mixture of discrete families."""

    is_discrete = True

    @property
    def has_enumerate_support(self):
        return all(getattr(c, "has_enumerate_support", False) for c in self.component_distributions)

    def enumerate_support(self, bound=None):
        """The values of the widest component's enumeration (values outside a component's support
        have probability 0 under it)."""
        tables = [c.enumerate_support(bound) for c in self.component_distributions]
        return max(tables, key=lambda t: t.shape[0])

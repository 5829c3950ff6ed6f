"""Discrete families. Samples are int32; each takes exactly one of ``probs=`` or ``logits=``.

Conventions (those of scipy.stats, with ``probs`` the probability of success):

- ``Geometric(p)`` counts the failures before the first success: 0, 1, 2, ...
  (scipy's ``geom`` counts trials, so ``Geometric(p)`` at k is ``geom(p)`` at k + 1);
- ``NegativeBinomial(n, p)`` counts the failures before the n-th success, as
  ``scipy.stats.nbinom(n, p)``; its mean is n (1 - p) / p.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, logsumexp, xlog1py, xlogy

from .. import constraints as C
from ..errors import ModelError
from .base import Distribution, as_float, is_concrete, probs_or_logits

__all__ = ["Bernoulli", "Binomial", "Categorical", "Poisson", "NegativeBinomial", "Geometric"]

# the largest float32 below 2**31, so that the cast to int32 cannot overflow
_INT32_MAX = 2.0**31 - 2.0**7


def _times(count, log_p):
    """``count * log_p`` with ``0 * -inf = 0`` (a zero count of an impossible outcome)."""
    return jnp.where(count == 0, 0.0, count * log_p)


class _Binary(Distribution):
    """Shared by the families with one success probability given as probs or logits."""

    arg_constraints = {"probs": C.unit_interval, "logits": C.extended_real}
    is_discrete = True

    @property
    def probs(self):
        p = self._params
        return p["probs"] if "probs" in p else jax.nn.sigmoid(p["logits"])

    @property
    def logits(self):
        p = self._params
        return p["logits"] if "logits" in p else jnp.log(p["probs"]) - jnp.log1p(-p["probs"])

    def _log_p_and_q(self):
        """(log p, log(1 - p)), stably from whichever parameter was given."""
        p = self._params
        if "logits" in p:
            return jax.nn.log_sigmoid(p["logits"]), jax.nn.log_sigmoid(-p["logits"])
        return jnp.log(p["probs"]), jnp.log1p(-p["probs"])


class Bernoulli(_Binary):
    """Bernoulli(probs p): log p(k) = k log p + (1 - k) log(1 - p), k in {0, 1}."""

    support = C.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, *, validate=True):
        kind, value = probs_or_logits("Bernoulli", probs, logits)
        super().__init__({kind: value}, validate=validate)

    def _sample(self, key, shape):
        return (jax.random.uniform(key, shape, self.probs.dtype) < self.probs).astype(jnp.int32)

    def _log_density(self, k):
        if "probs" in self._params:
            p = self._params["probs"]
            k = as_float(k)
            return xlogy(k, p) + xlog1py(1 - k, -p)
        # log sigmoid(l) = l - softplus(l), so for k in {0, 1}: k l - softplus(l). One softplus and no select
        # (its gradient, k - sigmoid(l), has no branch either); absolute error below 1e-6 where it cancels.
        logits = self._params["logits"]
        return as_float(k) * logits - jax.nn.softplus(logits)

    def enumerate_support(self, bound=None):
        """The values 0 and 1 (``bound`` is not needed and is ignored)."""
        return self._enumerate_range(2)

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        p = self.probs
        return p * (1 - p)


class Binomial(_Binary):
    """Binomial(total_count n, probs p): log p(k) = log C(n, k) + k log p + (n - k) log(1 - p), k = 0..n."""

    arg_constraints = {"total_count": C.nonnegative_integer, **_Binary.arg_constraints}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, *, validate=True):
        kind, value = probs_or_logits("Binomial", probs, logits)
        super().__init__({"total_count": as_float(total_count), kind: value}, validate=validate)

    @property
    def support(self):
        return C.integer_interval(0, self.total_count)

    def _sample(self, key, shape):
        n = jnp.broadcast_to(self.total_count, shape)
        p = jnp.broadcast_to(self.probs, shape)
        return jax.random.binomial(key, n, p, shape, n.dtype).astype(jnp.int32)

    def _log_density(self, k):
        n, k = self.total_count, as_float(k)
        log_comb = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
        if "probs" in self._params:
            p = self._params["probs"]
            return log_comb + xlogy(k, p) + xlog1py(n - k, -p)
        log_p, log_q = self._log_p_and_q()
        return log_comb + _times(k, log_p) + _times(n - k, log_q)

    def enumerate_support(self, bound=None):
        """The values 0..max(total_count) (``bound`` is ignored); values above an entry's
        total_count have probability 0 there. Needs a concrete total_count."""
        n = self.total_count
        if not is_concrete(n):
            raise ModelError(
                "Binomial's total_count depends on a traced value, so its support cannot be enumerated",
                hint="Give total_count as data (a concrete number) to enumerate this choice.",
            )
        top = int(np.max(np.asarray(n))) if np.size(n) else 0
        return self._enumerate_range(top + 1)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def variance(self):
        p = self.probs
        return self.total_count * p * (1 - p)


class Categorical(Distribution):
    """Categorical(probs p) over 0..K-1 (the last axis of p): log p(k) = log p_k.

    ``logits`` are normalised (log p = logits - logsumexp(logits)); entries may be -inf.
    """

    arg_constraints = {"probs": C.simplex, "logits": C.extended_real}
    param_event_dims = {"probs": 1, "logits": 1}
    is_discrete = True
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, *, validate=True):
        kind, value = probs_or_logits("Categorical", probs, logits)
        super().__init__({kind: value}, validate=validate)

    @property
    def num_categories(self) -> int:
        return next(iter(self._params.values())).shape[-1]

    @property
    def support(self):
        return C.integer_interval(0, self.num_categories - 1)

    @property
    def probs(self):
        p = self._params
        return p["probs"] if "probs" in p else jax.nn.softmax(p["logits"], axis=-1)

    @property
    def logits(self):
        p = self._params
        return p["logits"] if "logits" in p else jnp.log(p["probs"])

    def _log_probs(self):
        p = self._params
        if "probs" in p:
            return jnp.log(p["probs"])
        return p["logits"] - logsumexp(p["logits"], axis=-1, keepdims=True)

    def _sample(self, key, shape):
        return jax.random.categorical(key, self.logits, axis=-1, shape=shape).astype(jnp.int32)

    def _log_density(self, k):
        log_probs = self._log_probs()
        shape = jnp.broadcast_shapes(jnp.shape(k), self.batch_shape)
        table = jnp.broadcast_to(log_probs, shape + (self.num_categories,))
        index = jnp.broadcast_to(jnp.asarray(k).astype(jnp.int32), shape)[..., None]
        return jnp.take_along_axis(table, index, axis=-1)[..., 0]

    def enumerate_support(self, bound=None):
        """The values 0..K-1 (``bound`` is not needed and is ignored)."""
        return self._enumerate_range(self.num_categories)

    @property
    def mean(self):
        k = jnp.arange(self.num_categories, dtype=self.probs.dtype)
        return jnp.sum(self.probs * k, axis=-1)

    @property
    def variance(self):
        k = jnp.arange(self.num_categories, dtype=self.probs.dtype)
        return jnp.sum(self.probs * k**2, axis=-1) - self.mean**2


class Poisson(Distribution):
    """Poisson(rate r): log p(k) = k log r - r - log k!, k = 0, 1, 2, ..."""

    arg_constraints = {"rate": C.nonnegative}
    support = C.nonnegative_integer
    is_discrete = True

    def __init__(self, rate, *, validate=True):
        super().__init__({"rate": as_float(rate)}, validate=validate)

    def _sample(self, key, shape):
        return jax.random.poisson(key, self.rate, shape, jnp.int32)

    def _log_density(self, k):
        k = as_float(k)
        return xlogy(k, self.rate) - self.rate - gammaln(k + 1)

    def enumerate_support(self, bound=None):
        """The values 0..bound-1 (the support is infinite, so ``bound`` is required)."""
        return self._bounded_range(bound)

    @property
    def mean(self):
        return self.rate

    @property
    def variance(self):
        return self.rate


class NegativeBinomial(_Binary):
    """NegativeBinomial(total_count n, probs p): the number of failures before the n-th success
    when each trial succeeds with probability p (scipy.stats.nbinom(n, p)):
    log p(k) = lgamma(k + n) - lgamma(n) - log k! + n log p + k log(1 - p), k = 0, 1, 2, ...

    Mean n (1 - p) / p, variance n (1 - p) / p^2; n may be any positive real.
    """

    arg_constraints = {"total_count": C.positive, **_Binary.arg_constraints}
    support = C.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, *, validate=True):
        kind, value = probs_or_logits("NegativeBinomial", probs, logits)
        super().__init__({"total_count": as_float(total_count), kind: value}, validate=validate)

    def _odds_against(self):
        """(1 - p) / p, the Gamma-Poisson mixing scale."""
        p = self._params
        return jnp.exp(-p["logits"]) if "logits" in p else (1 - p["probs"]) / p["probs"]

    def _sample(self, key, shape):
        key_rate, key_count = jax.random.split(key)
        n = jnp.broadcast_to(self.total_count, shape)
        rate = jax.random.gamma(key_rate, n, shape, n.dtype) * self._odds_against()
        return jax.random.poisson(key_count, rate, shape, jnp.int32)

    def _log_density(self, k):
        n, k = self.total_count, as_float(k)
        log_comb = gammaln(k + n) - gammaln(n) - gammaln(k + 1)
        if "probs" in self._params:
            p = self._params["probs"]
            return log_comb + xlogy(n, p) + xlog1py(k, -p)
        log_p, log_q = self._log_p_and_q()
        return log_comb + n * log_p + _times(k, log_q)

    def enumerate_support(self, bound=None):
        """The values 0..bound-1 (the support is infinite, so ``bound`` is required)."""
        return self._bounded_range(bound)

    @property
    def mean(self):
        return self.total_count * self._odds_against()

    @property
    def variance(self):
        return self.total_count * self._odds_against() / self.probs


class Geometric(_Binary):
    """Geometric(probs p): the number of failures before the first success:
    log p(k) = log p + k log(1 - p), k = 0, 1, 2, ...  (mean (1 - p) / p)."""

    support = C.nonnegative_integer

    def __init__(self, probs=None, logits=None, *, validate=True):
        kind, value = probs_or_logits("Geometric", probs, logits)
        super().__init__({kind: value}, validate=validate)

    def _sample(self, key, shape):
        _, log_q = self._log_p_and_q()
        dtype = jnp.result_type(log_q)
        u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny)
        # P(floor(log U / log(1 - p)) >= k) = P(U <= (1 - p)^k) = (1 - p)^k
        count = jnp.floor(jnp.log(u) / log_q)
        return jnp.minimum(count, _INT32_MAX).astype(jnp.int32)

    def _log_density(self, k):
        k = as_float(k)
        if "probs" in self._params:
            p = self._params["probs"]
            return jnp.log(p) + xlog1py(k, -p)
        log_p, log_q = self._log_p_and_q()
        return log_p + _times(k, log_q)

    def enumerate_support(self, bound=None):
        """The values 0..bound-1 (the support is infinite, so ``bound`` is required)."""
        return self._bounded_range(bound)

    @property
    def mean(self):
        p = self.probs
        return (1 - p) / p

    @property
    def variance(self):
        p = self.probs
        return (1 - p) / p**2

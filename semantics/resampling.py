"""Weights of a population: their summaries and resampling, shared by both engines.

A population of ``n`` particles with log weights ``w`` denotes the measure
``(1/n) sum_i exp(w_i) delta(x_i)``; its total mass ``log_mean_exp(w)`` is the
evidence estimate and Kish's ``ess(w)`` says how many particles effectively
carry it. The eager engine (``semantics.interpret.population``) and the
compiled filter (``inference.smc.compiled``) both use the functions here, so
the two engines summarise and resample weights by one definition.

The summaries accept JAX arrays (and tracers, under ``jit``) and NumPy arrays;
NumPy ones are summarised in NumPy, in their own precision (float64 in the
eager engine), so that an eager run pays no dispatch to a device.

Each resampling scheme is a pure JAX function ``scheme(key, log_weights) ->
ancestors`` (``int32[n]``), jittable and vmappable. Law (unbiasedness): for
every particle ``j`` the expected number of offspring is ``n * w_j``, where
``w`` are the normalised weights; so replacing a weighted population by its
offspring, equally weighted, preserves the expected measure.

All three cost ``O(n)`` except multinomial (``O(n log n)``, one binary search
per draw). Systematic and stratified resampling place ``n`` sorted points
``u_i = (i + U_i) / n`` in ``[0, 1)`` (one ``U`` for systematic, one per
stratum for stratified); how many points fall below each ``cdf_j`` has a
closed form, and the ancestors follow from those counts by one scatter-add
and one cumulative sum, with no search.

>>> import jax, jax.numpy as jnp
>>> a = systematic(jax.random.key(0), jnp.log(jnp.array([0.5, 0.25, 0.25, 0.0])))
>>> a.tolist()
[0, 0, 1, 2]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["multinomial", "systematic", "stratified", "SCHEMES", "normalised_cdf", "ess", "log_mean_exp",
           "summarise"]


def _xp(a):
    """NumPy for NumPy arrays (the eager engine), JAX otherwise (arrays, tracers)."""
    return np if isinstance(a, (np.ndarray, np.generic)) else jnp


def _shifted(log_weights):
    """``exp(log_weights - max)`` and the max; uniform ones (and max -inf) when no weight is finite and positive.

    Every summary below starts from this, so XLA computes the exponentials once per step.
    """
    xp = _xp(log_weights)
    top = xp.max(log_weights)
    ok = xp.isfinite(top)
    w = xp.exp(log_weights - xp.where(ok, top, 0.0))
    return xp.where(ok & ~xp.isnan(w), w, 1.0), xp.where(ok, top, -xp.inf)


def log_mean_exp(log_weights):
    """``log(mean(exp(log_weights)))``, stable; ``-inf`` when every weight is zero, ``+inf`` when one is infinite.

    >>> float(log_mean_exp(np.log(np.array([1.0, 3.0]))))  # log 2
    0.6931471805599453
    """
    return summarise(log_weights)[0]


def ess(log_weights):
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 when every weight is zero)."""
    return summarise(log_weights)[1]


def summarise(log_weights):
    """``(log mean exp(log_weights), ESS)`` from one pass over the weights."""
    xp = _xp(log_weights)
    n = log_weights.shape[0]
    w, top = _shifted(log_weights)
    s1, s2 = xp.sum(w), xp.sum(w * w)
    log_mean = top + xp.log(s1) - xp.log(xp.asarray(n, w.dtype))
    # an infinite weight makes the mean infinite (NaN weights stay reported as zero mass, as before)
    log_mean = xp.where(xp.max(log_weights) == xp.inf, xp.inf, log_mean)
    return log_mean, xp.where(xp.isfinite(top), s1 * s1 / s2, 0.0)


def normalised_cdf(log_weights):
    """The cumulative sums of the normalised weights, ending exactly at 1.

    When every weight is zero (or NaN), the weights are taken as uniform so that
    resampling stays defined; the run reports the zero evidence separately.
    """
    n = log_weights.shape[0]
    w, _ = _shifted(jnp.asarray(log_weights))
    cdf = jnp.cumsum(w)
    cdf = cdf / cdf[-1]
    return cdf.at[n - 1].set(1.0)


def _ancestors_from_counts(below, n):
    """Ancestors from ``below[j] = #{i : u_i < cdf_j}`` (non-decreasing in ``j``, within ``[0, n]``).

    ``ancestor_i = #{j : cdf_j <= u_i} = #{j : below[j] <= i}``: a histogram of
    ``below`` and its cumulative sum.
    """
    m = below.shape[0]
    hist = jnp.zeros(n + 1, jnp.int32).at[below].add(1)
    return jnp.minimum(jnp.cumsum(hist)[:n], m - 1).astype(jnp.int32)


def systematic(key, log_weights, num: int | None = None):
    """Systematic resampling: ``u_i = (i + U) / n`` with one ``U ~ Uniform(0, 1)``. ``O(n)``.

    ``num``: how many ancestors to draw (``n``, the number of weights, by default); every scheme takes it.
    """
    n = log_weights.shape[0] if num is None else num
    cdf = normalised_cdf(log_weights)
    u = jax.random.uniform(key, (), cdf.dtype)
    below = jnp.clip(jnp.ceil(cdf * n - u), 0, n).astype(jnp.int32)
    return _ancestors_from_counts(below, n)


def stratified(key, log_weights, num: int | None = None):
    """Stratified resampling: ``u_i = (i + U_i) / n`` with independent ``U_i``. ``O(n)``."""
    n = log_weights.shape[0] if num is None else num
    cdf = normalised_cdf(log_weights)
    us = jax.random.uniform(key, (n,), cdf.dtype)
    scaled = cdf * n
    k = jnp.clip(jnp.floor(scaled), 0, n).astype(jnp.int32)
    # every stratum i < k lies below cdf_j; stratum k does when its point falls before cdf_j
    frac = scaled - k
    below = k + jnp.where(k < n, (us[jnp.minimum(k, n - 1)] < frac).astype(jnp.int32), 0)
    return _ancestors_from_counts(below, n)


def multinomial(key, log_weights, num: int | None = None):
    """Multinomial resampling: ``n`` independent draws from the weights. ``O(n log n)``.

    The draws come sorted (uniform order statistics from exponential spacings),
    so the ancestors are in increasing order, as for the other schemes.
    """
    n = log_weights.shape[0] if num is None else num
    cdf = normalised_cdf(log_weights)
    e = jax.random.exponential(key, (n + 1,), cdf.dtype)
    s = jnp.cumsum(e)
    u = s[:n] / s[n]
    return jnp.minimum(jnp.searchsorted(cdf, u, side="right"), cdf.shape[0] - 1).astype(jnp.int32)


SCHEMES = {"systematic": systematic, "stratified": stratified, "multinomial": multinomial}

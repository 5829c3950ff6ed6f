"""Resampling: ancestor indices drawn in proportion to the particles' weights.

Each scheme is a pure JAX function ``scheme(key, log_weights) -> ancestors``
(``int32[n]``), jittable and vmappable. Law (unbiasedness): for every particle
``j`` the expected number of offspring is ``n * w_j``, where ``w`` are the
normalised weights; so replacing a weighted population by its offspring,
equally weighted, preserves the expected measure.

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

__all__ = ["multinomial", "systematic", "stratified", "SCHEMES", "normalised_cdf", "ess", "log_mean_exp",
           "summarise"]


def _shifted(log_weights):
    """``exp(log_weights - max)`` and the max; uniform ones (and max 0) when no weight is positive.

    Every summary below starts from this, so XLA computes the exponentials once per step.
    """
    top = jnp.max(log_weights)
    ok = jnp.isfinite(top)
    w = jnp.exp(log_weights - jnp.where(ok, top, 0.0))
    return jnp.where(ok & ~jnp.isnan(w), w, 1.0), jnp.where(ok, top, -jnp.inf)


def log_mean_exp(log_weights):
    """``log(mean(exp(log_weights)))``, stable; ``-inf`` when every weight is zero."""
    return summarise(log_weights)[0]


def ess(log_weights):
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 when every weight is zero)."""
    return summarise(log_weights)[1]


def summarise(log_weights):
    """``(log mean exp(log_weights), ESS)`` from one pass over the weights."""
    n = log_weights.shape[0]
    w, top = _shifted(log_weights)
    s1, s2 = jnp.sum(w), jnp.sum(w * w)
    log_mean = top + jnp.log(s1) - jnp.log(jnp.asarray(n, w.dtype))
    return log_mean, jnp.where(jnp.isfinite(top), s1 * s1 / s2, 0.0)


def normalised_cdf(log_weights):
    """The cumulative sums of the normalised weights, ending exactly at 1.

    When every weight is zero (or NaN), the weights are taken as uniform so that
    resampling stays defined; the run reports the zero evidence separately.
    """
    n = log_weights.shape[0]
    w, _ = _shifted(log_weights)
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


def systematic(key, log_weights):
    """Systematic resampling: ``u_i = (i + U) / n`` with one ``U ~ Uniform(0, 1)``. ``O(n)``."""
    n = log_weights.shape[0]
    cdf = normalised_cdf(log_weights)
    u = jax.random.uniform(key, (), cdf.dtype)
    below = jnp.clip(jnp.ceil(cdf * n - u), 0, n).astype(jnp.int32)
    return _ancestors_from_counts(below, n)


def stratified(key, log_weights):
    """Stratified resampling: ``u_i = (i + U_i) / n`` with independent ``U_i``. ``O(n)``."""
    n = log_weights.shape[0]
    cdf = normalised_cdf(log_weights)
    us = jax.random.uniform(key, (n,), cdf.dtype)
    scaled = cdf * n
    k = jnp.clip(jnp.floor(scaled), 0, n).astype(jnp.int32)
    # every stratum i < k lies below cdf_j; stratum k does when its point falls before cdf_j
    frac = scaled - k
    below = k + jnp.where(k < n, (us[jnp.minimum(k, n - 1)] < frac).astype(jnp.int32), 0)
    return _ancestors_from_counts(below, n)


def multinomial(key, log_weights):
    """Multinomial resampling: ``n`` independent draws from the weights. ``O(n log n)``.

    The draws come sorted (uniform order statistics from exponential spacings),
    so the ancestors are in increasing order, as for the other schemes.
    """
    n = log_weights.shape[0]
    cdf = normalised_cdf(log_weights)
    e = jax.random.exponential(key, (n + 1,), cdf.dtype)
    s = jnp.cumsum(e)
    u = s[:n] / s[n]
    return jnp.minimum(jnp.searchsorted(cdf, u, side="right"), n - 1).astype(jnp.int32)


SCHEMES = {"systematic": systematic, "stratified": stratified, "multinomial": multinomial}

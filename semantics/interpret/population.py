"""The population representation: a weighted collection of particles.

``M a = list[(a, trace, log_weight)]`` of a fixed size ``n``, each particle an
independent run of the weighted sampler; ``spawn`` makes ``n`` copies and
``resample`` replaces the population by an equally weighted one with the same
expected measure.

Laws::

    population(n) of pure(v)    = n copies of (v, {}, -log n)   (normalised to the input mass)
    bind                        = per particle, as in Weighted
    resample preserves the total weight, and each particle's expected
    number of copies is proportional to its weight (unbiasedness).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics.interpret.sampler import run_weighted

__all__ = ["spawn", "resample_indices", "resample", "log_mean_exp"]


def spawn(free_factory, n: int, key):
    """``n`` independent weighted runs of a program (a list of (value, trace, log_weight))."""
    return [run_weighted(free_factory(), jax.random.fold_in(key, i)) for i in range(n)]


def log_mean_exp(log_w) -> float:
    a = np.asarray(log_w, dtype=np.float64)
    m = np.max(a)
    if not np.isfinite(m):
        return float(m)
    return float(m + np.log(np.mean(np.exp(a - m))))


def resample_indices(key, log_w, scheme: str = "systematic", n: int | None = None) -> np.ndarray:
    """Ancestor indices drawn in proportion to ``exp(log_w)``."""
    w = np.asarray(log_w, dtype=np.float64)
    n = len(w) if n is None else n
    p = np.exp(w - np.max(w))
    p /= p.sum()
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    if scheme == "multinomial":
        u = np.sort(np.asarray(jax.random.uniform(key, (n,))))
    elif scheme == "stratified":
        u = (np.arange(n) + np.asarray(jax.random.uniform(key, (n,)))) / n
    elif scheme == "systematic":
        u = (np.arange(n) + float(jax.random.uniform(key, ()))) / n
    else:
        raise ValueError(f"unknown resampling scheme {scheme!r}: use systematic, multinomial or stratified")
    return np.searchsorted(cdf, u, side="right").clip(0, len(w) - 1)


def resample(particles, log_w, key, scheme: str = "systematic"):
    """An equally weighted population carrying the same total mass."""
    idx = resample_indices(key, log_w, scheme)
    total = log_mean_exp(log_w)
    return [particles[i] for i in idx], [total] * len(idx)

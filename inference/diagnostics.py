"""Convergence diagnostics for MCMC draws, vectorised over coordinates.

Every function takes an array of shape ``(chains, draws, *event)`` and
returns one value per event coordinate (shape ``event``; a float when the
draws are scalar):

- ``split_rhat``: rank-normalised split R-hat (Vehtari et al. 2021);
  near 1 when the chains agree, above 1.01 is a warning sign;
- ``ess_bulk`` / ``ess_tail``: effective sample sizes of the rank-normalised
  draws and of the 5% / 95% quantile indicators;
- ``convergence``: the three above at once (sharing the rank normalisation);
- ``mcse_mean``: Monte Carlo standard error of the posterior mean;
- ``nested_rhat``: nested R-hat (Margossian et al. 2024) for many short
  chains grouped into superchains (what ChEES-HMC runs).

For a stationary AR(1) chain with coefficient ``phi`` the ESS of the mean is
``n (1 - phi) / (1 + phi)``.

The numbers are those of ArviZ 0.x (``az.rhat(method="rank")``,
``az.ess(method="bulk")``, ``az.ess(method="tail", prob=(0.05, 0.95))``,
``az.mcse(method="mean")``), edge cases included: a coordinate with a NaN,
or draws fewer than 4, gives NaN (R-hat also needs 2 chains); a constant
coordinate has R-hat NaN and ESS equal to the number of split draws. They
are computed here with NumPy over all coordinates at once instead of one
coordinate at a time through xarray.
"""

from __future__ import annotations

import functools
import math
import statistics
import warnings
from typing import Any

import numpy as np

__all__ = ["split_rhat", "ess_bulk", "ess_tail", "convergence", "mcse_mean", "nested_rhat"]

_MIN_DRAWS = 4  # ArviZ's minimum: fewer draws give NaN
_TAIL_PROBS = (0.05, 0.95)
_BLOM_OFFSET = 3 / 8  # fractional offset of the rank -> normal quantile transform


def _arviz():
    """ArviZ itself (for the tests that compare against it, and for plots)."""
    with warnings.catch_warnings():
        # ArviZ 0.x announces its 1.0 refactor with a FutureWarning on import.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


# --------------------------------------------------------------------------- plumbing


def _coordinates(draws: Any) -> tuple[np.ndarray, tuple[int, ...], np.ndarray]:
    """Draws as a C-contiguous ``(coordinates, chains, draws)`` array.

    Also returns the event shape and a mask of the coordinates with a NaN;
    those coordinates are zeroed (their result is overwritten with NaN), so
    that they cannot disturb the vectorised computation.
    """
    x = np.asarray(draws, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(
            f"diagnostics need draws of shape (chains, draws, ...), got an array of shape {x.shape}"
        )
    chains, n_draws = x.shape[:2]
    event = x.shape[2:]
    size = math.prod(event)
    x = np.ascontiguousarray(x.reshape(chains, n_draws, size).transpose(2, 0, 1))
    has_nan = np.isnan(x).any(axis=(1, 2))
    if has_nan.any():
        # a copy: for one coordinate the transpose above is a view of the caller's draws (a Posterior's
        # samples), which zeroing in place turned from "absent" (NaN) into 0 for every later reader
        x = np.where(has_nan[:, None, None], 0.0, x)
    return x, event, has_nan


def _finish(values: np.ndarray, invalid: np.ndarray, event: tuple[int, ...]) -> Any:
    values = np.where(invalid, np.nan, np.asarray(values, dtype=np.float64)).reshape(event)
    return float(values) if values.ndim == 0 else values


def _split_chains(x: np.ndarray) -> np.ndarray:
    """``(K, chains, n)`` -> ``(K, 2 chains, n // 2)``: first halves, then second halves.

    For an odd ``n`` the middle draw is dropped.
    """
    half = x.shape[-1] // 2
    return np.concatenate((x[..., :half], x[..., x.shape[-1] - half :]), axis=1)


def _z_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalise each coordinate over all its (pooled) draws.

    Average ranks of ties (as ``scipy.stats.rankdata(method="average")``), Blom's
    offset ``(r - 3/8) / (S - 3/4 + 1)``, then the standard normal quantile.
    Returns the scores, shaped like ``x``, and each coordinate's sorted draws.

    Average ranks are half-integers, so the normal quantile is evaluated once
    per possible (doubled) rank and looked up.
    """
    k, m, n = x.shape
    size = m * n
    flat = x.reshape(k, size)
    order = np.argsort(flat, axis=-1)
    order += np.arange(0, k * size, size)[:, None]  # flat indices
    ordered = flat.ravel()[order]
    starts = np.ones((k, size), dtype=bool)
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts[:, 1:])
    position = np.arange(size)
    if starts.all():  # no ties: the rank of sorted position j is j + 1
        doubled = np.broadcast_to(2 * position + 2, (k, size))
    else:
        # A tie group over sorted positions [a, b) has average rank (a + 1 + b) / 2.
        first = np.maximum.accumulate(np.where(starts, position, 0), axis=-1)
        ends = np.ones((k, size), dtype=bool)
        ends[:, :-1] = starts[:, 1:]
        stop = np.minimum.accumulate(np.where(ends, position + 1, size)[:, ::-1], axis=-1)[:, ::-1]
        doubled = first + stop + 1
    table = _normal_scores(size)
    z = np.empty(k * size)
    z[order] = table[doubled]
    return z.reshape(x.shape), ordered


@functools.lru_cache(maxsize=16)
def _normal_scores(size: int) -> np.ndarray:
    """The normal quantile of Blom's offset rank, at every doubled average rank ``0 .. 2 size``
    (the same table for every run of ``size`` pooled draws, so it is computed once)."""
    ranks = np.arange(2 * size + 1) / 2
    probs = (ranks - _BLOM_OFFSET) / (size - 2 * _BLOM_OFFSET + 1)
    # Doubled rank 0 (a probability below 0) is never looked up: average ranks are >= 1.
    # (The standard library's quantile, not SciPy's: importing scipy.special is ~0.2 s of a new process.)
    quantile = statistics.NormalDist().inv_cdf
    table = np.fromiter((quantile(p) if 0.0 < p < 1.0 else math.nan for p in probs.tolist()), float, len(probs))
    table.flags.writeable = False
    return table


def _next_fast_len(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``: a length the FFT transforms fast."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _rhat(x: np.ndarray) -> np.ndarray:
    """Classic R-hat of each ``(chains, n)`` slice of ``x``."""
    n = x.shape[-1]
    chain_mean = np.mean(x, axis=-1)
    chain_var = np.var(x, axis=-1, ddof=1)
    between = n * np.var(chain_mean, axis=-1, ddof=1)
    within = np.mean(chain_var, axis=-1)
    return np.sqrt((between / within + n - 1) / n)


def _mean_autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance at every lag along the last axis, averaged over axis 1 (the chains).

    Each chain's autocovariance is the biased one (divided by n), computed by FFT
    of the centred draws zero-padded to ``next_fast_len(2 n)``; the chains' power
    spectra are averaged before the inverse transform.
    """
    n = x.shape[-1]
    m = _next_fast_len(2 * n)
    centred = x - x.mean(axis=-1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    cov = np.fft.irfft(np.mean(power, axis=1), n=m, axis=-1)[..., :n]
    cov /= n
    return cov


def _ess(x: np.ndarray) -> np.ndarray:
    """Effective sample size of each ``(chains, n)`` slice of ``x`` (Geyer's truncation).

    Autocorrelations combine the chains' autocovariances with the between-chain
    variance; the sum is truncated at the first lag pair whose sum is not positive
    (initial positive sequence) and the pair sums are made non-increasing (initial
    monotone sequence).
    """
    k, m, n = x.shape
    total = m * n
    constant = (np.max(x, axis=(1, 2)) - np.min(x, axis=(1, 2))) < np.finfo(float).resolution

    mean_acov = _mean_autocov(x)  # (k, n)
    mean_var = mean_acov[:, 0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(np.mean(x, axis=-1), axis=-1, ddof=1)
    rho = 1.0 - (mean_var[:, None] - mean_acov) / var_plus[:, None]
    rho[:, 0] = 1.0

    # Sums of the lag pairs (0, 1), (2, 3), ...
    n_pairs = n // 2
    even = rho[:, 0 : 2 * n_pairs : 2]
    odd = rho[:, 1 : 2 * n_pairs : 2]
    pair_sum = even + odd

    # Initial positive sequence: pairs 1, 2, ... are read while the pair before was
    # positive, up to pair `last_pair` (ArviZ's loop runs while t < n - 3, t odd).
    # Pairs 0 .. n_read - 1 enter the sum whole; of pair n_read only its even lag.
    last_pair = max(0, (n - 3) // 2)
    positive = pair_sum[:, :last_pair] > 0.0
    n_read = np.cumprod(positive, axis=1).sum(axis=1)

    # Initial monotone sequence: a pair sum above the (already monotone) previous
    # one is replaced by it, split evenly between the two lags.
    running_min = np.minimum.accumulate(pair_sum, axis=1)
    previous = np.concatenate((pair_sum[:, :1], running_min[:, :-1]), axis=1)
    replace = pair_sum > previous
    replace[:, 0] = False
    half_previous = previous / 2.0
    even = np.where(replace, half_previous, even)
    odd = np.where(replace, half_previous, odd)
    kept = np.arange(n_pairs)[None, :] < n_read[:, None]
    head = np.sum(
        np.where(np.repeat(kept, 2, axis=1), np.stack((even, odd), axis=-1).reshape(k, 2 * n_pairs), 0.0),
        axis=1,
    )

    # The even lag of pair n_read counts when that pair's sum is not negative or the
    # lag itself is positive; with no pair read it is lag 0 (rho = 1).
    rows = np.arange(k)
    last_even = rho[rows, 2 * n_read]
    last_kept = (pair_sum[rows, n_read] >= 0.0) | (last_even > 0.0)
    tail = np.where(n_read == 0, 1.0, np.where(last_kept, last_even, 0.0))

    tau = -1.0 + 2.0 * head + tail
    floor = 1.0 / np.log10(total)
    tau = np.where(floor > tau, floor, tau)
    ess = total / tau
    ess = np.where(np.isnan(rho[:, 1]), np.nan, ess)
    return np.where(constant, float(total), ess)


def _quantile(x: np.ndarray, prob: float) -> np.ndarray:
    """Type-7 sample quantile of each row of ``x``, with ``scipy.stats.mstats.mquantiles``' arithmetic."""
    n = x.shape[-1]
    p = np.float64(prob)
    m = 1.0 + p * (1.0 - 1.0 - 1.0)  # alphap = betap = 1
    aleph = n * p + m
    k = int(np.floor(np.clip(aleph, 1, n - 1)))
    gamma = np.clip(aleph - k, 0, 1)
    order = np.partition(x, (k - 1, k), axis=-1)
    return (1.0 - gamma) * order[:, k - 1] + gamma * order[:, k]


# --------------------------------------------------------------------------- public


def _split_rhat(x: np.ndarray, split: np.ndarray, z: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """R-hat of coordinates ``x`` from their split chains and the split chains' z-scores."""
    if x.shape[1] < 2 or x.shape[2] < _MIN_DRAWS:
        return np.full(x.shape[0], np.nan)
    bulk = _rhat(z)
    middle = ordered.shape[1] // 2  # the split draws are even in number
    median = (ordered[:, middle - 1] + ordered[:, middle]) / 2
    tail = _rhat(_z_scale(np.abs(split - median[:, None, None]))[0])
    return np.where(tail > bulk, tail, bulk)


def _ess_tail(x: np.ndarray) -> np.ndarray:
    if x.shape[2] < _MIN_DRAWS:
        return np.full(x.shape[0], np.nan)
    flat = x.reshape(x.shape[0], -1)
    below = [x <= _quantile(flat, p)[:, None, None] for p in _TAIL_PROBS]
    low, high = np.split(_ess(_split_chains(np.concatenate(below).astype(np.float64))), 2)
    return np.where(high < low, high, low)


def split_rhat(draws: Any) -> Any:
    """Rank-normalised split R-hat per coordinate."""
    x, event, invalid = _coordinates(draws)
    if x.shape[1] < 2 or x.shape[2] < _MIN_DRAWS:
        return _finish(np.full(x.shape[0], np.nan), invalid, event)
    split = _split_chains(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finish(_split_rhat(x, split, *_z_scale(split)), invalid, event)


def ess_bulk(draws: Any) -> Any:
    """Bulk effective sample size per coordinate."""
    x, event, invalid = _coordinates(draws)
    if x.shape[2] < _MIN_DRAWS:
        return _finish(np.full(x.shape[0], np.nan), invalid, event)
    with np.errstate(divide="ignore", invalid="ignore"):
        ess = _ess(_z_scale(_split_chains(x))[0])
    return _finish(ess, invalid, event)


def ess_tail(draws: Any) -> Any:
    """Tail effective sample size per coordinate (minimum over the 5% and 95% quantiles)."""
    x, event, invalid = _coordinates(draws)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finish(_ess_tail(x), invalid, event)


def convergence(draws: Any) -> tuple[Any, Any, Any]:
    """``(split_rhat, ess_bulk, ess_tail)`` of the same draws, equal to the three functions' results,
    computed together: the split chains and their rank z-scores serve both R-hat and the bulk ESS."""
    x, event, invalid = _coordinates(draws)
    if x.shape[2] < _MIN_DRAWS:
        nan = _finish(np.full(x.shape[0], np.nan), invalid, event)
        return nan, nan, nan
    split = _split_chains(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        z, ordered = _z_scale(split)
        rhat = _split_rhat(x, split, z, ordered)
        bulk = _ess(z)
        tail = _ess_tail(x)
    return _finish(rhat, invalid, event), _finish(bulk, invalid, event), _finish(tail, invalid, event)


def mcse_mean(draws: Any) -> Any:
    """Monte Carlo standard error of the mean per coordinate."""
    x, event, invalid = _coordinates(draws)
    if x.shape[2] < _MIN_DRAWS:
        return _finish(np.full(x.shape[0], np.nan), invalid, event)
    with np.errstate(divide="ignore", invalid="ignore"):
        ess = _ess(_split_chains(x))
        sd = np.std(x.reshape(x.shape[0], -1), axis=-1, ddof=1)
        return _finish(sd / np.sqrt(ess), invalid, event)


def nested_rhat(draws: Any, superchains: int) -> Any:
    """Nested R-hat per coordinate (Margossian, Hoffman, Sountsov, Riou-Durand, Vehtari & Gelman,
    *Nested R-hat: assessing the convergence of Markov chain Monte Carlo when running many short
    chains*, Bayesian Analysis 2024): the chains, in order, form ``superchains`` groups of equal size
    ``M``, and ``sqrt(1 + B / W)`` compares the variance ``B`` of the superchain means with ``W``,
    the mean over superchains of (the variance of its chain means + its mean within-chain variance).

    Unlike R-hat it does not need long chains: at stationarity ``B / W`` shrinks with ``M`` as well
    as with the chain length. With ``M = 1`` it is R-hat without the ``(n - 1) / n`` correction.
    """
    x, event, invalid = _coordinates(draws)
    k, chains, n = x.shape
    if superchains < 2 or chains % superchains or n < 2:
        raise ValueError(f"nested R-hat needs at least 2 superchains that divide the {chains} chains, and at "
                         f"least 2 draws per chain; got superchains={superchains}, draws={n}")
    m = chains // superchains
    grouped = x.reshape(k, superchains, m, n)
    chain_mean = grouped.mean(axis=-1)  # (k, K, M)
    within_chain = grouped.var(axis=-1, ddof=1).mean(axis=-1)  # (k, K)
    between_chain = chain_mean.var(axis=-1, ddof=1) if m > 1 else np.zeros_like(within_chain)
    between = chain_mean.mean(axis=-1).var(axis=-1, ddof=1)  # (k,)
    within = (between_chain + within_chain).mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.sqrt(1.0 + between / within)
    return _finish(values, invalid, event)

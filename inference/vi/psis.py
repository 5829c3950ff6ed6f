"""Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao and Gabry, 2024).

``psis(log_w) -> (smoothed log weights, k)``. The largest ``M = min(S/5, 3 sqrt(S))`` raw weights are
replaced by the expected order statistics of a generalized Pareto distribution fitted to them
(the empirical-Bayes estimate of Zhang and Stephens 2009, with the weakly informative prior of
the PSIS paper on ``k``), and capped at the largest raw weight. ``k`` is the fitted shape:
below 0.7 the smoothed estimate is reliable; ``-inf`` when the largest weights are equal (to 0.1%),
so that there is no tail; ``inf`` when there are too few draws to fit one. Weights are returned normalised (``logsumexp == 0``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["psis", "fit_generalized_pareto"]


def fit_generalized_pareto(x: np.ndarray) -> tuple[float, float]:
    """``(k, sigma)`` of a generalized Pareto with location 0 fitted to the exceedances ``x > 0``
    (Zhang and Stephens 2009), with PSIS's prior shrinking ``k`` towards 0.5."""
    x = np.sort(np.asarray(x, np.float64))
    n = x.size
    m = 30 + int(np.sqrt(n))
    quartile = x[int(n / 4 + 0.5) - 1]
    theta = 1.0 / x[-1] + (1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))) / (3.0 * quartile)
    k_of = np.mean(np.log1p(-theta[:, None] * x[None, :]), axis=1)  # k for each theta
    log_lik = n * (np.log(-theta / k_of) - k_of - 1.0)
    weights = 1.0 / np.sum(np.exp(log_lik[None, :] - log_lik[:, None]), axis=1)
    theta_hat = np.sum(theta * weights)
    k = np.mean(np.log1p(-theta_hat * x))
    sigma = -k / theta_hat
    k = (n * k + 10 * 0.5) / (n + 10)  # the weakly informative prior of the PSIS paper
    return float(k), float(sigma)


def _gpd_quantile(p, k, sigma):
    if abs(k) < 1e-12:
        return -sigma * np.log1p(-p)
    return sigma * np.expm1(-k * np.log1p(-p)) / k


def psis(log_w) -> tuple[np.ndarray, float]:
    """Smoothed, normalised log weights and the Pareto shape ``k`` (see the module docstring)."""
    log_w = np.asarray(log_w, np.float64).copy()
    finite = np.isfinite(log_w)
    s = int(finite.sum())
    if s == 0:
        raise ValueError("every importance weight is zero or not finite")
    log_w[~finite] = -np.inf
    log_w -= np.max(log_w)
    m = int(np.ceil(min(0.2 * s, 3 * np.sqrt(s))))
    k = np.inf
    if m >= 5:
        order = np.argsort(log_w)
        tail = order[-m:]
        cutoff = log_w[order[-m - 1]]
        exceed = np.exp(log_w[tail]) - np.exp(cutoff)
        if np.max(exceed) <= 1e-3 * np.exp(cutoff):  # the largest weights equal the cutoff (to 0.1%): no tail
            k = -np.inf
        elif np.all(exceed > 0) and np.ptp(exceed) > 0:
            k, sigma = fit_generalized_pareto(exceed)
            if np.isfinite(k):
                p = (np.arange(1, m + 1) - 0.5) / m
                smoothed = np.log(np.exp(cutoff) + _gpd_quantile(p, k, sigma))
                log_w[tail] = np.minimum(smoothed, 0.0)  # sorted ascending, as the tail is; capped at the max
    log_w -= np.logaddexp.reduce(log_w[np.isfinite(log_w)])
    return log_w, float(k)

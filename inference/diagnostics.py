"""Convergence diagnostics for MCMC draws, computed by ArviZ.

Every function takes an array of shape ``(chains, draws, *event)`` and
returns one value per event coordinate (shape ``event``; a float when the
draws are scalar):

- ``split_rhat``: rank-normalised split R-hat (Vehtari et al. 2021);
  near 1 when the chains agree, above 1.01 is a warning sign;
- ``ess_bulk`` / ``ess_tail``: effective sample sizes of the rank-normalised
  draws and of the 5% / 95% quantile indicators;
- ``mcse_mean``: Monte Carlo standard error of the posterior mean.

For a stationary AR(1) chain with coefficient ``phi`` the ESS of the mean is
``n (1 - phi) / (1 + phi)``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any

import numpy as np

__all__ = ["split_rhat", "ess_bulk", "ess_tail", "mcse_mean"]


def _arviz():
    with warnings.catch_warnings():
        # ArviZ 0.x announces its 1.0 refactor with a FutureWarning on import.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


@contextlib.contextmanager
def _quiet_arviz():
    """Silence ArviZ's log lines (one chain is 'Shape validation failed' to it; it is fine for us)."""
    loggers = [logging.getLogger(n) for n in ("arviz", "arviz_base", "arviz_stats")]
    own = getattr(_arviz(), "_log", None)  # ArviZ 0.x logs through a logger of its own, outside logging's tree
    if isinstance(own, logging.Logger):
        loggers.append(own)
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _apply(name: str, draws: Any, **options) -> Any:
    x = np.asarray(draws, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(
            f"diagnostics need draws of shape (chains, draws, ...), got an array of shape {x.shape}"
        )
    event = x.shape[2:]
    az = _arviz()
    with _quiet_arviz(), warnings.catch_warnings():
        dataset = az.convert_to_dataset({"x": x.reshape(x.shape[:2] + (-1,))})
        warnings.simplefilter("ignore", (FutureWarning, DeprecationWarning, RuntimeWarning))
        values = getattr(az, name)(dataset, **options)["x"].values
    values = np.asarray(values, dtype=np.float64).reshape(event)
    return float(values) if values.ndim == 0 else values


def split_rhat(draws: Any) -> Any:
    """Rank-normalised split R-hat per coordinate."""
    return _apply("rhat", draws, method="rank")


def ess_bulk(draws: Any) -> Any:
    """Bulk effective sample size per coordinate."""
    return _apply("ess", draws, method="bulk")


def ess_tail(draws: Any) -> Any:
    """Tail effective sample size per coordinate (minimum over the 5% and 95% quantiles)."""
    return _apply("ess", draws, method="tail")


def mcse_mean(draws: Any) -> Any:
    """Monte Carlo standard error of the mean per coordinate."""
    return _apply("mcse", draws, method="mean")

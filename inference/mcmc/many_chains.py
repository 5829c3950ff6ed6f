"""The post-run checks for many short chains (ChEES-HMC): nested R-hat and a floor on the total ESS.

NUTS's checks (``checks``) ask for R-hat below 1.01 and 100 effective draws
per chain. Both assume a few long chains: with a thousand chains of a hundred
draws, R-hat exceeds 1.01 at stationarity through the chains' shortness alone
(its bias grows like the autocorrelation time over the chain length), and
100 per chain asks for 100,000 effective draws. For many chains ppl checks
instead:

- *nested R-hat* (``diagnostics.nested_rhat``) over ``SUPERCHAINS`` groups of
  consecutive chains, above ``checks.RHAT_THRESHOLD``: the groups disagree,
  warm-up has not reached the target;
- the smaller of bulk and tail ESS below ``MIN_ESS`` in all: too few
  effective draws for the summaries.

Divergences are counted as for NUTS but reported in total (with the number
of chains that had any), not chain by chain; E-BFMI is pooled over the
chains (a chain of a few dozen draws cannot estimate its own). Each warning
is a ``SamplingWarning`` that says what to change, issued once per run.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np

from ppl.inference.mcmc import checks
from ppl.inference.mcmc.checks import SamplingWarning

__all__ = ["SUPERCHAINS", "MIN_ESS", "check_result"]

SUPERCHAINS = 8
MIN_ESS = 400


def check_result(result: Any, sites: Iterable[str]) -> list[str]:
    """Issue the warnings for a finished many-chain run (``inference.result.Result``); returns them."""
    messages: list[str] = []
    where = checks.frontend()

    def warn(text: str) -> None:
        messages.append(text)
        warnings.warn(text, SamplingWarning, stacklevel=checks.user_stacklevel())

    _divergences(result.method, result.sample_stats, warn, where)
    _pooled_ebfmi(result.method, result.sample_stats, warn, where)
    names, draws = checks._coordinates({a: result.samples[a] for a in sites if a in result.samples})
    if draws is None or draws.shape[1] < 4 or draws.shape[0] < SUPERCHAINS:
        return messages
    grouped = draws[: draws.shape[0] - draws.shape[0] % SUPERCHAINS]  # equal groups: the last few chains left out
    from ppl.inference import diagnostics

    longer = checks.how_to_set(result.method, "num_warmup", "1000", where)

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        nested = np.atleast_1d(np.asarray(diagnostics.nested_rhat(grouped, SUPERCHAINS), dtype=np.float64))
        ess = np.fmin(np.atleast_1d(diagnostics.ess_bulk(draws)), np.atleast_1d(diagnostics.ess_tail(draws)))
    threshold = checks.RHAT_THRESHOLD
    nested = np.where(checks.stuck(grouped), np.inf, nested)
    bad = ~np.isnan(nested) & (nested > threshold)
    if bad.any():
        warn(
            f"nested R-hat ({SUPERCHAINS} groups of {grouped.shape[0] // SUPERCHAINS} chains) above {threshold} "
            f"for {int(bad.sum())} of {nested.size} coordinates "
            f"({checks._listing(names, nested, bad, True, lambda v: checks.format_above(v, threshold))}); "
            f"the chains have not reached the posterior. Run a longer warm-up ({longer}), or reparameterise."
        )
    low = ~np.isnan(ess) & (ess < MIN_ESS)
    if low.any():
        more = checks.how_to_set(result.method, "num_samples", str(2 * draws.shape[1]), where)
        warn(
            f"effective sample size below {MIN_ESS} for {int(low.sum())} of {ess.size} coordinates "
            f"(lowest bulk/tail ESS: {checks._listing(names, ess, low, False, lambda v: checks.format_below(v, MIN_ESS))}"
            f"); posterior summaries are imprecise. Draw more samples ({more}) or more chains."
        )
    return messages


def _divergences(method: str, stats: dict, warn, where: str) -> None:
    if "diverging" not in stats:
        return
    diverging = np.asarray(stats["diverging"], dtype=bool)
    if diverging.ndim != 2 or not diverging.any():
        return
    chains = int(diverging.any(axis=1).sum())
    warn(
        f"{int(diverging.sum())} of {diverging.size} transitions after warm-up were divergent (in {chains} of "
        f"{diverging.shape[0]} chains); the draws may miss parts of the posterior. Raise the target acceptance "
        f"rate ({checks.how_to_set(method, 'target_accept', '0.9', where)}) or reparameterise the model — for "
        "a hierarchical scale, a non-centred parameterisation."
    )


def _pooled_ebfmi(method: str, stats: dict, warn, where: str) -> None:
    """E-BFMI of all chains together: mean squared energy change over the mean within-chain variance."""
    energy = np.asarray(stats.get("energy", np.zeros((0, 0))), dtype=np.float64)
    if energy.ndim != 2 or energy.shape[1] < 3:
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        ebfmi = np.mean(np.diff(energy, axis=1) ** 2) / np.mean(np.var(energy, axis=1))
    if ebfmi < checks.EBFMI_THRESHOLD:
        warn(
            f"E-BFMI of the chains together is {checks.format_below(ebfmi, checks.EBFMI_THRESHOLD)}, below "
            f"{checks.EBFMI_THRESHOLD}: the momentum resampling explores the energy distribution poorly. "
            f"Reparameterise the model, or lengthen warm-up ({checks.how_to_set(method, 'num_warmup', '1000', where)})."
        )

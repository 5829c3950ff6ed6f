"""The checks every MCMC run gets afterwards, and the ``SamplingWarning``s they issue.

One function, :func:`check_draws`, looks at a finished run of any Markov
chain method (NUTS, HMC, MH, Gibbs, PMMH): the draws of each site, shaped
``(chains, draws, *event)``, and the per-transition statistics the method
recorded. It warns about

- transitions that met a NaN log density or gradient, and divergent ones
  (gradient methods), reported once each;
- trajectories stopped by the maximum tree depth (NUTS);
- E-BFMI below 0.3 (methods that record the energy);
- a low mean acceptance rate (methods that ask for it: MH);
- split R-hat above 1.01, and bulk or tail ESS below 100 per chain.

:func:`check_result` applies it to an ``inference.result.Result``.

Numbers in a warning are printed with as many digits as it takes for a value
above a threshold never to read as the threshold or below (an R-hat of
1.0104 reads ``1.0104``, not ``1.01``), and the coordinates a warning lists
are exactly those it counts (the worst five, then how many more).

A warning points at the user's code: the first frame on the stack outside
the ``ppl`` package (:func:`user_stacklevel`). Its advice says how to act
from where the user called: ``ppl.NUTS(target_accept=0.95)`` from Python,
``--target-accept 0.95`` from the ``ppl`` command.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Iterable

import numpy as np

__all__ = [
    "SamplingWarning", "check_draws", "check_result", "check_sampling", "user_stacklevel", "frontend", "how_to_set",
    "format_above", "format_below", "stuck", "RHAT_THRESHOLD", "ESS_PER_CHAIN", "EBFMI_THRESHOLD", "MIN_ACCEPTANCE",
]

RHAT_THRESHOLD = 1.01
ESS_PER_CHAIN = 100
EBFMI_THRESHOLD = 0.3
#: mean acceptance below which a Metropolis–Hastings run is said to be stuck
MIN_ACCEPTANCE = 0.05
#: coordinates named in one warning; the rest are counted
MAX_LISTED = 5


class SamplingWarning(UserWarning):
    """The sampler ran, but its draws may not represent the posterior faithfully."""


# --------------------------------------------------------------------------- where the user is


def _module_name(frame) -> str:
    """The module a frame runs in (``ppl.cli`` also when run as ``python -m ppl.cli``)."""
    name = frame.f_globals.get("__name__", "") or ""
    if name == "__main__":
        spec = frame.f_globals.get("__spec__")
        name = getattr(spec, "name", None) or name
    return name


def _is_ours(frame) -> bool:
    name = _module_name(frame)
    return name == "ppl" or name.startswith("ppl.")


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the *caller* of this function point at
    the first frame outside the ``ppl`` package (the user's call of ``ppl.infer``, say)."""
    frame = sys._getframe(1)  # the caller, which calls warnings.warn: stacklevel 1
    level = 1
    while frame is not None and _is_ours(frame):
        frame = frame.f_back
        level += 1
    return level


def frontend() -> str:
    """``"cli"`` when the run was started by the ``ppl`` command, ``"repl"`` from the interactive
    loop, ``"python"`` otherwise (read off the modules on the stack)."""
    frame = sys._getframe(1)
    found = "python"
    while frame is not None:
        name = _module_name(frame)
        if name == "ppl.repl" or name.startswith("ppl.repl."):
            return "repl"
        if name == "ppl.cli":
            found = "cli"
        frame = frame.f_back
    return found


def how_to_set(method: str, option: str, value: str, where: str | None = None) -> str:
    """How the user sets a method's option from where they are: ``ppl.NUTS(target_accept=0.95)``
    in Python, ``--target-accept 0.95`` for ``ppl run``, ``:infer ... samples=4000`` in the REPL
    (or both of the others, for an option ``:infer`` does not take)."""
    where = frontend() if where is None else where
    python = f"ppl.{method}({option}={value})"
    flag = f"--{option.replace('_', '-')} {value}"
    if where == "cli":
        return flag
    if where == "repl":
        if option in _REPL_OPTIONS:
            return f":infer ... {_REPL_OPTIONS[option]}={value}"
        return f"{python} in Python, or `ppl run FILE {flag}`"
    return python


#: options the REPL's ``:infer`` takes, by their names there
_REPL_OPTIONS = {"num_samples": "samples", "num_warmup": "warmup", "num_chains": "chains", "support_bound": "bound"}


# --------------------------------------------------------------------------- numbers


def format_above(x: float, threshold: float) -> str:
    """``x`` with the fewest significant digits (3 at least) that still read above ``threshold``."""
    if not np.isfinite(x):
        return str(float(x))
    for digits in range(3, 17):
        text = f"{x:.{digits}g}"
        if float(text) > threshold:
            return text
    return repr(float(x))


def format_below(x: float, floor: float) -> str:
    """``x`` with the fewest significant digits (3 at least) that still read below ``floor``."""
    if not np.isfinite(x):
        return str(float(x))
    for digits in range(3, 17):
        text = f"{x:.{digits}g}"
        if float(text) < floor:
            return text
    return repr(float(x))


def _listing(names: list[str], values: np.ndarray, flagged: np.ndarray, largest: bool, fmt) -> str:
    """The flagged coordinates, worst first: the first ``MAX_LISTED`` with their values, then a count."""
    idx = np.flatnonzero(flagged)
    keys = values[idx]
    order = idx[np.argsort(-keys if largest else keys, kind="stable")]
    shown = ", ".join(f"{names[i]} ({fmt(values[i])})" for i in order[:MAX_LISTED])
    more = len(order) - MAX_LISTED
    return shown + (f", and {more} more" if more > 0 else "")


def stuck(draws: np.ndarray) -> np.ndarray:
    """Per coordinate of ``(chains, draws, coordinates)`` draws: every chain stayed at one value, and
    not all at the same one. R-hat is infinite there (within-chain variance zero); computed in floating
    point it can come out as any huge number, so the checks and the summary report it as ``inf``."""
    x = np.asarray(draws, dtype=np.float64)
    if x.ndim < 3 or x.shape[0] < 2 or x.shape[1] < 1:
        return np.zeros(x.shape[2:] if x.ndim >= 3 else (), dtype=bool)
    first = x[:, :1]
    constant = np.all(x == first, axis=1).all(axis=0)  # (coordinates,)
    differ = np.any(first[:, 0] != first[:1, 0], axis=0)
    return constant & differ


def _coordinates(samples: dict) -> tuple[list[str], np.ndarray | None]:
    """Every numeric site's draws as one ``(chains, draws, coordinates)`` array, with the names."""
    names, blocks = [], []
    for site, v in samples.items():
        arr = np.asarray(v)
        numeric = np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
        if arr.dtype == object or arr.ndim < 2 or not numeric:
            continue
        event = arr.shape[2:]
        blocks.append(arr.reshape(arr.shape[0], arr.shape[1], -1).astype(np.float64))
        if not event:
            names.append(site)
        else:
            names.extend(f"{site}[{','.join(map(str, i))}]" for i in np.ndindex(*event))
    if not blocks:
        return [], None
    shapes = {b.shape[:2] for b in blocks}
    if len(shapes) != 1:
        return [], None
    return names, np.concatenate(blocks, axis=-1)


# --------------------------------------------------------------------------- the checks


def check_draws(
    method: str,
    stats: dict,
    names: list[str],
    draws: np.ndarray | None,
    *,
    max_tree_depth: int | None = None,
    min_acceptance: float | None = None,
) -> list[str]:
    """Issue the ``SamplingWarning``s for a finished run; returns their messages.

    ``stats``: per-transition statistics, each ``(chains, draws)`` (``diverging``, ``nonfinite``,
    ``tree_depth``, ``energy``, ``accept_prob``: those present are checked); ``draws``:
    ``(chains, draws, coordinates)`` named by ``names`` (or None: no R-hat and ESS checks).
    Each warning points at the user's frame (:func:`user_stacklevel`).
    """
    messages: list[str] = []

    def warn(text: str) -> None:
        messages.append(text)
        warnings.warn(text, SamplingWarning, stacklevel=user_stacklevel())

    where = frontend()
    _divergences(method, stats, warn, where)
    if max_tree_depth is not None and "tree_depth" in stats:
        depth = np.asarray(stats["tree_depth"])
        saturated = int((depth >= max_tree_depth).sum())
        if saturated:
            warn(
                f"{saturated} of {depth.size} transitions after warm-up stopped at the maximum tree depth "
                f"({max_tree_depth}); sampling is inefficient. Raise the maximum tree depth "
                f"({how_to_set(method, 'max_tree_depth', str(max_tree_depth + 2), where)}) or reparameterise."
            )
    _ebfmi(method, stats, warn, where)
    if min_acceptance is not None and "accept_prob" in stats:
        accept = np.asarray(stats["accept_prob"], dtype=np.float64)
        rate = float(np.nanmean(accept))
        if rate < min_acceptance:
            per_chain = ", ".join(format_below(r, min_acceptance) if r < min_acceptance else f"{r:.3g}"
                                  for r in np.nanmean(accept.reshape(accept.shape[0], -1), axis=1))
            warn(
                f"the mean acceptance rate of {method} is {format_below(rate, min_acceptance)} (per chain: "
                f"{per_chain}), below {min_acceptance}: the chains rarely move, and their draws are few "
                "distinct points. Propose smaller moves (a block selection, or a proposal model: "
                f"ppl.{method}(proposal=...)), or use ppl.NUTS for continuous sites."
            )

    if draws is None or draws.ndim != 3 or draws.shape[1] < 4 or not names:
        return messages
    _convergence(method, names, draws, warn, where)
    return messages


def _divergences(method: str, stats: dict, warn, where: str) -> None:
    """Warn about transitions that met a NaN density or gradient, and about divergent ones."""
    if "diverging" in stats:
        diverging = np.asarray(stats["diverging"], dtype=bool)
        C, S = diverging.shape
        nonfinite = np.asarray(stats["nonfinite"], dtype=bool) if "nonfinite" in stats else np.zeros_like(diverging)
        n_nan = int((nonfinite & diverging).sum())
        if n_nan:
            warn(
                f"{n_nan} of {C * S} transitions after warm-up stopped at a NaN log density or a NaN or "
                "infinite gradient: the model's density is undefined in part of the region the sampler "
                "explores, and the draws miss that region. Look for a log or sqrt of a value that can be "
                "negative, a division by zero, or a parameter that leaves its domain (a smaller step size "
                "will not fix it)."
            )
        diverging = diverging & ~nonfinite
        n_div = int(diverging.sum())
        if n_div:
            per_chain = ", ".join(str(int(n)) for n in diverging.sum(axis=1))
            warn(
                f"{n_div} of {C * S} transitions after warm-up were divergent (per chain: {per_chain}); "
                "the draws may miss parts of the posterior. Raise the target acceptance rate "
                f"({how_to_set(method, 'target_accept', '0.95', where)}) or reparameterise the model — for "
                "a hierarchical scale, a non-centred parameterisation; a hard condition(...) on a continuous "
                "value is a wall no gradient method crosses (use ppl.MH or ppl.Importance)."
            )


def _ebfmi(method: str, stats: dict, warn, where: str) -> None:
    """Warn about chains whose energy E-BFMI is below ``EBFMI_THRESHOLD``."""
    if "energy" in stats:
        energy = np.asarray(stats["energy"], dtype=np.float64)
        if energy.ndim == 2 and energy.shape[1] > 2:
            numerator = np.mean(np.diff(energy, axis=1) ** 2, axis=1)
            denominator = np.var(energy, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ebfmi = numerator / denominator
            low = np.flatnonzero(ebfmi < EBFMI_THRESHOLD)
            if low.size:
                warn(
                    f"E-BFMI below {EBFMI_THRESHOLD} in chain(s) {', '.join(map(str, low))} "
                    f"({', '.join(format_below(ebfmi[c], EBFMI_THRESHOLD) for c in low)}): the momentum "
                    "resampling explores the energy distribution poorly. Reparameterise the model, or "
                    f"lengthen warm-up ({how_to_set(method, 'num_warmup', '2000', where)})."
                )


def _convergence(method: str, names: list[str], draws: np.ndarray, warn, where: str) -> None:
    from ppl.inference import diagnostics

    C = draws.shape[0]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat, bulk, tail = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in diagnostics.convergence(draws))
    rhat = np.where(stuck(draws), np.inf, rhat)
    longer = how_to_set(method, "num_samples", "4000", where)
    if C >= 2:
        bad = ~np.isnan(rhat) & (rhat > RHAT_THRESHOLD)
        if bad.any():
            infinite = np.isinf(rhat) & bad
            why = ""
            if infinite.any():
                stuck_names = [names[i] for i in np.flatnonzero(infinite)]
                shown = ", ".join(stuck_names[:MAX_LISTED]) + (
                    f" and {len(stuck_names) - MAX_LISTED} more" if len(stuck_names) > MAX_LISTED else "")
                why = (f" R-hat is inf for {shown}: each chain stayed at one value the whole run, and the "
                       "chains disagree (a discrete site that never moved).")
            warn(
                f"R-hat above {RHAT_THRESHOLD} for {int(bad.sum())} of {rhat.size} coordinates ("
                f"{_listing(names, rhat, bad, True, lambda v: format_above(v, RHAT_THRESHOLD))}); the chains "
                f"have not mixed.{why} Run longer warm-up and sampling ({longer}), or reparameterise."
            )
    ess = np.fmin(bulk, tail)
    floor = ESS_PER_CHAIN * C
    low = ~np.isnan(ess) & (ess < floor)
    if low.any():
        warn(
            f"effective sample size below {floor} ({ESS_PER_CHAIN} per chain) for {int(low.sum())} of "
            f"{ess.size} coordinates (lowest bulk/tail ESS: "
            f"{_listing(names, ess, low, False, lambda v: format_below(v, floor))}); posterior summaries are "
            f"imprecise. Draw more samples ({longer}) or reparameterise."
        )


def check_result(result: Any, *, max_tree_depth: int | None = None, min_acceptance: float | None = None,
                 sites: Iterable[str] | None = None) -> list[str]:
    """:func:`check_draws` on an ``inference.result.Result`` of Markov chains (its ``samples`` have
    leading axes ``(chains, draws)``); ``sites`` limits the R-hat and ESS checks to those sites."""
    samples = result.samples if sites is None else {a: result.samples[a] for a in sites if a in result.samples}
    names, draws = _coordinates(samples)
    return check_draws(result.method, result.sample_stats, names, draws, max_tree_depth=max_tree_depth,
                       min_acceptance=min_acceptance)


# --------------------------------------------------------------------------- runs on a log density


def _flat_names(positions: Any) -> list[str]:
    import jax

    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(positions)[0]:
        base = jax.tree_util.keystr(path).lstrip(".").strip("[]'\"") or "x"
        event = np.shape(leaf)[2:]
        if not event:
            names.append(base)
        else:
            names.extend(f"{base}[{','.join(map(str, idx))}]" for idx in np.ndindex(*event))
    return names


def _flat_draws(positions: Any) -> np.ndarray:
    import jax

    leaves = [np.asarray(x, dtype=np.float64) for x in jax.tree.leaves(positions)]
    C, S = leaves[0].shape[:2]
    return np.concatenate([x.reshape(C, S, -1) for x in leaves], axis=-1)


def check_sampling(result: Any, *, max_tree_depth: int | None = None, stacklevel: int | None = None,
                   method: str = "NUTS") -> None:
    """For ``base.run_chains``'s ``MCMCResult`` (positions on the log density's argument): issue ``SamplingWarning``s about a finished run (``checks.check_draws``, the checks every
    MCMC method runs): divergent transitions after warm-up; trajectories stopped by
    ``max_tree_depth``; E-BFMI below 0.3; R-hat above 1.01; bulk or tail ESS below 100 per chain.
    The warnings point at the first frame outside ppl (``stacklevel`` is accepted and ignored).
    """
    draws = _flat_draws(result.positions)
    names = _flat_names(result.positions)
    check_draws(method, result.sample_stats, names, draws, max_tree_depth=max_tree_depth)

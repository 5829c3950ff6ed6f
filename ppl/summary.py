"""The summary table of a Posterior (rich, rendered to text).

Every posterior gets mean, standard deviation and the 5% / 50% / 95%
quantiles per site. Posteriors made of Markov chains (NUTS, HMC, MH, Gibbs)
also get, per coordinate, the Monte Carlo standard error of the mean, bulk
and tail ESS and split R-hat (``ppl.inference.diagnostics``, which agrees
with ArviZ), and a footer with the divergences and the mean acceptance.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ppl.output import element_labels

__all__ = ["summary_table", "chain_diagnostics"]

#: per-coordinate chain diagnostics shown, in column order
CHAIN_COLUMNS = ("mcse", "ess_bulk", "ess_tail", "r_hat")
#: rows shown per site before the rest is elided
MAX_ROWS_PER_SITE = 20


def _fmt(x) -> str:
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def _fmt_diag(column: str, x) -> str:
    """A diagnostic; an R-hat above the warning threshold never reads as the threshold (1.0104, not 1.01)."""
    from ppl.inference.mcmc.checks import RHAT_THRESHOLD, format_above

    if column == "r_hat" and np.isfinite(x) and x > RHAT_THRESHOLD:
        return format_above(float(x), RHAT_THRESHOLD)
    return _fmt(x)


def chain_diagnostics(draws) -> dict[str, np.ndarray] | None:
    """MCSE, bulk/tail ESS and split R-hat of draws shaped (chains, draws, *event), or None if too short."""
    from ppl.inference import diagnostics as D

    x = np.asarray(draws, dtype=np.float64)
    if x.ndim < 2 or x.shape[1] < 4 or x.dtype == object:
        return None
    from ppl.inference.mcmc.checks import stuck

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws give NaN diagnostics, shown as nan
        rhat = np.asarray(D.split_rhat(x))
        # every chain at one value, the chains at different ones: R-hat is infinite (the SamplingWarning
        # says why), whatever huge number floating point makes of it
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        rhat = np.where(stuck(flat).reshape(x.shape[2:]), np.inf, rhat)
        return {
            "mcse": np.asarray(D.mcse_mean(x)),
            "ess_bulk": np.asarray(D.ess_bulk(x)),
            "ess_tail": np.asarray(D.ess_tail(x)),
            "r_hat": rhat,
        }


def _footer(post) -> list[str]:
    lines = []
    stats = post.sample_stats
    if "diverging" in stats:
        div = np.asarray(stats["diverging"])
        lines.append(f"divergences: {int(div.sum())} of {div.size} transitions after warm-up")
    if "accept_prob" in stats and post.result.chains:
        lines.append(f"mean acceptance: {float(np.mean(stats['accept_prob'])):.3f}")
    if "step_size" in stats:
        sizes = np.asarray(stats["step_size"])
        per_chain = sizes[:, 0] if sizes.ndim == 2 else np.ravel(sizes)
        lines.append("step size per chain: " + ", ".join(_fmt(s) for s in per_chain))
    if post.log_evidence is not None:
        lines.append(f"log evidence: {post.log_evidence:.6g}")
    if post.weights is not None and post.method != "Enumerate":
        lines.append(f"effective sample size: {post.ess:.1f}")
    lines.extend(f"note: {n}" for n in post.notes)
    return lines


def summary_table(post, names=None) -> str:
    title = f"{post.method} on '{post.model_name}' ({post.engine} engine)"
    table = Table()
    chains = bool(post.result.chains) and post.weights is None
    columns = ["site", "mean", "std", "5%", "50%", "95%"] + (list(CHAIN_COLUMNS) if chains else [])
    for col in columns:
        table.add_column(col, justify="left" if col == "site" else "right")
    names = list(post.samples) if names is None else list(names)
    for name in names:
        vals = np.asarray(post.samples[name])
        if vals.dtype == object:
            continue
        mean, std = np.atleast_1d(post.mean(name)), np.atleast_1d(post.std(name))
        qs = np.asarray(post.quantile(name, [0.05, 0.5, 0.95])).reshape(3, -1)
        diag = chain_diagnostics(vals) if chains else None
        flat_mean, flat_std = mean.ravel(), std.ravel()
        labels = element_labels(name, mean.shape)  # as the exports name them: z[1,2] of a matrix, not z[5]
        for j in range(flat_mean.size):
            if j == MAX_ROWS_PER_SITE:
                table.add_row(Text(f"{name}[...]"), *([""] * (len(columns) - 1)))
                break
            # a Text, not a str: rich would read '[red]' in a site name as markup and drop it
            label = Text(name if flat_mean.size == 1 else labels[j])
            row = [label, _fmt(flat_mean[j]), _fmt(flat_std[j]), *(_fmt(qs[i, j]) for i in range(3))]
            if chains:
                row += [("" if diag is None else _fmt_diag(c, np.ravel(diag[c])[j])) for c in CHAIN_COLUMNS]
            table.add_row(*row)
    buf = io.StringIO()
    Console(file=buf, width=120, force_terminal=False, color_system=None).print(table)
    return "\n".join([title, buf.getvalue().rstrip(), *_footer(post)])

"""The summary table of a Posterior (rich, rendered to text)."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console
from rich.table import Table

__all__ = ["summary_table"]


def _fmt(x) -> str:
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def summary_table(post, names=None) -> str:
    title = f"{post.method} on '{post.model_name}' ({post.engine} engine)"
    table = Table(title=title, title_justify="left")
    for col in ("site", "mean", "std", "5%", "50%", "95%"):
        table.add_column(col, justify="right" if col != "site" else "left")
    extra = [k for k in ("ess_bulk", "ess_tail", "r_hat") if k in post.sample_stats.get("_summary", {})]
    if "diverging" in post.sample_stats:
        title += f"; divergences: {int(np.sum(post.sample_stats['diverging']))}"
    for col in extra:
        table.add_column(col, justify="right")
    names = list(post.samples) if names is None else list(names)
    for name in names:
        vals = np.asarray(post.samples[name])
        if vals.dtype == object:
            continue
        mean, std = np.atleast_1d(post.mean(name)), np.atleast_1d(post.std(name))
        qs = post.quantile(name, [0.05, 0.5, 0.95])
        qs = qs.reshape(3, -1)
        flat_mean, flat_std = mean.ravel(), std.ravel()
        for j in range(flat_mean.size):
            label = name if flat_mean.size == 1 else f"{name}[{j}]"
            row = [label, _fmt(flat_mean[j]), _fmt(flat_std[j]), *(_fmt(qs[i, j]) for i in range(3))]
            for col in extra:
                got = post.sample_stats["_summary"][col].get(name)
                row.append("" if got is None else _fmt(np.ravel(got)[j]))
            table.add_row(*row)
            if j >= 19:
                table.add_row(f"{name}[...]", "", "", "", "", "")
                break
    buf = io.StringIO()
    Console(file=buf, width=100, force_terminal=False, color_system=None).print(table)
    lines = [buf.getvalue().rstrip()]
    if post.log_evidence is not None:
        lines.append(f"log evidence: {post.log_evidence:.6g}")
    if post.weights is not None and post.method != "Enumerate":
        lines.append(f"effective sample size: {post.ess:.1f}")
    lines.extend(f"note: {n}" for n in post.notes)
    return "\n".join(lines)

"""Shared plumbing for algorithms: the program tree of a model, errors at the user's line, stacking draws.

Running a program eagerly is the reference semantics' business (``semantics.interpret``): the
weighted sampler, the population and the sequential and traced representations live there, and the
eager algorithms compose them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ppl.semantics import effects
from ppl.semantics.interpret.free import reify_ir, reify_python
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import PPLError

__all__ = ["program_tree", "stack_draws", "annotate", "raise_if_impossible", "refuse_partial_continuous"]


def program_tree(program, args):
    """The reference-semantics tree of a static program or a dynamic one."""
    if isinstance(program, Dynamic):
        return reify_python(program.call)
    return reify_ir(program, args)


def refuse_partial_continuous(program, what: str) -> None:
    """Methods that move every continuous site of one fixed vector (NUTS, HMC, ChEES, VI, Pathfinder)
    refuse a continuous site that some runs do not make (``ir.partial_sites``): where its branch
    does not run, the density leaves it out, so the density is flat in it and the target is no
    proper posterior (NUTS drifts, VI's objective grows without bound)."""
    from ppl.semantics import ir
    from ppl.stdlib.errors import ModelError

    for a, info in ir.partial_sites(program).items():
        if not info.is_discrete:
            raise ModelError(
                f"the continuous random choice '{a}' is made in some runs only (inside a branch, and not "
                f"under this name in every branch): where its branch does not run the density leaves it out, "
                f"so {what}, which moves every continuous site at once, would see a density flat in '{a}' "
                "and no proper posterior", span=info.span,
                hint="Give the site the same name in every branch (each branch draws it from its own "
                     "distribution), or use ppl.MH, ppl.Importance or ppl.SMC, which follow the branches.")


def annotate(err: BaseException) -> BaseException:
    """Attach the user's source line to a user error raised while running their code."""
    if isinstance(err, PPLError) and err.span is None:
        err.with_span(effects.user_span_of(err))
    return err


def raise_if_impossible(log_weights, reasons) -> None:
    """Every draw has weight zero: report an observation outside its support, if that is why."""
    if len(log_weights) and np.all(np.asarray(log_weights) == -np.inf):
        for err in reasons:
            if err is not None:
                err.message += " (for every draw of the parameters)"
                raise err


_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


def population_result(particles, method: str, sample_stats: dict | None = None):
    """The eager engine's Result for a finished weighted population: draws stacked by site, the
    return values, the log weights and ``log mean exp`` of them as the evidence estimate."""
    from ppl.inference.result import Result
    from ppl.semantics.interpret import population

    log_w = population.log_weights(particles)
    return Result(
        samples=stack_draws([p.trace for p in particles]),
        returns=[p.value for p in particles],
        method=method,
        engine="eager",
        log_weights=log_w,
        log_evidence=population.log_mean_exp(log_w),
        sample_stats=dict(sample_stats or {}),
    )


def warn_if_degenerate(log_weights, method: str) -> None:
    """A SamplingWarning when a few particles carry all the weight (an effective sample size below
    100, or below a tenth of the particles when there are fewer than 1000): the weighted summaries
    then rest on those few draws from the prior, as MCMC's summaries do on too few effective draws."""
    import warnings

    from ppl.inference.mcmc.checks import SamplingWarning, user_stacklevel

    logw = np.asarray(log_weights, np.float64).reshape(-1)
    finite = logw[np.isfinite(logw)]
    if finite.size == 0:
        return
    w = np.exp(finite - finite.max())
    ess = float(w.sum() ** 2 / np.sum(w ** 2))
    n = logw.size
    if ess < min(100.0, n / 10):
        warnings.warn(
            f"{method}: effective sample size {ess:.1f} of {n} particles: a few draws from the prior carry "
            "the weight, so the posterior summaries are unreliable. Use more particles, or a method that "
            "moves towards the posterior (ppl.NUTS, ppl.SMC, ppl.MH).",
            SamplingWarning, stacklevel=user_stacklevel())


def absent_as_nan(samples: dict, present: dict) -> dict:
    """Each site's draws with NaN where the site was not made (a branch that did not run): the
    compiled engines record a placeholder value there, the eager engine no value at all, and the
    Posterior's statistics read NaN as "absent" (a mean given that the site exists). ``present``:
    per site, a boolean over the draws (and a loop's steps) from the compiled trace."""
    out = dict(samples)
    for a, flags in present.items():
        if a not in out:
            continue
        flags = np.asarray(flags, bool)
        if flags.all():
            continue
        value = np.asarray(out[a], np.float64)
        flags = flags.reshape(flags.shape + (1,) * (value.ndim - flags.ndim))
        out[a] = np.where(flags, value, np.nan)
    return out


def stack_draws(traces: list[dict]) -> dict[str, np.ndarray]:
    """Per-address arrays over draws. Addresses 'x[0]', 'x[1]', ... present in every draw are
    stacked into 'x'; an address missing from some draws is NaN there."""
    traces = [_stack_indexed({k: np.asarray(v) for k, v in t.items()}) for t in traces]
    names: dict[str, None] = {}
    for t in traces:
        names.update(dict.fromkeys(t))
    out = {}
    for name in names:
        vals = [t.get(name) for t in traces]
        present = [v for v in vals if v is not None]
        shapes = {v.shape for v in present}
        if len(present) == len(vals) and len(shapes) == 1:
            out[name] = np.stack(present)
        elif len(shapes) == 1:
            shape = shapes.pop()
            arr = np.full((len(vals),) + shape, np.nan)
            for i, v in enumerate(vals):
                if v is not None:
                    arr[i] = v
            out[name] = arr
        else:  # ragged (random-length structure): keep an object array
            arr = np.empty(len(vals), dtype=object)
            for i, v in enumerate(vals):
                arr[i] = v
            out[name] = arr
    return out


def _stack_indexed(trace: dict) -> dict:
    changed = True
    while changed:
        changed = False
        groups: dict[str, dict[int, Any]] = {}
        for k in trace:
            m = _INDEXED.match(k)
            if m:
                groups.setdefault(m.group(1), {})[int(m.group(2))] = k
        for base, idx in groups.items():
            if base in trace or sorted(idx) != list(range(len(idx))):
                continue
            vals = [np.asarray(trace[idx[i]]) for i in range(len(idx))]
            if len({v.shape for v in vals}) != 1:
                continue
            for k in idx.values():
                del trace[k]
            trace[base] = np.stack(vals)
            changed = True
    return trace

"""What the command line and the REPL share: method names and options, building a method
object from them, and printing values and return-value summaries.

Both ``ppl/cli.py`` and the REPL (``ppl/repl/``) import this module; neither imports the other.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import warnings
from typing import Any

import numpy as np

from ppl.stdlib.errors import PPLError

__all__ = ["METHODS", "OPTION_METHODS", "CommandLineError", "method_name", "model_parameters", "build_method",
           "return_summary", "format_value"]

METHODS = ("enumerate", "importance", "smc", "nuts", "hmc", "chees", "mh", "gibbs", "pmmh", "vi")
#: the methods each method-specific option goes with
OPTION_METHODS = {
    "target_accept": ("nuts", "hmc", "chees"),
    "max_tree_depth": ("nuts",),
    "dense_mass": ("nuts", "hmc"),
    "init": ("nuts", "hmc", "chees"),
    "thin": ("nuts", "hmc", "chees", "mh", "gibbs"),
}


class CommandLineError(PPLError):
    """A bad option or combination of options (rendered ``error: ...``, like argparse's own)."""

    kind = "error"


def method_name(text: str) -> str:
    """A method's canonical name from what a user typed (any case); a PPLError with "did you mean" otherwise."""
    name = str(text).strip().lower()
    if name in METHODS:
        return name
    close = difflib.get_close_matches(name, METHODS, n=1, cutoff=0.6)
    raise CommandLineError(f"unknown method '{text}'; the methods are {', '.join(METHODS)}",
                   hint=f"Did you mean '{close[0]}'?" if close else None)


def model_parameters(model) -> list[str]:
    names = getattr(model, "param_names", None)
    if names is not None:
        return list(names)
    return [n for n, p in inspect.signature(model.fn).parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def build_method(name: str | None, program, num_samples=None, num_warmup=None, num_chains=None,
                 progress: bool | None = None, max_depth: int | None = None, leaves=None,
                 support_bound: int | None = None, **options):
    """A method object from its command-line name and options (None: the default for the model).

    ``progress`` (None: the method's default) goes to the methods that show one;
    ``max_depth`` bounds exact enumeration of a recursive model, ``support_bound`` the values
    enumerated of a countably infinite distribution (each implies exact enumeration).
    ``options`` (``target_accept``, ``max_tree_depth``, ``dense_mass``, ``init``,
    ``thin``; None: not given) go to the methods that take them, and are refused
    with a clear error by the others.
    """
    import ppl
    from ppl.api import default_method

    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(OPTION_METHODS))
    if unknown:
        raise TypeError(f"build_method() got unknown options {unknown}")
    if name is not None:
        name = method_name(name)
    if max_depth is not None or support_bound is not None:
        flag = "--max-depth" if max_depth is not None else "--support-bound"
        if name not in (None, "enumerate"):
            raise CommandLineError(f"{flag} bounds exact enumeration; it does not go with --method {name}",
                           hint=f"Use --method enumerate {flag} N, or leave {flag} out"
                                + (" (NUTS's tree depth is --max-tree-depth)." if name == "nuts" and max_depth
                                   is not None else "."))
        _refuse_options(options, "enumerate")
        return ppl.Enumerate(max_depth=max_depth, support_bound=support_bound)
    default = None
    if name is None:
        default = default_method(program, leaves)
        name = type(default).__name__.lower()
        if name not in METHODS:  # a registered method the command line has no name for
            if num_samples is None and num_chains is None and num_warmup is None and progress is None \
                    and not options:
                return default
            raise CommandLineError(f"the default method for this model is {type(default).__name__}, which takes no "
                           "command-line options", hint=f"Choose one with --method ({', '.join(METHODS)}).")
    _refuse_options(options, name, chosen_by_default=default is not None)
    opts = {}
    if name == "enumerate":  # exact: nothing to draw, so the sampling options do not apply
        return default if default is not None else ppl.Enumerate()
    if name in ("importance", "smc"):
        if num_samples is not None:
            opts["num_particles"] = num_samples
    elif name in ("nuts", "hmc", "chees", "mh", "gibbs", "pmmh"):
        for key, value in (("num_samples", num_samples), ("num_warmup", num_warmup), ("num_chains", num_chains)):
            if value is not None:
                opts[key] = value
        opts.update(options)
    elif name == "vi":  # variational inference (AutoNormal, ELBO): --num-samples draws from the fitted guide
        if num_warmup is not None or num_chains is not None:
            raise CommandLineError("--num-warmup and --num-chains do not go with --method vi (it fits a guide, "
                                   "then draws --num-samples from it)", hint="Leave them out.")
        if num_samples is not None:
            opts["num_samples"] = num_samples
    cls = {"importance": "Importance", "smc": "SMC", "nuts": "NUTS", "hmc": "HMC", "chees": "ChEES", "mh": "MH",
           "gibbs": "Gibbs", "pmmh": "PMMH", "vi": "VI"}[name]
    if not hasattr(ppl, cls):
        raise CommandLineError(f"the method '{name}' is not available in this version of ppl")
    method_class = getattr(ppl, cls)
    if progress is not None and "progress" in inspect.signature(method_class).parameters:
        opts["progress"] = progress
    if default is not None and dataclasses.is_dataclass(default):
        return dataclasses.replace(default, **opts)  # keep the default's own settings
    if default is not None and not opts:
        return default
    return method_class(**opts)


def _refuse_options(options: dict, name: str, chosen_by_default: bool = False) -> None:
    for key in options:
        if name not in OPTION_METHODS[key]:
            flag = "--" + key.replace("_", "-")
            goes = ", ".join(OPTION_METHODS[key])
            why = f"the method chosen for this model is {name}" if chosen_by_default else f"--method {name}"
            raise CommandLineError(f"{flag} goes with --method {goes}, not with {name} ({why})",
                           hint=f"Leave {flag} out, or choose --method {OPTION_METHODS[key][0]}.")


#: the most distinct return values shown as a table of probabilities
MAX_RETURN_VALUES = 25


def return_summary(post) -> str | None:
    """What the model returns: a table of probabilities for a few whole-number values
    (``return value:`` then ``  value  probability`` lines), else the mean, standard
    deviation and quantiles of each coordinate (``return value:`` for one number,
    ``return value[i]:`` lines for arrays and structures), unless a site of the
    summary table is the return value."""
    returns = post.returns
    if returns is None or (isinstance(returns, tuple) and not returns):
        return None
    try:
        values = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None:
        return _structure_summary(post)
    if post.result.chains:
        values = values.reshape((-1,) + values.shape[2:])
    if values.size == 0 or values.ndim == 0:
        return None
    finite = values[np.isfinite(values)]
    if values.ndim == 1 and finite.size and np.all(finite == np.round(finite)) \
            and len(np.unique(finite)) <= MAX_RETURN_VALUES:
        probs = post.probs()
        width = max(len(format_value(v)) for v in probs)
        return "\n".join(["return value:", *(f"  {format_value(v):>{width}}  {p:.4f}" for v, p in probs.items())])
    for draws in post.samples.values():
        site = np.asarray(draws)
        if site.dtype != object and site.shape == np.shape(returns) and np.array_equal(site, np.asarray(returns)):
            return None  # the return value is a site of the table above
    return _coordinate_lines("return value", values, post.weights)


def _structure_summary(post) -> str | None:
    """Each numeric leaf of a structured return value (a tuple of arrays, ...), one block per leaf."""
    import jax

    if isinstance(post.returns, list):
        return None  # eager engine: Python values per draw; see posterior.probs()
    leaves = jax.tree.leaves(post.returns)
    blocks = []
    for k, leaf in enumerate(leaves):
        try:
            values = np.asarray(leaf, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if post.result.chains:
            values = values.reshape((-1,) + values.shape[2:])
        if values.ndim >= 1 and values.size:
            blocks.append(_coordinate_lines(f"return value.{k}", values, post.weights))
    return "\n".join(blocks) or None


#: the most coordinates of a returned array shown, then "..."
MAX_RETURN_COORDINATES = 20


def _coordinate_lines(label: str, values: np.ndarray, weights) -> str:
    """``label: mean ..., std ..., 5% ...`` for one number per draw, else one line per coordinate."""
    from ppl.posterior import _wmean, _wquantile

    x = values.reshape(values.shape[0], -1)
    if weights is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1])
            qs = np.nanquantile(x, [0.05, 0.5, 0.95], axis=0)
    else:
        mean = _wmean(x, weights)
        std = np.sqrt(_wmean((x - mean) ** 2, weights))
        qs = np.stack([_wquantile(x, weights, q) for q in (0.05, 0.5, 0.95)])
    event = values.shape[1:]
    lines = []
    for j, idx in enumerate(np.ndindex(*event) if event else [()]):
        if j == MAX_RETURN_COORDINATES:
            lines.append(f"{label}[...]: {x.shape[1] - j} more coordinates")
            break
        name = label + (f"[{','.join(map(str, idx))}]" if event else "")
        lines.append(f"{name}: mean {mean[j]:.4g}, std {std[j]:.4g}, 5% {qs[0, j]:.4g}, 50% {qs[1, j]:.4g}, "
                     f"95% {qs[2, j]:.4g}")
    return "\n".join(lines)


def format_value(value: Any, limit: int = 50) -> str:
    """A value in ``.ppl`` notation: ``3``, ``2.5``, ``true``, ``[1, 2]``, ``[[1.0, 0.0], [0.0, 1.0]]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return repr(value) if isinstance(value, str) else str(value)
    if hasattr(value, "shape") and hasattr(value, "dtype") and not callable(value):
        arr = np.asarray(value)
        if arr.dtype == object:
            return repr(value)
        return _format_array(arr, limit)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(format_value(v, limit) for v in value[:limit])
        more = ", ..." if len(value) > limit else ""
        return f"[{inner}{more}]" if isinstance(value, list) else f"({inner}{more})"
    return repr(value)


def _format_array(arr: np.ndarray, limit: int) -> str:
    if arr.ndim == 0:
        if arr.dtype == np.bool_:
            return "true" if arr else "false"
        return str(arr[()])
    items = [_format_array(arr[i], limit) for i in range(min(len(arr), limit))]
    if len(arr) > limit:
        items.append(f"... ({len(arr)} in all)")
    return "[" + ", ".join(items) + "]"

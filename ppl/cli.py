"""The ``ppl`` command: run, check and explore ``.ppl`` models.

    ppl run FILE [--model NAME] [--data data.json|data.csv] [--method METHOD] [--seed N]
                 [--num-samples N] [--num-warmup N] [--num-chains N] [--max-depth N]
                 [--out FILE.nc|FILE.json] [--progress | --no-progress]
    ppl check FILE [--ir]
    ppl repl            (also plain ``ppl``)
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import pathlib
import sys
import warnings
from typing import Any

import numpy as np

from ppl.stdlib.errors import PPLError

__all__ = ["main", "build_method", "read_data", "model_parameters", "return_summary", "write_results"]

METHODS = ("enumerate", "importance", "smc", "nuts", "hmc", "mh", "gibbs", "pmmh")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ppl", description="ppl: probabilistic programs, compiled by JAX. "
                                "Without a command, ppl starts the REPL.")
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run inference on a model in a .ppl file")
    run.add_argument("file", help="a .ppl file")
    run.add_argument("--model", metavar="NAME", help="which model of the file (default: the only one, or the last)")
    run.add_argument("--data", metavar="FILE", help="a JSON or CSV file whose keys (columns) are the model's "
                     "parameter names; it replaces the file's constants of those names")
    run.add_argument("--method", choices=METHODS, metavar="METHOD",
                     help=f"one of {', '.join(METHODS)} (default: chosen from the model)")
    run.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: 0)")
    run.add_argument("--num-samples", type=int, default=None, metavar="N",
                     help="draws per chain (MCMC), or particles (importance, smc)")
    run.add_argument("--num-warmup", type=int, default=None, metavar="N", help="warm-up iterations (MCMC)")
    run.add_argument("--num-chains", type=int, default=None, metavar="N", help="chains (MCMC)")
    run.add_argument("--max-depth", type=int, default=None, metavar="N",
                     help="exact enumeration of a recursive model: the most random choices on one path "
                          "(the mass beyond is reported as dropped)")
    run.add_argument("--out", metavar="FILE", help="write the results: FILE.nc (ArviZ netCDF) or FILE.json")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show a progress bar while MCMC (nuts, hmc) runs (default: on a terminal, for runs "
                          "longer than a second)")
    check = sub.add_parser("check", help="parse and check a .ppl file")
    check.add_argument("file", help="a .ppl file")
    check.add_argument("--ir", action="store_true", help="print the IR of each model")
    check.add_argument("--data", metavar="FILE", help="data for the models' parameters (to print their IR)")
    sub.add_parser("repl", help="an interactive session (also plain `ppl`)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in (None, "repl"):
            from ppl.repl import run_repl

            return run_repl()
        if args.command == "check":
            return _check(args)
        return _run(args)
    except PPLError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except FileNotFoundError as err:
        print(f"error: no such file: {err.filename}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`ppl run m.ppl | head`): stop quietly
        _silence_stdout()
        return 1
    except RecursionError:
        print("error: the model recursed deeper than Python allows. A recursive model has no bound on "
              "its depth: use --method importance, smc or mh, or exact enumeration to a depth bound "
              "(--method enumerate --max-depth 20).", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush does not fail on a closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


# ---------------------------------------------------------------------------


def model_parameters(model) -> list[str]:
    names = getattr(model, "param_names", None)
    if names is not None:
        return list(names)
    return [n for n, p in inspect.signature(model.fn).parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def read_data(path: str | None) -> dict[str, Any]:
    """Model arguments from JSON (an object) or CSV (one column per argument)."""
    if path is None:
        return {}
    file = pathlib.Path(path)
    text = file.read_text()
    if file.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows:
            return {}
        out = {}
        for name in rows[0]:
            col = [float(r[name]) for r in rows]
            out[name] = [int(v) for v in col] if all(v.is_integer() for v in col) else col
        return out
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise PPLError(f"the data file {path} is not valid JSON: {err.msg} (line {err.lineno})") from None
    if not isinstance(data, dict):
        raise PPLError(f"the data file {path} must hold a JSON object whose keys are the model's argument names")
    return data


def _select_model(module, name: str | None, path: str):
    models = module.models
    if not models:
        raise PPLError(f"{path} defines no model", hint="Define one with `model name(args) { ... }`.")
    if name is None:
        return list(models.values())[-1]
    if name not in models:
        raise PPLError(f"{path} has no model named '{name}'; it has: {', '.join(models)}")
    return models[name]


def _arguments(model, data: dict) -> list:
    params = model_parameters(model)
    missing = [p for p in params if p not in data]
    if missing:
        raise PPLError(
            f"the model '{model.name}' needs data for {', '.join(repr(m) for m in missing)}",
            hint="Pass --data FILE.json with those keys (the Stan data convention).",
        )
    return [data[p] for p in params]


def build_method(name: str | None, program, num_samples=None, num_warmup=None, num_chains=None,
                 progress: bool | None = None, max_depth: int | None = None, leaves=None):
    """A method object from its command-line name and options (None: the default for the model).

    ``progress`` (None: the method's default) goes to the methods that show one;
    ``max_depth`` bounds exact enumeration of a recursive model (and implies it).
    """
    import ppl
    from ppl.api import default_method

    if max_depth is not None:
        if name not in (None, "enumerate"):
            raise PPLError(f"--max-depth bounds exact enumeration; it does not go with --method {name}",
                           hint="Use --method enumerate --max-depth N, or leave --max-depth out.")
        return ppl.Enumerate(max_depth=max_depth)
    if name is None:
        method = default_method(program, leaves)
        name = type(method).__name__.lower()
        if num_samples is None and num_chains is None and num_warmup is None and progress is None:
            return method
    opts = {}
    if name == "enumerate":
        return ppl.Enumerate()
    if name == "importance":
        return ppl.Importance(num_particles=num_samples or 1000)
    if name == "smc":
        if not hasattr(ppl, "SMC"):
            raise PPLError("the method 'smc' is not available in this version of ppl")
        return ppl.SMC(num_particles=num_samples or 1000)
    if name in ("nuts", "hmc", "mh", "gibbs", "pmmh"):
        cls = {"nuts": "NUTS", "hmc": "HMC", "mh": "MH", "gibbs": "Gibbs", "pmmh": "PMMH"}[name]
        if not hasattr(ppl, cls):
            raise PPLError(f"the method '{name}' is not available in this version of ppl")
        if num_samples is not None:
            opts["num_samples"] = num_samples
        if num_warmup is not None:
            opts["num_warmup"] = num_warmup
        if num_chains is not None:
            opts["num_chains"] = num_chains
        method_class = getattr(ppl, cls)
        if progress is not None and "progress" in inspect.signature(method_class).parameters:
            opts["progress"] = progress
        return method_class(**opts)
    raise PPLError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")


def _run(args) -> int:
    import ppl

    module = ppl.load(args.file)
    model = _select_model(module, args.model, args.file)
    data = {**module.constants, **read_data(args.data)}
    call_args = _arguments(model, data)
    program, leaves = model.program(*call_args)
    method = build_method(args.method, program, args.num_samples, args.num_warmup, args.num_chains,
                          args.progress, args.max_depth, leaves)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        post = ppl.infer(model, *call_args, method=method, seed=args.seed)
    print(post.summary())
    returned = return_summary(post)
    if returned:
        print(returned)
    for w in caught:  # sampling diagnostics, said in words, not as Python source lines
        print(f"warning: {w.message}", file=sys.stderr)
    if args.out:
        write_results(post, args.out)
        print(f"wrote {args.out}")
    return 0


#: the most distinct return values shown as a table of probabilities
MAX_RETURN_VALUES = 25


def return_summary(post) -> str | None:
    """What the model returns, when it returns one number: a table of probabilities for
    a few whole-number values (``return value:`` then ``  value  probability`` lines),
    else its mean, standard deviation and quantiles (unless a site of the summary
    table is the return value)."""
    from ppl.repl import format_value

    returns = post.returns
    if returns is None or (isinstance(returns, tuple) and not returns):
        return None
    try:
        values = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError):
        return None  # strings, structures: see posterior.probs()
    if post.result.chains:
        values = values.reshape((-1,) + values.shape[2:])
    if values.ndim != 1 or values.size == 0:
        return None
    finite = values[np.isfinite(values)]
    if finite.size and np.all(finite == np.round(finite)) and len(np.unique(finite)) <= MAX_RETURN_VALUES:
        probs = post.probs()
        width = max(len(format_value(v)) for v in probs)
        return "\n".join(["return value:", *(f"  {format_value(v):>{width}}  {p:.4f}" for v, p in probs.items())])
    for draws in post.samples.values():
        site = np.asarray(draws)
        if site.dtype != object and site.shape == np.shape(returns) and np.array_equal(site, np.asarray(returns)):
            return None  # the return value is a site of the table above
    q05, q50, q95 = np.asarray(post.quantile([0.05, 0.5, 0.95]), dtype=np.float64)
    return (f"return value: mean {float(post.mean()):.4g}, std {float(post.std()):.4g}, "
            f"5% {q05:.4g}, 50% {q50:.4g}, 95% {q95:.4g}")


def _check(args) -> int:
    import ppl

    module = ppl.load(args.file)
    names = ", ".join(module.models) or "none"
    print(f"{args.file}: ok (models: {names})")
    if args.ir:
        data = {**module.constants, **read_data(args.data)}
        for model in module.models.values():
            try:
                call_args = _arguments(model, data)
            except PPLError as err:
                print(f"\n# {model.name}: no IR without data ({err.message})")
                continue
            program, _ = model.program(*call_args)
            print()
            print(program.describe() if hasattr(program, "describe") else program)
    return 0


def write_results(post, path: str) -> None:
    """Write a posterior: ``.nc`` as ArviZ netCDF, anything else as JSON."""
    if path.endswith(".nc"):
        post.to_arviz().to_netcdf(path)
        return
    out = {
        "model": post.model_name,
        "method": post.method,
        "engine": post.engine,
        "log_evidence": post.log_evidence,
        "samples": {k: np.asarray(v).tolist() for k, v in post.samples.items() if np.asarray(v).dtype != object},
        "log_weights": None if post.log_weights is None else np.asarray(post.log_weights).tolist(),
        "summary": {k: {"mean": np.asarray(post.mean(k)).tolist(), "std": np.asarray(post.std(k)).tolist()}
                    for k, v in post.samples.items() if np.asarray(v).dtype != object},
    }
    pathlib.Path(path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

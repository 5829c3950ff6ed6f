"""The ``ppl`` command: run, check and explore ``.ppl`` models.

    ppl run FILE [--model NAME] [--data data.json|data.csv] [--method METHOD] [--seed N]
                 [--num-samples N] [--num-warmup N] [--num-chains N] [--thin K] [--max-depth N]
                 [--support-bound K]
                 [--target-accept P] [--max-tree-depth N] [--dense-mass] [--init FILE.json|NAME=VALUE]
                 [--out FILE.nc|FILE.json|FILE.csv] [--plot FILE.png] [--plot-kind KIND]
                 [--progress | --no-progress]
    ppl check FILE [--ir] [--data FILE]
    ppl repl            (also plain ``ppl``)
    ppl --version

The command's own errors (bad options, missing files) are printed as
``error: ...`` (argparse's too); errors in the user's model or data are
rendered with their kind and source excerpt (``Semantic error in 'm.ppl',
line 3, ...``, ``Data error: ...``). Either way the exit status is 1 (2 for
a bad option) and there is no traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import pathlib
import sys
import warnings

import numpy as np

from ppl.commands import (METHODS, CommandLineError, build_method, method_name,
                          model_parameters, return_summary)
from ppl.data import read_data
from ppl.output import write_results
from ppl.stdlib.errors import PPLError

__all__ = ["main", "build_method", "read_data", "model_parameters", "return_summary", "write_results",
           "method_name", "init_values", "CommandLineError"]

def _method_arg(text: str) -> str:
    try:
        return method_name(text)
    except PPLError as err:
        raise argparse.ArgumentTypeError(err.message + (f" ({err.hint})" if err.hint else "")) from None


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a whole number, not '{text}'") from None
    if value < least:
        wanted = "a positive whole number" if least == 1 else f"a whole number of {least} or more"
        raise argparse.ArgumentTypeError(f"needs {wanted}, not {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _count_arg(text: str) -> int:
    return _whole_number(text, 0)


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"needs a number between 0 and 1, not '{text}'") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"needs a number strictly between 0 and 1, not {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with ppl's error style: ``error: ...`` and where to find help (exit status 2)."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"error: {message}\nSee `{self.prog} --help` for the options.\n")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ppl")
    except Exception:  # noqa: BLE001 - not installed as a distribution (a bare checkout)
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ppl", description="ppl: probabilistic programs, compiled by JAX. "
                "Without a command, ppl starts the REPL.")
    p.add_argument("--version", action="version", version=f"ppl {_version()}")
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run inference on a model in a .ppl file")
    run.add_argument("file", help="a .ppl file")
    run.add_argument("--model", metavar="NAME", help="which model of the file (default: the only one, or the last)")
    run.add_argument("--data", metavar="FILE", help="a JSON or CSV file whose keys (columns) are the model's "
                     "parameter names; it replaces the file's constants of those names")
    run.add_argument("--method", type=_method_arg, metavar="METHOD",
                     help=f"one of {', '.join(METHODS)}, in any case (default: chosen from the model)")
    run.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: 0)")
    run.add_argument("--num-samples", type=_positive_int, default=None, metavar="N",
                     help="draws per chain (MCMC), or particles (importance, smc)")
    run.add_argument("--num-warmup", type=_count_arg, default=None, metavar="N", help="warm-up iterations (MCMC)")
    run.add_argument("--num-chains", type=_positive_int, default=None, metavar="N", help="chains (MCMC)")
    run.add_argument("--thin", type=_positive_int, default=None, metavar="K",
                     help="nuts, hmc, mh, gibbs: run K x num-samples iterations after warm-up and keep every K-th (less correlated "
                          "draws, the memory of num-samples)")
    run.add_argument("--max-depth", type=_positive_int, default=None, metavar="N",
                     help="exact enumeration of a recursive model: the most random choices on one path "
                          "(the mass beyond is reported as dropped); NUTS's tree depth is --max-tree-depth")
    run.add_argument("--support-bound", type=_positive_int, default=None, metavar="K",
                     help="exact enumeration: how many values (0..K-1) of a distribution with infinitely "
                          "many (Poisson, Geometric) to enumerate; the mass beyond is reported as dropped")
    run.add_argument("--target-accept", type=_probability, default=None, metavar="P",
                     help="target acceptance of the step-size adaptation (nuts, hmc; default 0.8): "
                          "raise it (0.9, 0.95) against divergences")
    run.add_argument("--max-tree-depth", type=_positive_int, default=None, metavar="N",
                     help="NUTS: the most doublings of a trajectory (default 10)")
    run.add_argument("--dense-mass", action="store_true", default=None,
                     help="adapt a dense mass matrix (nuts, hmc) instead of a diagonal one")
    run.add_argument("--init", action="append", default=None, metavar="FILE.json|NAME=VALUE",
                     help="initial values of the latent sites (nuts, hmc): a JSON file of them, or "
                          "NAME=VALUE (a JSON value), repeated for each site")
    run.add_argument("--out", metavar="FILE",
                     help="write the results: FILE.nc (ArviZ netCDF), FILE.json, or FILE.csv (one column "
                          "per coordinate, one row per draw); the path is checked before sampling")
    run.add_argument("--plot", metavar="FILE",
                     help="save a plot of the draws (FILE.png, .pdf, .svg or .jpg); its kind is --plot-kind, "
                          "else read from the file name (pair.png, posterior.png), else a trace plot")
    run.add_argument("--plot-kind", choices=("trace", "posterior", "pair"), default=None, metavar="KIND",
                     help="trace, posterior or pair (default: from the --plot file name, else trace)")
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
    return _dispatch(args)


def _dispatch(args) -> int:
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
        print(f"error: no such file: {err.filename or err}", file=sys.stderr)
        return 1
    except IsADirectoryError as err:
        print(f"error: {err.filename} is a folder, not a file", file=sys.stderr)
        return 1
    except PermissionError as err:
        print(f"error: no permission to read {err.filename or err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`ppl run m.ppl | head`): stop quietly
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print("error: the model recursed deeper than Python allows: a recursive function needs a base "
              "case that stops it (a branch that returns without calling it again).", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush does not fail on a closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


# ---------------------------------------------------------------------------


def _select_model(module, name: str | None, path: str, announce: bool = False):
    """The model ``name`` of the file (default: the only one, or the last, said on stderr when ``announce``)."""
    models = module.models
    if not models:
        raise CommandLineError(f"{path} defines no model", hint="Define one with `model name(args) { ... }`.")
    if name is None:
        chosen = list(models.values())[-1]
        if announce and len(models) > 1:
            print(f"note: {path} has {len(models)} models ({', '.join(models)}); running the last, "
                  f"'{chosen.name}'. Choose another with --model NAME.", file=sys.stderr)
        return chosen
    if name not in models:
        close = difflib.get_close_matches(name, list(models), n=1)
        raise CommandLineError(f"{path} has no model named '{name}'; it has: {', '.join(models)}",
                       hint=f"Did you mean '{close[0]}'?" if close else None)
    return models[name]


def _arguments(model, data: dict, file_keys=(), data_path: str | None = None) -> list:
    """The model's arguments from ``data`` (the file's constants and the data file's keys ``file_keys``)."""
    from ppl.data import check_names

    params = model_parameters(model)
    check_names(file_keys, params, data, model.name, data_path)
    return [data[p] for p in params]


def _note_unused(file_data: dict, model, module, path) -> None:
    """Say which data keys name neither a parameter of the model nor a constant of the file: they are
    not used (an extra column is common, a misspelt name is not silent)."""
    params = set(model_parameters(model))
    unused = [k for k in file_data if k not in params and k not in module.constants]
    if unused:
        print(f"note: {path} has {', '.join(repr(k) for k in unused)}, which the model '{model.name}' does not "
              f"take and the file does not define; not used", file=sys.stderr)


def init_values(items: list[str] | None) -> dict | None:
    """``--init`` values: JSON files (objects of site values) and ``NAME=VALUE`` items, merged in order."""
    if not items:
        return None
    values: dict = {}
    for item in items:
        if "=" in item and not pathlib.Path(item).exists():
            name, _, raw = item.partition("=")
            name = name.strip()
            if not name.replace("_", "a").replace("/", "a").isalnum():
                raise CommandLineError(f"--init {item}: '{name}' is not a site name",
                               hint="Write --init NAME=VALUE (e.g. --init mu=0.5) or --init FILE.json.")
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError:
                raise CommandLineError(f"--init {item}: the value {raw!r} is not a number or a JSON array",
                               hint="Write e.g. --init mu=0.5 or --init theta=[0.1,0.2].") from None
        elif not pathlib.Path(item).exists():
            raise CommandLineError(f"--init {item}: no such file, and not NAME=VALUE",
                                   hint="Write --init NAME=VALUE (e.g. --init mu=0.5) or --init FILE.json.")
        else:
            values.update(read_data(item))
    for name, value in values.items():
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is None or not np.all(np.isfinite(arr)):
            raise CommandLineError(f"--init gives '{name}' the value {value!r}, which is not a finite number or array")
    return values


def _check_init(init: dict | None, program) -> None:
    """``--init`` names latent sites of the model, with values of their shapes."""
    latent = program.latent_sites() if init and hasattr(program, "latent_sites") else None
    if not latent:
        return
    for name, value in init.items():
        if name not in latent:
            close = difflib.get_close_matches(name, list(latent), n=1)
            raise CommandLineError(f"--init {name}=...: the model '{program.name}' has no latent site '{name}'; "
                                   f"its latent sites are {', '.join(latent)}",
                                   hint=f"Did you mean '{close[0]}'?" if close else None)
        want, got = tuple(latent[name].stacked_shape), np.shape(value)
        if got != want:
            def shape(s):
                return "a single number" if s == () else f"shape {s}"

            raise CommandLineError(f"--init gives '{name}' {shape(got)}, but the site '{name}' has {shape(want)}",
                                   hint=f"Give '{name}' a value of {shape(want)}.")


def _run(args) -> int:
    import ppl
    from ppl import memory
    from ppl.output import check_path
    from ppl.plot import IMAGE_FORMATS, kind_from_path

    # everything that can be checked before sampling is: a typo must not cost a long run's results
    if args.out:
        check_path(args.out)
    if args.plot:
        check_path(args.plot, IMAGE_FORMATS, option="--plot")
    elif args.plot_kind:
        raise CommandLineError("--plot-kind says which plot --plot FILE draws; give --plot FILE.png too")
    inputs = [("the model file", args.file), ("the data file", args.data),
              *(("the --init file", item) for item in args.init or [])]
    for option, target in (("--out", args.out), ("--plot", args.plot)):
        for what, source in inputs:
            if target and source and pathlib.Path(target).resolve() == pathlib.Path(source).resolve():
                raise CommandLineError(f"{option} {target} is {what}: writing there would overwrite it",
                                       hint=f"Give {option} another file name.")
    file_data = read_data(args.data)
    # the data replace the file's constants of their names, and what is computed from them
    module = ppl.load(args.file).with_data(file_data)
    model = _select_model(module, args.model, args.file, announce=True)
    data = {**module.constants, **file_data}
    call_args = _arguments(model, data, list(file_data), args.data)
    _note_unused(file_data, model, module, args.data)
    init = init_values(args.init)
    program, leaves = model.program(*call_args)
    _check_init(init, program)
    method = build_method(args.method, program, args.num_samples, args.num_warmup, args.num_chains,
                          args.progress, args.max_depth, leaves, support_bound=args.support_bound,
                          target_accept=args.target_accept,
                          max_tree_depth=args.max_tree_depth, dense_mass=args.dense_mass, init=init,
                          thin=args.thin)
    memory.check(program, leaves, method, command_line=True)  # before ppl.infer, with the flags to lower it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            post = ppl.infer(model, *call_args, method=method, seed=args.seed)
        except memory.MemoryLimitError as err:
            if getattr(err, "device_error", None) is None:
                raise
            raise memory.exhausted_error(program, leaves, method, err.device_error, command_line=True) from None
    print(post.summary())
    returned = return_summary(post)
    if returned:
        print(returned)
    for w in caught:  # sampling diagnostics, said in words, not as Python source lines
        print(f"warning: {w.message}", file=sys.stderr)
    if args.out:
        write_results(post, args.out)
        print(f"wrote {args.out}")
    if args.plot:
        kind = args.plot_kind or kind_from_path(args.plot)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore")  # library deprecations are not the user's business
            warnings.simplefilter("always", UserWarning)
            figure = post.plot(kind, path=args.plot)
        import matplotlib.pyplot as plt

        plt.close(figure)
        print(f"wrote {args.plot} ({kind} plot)")
        for w in caught:  # ArviZ's remarks on the draws (a constant site has no density to draw, ...)
            print(f"warning: {w.message}", file=sys.stderr)
    return 0


def _check(args) -> int:
    import ppl

    module = ppl.load(args.file).with_data(read_data(args.data))
    if args.data:  # the data against the models' declared types, sizes and indices
        from ppl.syntax.data_check import check_module_data

        check_module_data(module, {**module.constants, **read_data(args.data)})
    names = ", ".join(module.models) or "none"
    print(f"{args.file}: ok (models: {names})")
    if args.ir:
        file_data = read_data(args.data)
        data = {**module.constants, **file_data}
        for model in module.models.values():
            try:
                call_args = _arguments(model, data, list(file_data), args.data)
            except PPLError as err:
                print(f"\n# {model.name}: no IR without data ({err.message})")
                continue
            program, _ = model.program(*call_args)
            print()
            print(program.describe() if hasattr(program, "describe") else program)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

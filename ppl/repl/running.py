"""Running the session's models from ``:ir``, ``:diagram`` and ``:infer``: finding the model,
reading its arguments and the inference options from the command's tokens."""

from __future__ import annotations

import json
import re
from typing import Any

from ppl.commands import METHODS, build_method, model_parameters
from ppl.stdlib.errors import PPLError

from .reading import did_you_mean

__all__ = ["OPTIONS", "find_model", "arguments", "ir", "diagram", "infer"]

#: the options ``:infer`` takes as ``name=value``
OPTIONS = {"method", "samples", "seed", "warmup", "chains", "depth", "bound"}

_NAME_IS = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)", re.S)


def find_model(models: dict, name: str | None):
    """``models[name]``, or an error that lists the session's models."""
    if not name:
        raise PPLError("name a model", hint="The session's models: " + (", ".join(models) or "none"))
    if name not in models:
        have = ", ".join(models) or "none yet"
        raise PPLError(f"there is no model named '{name}' in the session (models: {have})",
                       hint="Define it, or :load a file that does.")
    return models[name]


def _json_value(token: str, constants: dict) -> Any:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token) and token not in ("true", "false", "null"):
        if token in constants:
            return constants[token]
        raise PPLError(f"'{token}' is not a constant of the session",
                       hint="Give a JSON value, or define it first: " + f"{token} = ...")
    try:
        return json.loads(token)
    except json.JSONDecodeError:
        raise PPLError(f"cannot read the argument {token!r}: give a JSON value ([1, 0, 1], 2.5, true) "
                       "or the name of a session constant") from None


def _option(key: str, raw: str):
    if key == "method":
        return raw.strip().lower()
    try:
        return int(raw)
    except ValueError:
        raise PPLError(f"{key}= needs a whole number, not {raw!r}") from None


def arguments(model, tokens, constants: dict) -> tuple[list, dict]:
    """Model arguments and inference options from command tokens.

    Positional tokens fill the model's parameters in order; ``param=value``
    names one; a parameter left out takes the session constant of its name.
    ``method=``, ``samples=``, ``seed=``, ``warmup=``, ``chains=``, ``depth=``, ``bound=`` are options.
    """
    params = model_parameters(model)
    positional, named, options = [], {}, {}
    for tok in tokens:
        m = _NAME_IS.fullmatch(tok)
        if m and m.group(1) in OPTIONS and m.group(1) not in params:
            options[m.group(1)] = _option(*m.groups())
        elif m and m.group(1) in params:
            named[m.group(1)] = _json_value(m.group(2), constants)
        elif m:
            guess = did_you_mean(m.group(1), [*params, *sorted(OPTIONS)])
            raise PPLError(f"'{m.group(1)}' is neither a parameter of '{model.name}' "
                           f"({', '.join(params) or 'none'}) nor an option ({', '.join(sorted(OPTIONS))})",
                           hint=f"Did you mean {guess}=...?" if guess else None)
        else:
            positional.append(_json_value(tok, constants))
    if len(positional) > len(params):
        raise PPLError(f"the model '{model.name}' takes {len(params)} argument(s) "
                       f"({', '.join(params) or 'none'}), but was given {len(positional)}")
    values = dict(zip(params, positional))
    for k, v in named.items():
        if k in values:
            raise PPLError(f"the argument '{k}' of '{model.name}' is given twice")
        values[k] = v
    missing = []
    for p in params:
        if p not in values:
            if p in constants:
                values[p] = constants[p]
            else:
                missing.append(p)
    if missing:
        raise PPLError(f"the model '{model.name}' needs {', '.join(repr(m) for m in missing)}",
                       hint="Give them after the model's name (JSON values or constant names), "
                            "or define session constants of those names.")
    return [values[p] for p in params], options


def _model_and_arguments(models: dict, constants: dict, tokens, command: str | None):
    name, *rest = tokens or [None]
    model = find_model(models, name)
    args, options = arguments(model, rest, constants)
    if command is not None and options:
        raise PPLError(f":{command} takes no options ({', '.join(options)})")
    return model, args, options


def ir(models: dict, constants: dict, tokens) -> str:
    """The printed IR of a model for the arguments in ``tokens`` (``# line N`` is a line of the
    text the model was defined in)."""
    model, args, _ = _model_and_arguments(models, constants, tokens, "ir")
    return str(model.ir(*args))


def diagram(models: dict, constants: dict, tokens) -> str:
    """The string diagram of a model for the arguments in ``tokens``."""
    from ppl.inference.causal import diagram as string_diagram

    model, args, _ = _model_and_arguments(models, constants, tokens, "diagram")
    return str(string_diagram(model, *args))


def infer(models: dict, constants: dict, tokens):
    """Run ``ppl.infer`` as ``:infer`` asks; returns the Posterior."""
    import ppl

    model, args, options = _model_and_arguments(models, constants, tokens, None)
    method_name = options.get("method")
    if method_name is not None and method_name not in METHODS:
        guess = did_you_mean(method_name, METHODS)
        raise PPLError(f"unknown method '{method_name}'; choose one of {', '.join(METHODS)}",
                       hint=f"Did you mean method={guess}?" if guess else None)
    if "depth" in options or "bound" in options:
        if method_name not in (None, "enumerate"):
            which = "depth" if "depth" in options else "bound"
            raise PPLError(f"{which}= bounds exact enumeration; it goes with method=enumerate")
        method = ppl.Enumerate(max_depth=options.get("depth"), support_bound=options.get("bound"))
    else:
        program, leaves = model.program(*args)
        method = build_method(method_name, program, options.get("samples"), options.get("warmup"),
                              options.get("chains"), leaves=leaves)
    return ppl.infer(model, *args, method=method, seed=options.get("seed", 0))

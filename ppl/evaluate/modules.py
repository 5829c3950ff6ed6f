"""From a checked module to a ``PplModule``: its constants evaluated, its functions and models
built (a model's data coerced to the declared types), and ``load``/``loads``, the whole path
from text: parse, resolve imports, check, evaluate."""

from __future__ import annotations

import functools
import pathlib

import jax.numpy as jnp
import numpy as np

from ppl.model import Model
from ppl.semantics.program import as_data
from ppl.stdlib import jax_compat as jc
from ppl.stdlib.errors import ModelError
from ppl.syntax import ast as A

from .evaluator import Evaluator
from .runtime import Returned, real_dtype, is_concrete
from .values import Closure

__all__ = ["PplModule", "evaluate_module", "load", "loads"]


def _convert_param(value, ann: A.TypeAnn | None):
    if ann is None or value is None:
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if ann.rank == 0:
        if ann.base == "int" and is_concrete(value) and np.ndim(value) == 0:
            return int(value)
        if ann.base == "bool" and is_concrete(value) and np.ndim(value) == 0:
            return bool(value)
        return jnp.asarray(value, jnp.int32 if ann.base == "int" else real_dtype())
    dtype = {"int": jnp.int32, "real": real_dtype(), "bool": jnp.bool_}[ann.base]
    return jnp.asarray(value, dtype)


class PplModule:
    """What ``ppl.load`` returns: the file's models, functions and constants as attributes."""

    def __init__(self, file: str, models: dict, functions: dict, constants: dict, ast_module: A.Module):
        self.file = file
        self.models = models
        self.functions = functions
        self.constants = constants
        self.ast = ast_module

    def __getattr__(self, name):
        for table in ("models", "functions", "constants"):
            d = self.__dict__.get(table, {})
            if name in d:
                return d[name]
        raise AttributeError(f"'{self.__dict__.get('file', '?')}' defines no model, function or constant "
                             f"named '{name}'")

    def __dir__(self):
        return sorted(set(self.models) | set(self.functions) | set(self.constants))

    def with_data(self, data: dict) -> "PplModule":
        """The module with the constants that ``data`` names replaced by its values, and the constants
        computed from them computed again (``N = len(y)`` after a new ``y``); models read the new
        values. ``self`` when ``data`` names no constant."""
        overrides = {k: v for k, v in data.items() if k in self.constants}
        if not overrides:
            return self
        return evaluate_module(self.ast, overrides)

    def __repr__(self):
        return f"<ppl module {self.file}: models {list(self.models)}>"


def _all_items(module: A.Module, seen=None) -> list:
    """Items of a module, imported modules' definitions first (each file once)."""
    seen = set() if seen is None else seen
    items = []
    for it in module.items:
        if isinstance(it, A.Import) and it.module is not None:
            key = it.module.file
            if key not in seen:
                seen.add(key)
                items.extend(_all_items(it.module, seen))
        elif not isinstance(it, A.Import):
            items.append(it)
    return items


def evaluate_module(module: A.Module, overrides: dict | None = None) -> PplModule:
    """Evaluate a checked module's constants and build its models and functions. ``overrides``:
    values that replace the constants of those names (data given for them)."""
    ev = Evaluator(module)
    models, functions, constants = {}, {}, {}
    for item in _all_items(module):
        if isinstance(item, A.Assign):
            if overrides and item.name in overrides:
                value = as_data(overrides[item.name])
            else:
                with effects_free(item):
                    value = ev.expr(item.value, dict(ev.globals))
            ev.globals[item.name] = value
            constants[item.name] = value
        elif isinstance(item, A.FunDef):
            fn = Closure(item.name, item.params, item.body, ev.globals, ev, item)
            ev.globals[item.name] = fn
            functions[item.name] = fn
        elif isinstance(item, A.ModelDef):
            m = _make_model(item, ev)
            ev.globals[item.name] = m
            models[item.name] = m
        elif isinstance(item, A.ModelDo):
            m = _make_intervened(item, ev)
            ev.globals[item.name] = m
            models[item.name] = m
    return PplModule(module.file, models, functions, constants, module)


def _make_intervened(item: A.ModelDo, ev: Evaluator) -> Model:
    """``model m2 = m.do(...)`` (``m.do({...})``), ``m.condition(...)`` (``m.condition({...})``) or
    ``m.counterfactual(...).do(...)`` (``ppl.counterfactual(m, observed={...}, do={...})``), named ``m2``."""
    base = ev.globals.get(item.base)
    if not isinstance(base, Model):
        raise ModelError(f"'{item.base}' is not a model: .{item.kind}(...) needs a model", span=item.span)
    table = _derived_table(item.items, ev, item.kind == "do")
    if item.kind == "condition":
        m = base.condition(table)
    elif item.kind == "counterfactual":
        from ppl.counterfactual import counterfactual

        m = counterfactual(base, observed=_derived_table(item.given, ev, False), do=table)
    else:
        m = base.do(table)
    m.name = item.name
    m.source = item
    return m


def _derived_table(items, ev: Evaluator, mechanisms: bool) -> dict:
    """The values (and, in ``.do``, new distributions) of a derived model's items, by site."""
    from ppl.stdlib.distributions.base import Distribution

    table = {}
    for it in items:
        with effects_free(it):
            value = ev.expr(it.value, dict(ev.globals))
        if it.draw and not isinstance(value, Distribution):
            raise ModelError(f"'{it.site} ~ ...' in .do(...) needs a distribution", span=it.span)
        if isinstance(value, Distribution) and not (mechanisms and it.draw):
            raise ModelError(f"'{it.site} = ...' needs a value, not a distribution", span=it.span)
        table[it.site] = value
    return table


class effects_free:
    """Top-level constants must not make random choices."""

    def __init__(self, node):
        self.node = node

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if isinstance(err, ModelError) and "outside a model run" in err.message:
            raise ModelError("a top-level binding cannot make random choices; move it into a model",
                             span=self.node.span) from None
        return False


def _make_model(item: A.ModelDef, ev: Evaluator) -> Model:
    params = item.params

    def run(*args, **kwargs):
        if len(args) + len(kwargs) != len(params):
            raise ModelError(f"the model '{item.name}' takes {len(params)} argument(s) "
                             f"({', '.join(p.name for p in params)}), but was given {len(args) + len(kwargs)}",
                             span=item.span)
        env = dict(zip([p.name for p in params], args))
        env.update(kwargs)
        for p in params:
            env[p.name] = _convert_param(env[p.name], p.annotation)
        try:
            ev.block(item.body, env)
        except Returned as r:
            return r.value
        return None

    run.__name__ = item.name
    model = Model(run, item.name, source=item)
    model.param_names = [p.name for p in params]
    model.coerce = functools.partial(_coerce_data, params)
    return model


def _coerce_data(params, args, kwargs):
    """Array data as the declared element type, before tracing (``real[]`` given ``[28, 8]`` is float).

    The data are checked against the annotations first (``ppl.syntax.data_check``): ``0.5`` for an
    ``int[]`` is an error at the parameter, never truncated to 0."""
    from ppl.syntax import data_check

    given = dict(zip([p.name for p in params], args))
    given.update({k: v for k, v in kwargs.items() if k in {p.name for p in params}})
    data_check.raise_for_data(params, given)

    def one(value, ann):
        if ann is None or ann.rank == 0 or value is None or _is_tracer_like(value):
            return value
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return value
        dtype = {"int": np.int32, "real": np.dtype(real_dtype()), "bool": np.bool_}[ann.base]
        try:
            return np.asarray(value, dtype)
        except (TypeError, ValueError):
            return value  # left for the checks inside the model, which name the argument
    names = [p.name for p in params]
    anns = {p.name: p.annotation for p in params}
    args = tuple(one(v, anns[n]) for v, n in zip(args, names)) + tuple(args[len(names):])
    kwargs = {k: one(v, anns.get(k)) for k, v in kwargs.items()}
    return args, kwargs


def _is_tracer_like(value) -> bool:
    return jc.is_tracer(value)


def _check(module: A.Module, data_shapes=None) -> None:
    from ppl.syntax.check import CheckErrors, check

    errors = check(module, data_shapes)
    if errors:
        raise CheckErrors(errors)


def loads(source: str, file: str = "<string>") -> PplModule:
    """Parse, check and evaluate ``.ppl`` source text (imports resolve against the working folder)."""
    from ppl.syntax import parser as P
    from ppl.syntax.imports import resolve_imports

    module = P.parse(source, file)
    base = pathlib.Path(file).resolve().parent if file != "<string>" else pathlib.Path.cwd()
    # the standard library is found through the package (ppl.stdlib), installed or editable
    module = resolve_imports(module, base)
    _check(module)
    return evaluate_module(module)


def load(path) -> PplModule:
    """Load a ``.ppl`` file: its models (``ppl.Model``s), functions and constants."""
    path = pathlib.Path(path)
    if path.suffix != ".ppl":
        raise ModelError(f"{path} is not a .ppl file")
    text = path.read_text()
    return loads(text, str(path))

"""Data against a model's declared parameter types, before anything runs.

One function, :func:`check_data`, compares the data given to a ``.ppl`` model
with its parameters' annotations: the number of dimensions (``real[]`` given a
single number), the sizes named by other parameters (``real[N]`` with ``N``
given), the kind of every element (``int`` takes whole numbers — ``1.0`` is
fine, ``0.5`` is not — ``real`` takes numbers, not booleans or strings,
``bool`` takes ``true``/``false`` or 0/1) and that integers fit the engine's
32-bit integers. Each mistake is a ``CheckError`` at the parameter's
declaration, naming the parameter, its declared type and the offending value
and position. ``ppl check --data``, ``ppl run --data``, the REPL and every call
of a loaded model from Python (``ppl.infer``, ``model.simulate``, ...) run it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping

import numpy as np

from ppl.stdlib.errors import CheckError, ShapeError, SupportError

from . import ast

__all__ = ["check_data", "check_value", "raise_for_data", "DataError", "DataErrors"]

_INT_MIN, _INT_MAX = -(2 ** 31), 2 ** 31 - 1


class DataError(CheckError, SupportError, ShapeError):
    """Data that do not match a parameter's declared type (caught as any of the three)."""

    kind = "Data error"


class DataErrors(DataError):
    """Data that do not match a model's declared parameter types (one or several)."""

    def __init__(self, errors: list[CheckError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, first.span, first.hint)

    def render(self) -> str:
        errors = self.__dict__.get("errors")
        if not errors or len(errors) == 1:
            return super().render()
        parts = [e.render() for e in errors]
        parts.append(f"{len(errors)} errors found.")
        return "\n\n".join(parts)


def _error(message: str, p: ast.Param, hint: str | None = None) -> CheckError:
    return DataError(message, p.span, hint)


# ---------------------------------------------------------------------------
# What a data value is


class _Ragged(Exception):
    pass


def _is_tracer(value) -> bool:
    from ppl.stdlib import jax_compat as jc

    return jc.is_tracer(value)


def _as_array(value):
    """A numpy view of an array-like (numpy or JAX), or None for Python values."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (list, tuple)):
        return np.asarray(value)
    return None


class _Traced(Exception):
    pass


def _leaves(value, pos=()):
    """(shape, [(position, leaf)]) of a nested list; raises _Ragged (or _Traced: not known yet)."""
    if _is_tracer(value):
        raise _Traced()
    arr = _as_array(value)
    if arr is not None:
        return tuple(arr.shape), [(pos, arr)]
    if isinstance(value, (list, tuple)):
        if not value:
            return (0,), []
        parts = [_leaves(v, pos + (k,)) for k, v in enumerate(value)]
        shapes = {s for s, _ in parts}
        if len(shapes) != 1:
            raise _Ragged()
        return (len(value),) + shapes.pop(), [leaf for _, ls in parts for leaf in ls]
    return (), [(pos, value)]


def _where(pos: tuple, rank: int) -> str:
    if rank == 0:
        return "the value"
    return "element " + ", ".join(str(i) for i in pos) if len(pos) > 1 else f"element {pos[0]}"


def _show(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, str):
        return repr(x)
    if isinstance(x, (numbers.Real, np.generic)):
        return repr(float(x)) if isinstance(x, (float, np.floating)) else str(int(x))
    return type(x).__name__ if x is not None else "null"


def _bad_leaf(base: str, x) -> str | None:
    """Why a single value is not an element of type ``base`` (None when it is)."""
    if isinstance(x, (bool, np.bool_)):
        return None if base == "bool" else "a boolean"
    if isinstance(x, str):
        return "a string"
    if not isinstance(x, (numbers.Real, np.generic)) or isinstance(x, complex):
        return "not a number" if x is not None else "missing (null)"
    if base == "real":
        return None
    v = float(x)
    if base == "bool":
        return None if v in (0.0, 1.0) else "not 0 or 1"
    if not math.isfinite(v) or v != math.floor(v):
        return "not a whole number"
    if not _INT_MIN <= v <= _INT_MAX:
        return "too large for a 32-bit integer"
    return None


def _bad_array(base: str, arr: np.ndarray):
    """(flat position, value, why) of the first bad element of a numpy array, or None."""
    kind = arr.dtype.kind
    flat = arr.reshape(-1)
    if kind == "b":
        if base == "bool" or flat.size == 0:
            return None
        return 0, flat[0], "a boolean"
    if kind in "iu":
        if base == "real":
            return None
        if base == "bool":
            bad = (flat != 0) & (flat != 1)
            why = "not 0 or 1"
        else:
            bad = (flat < _INT_MIN) | (flat > _INT_MAX)
            why = "too large for a 32-bit integer"
    elif kind == "f":
        if base == "real":
            return None
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(flat) & (flat == np.floor(flat))
        if base == "bool":
            bad = ~((flat == 0) | (flat == 1))
            why = "not 0 or 1"
        else:
            bad = ~whole | (flat < _INT_MIN) | (flat > _INT_MAX)
            why = None
    elif kind in "US":
        return (0, flat[0], "a string") if flat.size else None
    else:
        for k, x in enumerate(flat.tolist()):
            why = _bad_leaf(base, x)
            if why is not None:
                return k, x, why
        return None
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    x = flat[k]
    if why is None:
        why = "not a whole number" if not (np.isfinite(x) and x == np.floor(x)) else "too large for a 32-bit integer"
    return k, x, why


_HOLDS = {
    "a boolean": "booleans", "a string": "strings", "not a number": "values that are not numbers",
    "missing (null)": "missing values", "not 0 or 1": "numbers other than 0 and 1",
    "not a whole number": "reals", "too large for a 32-bit integer": "integers too large for 32 bits",
}
_WHY_HINT = {
    "a string": "Write the numbers without quotes.",
    "missing (null)": "ppl has no missing values in data: fill it in, or leave that observation out.",
    "too large for a 32-bit integer": "ppl's integers have 32 bits; declare the parameter real for larger counts.",
    "not a number": "Pass numbers.",
}
_WANT = {"int": "whole numbers", "real": "numbers", "bool": "true/false (or 0/1)"}
_HINT = {
    "int": "An int parameter takes whole numbers (1.0 is read as 1); declare it real if the values are "
           "measurements.",
    "real": "A real parameter takes numbers; write booleans as 1.0 and 0.0, or declare the parameter bool.",
    "bool": "A bool parameter takes true and false (or 1 and 0).",
}


def _annotation_text(ann: ast.TypeAnn) -> str:
    from .check.words import annotation_text as text

    return text(ann)


def _rank_words(rank: int) -> str:
    return f"{rank} dimension{'s' if rank != 1 else ''}"


def _shape_text(shape) -> str:
    inner = ", ".join(str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def check_value(p: ast.Param, value: Any) -> list[CheckError]:
    """The mistakes in ``value`` as data for the parameter ``p`` (its rank and elements)."""
    ann = p.annotation
    if ann is None or value is None or _is_tracer(value) or ann.base not in _WANT:
        return []
    declared = _annotation_text(ann)
    if isinstance(value, Mapping):
        return [_error(f"'{p.name}' is declared {declared} but the data is an object (a mapping of names "
                       "to values)", p, "Give an array or a number.")]
    try:
        shape, leaves = _leaves(value)
    except _Traced:
        return []
    except _Ragged:
        return [_error(f"the data for '{p.name}' (declared {declared}) is a ragged list (rows of different "
                       "lengths)", p, "Every row of a matrix must have the same length.")]
    if all(isinstance(x, str) for _, x in leaves) and leaves and len(shape) == ann.rank:
        return [_error(f"'{p.name}' is declared {declared} but the data holds strings: "
                       f"{_where(leaves[0][0], len(shape))} is {_show(leaves[0][1])}", p, _WHY_HINT["a string"])]
    if len(shape) != ann.rank:
        if not shape and leaves:
            got = f"the data is the single value {_show(leaves[0][1])}"
            hint = (f"Pass an array, e.g. [{_show(leaves[0][1])}]." if ann.rank == 1 else
                    "Pass an array with that many dimensions.")
        else:
            got = f"the data has shape {_shape_text(shape)} ({_rank_words(len(shape))})"
            hint = "Pass a single value." if ann.rank == 0 else None
        return [_error(f"'{p.name}' is declared {declared} ({_rank_words(ann.rank)}) but {got}", p, hint)]
    # the elements
    for pos, leaf in leaves:
        arr = _as_array(leaf)
        if arr is not None:
            found = _bad_array(ann.base, arr)
            if found is None:
                continue
            k, x, why = found
            full = pos + tuple(int(i) for i in np.unravel_index(k, arr.shape)) if arr.shape else pos
        else:
            why = _bad_leaf(ann.base, leaf)
            if why is None:
                continue
            x, full = leaf, pos
        holds = _HOLDS.get(why, "values of another kind")
        note = f" ({why})" if why == "not a whole number" else ""
        return [_error(f"'{p.name}' is declared {declared} but the data holds {holds}: "
                       f"{_where(full, len(shape))} is {_show(x)}{note}", p,
                       _WHY_HINT.get(why, _HINT[ann.base]) if why != "a boolean" else _HINT[ann.base])]
    return []


def _size_of(dim, data: Mapping[str, Any]) -> int | None:
    if isinstance(dim, ast.Num) and isinstance(dim.value, int):
        return dim.value
    if isinstance(dim, ast.Name) and dim.id in data:
        v = data[dim.id]
        if isinstance(v, (bool, np.bool_)) or _is_tracer(v):
            return None
        if isinstance(v, numbers.Integral) or (_as_array(v) is not None and np.ndim(v) == 0
                                               and np.asarray(v).dtype.kind in "iu"):
            return int(v)
        if isinstance(v, float) and v.is_integer():
            return int(v)
    return None


def check_data(params: Iterable[ast.Param], data: Mapping[str, Any]) -> list[CheckError]:
    """Every mismatch between ``data`` (parameter name -> value) and the parameters' annotations.

    Parameters missing from ``data`` are not checked (they may be given later or elsewhere).
    """
    errors: list[CheckError] = []
    params = list(params)
    for p in params:
        if p.name not in data:
            continue
        value = data[p.name]
        found = check_value(p, value)
        errors.extend(found)
        if found or p.annotation is None or not p.annotation.dims or _is_tracer(value):
            continue
        try:
            shape, _ = _leaves(value)
        except (_Ragged, _Traced):  # reported above, or known only when the model runs
            continue
        for k, dim in enumerate(p.annotation.dims):
            want = _size_of(dim, data)
            if want is None or k >= len(shape) or shape[k] == want:
                continue
            text = dim.id if isinstance(dim, ast.Name) else str(want)
            size = text if text == str(want) else f"{text} = {want}"
            where = f" in dimension {k + 1}" if len(p.annotation.dims) > 1 else ""
            errors.append(_error(f"'{p.name}' is declared with size {size}{where}, but the data has {shape[k]}",
                                 p, "Make the data's length agree with the size, or leave the size out: "
                                 f"{p.annotation.base}[]."))
            break
    return errors


def raise_for_data(params: Iterable[ast.Param], data: Mapping[str, Any]) -> None:
    """Raise :class:`DataErrors` when :func:`check_data` finds anything."""
    errors = check_data(params, data)
    if errors:
        raise DataErrors(errors)


def check_module_data(module, data: Mapping[str, Any]) -> None:
    """``ppl check FILE --data D``: every model of a loaded module against the data.

    The data are checked against each model's annotations, then the program is checked
    with the data's shapes and values (``ppl.syntax.check``: a literal index outside a data
    array, sizes), and each model whose parameters the data cover is traced, which checks
    every index known before the model runs (a loop's bounds from the data's length).
    Raises the first error found.
    """
    from .check import CheckErrors, check

    errors: list[CheckError] = []
    for model in module.models.values():
        if model.source is not None:
            errors.extend(check_data(model.source.params, data))
    if errors:
        raise DataErrors(errors)
    names = {p.name for m in module.models.values() if m.source is not None for p in m.source.params}
    found = check(module.ast, {k: v for k, v in data.items() if k in names})
    if found:
        raise CheckErrors(found)
    for model in module.models.values():
        params = [p.name for p in model.source.params] if model.source is not None else []
        if all(p in data for p in params):
            model.program(*[data[p] for p in params])

"""The values a Python model reads from outside its arguments, as a key for its traced program.

A model's program is traced once per argument structure (``Model.program``), and whatever the
model reads from module globals or closures is baked into it as a constant. Without a key on
those values, a notebook user who sets ``NOISE = 0.1`` (or writes into a global array in place)
and runs ``ppl.infer`` again would get the posterior of the old value, with no word.

``fingerprint(fn)`` is a hashable summary of those values: numbers by value, arrays by shape,
dtype and a hash of their bytes (so a change in place counts), lists, tuples and dicts of them
element by element, and, through plain functions and models the model calls, what those read
in turn. Modules, classes and other objects are not followed (their identity is what the model
reads). Which names a function reads is fixed by its code, so it is found once per function;
only the values are read again at each call.
"""

from __future__ import annotations

import hashlib
import types
import weakref
from typing import Any

import numpy as np

__all__ = ["fingerprint"]

MAX_DEPTH = 4  # functions followed through calls
MAX_ITEMS = 10_000  # elements of a list, tuple or dict read one by one (a longer one: by its bytes)

_names: "weakref.WeakKeyDictionary[types.CodeType, tuple]" = weakref.WeakKeyDictionary()


def _global_names(code: types.CodeType) -> tuple:
    """The global names ``code`` and the functions defined inside it may read."""
    got = _names.get(code)
    if got is None:
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found.update(_global_names(const))
        got = _names[code] = tuple(sorted(found))
    return got


def _array_key(a: np.ndarray) -> tuple:
    a = np.ascontiguousarray(a)
    if a.dtype == object:
        return ("objects", a.shape)
    return ("array", a.shape, a.dtype.str, hashlib.blake2b(a.view(np.uint8).reshape(-1), digest_size=16).digest())


def _value_key(v: Any, depth: int, seen: set) -> Any:
    """A hashable summary of ``v`` (None for a value that is not followed)."""
    if isinstance(v, (float, complex)):
        return (type(v).__name__, repr(v))  # NaN by its text: NaN != NaN would miss every time
    if v is None or isinstance(v, (bool, int, str, bytes)):
        return (type(v).__name__, v)
    if isinstance(v, np.generic):
        return ("scalar", v.dtype.str, v.tobytes())
    if isinstance(v, np.ndarray):
        return _array_key(v)
    if hasattr(v, "__jax_array__") or type(v).__module__.startswith("jax"):
        try:
            return _array_key(np.asarray(v))
        except Exception:  # a tracer or another JAX object: not a value to read
            return None
    if isinstance(v, (list, tuple)):
        if len(v) > MAX_ITEMS:
            try:
                return _array_key(np.asarray(v))
            except Exception:
                return ("long", type(v).__name__, len(v))
        return (type(v).__name__, tuple(_value_key(x, depth, seen) for x in v))
    if isinstance(v, dict):
        if len(v) > MAX_ITEMS:
            return ("long dict", len(v))
        return ("dict", tuple((repr(k), _value_key(x, depth, seen)) for k, x in v.items()))
    if isinstance(v, types.FunctionType):
        return _function_key(v, depth + 1, seen)
    fn = getattr(v, "fn", None)  # a ppl Model (or a wrapper of a function) called as a sub-model
    if isinstance(fn, types.FunctionType) and getattr(v, "_programs", None) is not None:
        return _function_key(fn, depth + 1, seen)
    return None


def _function_key(fn: types.FunctionType, depth: int, seen: set) -> Any:
    if depth > MAX_DEPTH or id(fn) in seen:
        return None
    seen.add(id(fn))
    g = fn.__globals__
    parts = []
    for name in _global_names(fn.__code__):
        if name in g:
            key = _value_key(g[name], depth, seen)
            if key is not None:
                parts.append((name, key))
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not yet filled
            continue
        key = _value_key(value, depth, seen)
        if key is not None:
            parts.append(("<closure>", name, key))
    return tuple(parts)


def fingerprint(fn: Any) -> Any:
    """What ``fn`` reads from outside its arguments, as a hashable key (``()`` when nothing)."""
    target = getattr(fn, "__wrapped__", fn)
    if not isinstance(target, types.FunctionType):
        return ()
    return _function_key(target, 0, set())

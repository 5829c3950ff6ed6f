"""JAX primitives evaluated on known NumPy values, as XLA evaluates them.

The tracer follows the values known while a model is traced (``ppl.checked_index``): a Python
index, a ``.ppl`` loop's index vector, JAX's wrapping of a negative index. Evaluating those small
integer computations with JAX itself runs each primitive eagerly, and every new (primitive,
shape, dtype) costs a process one XLA compilation (tens of milliseconds each on a first run).
``evaluate`` computes them with NumPy instead, for the primitives and dtypes where NumPy's result
is XLA's bit for bit:

- shapes, layout and selections (``broadcast_in_dim``, ``reshape``, ``slice``, ``concatenate``,
  ``select_n``, ...), for every dtype: they move values without computing any;
- comparisons, arithmetic and conversions of integers and booleans (two's-complement wrapping,
  as XLA).

Float arithmetic and comparisons are left to JAX: XLA on the CPU flushes subnormal numbers to
zero, where NumPy keeps them (so ``0 + 1e-45`` or ``1e-45 > 0`` differ).

Anything else (an integer division by zero, a parameter it does not know) gives None and the
caller evaluates with JAX. Law: ``evaluate`` equals ``jax_compat.bind`` wherever it answers
(``tests/test_checked_index.py`` checks it on random operands).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["evaluate"]

_COMPARE: dict[str, Callable] = {
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal,
}
_ARITH: dict[str, Callable] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
    "and": np.bitwise_and, "or": np.bitwise_or,
}
_UNARY: dict[str, Callable] = {"neg": np.negative, "abs": np.abs, "sign": np.sign, "not": np.invert}


def _exact_kind(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.integer) or dtype == np.bool_ or dtype in (np.float32, np.float64)


def _int_divide(a: np.ndarray, b: np.ndarray, name: str) -> np.ndarray | None:
    """XLA's integer ``div`` (rounds toward zero) and ``rem`` (the dividend's sign), computed in
    64 bits and wrapped back; None where XLA's answer is its own (a zero divisor) or the operands
    are already 64-bit."""
    if np.any(b == 0) or a.dtype.itemsize >= 8:
        return None
    wide_a, wide_b = a.astype(np.int64), b.astype(np.int64)
    q = np.abs(wide_a) // np.abs(wide_b)
    q = np.where((wide_a < 0) != (wide_b < 0), -q, q)
    out = q if name == "div" else wide_a - q * wide_b
    return out.astype(a.dtype)


def _broadcast_in_dim(x: np.ndarray, shape: Sequence[int], dims: Sequence[int]) -> np.ndarray:
    placed = [1] * len(shape)
    for axis, d in enumerate(dims):
        placed[d] = x.shape[axis]
    return np.broadcast_to(x.reshape(placed), tuple(shape))


def _iota(dtype, shape: Sequence[int], dimension: int) -> np.ndarray:
    placed = [1] * len(shape)
    placed[dimension] = shape[dimension]
    return np.broadcast_to(np.arange(shape[dimension], dtype=dtype).reshape(placed), tuple(shape))


def _structural(name: str, xs: list, p: dict) -> Any:
    if name == "broadcast_in_dim":
        return _broadcast_in_dim(xs[0], p["shape"], p["broadcast_dimensions"])
    if name == "reshape":
        return None if p.get("dimensions") is not None else xs[0].reshape(tuple(p["new_sizes"]))
    if name == "squeeze":
        return np.squeeze(xs[0], axis=tuple(p["dimensions"]))
    if name == "expand_dims":
        return np.expand_dims(xs[0], tuple(p["dimensions"]))
    if name == "concatenate":
        return np.concatenate(xs, axis=p["dimension"])
    if name == "iota":
        return _iota(np.dtype(p["dtype"]), p["shape"], p["dimension"])
    if name == "transpose":
        return np.transpose(xs[0], tuple(p["permutation"]))
    if name == "slice":
        strides = p.get("strides") or (1,) * xs[0].ndim
        return xs[0][tuple(slice(a, b, s) for a, b, s in zip(p["start_indices"], p["limit_indices"], strides))]
    if name in ("copy", "copy_p"):
        return xs[0].copy()
    if name == "select_n":
        which, cases = xs[0], xs[1:]
        if which.dtype == np.bool_:
            return np.where(which, cases[1], cases[0]) if len(cases) == 2 else None
        if np.any((which < 0) | (which >= len(cases))):
            return None
        return np.choose(which, cases)
    if name == "clamp":
        low, x, high = xs
        return np.minimum(np.maximum(x, low), high)
    return None


_MOVES = frozenset({"broadcast_in_dim", "reshape", "squeeze", "expand_dims", "concatenate", "iota",
                    "transpose", "slice", "copy", "copy_p", "select_n"})


def _compute(name: str, xs: list, p: dict, out_dtype: np.dtype) -> Any:
    if name in _MOVES:
        if name == "select_n" and np.issubdtype(xs[0].dtype, np.floating):
            return None
        return _structural(name, xs, p)
    if any(np.issubdtype(x.dtype, np.floating) for x in xs):
        return None  # see the module: subnormal floats
    if name in _COMPARE:
        return _COMPARE[name](xs[0], xs[1])
    if name == "clamp":
        return _structural(name, xs, p)
    if name == "convert_element_type":
        return xs[0].astype(out_dtype)
    if name in _ARITH:
        return _ARITH[name](xs[0], xs[1])
    if name in _UNARY:
        return _UNARY[name](xs[0])
    if name in ("div", "rem"):
        return _int_divide(xs[0], xs[1], name)
    return None


def evaluate(name: str, values: Sequence[Any], params: dict, in_avals: Sequence[Any],
             out_avals: Sequence[Any]) -> list | None:
    """The outputs of primitive ``name`` on the known ``values`` (see the module), or None where
    this cannot promise XLA's result. ``in_avals``, ``out_avals``: the equation's operand and
    output shapes and dtypes (a literal operand takes its operand's dtype)."""
    if len(out_avals) != 1 or len(in_avals) != len(values):
        return None
    shape, dtype = tuple(out_avals[0].shape), np.dtype(out_avals[0].dtype)
    in_dtypes = [np.dtype(a.dtype) for a in in_avals]
    if not _exact_kind(dtype) or not all(_exact_kind(d) for d in in_dtypes):
        return None
    try:
        xs = [np.asarray(v, dtype=d) for v, d in zip(values, in_dtypes)]
        if any(x.shape != tuple(a.shape) for x, a in zip(xs, in_avals)):
            return None
        with np.errstate(all="ignore"):
            got = _compute(name, xs, dict(params), dtype)
    except (ValueError, TypeError, IndexError, KeyError, OverflowError):
        return None
    if got is None:
        return None
    got = np.asarray(got)
    if got.shape != shape or (got.dtype != dtype and not np.can_cast(got.dtype, dtype, "same_kind")):
        return None
    return [got.astype(dtype)]  # a copy: a broadcast view becomes an array of its own

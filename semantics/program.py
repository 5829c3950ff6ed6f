"""What inference consumes: a static IR program, or a dynamic one.

A *static* program (``ir.Program``) has a fixed set of addresses and shapes
and compiles to one XLA computation. A *dynamic* program (:class:`Dynamic`)
is effectful Python whose control flow depends on random values; it has no
complete IR, and the eager engine runs it as Pyro or WebPPL would.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ppl.stdlib.errors import Span

from . import checked_eval
from .recursion import recursion_error

__all__ = ["Dynamic", "split_args", "as_data"]


@dataclass(frozen=True, eq=False)
class Dynamic:
    """A program the compiler cannot take: run eagerly, with concrete values."""

    fn: Callable
    args: tuple
    kwargs: dict
    name: str
    reason: str
    span: Span | None

    def describe(self) -> str:
        where = f" ({self.span.file}, line {self.span.line})" if self.span else ""
        return (
            f"model '{self.name}' is dynamic: {self.reason}{where}. It runs in the eager engine. "
            "To compile it, branch on random values with ppl.cond and loop with ppl.scan."
        )

    def call(self):
        """Run the model's function (under the handler in force), its index operations checked."""
        try:
            with checked_eval.eager_checks():
                return self.fn(*self.args, **self.kwargs)
        except RecursionError as err:  # a recursion without a base case: one error at the user's line
            raise recursion_error(err) from None


def as_data(x):
    """Lists of numbers become arrays; everything else is left alone. A masked array and a ragged
    list of numbers are refused in words (JAX and NumPy would answer with their own errors)."""
    from ppl.stdlib.errors import ModelError, ShapeError

    if isinstance(x, np.ma.MaskedArray):
        raise ModelError("a masked array was given as data; ppl takes plain arrays",
                         hint="Drop the masked rows (y.compressed()), or fill them (y.filled(v)); to infer missing "
                              "values, make them latent random choices.")
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu" and x.dtype.itemsize < 4:
        return x.astype(np.int32)  # uint8 pixels times 2 would wrap at 256 (144 for 200 * 2)
    if isinstance(x, (list, tuple)) and x and _all_numeric(x):
        try:
            arr = np.asarray(x)
        except ValueError:
            raise ShapeError("a list of numbers whose rows have different lengths (a ragged list) was given "
                             "as data; an array needs rows of one length",
                             hint="Pad the rows to one length and pass the lengths too, or pass the rows as "
                                  "separate arguments.") from None
        if arr.dtype == np.float64:
            arr = arr.astype(jnp.result_type(float))
        if arr.dtype == np.int64 and _fits(arr, np.int32):  # larger ones are refused by split_args
            arr = arr.astype(jnp.int32)
        return arr
    if isinstance(x, (list, tuple)):
        return type(x)(as_data(v) for v in x)
    if isinstance(x, dict):
        return {k: as_data(v) for k, v in x.items()}
    return x


def _all_numeric(x) -> bool:
    for v in x:
        if isinstance(v, (list, tuple)):
            if not v or not _all_numeric(v):
                return False
        elif isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
            return False
    return True


def _is_dynamic_leaf(x) -> bool:
    if isinstance(x, (bool, int, str, type(None))):
        return False
    if isinstance(x, (float, np.floating)):
        return True
    return isinstance(x, (np.ndarray, jax.Array))


def _fits(arr: np.ndarray, dtype) -> bool:
    info = np.iinfo(dtype)
    return bool(arr.size == 0 or (arr.min() >= info.min and arr.max() <= info.max))


def _argument_names(fn: Callable | None, count: int) -> list[str]:
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return [f"'{names[i]}'" if i < len(names) else f"number {i + 1}" for i in range(count)]


def wrapped_integers(value) -> str | None:
    """What JAX would silently change in integer data ``value`` (arrays wider than JAX's integers:
    without x64 they have 32 bits, and 2**32 + 5 becomes 5), or None when it fits."""
    if isinstance(value, (list, tuple)) and value and _all_numeric(value):
        value = np.asarray(value)
    for leaf in jax.tree.leaves(value):
        if not (isinstance(leaf, np.ndarray) and np.issubdtype(leaf.dtype, np.integer)):
            continue
        target = jax.dtypes.canonicalize_dtype(leaf.dtype)
        if target == leaf.dtype or _fits(leaf, target):
            continue
        info = np.iinfo(target)
        where = tuple(int(i) for i in np.argwhere((leaf < info.min) | (leaf > info.max))[0])
        element = f" element {list(where) if len(where) > 1 else where[0]}" if where else ""
        return (f"integers too large for {target.itemsize * 8} bits:{element} is {leaf[where]}; JAX would "
                f"wrap it to {leaf[where].astype(target)} without a word")
    return None


WRAPPED_INTEGERS_HINT = ("Pass counts this large as floats (np.asarray(y, float)), or enable 64-bit integers "
                         "with ppl.config(x64=True) before building the model.")


def check_integers_fit(args: tuple, kwargs: dict, fn: Callable | None = None) -> None:
    """Refuse integer arguments that JAX's integers cannot hold (``wrapped_integers``)."""
    from ppl.stdlib.errors import ModelError

    named = list(zip(_argument_names(fn, len(args)), args)) + [(f"'{k}'", v) for k, v in kwargs.items()]
    for name, value in named:
        problem = wrapped_integers(value)
        if problem is not None:
            raise ModelError(f"argument {name} holds {problem}", hint=WRAPPED_INTEGERS_HINT)


def split_args(args: tuple, kwargs: dict, fn: Callable | None = None):
    """Split model arguments into traced array leaves and static parts.

    Arrays and floats are traced (changing their values recompiles nothing);
    ints, bools, strings, functions and other objects are static (sizes,
    loop bounds, options). Returns ``(dynamic_leaves, rebuild)`` where
    ``rebuild(leaves) -> (args, kwargs)`` and ``rebuild.key`` identifies the
    static parts and the leaves' shapes for caching.
    """
    args = tuple(as_data(a) for a in args)
    kwargs = {k: as_data(v) for k, v in kwargs.items()}
    check_integers_fit(args, kwargs, fn)
    leaves, treedef = jax.tree.flatten((args, kwargs))
    dynamic_pos = [i for i, x in enumerate(leaves) if _is_dynamic_leaf(x)]
    dyn = [_to_array(leaves[i]) for i in dynamic_pos]
    dtypes = {i: str(v.dtype) for i, v in zip(dynamic_pos, dyn)}  # converted once (each is a transfer)
    static = list(leaves)

    def rebuild(values):
        filled = list(static)
        for i, v in zip(dynamic_pos, values):
            filled[i] = v
        return jax.tree.unflatten(treedef, filled)

    static_key = tuple(
        ("dyn", tuple(np.shape(x)), dtypes[i]) if i in dtypes else ("static", _hashable(x))
        for i, x in enumerate(leaves)
    )
    rebuild.key = (treedef, static_key)
    rebuild.leaves = dyn
    return dyn, rebuild


# Float scalars already converted, by (type, bits, x64, default device): a scalar is immutable and
# so is a jax.Array (nothing in ppl donates its arguments), so a model called again with the same
# numbers (``ppl.infer(model, ys, 0.9, 1.0, 0.5)``) skips one host-to-device dispatch per number.
_SCALARS: dict = {}
_SCALARS_MAX = 256


def _to_array(x):
    """``jnp.asarray(x)``; for a float scalar, the array made the last time for the same value.

    A NumPy array is transferred with ``jax.device_put``, which converts it as ``jnp.asarray``
    does but compiles nothing (``jnp.asarray`` stages it through a small jitted program, one XLA
    compilation per shape and dtype on a process's first call).
    """
    if isinstance(x, np.ndarray):
        return jax.device_put(x)
    if not isinstance(x, (float, np.floating)):
        return jnp.asarray(x)
    bits = x.hex() if type(x) is float else np.asarray(x).tobytes()
    key = (type(x), bits, jax.config.jax_enable_x64, jax.config.jax_default_device)
    got = _SCALARS.get(key)
    if got is None:
        if len(_SCALARS) >= _SCALARS_MAX:
            _SCALARS.clear()
        got = _SCALARS[key] = jnp.asarray(x)
    return got


def _hashable(x):
    try:
        hash(x)
        return x
    except TypeError:
        return ("id", id(x))

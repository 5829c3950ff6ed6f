"""Checked indexing: an index outside its array is an error, never a clamped value.

JAX clamps the start of a ``gather`` or ``dynamic_slice`` that falls outside
the array (and drops a ``scatter`` update that does), so ``y[5]`` on a
length-3 array would quietly read ``y[2]``. ppl follows NumPy instead: an
index ``i`` of an axis of length ``n`` must satisfy ``-n <= i < n`` (negative
indices count from the end, which JAX's indexing turns into ``i + n`` before
the index operation), and anything else is an error at the user's text.

This module knows, for each index operation of the IR, which operand holds the
indices, which axis each one indexes and how wide the window is. The tracer
checks indices that are known when the model is traced and marks the others
(``Prim.check_index``); the compiled engine turns a failed run-time check into
a NaN log density (and ``Trace.valid`` false), and the eager engine raises.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ppl.stdlib.errors import ShapeError, Span

__all__ = [
    "IndexRangeError",
    "REPORT",
    "is_checked_op",
    "item_table",
    "first_bad",
    "in_range",
    "first_violation",
    "index_positions",
    "violation_message",
    "raise_if_out_of_range",
    "span_scope",
    "span_of_scopes",
    "statement_scope",
    "statement_span_of_scopes",
    "UNCHECKED_SCOPE",
]

_SCATTERS = frozenset({"scatter", "scatter-add", "scatter-mul", "scatter-min", "scatter-max",
                       "scatter_add", "scatter_mul", "scatter_min", "scatter_max"})
_OPS = frozenset({"gather", "dynamic_slice", "dynamic_update_slice"}) | _SCATTERS

#: the name of the check that reports, after an opaque loop (``while_loop``, ``fori_loop``), the first
#: index of one of its index operations that fell outside its array (``semantics.checked_eval``):
#: arguments ``(code, value)``, ``code`` -1 when every index was inside, else which of the
#: operation's indexed axes (``params["items"]``) the index ``value`` missed
REPORT = "ppl_index_report"

#: the named scope under which index operations are not checked (a ``.ppl`` if-expression on a
#: value known only at run time evaluates both branches: a guarded index there is fine)
UNCHECKED_SCOPE = "ppl.unchecked"

HINT = ("Indices count from 0; a negative index counts from the end. Check the loop bounds and the "
        "index expression against the length of the data.")


class IndexRangeError(ShapeError):
    """An index outside the array it indexes."""

    kind = "Index error"


class _Item(NamedTuple):
    arg: int  # which operand holds the index
    component: int | None  # the position in the last axis of an index array (gather/scatter)
    axis: int  # the axis of the indexed operand
    length: int  # that axis's length
    window: int  # how many elements the operation reads or writes from the index on


def _mode_name(params) -> str:
    return str(getattr(params.get("mode"), "name", params.get("mode")))


def is_checked_op(name: str, params: dict) -> bool:
    """Whether an equation ``name[params]`` is an index operation whose indices ppl checks.

    A gather that fills out-of-range reads (``jnp.take``'s NaN) or clamps them on request
    (``mode='clip'``) says what it does there, and is left alone.
    """
    if name == REPORT:
        return True
    if name not in _OPS:
        return False
    if name == "gather":
        return _mode_name(params) == "PROMISE_IN_BOUNDS"
    if name in _SCATTERS:
        return _mode_name(params) != "CLIP"
    return True


def index_positions(name: str, nargs: int) -> tuple[int, ...]:
    """Which operands of the operation hold indices (the others only lend their shapes)."""
    if name == "dynamic_slice":
        return tuple(range(1, nargs))
    if name == "dynamic_update_slice":
        return tuple(range(2, nargs))
    return (1,)


def _items(name: str, params: dict, shapes: list[tuple]) -> list[_Item]:
    operand = shapes[0]
    if name == "dynamic_slice":
        sizes = params["slice_sizes"]
        return [_Item(1 + k, None, k, operand[k], int(sizes[k])) for k in range(len(operand))]
    if name == "dynamic_update_slice":
        update = shapes[1]
        return [_Item(2 + k, None, k, operand[k], int(update[k])) for k in range(len(operand))]
    dn = params["dimension_numbers"]
    if name == "gather":
        sizes = params["slice_sizes"]
        return [_Item(1, j, a, operand[a], int(sizes[a])) for j, a in enumerate(dn.start_index_map)]
    # scatters: the window along each operand axis comes from the updates' window dims
    updates = shapes[2]
    single = set(dn.inserted_window_dims) | set(getattr(dn, "operand_batching_dims", ()))
    window = {}
    rest = iter(dn.update_window_dims)
    for a in range(len(operand)):
        window[a] = 1 if a in single else int(updates[next(rest)])
    return [_Item(1, j, a, operand[a], window[a]) for j, a in enumerate(dn.scatter_dims_to_operand_dims)]


def _index(value, item: _Item):
    if item.component is None:
        return value
    return value[..., item.component]


def item_table(name: str, params: dict, shapes: list[tuple]) -> tuple:
    """``(axis, length, window)`` of each index the operation reads, in :func:`first_bad`'s order."""
    return tuple((it.axis, it.length, it.window) for it in _items(name, params, shapes))


def first_bad(xp, name: str, params: dict, args: list) -> tuple[Any, Any]:
    """(traced) ``(code, value)``: ``code`` -1 when every index lies inside its axis, else the first
    entry of :func:`item_table` that an index misses, and ``value`` that index as the user wrote it."""
    shapes = [tuple(np.shape(a)) for a in args]
    code, value = xp.asarray(-1, np.int32), xp.asarray(0, np.int32)
    for k, item in reversed(list(enumerate(_items(name, params, shapes)))):
        idx = xp.reshape(xp.asarray(_index(args[item.arg], item)), (-1,))
        if idx.shape[0] == 0:
            continue
        bad = (idx < 0) | (idx > item.length - item.window)
        v = idx[xp.argmax(bad)]
        user = xp.where(v < 0, v - item.length, v).astype(np.int32)
        hit = xp.any(bad)
        code, value = xp.where(hit, np.int32(k), code), xp.where(hit, user, value)
    return code, value


def in_range(xp, name: str, params: dict, args: list) -> Any:
    """A (traced) boolean: every index of the operation lies inside its axis."""
    if name == REPORT:
        return args[0] < 0
    shapes = [tuple(np.shape(a)) for a in args]
    ok = xp.asarray(True)
    for item in _items(name, params, shapes):
        idx = _index(args[item.arg], item)
        ok = ok & xp.all((idx >= 0) & (idx <= item.length - item.window))
    return ok


class Violation(NamedTuple):
    index: int  # as the user wrote it (a negative index counted from the end)
    axis: int
    length: int
    window: int
    shape: tuple


def first_violation(name: str, params: dict, args: list) -> Violation | None:
    """The first index outside its axis (concrete values), or None when all are inside."""
    if name == REPORT:
        code = int(np.asarray(args[0]))
        if code < 0:
            return None
        axis, length, window = params["items"][code]
        return Violation(int(np.asarray(args[1])), axis, length, window, tuple(params["shape"]))
    shapes = [tuple(np.shape(a)) for a in args]
    for item in _items(name, params, shapes):
        idx = np.asarray(_index(np.asarray(args[item.arg]), item)).reshape(-1)
        bad = (idx < 0) | (idx > item.length - item.window)
        if bad.any():
            v = int(idx[int(np.argmax(bad))])
            # JAX's indexing adds the length to a negative index before this operation
            user = v - item.length if v < 0 else v
            return Violation(user, item.axis, item.length, item.window, shapes[0])
    return None


def violation_message(v: Violation, what: str = "the array") -> str:
    """Words for an index outside its axis."""
    axis = f" in dimension {v.axis + 1}" if len(v.shape) > 1 else ""
    if v.window > 1:
        return (f"a slice of {v.window} elements starting at {v.index} does not fit in {what}, which has "
                f"{v.length} elements{axis}")
    n = v.length
    if n == 0:
        return f"index {v.index} is out of range for {what}, which is empty{axis}"
    return (f"index {v.index} is out of range for {what}, which has {n} element{'s' if n != 1 else ''}{axis} "
            f"(indices 0 to {n - 1}, or -{n} to -1 from the end)")


def raise_if_out_of_range(name: str, params: dict, args: list, span: Span | None, what: str = "the array"):
    """Raise :class:`IndexRangeError` at ``span`` when a concrete index is outside its axis."""
    v = first_violation(name, params, args)
    if v is not None:
        if what == "the array" and span is not None:
            what = _indexed_text(span) or what
        raise IndexRangeError(violation_message(v, what), span=span, hint=HINT)


def _indexed_text(span: Span) -> str | None:
    """``'y'`` for a span covering ``y[i]`` (or ``y[i] = v``) on one line: a .ppl index."""
    if span.end_column is None or span.end_line not in (None, span.line):
        return None
    line = span.source_line(span.line)
    if line is None:
        return None
    text = line[span.column - 1: span.end_column]
    if "[" not in text:
        return None
    name = text[: text.index("[")].strip()
    return f"'{name}'" if name.isidentifier() else None


# ---------------------------------------------------------------------------
# Spans through JAX's named scopes (the .ppl front end's index expressions)

_SPANS: dict[tuple, int] = {}
_BY_ID: list[Span] = []
_PREFIX = "ppl.at."


_STATEMENT_PREFIX = "ppl.stmt."


def _span_id(span: Span) -> int:
    key = (span.file, span.line, span.column, span.end_line, span.end_column, span.source)
    k = _SPANS.get(key)
    if k is None:
        k = _SPANS[key] = len(_BY_ID)
        _BY_ID.append(span)
    return k


def span_scope(span: Span) -> str:
    """A named-scope name that carries ``span`` of an index expression into the jaxpr's equations."""
    return f"{_PREFIX}{_span_id(span)}"


def statement_scope(span: Span) -> str:
    """A named-scope name that carries the span of the statement an equation comes from (the .ppl
    front end wraps each statement in one; it marks no index as the user's)."""
    return f"{_STATEMENT_PREFIX}{_span_id(span)}"


def _innermost(names, prefixes) -> Span | None:
    for part in reversed(tuple(names)):
        for prefix in prefixes:
            if part.startswith(prefix):
                try:
                    return _BY_ID[int(part[len(prefix):])]
                except (ValueError, IndexError):
                    return None
    return None


def span_of_scopes(names) -> Span | None:
    """The innermost span carried by :func:`span_scope` names in a name stack."""
    return _innermost(names, (_PREFIX,))


def statement_span_of_scopes(names) -> Span | None:
    """The innermost span carried by :func:`span_scope` or :func:`statement_scope` names."""
    return _innermost(names, (_PREFIX, _STATEMENT_PREFIX))

"""Checked indexing (see ``ppl.semantics.index_check``): an index known now must lie inside its
axis, and the user's span goes into the jaxpr of an index known only when the model runs."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import index_check, user_spans

from .runtime import is_concrete, tracing

__all__ = ["node_text", "check_indices", "statement_scope", "index_scope"]


def node_text(node) -> str:
    """The source text of ``node`` when it lies on one line (else a neutral word)."""
    sp = node.span
    line = sp.source_line(sp.line) if sp is not None else None
    if line is None or sp.end_line not in (None, sp.line) or sp.end_column is None:
        return "the array"
    return f"'{line[sp.column - 1: sp.end_column]}'"


def check_indices(base, idx, nodes, what: str) -> None:
    """An index known now (a number, a plate's index vector) must lie inside its axis."""
    shape = jnp.shape(base)
    for k, (i, node) in enumerate(zip(idx, nodes)):
        if isinstance(i, slice) or i is None or not is_concrete(i) or k >= len(shape):
            continue
        v = np.asarray(i)
        if v.dtype == np.bool_ or not np.issubdtype(v.dtype, np.integer) or v.size == 0:
            continue
        n = int(shape[k])
        bad = (v < -n) | (v >= n)
        if bad.any():
            first = int(v.reshape(-1)[int(np.argmax(bad.reshape(-1)))])
            viol = index_check.Violation(first, k, n, 1, tuple(shape))
            where = "" if v.ndim == 0 else " (one of the values this index takes)"
            raise index_check.IndexRangeError(index_check.violation_message(viol, what) + where,
                                              span=node.span, hint=index_check.HINT)


def statement_scope(span):
    """The statement being evaluated: its span is where the user's code is (sub-model calls and
    errors point at it), and, while tracing, it goes into the jaxpr, so every IR operation it makes
    has its span."""
    if span is None:
        return contextlib.nullcontext()
    if not tracing():
        return user_spans.statement(span)
    scopes = contextlib.ExitStack()
    scopes.enter_context(user_spans.statement(span))
    scopes.enter_context(jax.named_scope(index_check.statement_scope(span)))
    return scopes


def index_scope(span, idx):
    """Carries the user's span into the jaxpr of an index known only when the model runs."""
    if span is None or not tracing() or all(isinstance(i, slice) or is_concrete(i) for i in idx):
        return contextlib.nullcontext()
    return jax.named_scope(index_check.span_scope(span))

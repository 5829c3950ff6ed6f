"""Unbounded recursion in a model, reported as one error at the user's line.

A model that calls itself (or a function that calls itself) without reaching
a base case runs until Python's recursion limit; the raw ``RecursionError``
would show hundreds of identical frames and name no line of the user's. The
eager engine turns it into a ``ModelError`` naming the function that recursed
and the line of its recursive call (``recursion_error``).
"""

from __future__ import annotations

import collections
import sys

from ppl.stdlib.errors import ModelError, Span

from .effects import is_internal

__all__ = ["recursion_error", "BASE_CASE_HINT", "BASE_CASE_HINT_PPL"]

_HINT = (
    "A recursive function needs a base case that stops it: a branch that returns without calling it "
    "again, reached on every path ({example}). If it does stop, but only after more nested calls than "
    "this, write the recursion as a loop."
)
#: the hint for a Python model, and for a .ppl one
BASE_CASE_HINT = _HINT.format(example="e.g. `if n == 0: return 0`")
BASE_CASE_HINT_PPL = _HINT.format(example="e.g. `if n == 0 { return 0 }`")


def recursion_error(exc: RecursionError) -> ModelError:
    """A ModelError for ``exc`` at the user's frame that repeats most in its traceback."""
    frames: list[tuple[str, int, str]] = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not is_internal(code.co_filename):
            frames.append((code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    if not frames:
        return ModelError(
            "the model recursed deeper than Python allows (a function calls itself without end)",
            hint=BASE_CASE_HINT,
        )
    counts = collections.Counter(frames)
    (file, line, name), n = counts.most_common(1)[0]
    return ModelError(
        f"the function '{name}' calls itself without end: Python's recursion limit "
        f"({sys.getrecursionlimit()} frames) was reached after {n} nested calls from this line",
        span=Span(file, line),
        hint=BASE_CASE_HINT,
    )

"""Where the user's code is: the first stack frame (or traceback frame) outside ppl and JAX,
the line an error or an IR statement points at."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys

from ppl.stdlib.errors import Span


def _package_roots() -> tuple[str, ...]:
    """The folders of ppl's four packages (already imported by the time a model runs)."""
    roots = {os.path.dirname(os.path.abspath(__file__))}
    for mod in ("ppl", "ppl.semantics", "ppl.inference", "ppl.stdlib"):
        m = sys.modules.get(mod)
        if m is not None and getattr(m, "__file__", None):
            roots.add(os.path.dirname(os.path.abspath(m.__file__)))
    return tuple(sorted(roots))


_ROOTS: tuple[str, ...] | None = None
_SKIP_PREFIXES = ("<frozen", "<string>")


def is_internal(filename: str) -> bool:
    global _ROOTS
    if _ROOTS is None or len(_ROOTS) < 4:
        _ROOTS = _package_roots()
    if filename.startswith(_SKIP_PREFIXES):
        return True
    path = os.path.abspath(filename)
    if any(path.startswith(root + os.sep) for root in _ROOTS):
        # the user's examples and tests live outside the package folders
        return True
    parts = path.split(os.sep)
    return "jax" in parts or "contextlib.py" in parts[-1:] or "site-packages" in parts


_STATEMENT: contextvars.ContextVar[Span | None] = contextvars.ContextVar("ppl_statement_span", default=None)


@contextlib.contextmanager
def statement(span: Span | None):
    """While a front end evaluates one statement of the user's text (a ``.ppl`` statement), that
    statement is where the user's code is: :func:`caller_span` gives its span."""
    token = _STATEMENT.set(span)
    try:
        yield
    finally:
        _STATEMENT.reset(token)


def caller_span() -> Span | None:
    """The user's line that made the call: the front end's current statement (:func:`statement`),
    else the first stack frame outside ppl and JAX."""
    current = _STATEMENT.get()
    if current is not None:
        return current
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not is_internal(filename):
            return Span(filename, frame.f_lineno)
        frame = frame.f_back
    return None


def user_span_of(exc: BaseException) -> Span | None:
    """The innermost traceback frame of ``exc`` in the user's code."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not is_internal(filename):
            found = Span(filename, tb.tb_lineno)
        tb = tb.tb_next
    return found

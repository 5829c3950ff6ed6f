"""Errors as data: every user-facing error carries a source span and says what to do.

All layers share these types (``stdlib`` is the bottom of the import chain).
User errors (``PPLError`` and subclasses) are different from internal errors
(anything else): the former point at the user's text, the latter are bugs.

One renderer prints them all, in the shape::

    Semantic error in 'schools.ppl', line 7, column 5 to column 21:
       6 |   for j in 0..J {
       7 |     y[j] ~ normal(theta[j], sigma)
               ^^^^^^^^^^^^^^^^^
    'sigma' is data of shape (8,) ...
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass

__all__ = [
    "Span",
    "PPLError",
    "SyntaxError_",
    "CheckError",
    "ModelError",
    "ParameterError",
    "SupportError",
    "ShapeError",
    "AddressError",
    "DensityError",
    "ImproperSampleError",
    "render_span",
]


@dataclass(frozen=True)
class Span:
    """A region of user source text; lines and columns are 1-based, end inclusive."""

    file: str
    line: int
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None
    source: str | None = None  # the whole text, when it is not a file on disk

    def describe(self) -> str:
        where = f"'{self.file}', line {self.line}, column {self.column}"
        if self.end_column is not None and (self.end_line in (None, self.line)):
            where += f" to column {self.end_column}"
        elif self.end_line is not None and self.end_line != self.line:
            where += f" to line {self.end_line}, column {self.end_column}"
        return where

    def source_line(self, line: int) -> str | None:
        if self.source is not None:
            lines = self.source.splitlines()
            return lines[line - 1] if 0 < line <= len(lines) else None
        text = linecache.getline(self.file, line)
        return text.rstrip("\n") if text else None


def render_span(span: Span, context: int = 1) -> str:
    """A numbered excerpt of the source around ``span`` with a caret line."""
    out = []
    first = max(1, span.line - context)
    width = len(str(span.end_line or span.line))
    for n in range(first, span.line + 1):
        text = span.source_line(n)
        if text is None:
            continue
        out.append(f"{n:>{width + 2}} | {text}")
    if out:
        start = max(span.column, 1)
        text = span.source_line(span.line) or ""
        if span.end_column is not None and span.end_line in (None, span.line):
            stop = max(span.end_column, start)
        else:
            stop = max(len(text), start)
        out.append(" " * (width + 2) + " | " + " " * (start - 1) + "^" * (stop - start + 1))
    return "\n".join(out)


class PPLError(Exception):
    """A user error: something in the user's model, data or call is wrong.

    ``message`` says what was expected and what was found, in words;
    ``span`` (optional) is where in the user's text; ``hint`` says what to do.
    """

    kind = "Error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        self.message = message
        self.span = span
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        if self.span is None:
            head = f"{self.kind}: {self.message}"
            return head + (f"\n{self.hint}" if self.hint else "")
        parts = [f"{self.kind} in {self.span.describe()}:"]
        excerpt = render_span(self.span)
        if excerpt:
            parts.append(excerpt)
        parts.append(self.message)
        if self.hint:
            parts.append(self.hint)
        return "\n".join(parts)

    def __str__(self) -> str:  # keep str() in sync if span/hint were attached later
        return self.render()

    def with_span(self, span: Span | None) -> "PPLError":
        if self.span is None and span is not None:
            self.span = span
            self.args = (self.render(),)
        return self


class SyntaxError_(PPLError):
    """A ``.ppl`` text that does not parse."""

    kind = "Syntax error"


class CheckError(PPLError):
    """A program that parses but is ill-formed (unbound name, arity, shapes, ...)."""

    kind = "Semantic error"


class ModelError(PPLError):
    """A model that cannot be run or inferred as asked."""

    kind = "Model error"


class ParameterError(ModelError):
    """A distribution parameter outside its domain."""

    kind = "Parameter error"


class SupportError(ModelError):
    """An observed value outside the support of its distribution."""

    kind = "Support error"


class ShapeError(ModelError):
    """Data or parameters of the wrong shape."""

    kind = "Shape error"


class AddressError(ModelError):
    """Two random choices with the same address, or an unknown address."""

    kind = "Address error"


class DensityError(ModelError):
    """A log density that is NaN (or otherwise unusable)."""

    kind = "Density error"


class ImproperSampleError(ModelError):
    """An attempt to draw from an improper (flat) prior."""

    kind = "Improper prior"

"""The checker's words: how a name, a type, a shape or a piece of the program reads in a message,
and what a piece of data is (``data_info``)."""

from __future__ import annotations

import numbers

from ppl.stdlib.errors import Span

from .. import ast


def name_span(node) -> Span:
    """The span of the defined name in ``model NAME(...)``, ``def NAME``, ``let NAME =``, ``NAME =``."""
    s = node.span
    line = s.source_line(s.line) if s is not None else None
    if line is None:
        return s
    start = s.column - 1
    for keyword in ("model", "def", "let"):
        if line.startswith(keyword, start):
            start += len(keyword)
            break
    at = line.find(node.name, start)
    if at < 0:
        return s
    return Span(s.file, s.line, at + 1, s.line, at + len(node.name), s.source)


def index_chain(target) -> list[tuple]:
    """The index tuples of ``x[i][j]`` from the outside in: [(i,), (j,)] (innermost first)."""
    out = []
    while isinstance(target, ast.Index):
        out.append(target.indices)
        target = target.base
    return list(reversed(out))


def join_types(tys) -> str:
    bases = {t.base for t in tys}
    if "unknown" in bases:
        return "unknown"
    if "real" in bases:
        return "real"
    if bases == {"bool"}:
        return "bool"
    return "int"


def ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(n, f"{n}th")


def rank_words(rank: int) -> str:
    return {0: "no dimensions", 1: "1 dimension"}.get(rank, f"{rank} dimensions")


def shape_text(shape) -> str:
    inner = ", ".join("?" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def annotation_text(ann: ast.TypeAnn) -> str:
    """The annotation as written: real, int[], real[,], real[N, 2]."""
    if ann.dims is None:
        return ann.base
    if all(d is None for d in ann.dims):
        return ann.base + "[" + "," * (len(ann.dims) - 1) + "]"
    return ann.base + "[" + ", ".join("" if d is None else expr_text(d) for d in ann.dims) + "]"


def source_text(node) -> str | None:
    """The source text of ``node`` when it lies on one line."""
    s = node.span
    if s is None or s.end_line not in (None, s.line) or s.end_column is None:
        return None
    line = s.source_line(s.line)
    if line is None:
        return None
    return line[s.column - 1 : s.end_column]


def expr_text(e) -> str:
    """A short text for an expression: its source when on one line, else a description."""
    if e is None:
        return ""
    text = source_text(e)
    if text:
        return text
    return expr_words(e)


def target_text(t) -> str:
    return expr_text(t)


def with_article(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def expr_words(e) -> str:
    return {
        ast.Call: "function call", ast.Num: "number", ast.Str: "string", ast.Bool: "boolean",
        ast.BinOp: "operation", ast.UnaryOp: "operation", ast.Array: "array literal",
        ast.IfExpr: "if-expression", ast.Lambda: "function (fn)", ast.Index: "indexed value",
        ast.Name: "name",
    }.get(type(e), "expression")


def is_shape(value) -> bool:
    """A shape tuple such as ``(62,)`` (the other form of ``data_shapes``), not a value."""
    return isinstance(value, tuple) and all(isinstance(v, numbers.Integral) for v in value)


def data_info(value) -> tuple[tuple[int, ...], str | None, int | None] | None:
    """(shape, base, integer value) of a data value or shape tuple; None if ragged."""
    if isinstance(value, tuple) and all(isinstance(v, numbers.Integral) for v in value):
        return tuple(int(v) for v in value), None, None
    if isinstance(value, bool):
        return (), "bool", None
    if isinstance(value, numbers.Integral):
        return (), "int", int(value)
    if isinstance(value, numbers.Real):
        return (), "real", None
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        kind = getattr(dtype, "kind", "")
        base = {"i": "int", "u": "int", "f": "real", "b": "bool"}.get(kind)
        return tuple(int(s) for s in shape), base, None
    if isinstance(value, (list, tuple)):
        if not value:
            return (0,), None, None
        infos = [data_info(v) for v in value]
        if any(i is None for i in infos):
            return None
        shapes = {i[0] for i in infos}
        if len(shapes) != 1:
            return None
        bases = {i[1] for i in infos}
        base = "real" if "real" in bases else ("int" if "int" in bases else (bases.pop() if len(bases) == 1 else None))
        return (len(value),) + shapes.pop(), base, None
    return (), None, None

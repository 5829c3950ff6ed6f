"""lark's tree -> ``ast`` nodes, each with its span: the transformer ``Build`` (one method per
grammar rule, run without recursion), and the small rewrites the language's sugar needs
(``d T[low, high]`` is ``truncated(d, low, high)``; ``x += e`` is ``x = x + e``)."""

from __future__ import annotations

import math
from contextvars import ContextVar

from lark import Token, v_args
from lark.visitors import Transformer_NonRecursive

from ppl.stdlib.errors import Span, SyntaxError_

from . import ast
from .builtins.dist_functions import DIST_FUNCTIONS as _GIVEN_FUNCTIONS
from .lexer import CURRENT_FILE, end_of_file_span, token_span

__all__ = ["Build", "CURRENT_SOURCE"]

#: the text being parsed (its spans carry it, for error messages that quote it)
CURRENT_SOURCE: ContextVar[str] = ContextVar("ppl_current_source", default="")

_MAX_INT = 2**63 - 1


def _span(meta) -> Span:
    file, source = CURRENT_FILE.get(), CURRENT_SOURCE.get()
    if getattr(meta, "empty", True):
        return end_of_file_span(file, source)
    end_col = max(meta.column, meta.end_column - 1) if meta.end_line == meta.line else max(1, meta.end_column - 1)
    return Span(file, meta.line, meta.column, meta.end_line, end_col, source)


def _tok_span(tok: Token) -> Span:
    return token_span(tok, CURRENT_FILE.get(), CURRENT_SOURCE.get())


def _error(message: str, span: Span, hint: str | None = None) -> SyntaxError_:
    return SyntaxError_(message, span, hint)


def _decode_string(tok: Token) -> str:
    body = tok.value[1:-1]
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt not in escapes:
                raise _error(
                    f"unknown escape '\\{nxt}' in a string",
                    _tok_span(tok),
                    "The escapes are \\n, \\t, \\\\, \\', \\\" and \\0.",
                )
            out.append(escapes[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _present(items):
    return tuple(i for i in items if i is not None)


def _assign_target(target, what: str):
    """``(name, indices)`` for ``x`` or ``x[i, j]`` on the left of ``=``; a SyntaxError_ otherwise."""
    if isinstance(target, ast.Name):
        return target.id, None
    if isinstance(target, ast.Index) and isinstance(target.base, ast.Name):
        return target.base.id, target.indices
    if isinstance(target, ast.Index) and isinstance(target.base, ast.Index):
        root = ast.root_name(target)
        if root is not None:
            raise _error(
                f"cannot assign to a chain of indices such as {root}[i][j]",
                target.span,
                f"Index once with all the positions: {root}[i, j] {what} ...",
            )
    found = _describe_expr(target)
    raise _error(
        f"the left of '{what}' must be a variable (x) or an indexed variable (x[i]), found {found}",
        target.span,
        "To compare two values, write '=='." if what == "=" and isinstance(target, ast.BinOp) else None,
    )


def _describe_expr(e) -> str:
    kinds = {
        ast.Call: "a function call", ast.Num: "a number", ast.Str: "a string", ast.Bool: "a boolean",
        ast.BinOp: "an operation", ast.UnaryOp: "an operation", ast.Array: "an array literal",
        ast.IfExpr: "an if-expression", ast.Lambda: "a function (fn)", ast.Index: "an indexed expression",
        ast.Name: "a name",
    }
    return kinds.get(type(e), "an expression")


@v_args(meta=True)
class Build(Transformer_NonRecursive):
    """Builds AST nodes from the grammar's rules (one method per rule or alias)."""

    # ---- file level
    def start(self, meta, items):
        return ast.Module(_present(items), CURRENT_FILE.get(), span=_span(meta))

    def import_file(self, meta, items):
        return ast.Import(_decode_string(items[0]), False, span=_span(meta))

    def import_lib(self, meta, names):
        parts = [str(n) for n in names]
        if parts[0] != "stdlib" or len(parts) < 2:
            raise _error(
                f"cannot import '{'.'.join(parts)}': expected a file path in quotes or a library module such as stdlib.mixtures",
                _span(meta),
                f"Write import \"{parts[-1]}.ppl\" for a file next to this one, "
                "or import stdlib.<module> for the standard library (stdlib.discrete, stdlib.mixtures).",
            )
        return ast.Import("/".join(parts[1:]) + ".ppl", True, span=_span(meta))

    def model_def(self, meta, items):
        name, params, body = items
        return ast.ModelDef(str(name), params or (), body, span=_span(meta))

    def model_do(self, meta, items):
        name, base, *groups = items
        groups = [g for g in groups if g is not None]
        first_method, first_items = groups[0]
        methods = [str(m) for m, _ in groups]
        hint = (f"Write model {name} = {base}.do(site = value, ...), {base}.condition(site = value, ...) "
                f"or {base}.counterfactual(site = value, ...).do(site = value, ...).")
        for m, _ in groups:
            if str(m) not in ("do", "condition", "counterfactual"):
                raise _error(f"expected '{base}.do(...)', '{base}.condition(...)' or '{base}.counterfactual(...)' "
                             f"after 'model {name} =', not '{base}.{m}(...)'", _tok_span(m), hint)
        span = _span(meta)
        if methods == ["do"]:
            return ast.ModelDo(str(name), str(base), first_items, span=span)
        if methods == ["condition"]:
            return ast.ModelDo(str(name), str(base), first_items, "condition", span=span)
        if methods == ["counterfactual", "do"]:
            return ast.ModelDo(str(name), str(base), groups[1][1], "counterfactual", first_items, span=span)
        if methods == ["counterfactual"]:
            raise _error(f"'{base}.counterfactual(...)' says what was seen; the world it asks about needs "
                         "interventions too", _tok_span(first_method),
                         f"Write model {name} = {base}.counterfactual(site = value, ...).do(site = value, ...).")
        raise _error(f"'{base}.{methods[0]}(...).{methods[1]}(...)' is not a model this file can define",
                     _tok_span(groups[1][0]), hint)

    def do_group(self, meta, items):
        method, *rest = items
        return method, tuple(i for i in rest if i is not None)

    def do_set(self, meta, items):
        return ast.DoItem(items[0], items[1], False, span=_span(meta))

    def do_draw(self, meta, items):
        return ast.DoItem(items[0], items[1], True, span=_span(meta))

    def do_site(self, meta, items):
        tok = items[0]
        return _decode_string(tok) if tok.type == "STRING" else str(tok)

    def fun_def(self, meta, items):
        name, params, body = items
        return ast.FunDef(str(name), params or (), body, span=_span(meta))

    def params(self, meta, items):
        return _present(items)

    def param(self, meta, items):
        name, ann = items
        return ast.Param(str(name), ann, span=_span(meta))

    def type_ann(self, meta, items):
        name, dims = items
        return ast.TypeAnn(str(name), dims, span=_span(meta))

    def dims(self, meta, items):
        return tuple(items)

    # ---- statements
    def block(self, meta, items):
        return ast.Block(_present(items), span=_span(meta))

    def tilde(self, meta, items):
        return ast.Tilde(items[0], _truncate(items[1], items[2]), estimator=items[3], span=_span(meta))

    def estimator(self, meta, items):
        return ast.Str(_decode_string(items[0]), span=_span(meta))

    def observe(self, meta, items):
        return ast.Observe(items[0], _truncate(items[1], items[2]), span=_span(meta))

    def truncation(self, meta, items):
        _, low, high = items
        span = _span(meta)
        inf = lambda sign: ast.Num(sign * math.inf, span=span)  # noqa: E731
        return (low if low is not None else inf(-1), high if high is not None else inf(1), span)

    def assign(self, meta, items):
        target, value = items
        name, indices = _assign_target(target, "=")
        if indices is None:
            return ast.Assign(name, value, span=_span(meta))
        return ast.IndexAssign(name, indices, value, span=_span(meta))

    def aug_assign(self, meta, items):
        target, op, value = items
        name, indices = _assign_target(target, str(op))
        new = ast.BinOp(str(op)[0], target, value, span=_span(meta))
        if indices is None:
            return ast.Assign(name, new, span=_span(meta))
        return ast.IndexAssign(name, indices, new, span=_span(meta))

    def let(self, meta, items):
        return ast.Assign(str(items[0]), items[1], let=True, span=_span(meta))

    def factor(self, meta, items):
        return ast.Factor(items[0], span=_span(meta))

    def condition(self, meta, items):
        return ast.Condition(items[0], span=_span(meta))

    def return_stmt(self, meta, items):
        return ast.Return(items[0], span=_span(meta))

    def if_stmt(self, meta, items):
        cond, then, orelse = items
        if isinstance(orelse, ast.If):
            orelse = ast.Block((orelse,), span=orelse.span)
        return ast.If(cond, then, orelse, span=_span(meta))

    def for_stmt(self, meta, items):
        var, start, stop, body = items
        return ast.For(str(var), start, stop, body, span=_span(meta))

    def expr_stmt(self, meta, items):
        return ast.ExprStmt(items[0], span=_span(meta))

    # ---- expressions
    def lambda_expr(self, meta, items):
        return ast.Lambda(items[0] or (), items[1], span=_span(meta))

    lambda_block = lambda_expr

    def if_expr(self, meta, items):
        return ast.IfExpr(*items, span=_span(meta))

    def binop(self, meta, items):
        left, op, right = items
        op = "^" if op == "**" else str(op)
        return ast.BinOp(op, left, right, span=_span(meta))

    def unop(self, meta, items):
        op, operand = items
        if op == "-" and isinstance(operand, ast.Num):
            return ast.Num(-operand.value, span=_span(meta))
        return ast.UnaryOp(str(op), operand, span=_span(meta))

    def call(self, meta, items):
        func, args = items
        return ast.Call(func, args or (), span=_span(meta))

    def call_given(self, meta, items):
        func, first, rest = items
        if not (isinstance(func, ast.Name) and func.id in _GIVEN_FUNCTIONS):
            raise _error("'|' separates the value from the parameters only in a distribution function "
                         "such as normal_lcdf(x | mu, sigma)", _span(meta),
                         "Write 'or' for logical or.")
        return ast.Call(func, (first,) + tuple(rest or ()), span=_span(meta))

    def index(self, meta, items):
        base, indices = items
        return ast.Index(base, indices, span=_span(meta))

    def args(self, meta, items):
        return _present(items)

    def indices(self, meta, items):
        return _present(items)

    def slice(self, meta, items):
        return ast.Slice(items[0], items[1], span=_span(meta))

    def int_lit(self, meta, items):
        value = int(items[0])
        if value > _MAX_INT:
            raise _error(f"the integer {items[0]} is too large (the largest is {_MAX_INT})", _span(meta))
        return ast.Num(value, span=_span(meta))

    def real_lit(self, meta, items):
        value = float(items[0])
        if math.isinf(value):
            raise _error(f"the number {items[0]} is too large for a real (at most about 1.8e308)", _span(meta))
        return ast.Num(value, span=_span(meta))

    def str_lit(self, meta, items):
        return ast.Str(_decode_string(items[0]), span=_span(meta))

    def true_lit(self, meta, items):
        return ast.Bool(True, span=_span(meta))

    def false_lit(self, meta, items):
        return ast.Bool(False, span=_span(meta))

    def name(self, meta, items):
        return ast.Name(str(items[0]), span=_span(meta))

    def array(self, meta, items):
        return ast.Array(items[0] or (), span=_span(meta))



def _truncate(dist, truncation):
    """``d T[low, high]`` as the call ``truncated(d, low, high)`` (a missing bound is infinite)."""
    if truncation is None:
        return dist
    low, high, span = truncation
    whole = Span(span.file, dist.span.line, dist.span.column, span.end_line, span.end_column, span.source)
    return ast.Call(ast.Name("truncated", span=span), (dist, low, high), span=whole)

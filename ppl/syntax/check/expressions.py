"""The checker's rules for expressions (one method per node kind, ``_expr_<Kind>``), but calls:
names and their lookup, arrays, indexing, operators, if-expressions and lambdas."""

from __future__ import annotations

import difflib
from dataclasses import replace

from ppl.stdlib.errors import Span

from .. import ast
from ..builtins import (
    BOOL, BOOL_INDEX_HINT, CONSTANTS, DISTRIBUTIONS, FUNCTIONS, SUPPORTS, UNKNOWN, Ty, TypeProblem, broadcast, describe,
    fun_ty, matmul_rule,
)
from ..habits import stan_unbound_name
from .scopes import Binding, Scope, Frame, Level
from .words import join_types, rank_words, expr_text

__all__ = ["ExpressionRules"]


class ExpressionRules:
    """Rules for expressions (a part of ``Checker``)."""

    # ----------------------------------------------------------- expressions
    def expr(self, e, dist_context: bool = False) -> Ty:
        if isinstance(e, ast.Call):
            return self._expr_Call(e, dist_context=dist_context)
        rule = getattr(self, "_expr_" + type(e).__name__, None)
        if rule is None:
            return UNKNOWN
        return rule(e)

    def _expr_Num(self, e: ast.Num) -> Ty:
        if isinstance(e.value, bool):
            return BOOL
        if isinstance(e.value, int):
            return Ty("int", 0, (), value=e.value)
        return Ty("real", 0, ())

    def _expr_Bool(self, e) -> Ty:
        return Ty("bool", 0, ())

    def _expr_Str(self, e) -> Ty:
        return Ty("string", 0, ())

    def _expr_Name(self, e: ast.Name) -> Ty:
        b = self._lookup(e.id, e.span)
        return b.ty if b is not None else UNKNOWN

    def _lookup(self, name: str, span: Span, dist_context: bool = False) -> Binding | None:
        b = self.scope.lookup(name) or self.module_names.get(name)
        if b is not None:
            if b.kind == "maybe":
                self.error(f"'{name}' may not be defined here: {b.note}", span,
                           f"Give '{name}' a value before the if, or in both branches.")
                self._set_anywhere(name, replace(b, kind="local"))
            return b
        if name in FUNCTIONS:
            f = FUNCTIONS[name]
            return Binding("builtin", fun_ty(*f.arity), None)
        if name in DISTRIBUTIONS:
            n = len(DISTRIBUTIONS[name].params)
            return Binding("builtin", fun_ty(n, n), None)
        if name in CONSTANTS:
            return Binding("builtin", CONSTANTS[name].ty, None)
        if name == "flat":
            return Binding("builtin", fun_ty(1, None), None)
        if self.lenient or name in self.frame.reported:
            return None
        self.frame.reported.add(name)
        self._unbound(name, span, dist_context)
        return None

    def _set_anywhere(self, name: str, b: Binding) -> None:
        s = self.scope
        while s is not None:
            if name in s.names:
                s.names[name] = b
                return
            s = s.parent

    def _unbound(self, name: str, span: Span, dist_context: bool) -> None:
        habit = stan_unbound_name(name)
        if habit is not None:
            self.error(habit[0], span, habit[1])
            return
        if dist_context:
            if name.lower() in DISTRIBUTIONS:
                self.error(f"unknown distribution '{name}'", span,
                           f"Did you mean '{name.lower()}'? Distribution names are lower case.")
                return
            close = difflib.get_close_matches(name, list(DISTRIBUTIONS) + ["flat"], n=1, cutoff=0.6)
            if close or name[:1].isupper():
                hint = f"Did you mean '{close[0]}'?" if close else "Distribution names are lower case, e.g. normal."
                self.error(f"unknown distribution '{name}'", span, hint)
                return
        if name in SUPPORTS:
            self.error(f"'{name}' is a support: it can only be the first argument of flat(...)", span,
                       f"Write x ~ flat({name}{'(...)' if SUPPORTS[name].args else ''}).")
            return
        loop = self.frame.loop_locals.get(name)
        if loop is not None:
            self.error(
                f"'{name}' is not defined here: it was assigned inside the for loop on line {loop.line}, "
                "and a loop's own variables end with each iteration",
                span, f"Give '{name}' a value before the loop to carry it across iterations.",
            )
            return
        candidates = (self.scope.visible() | set(self.module_names) | set(FUNCTIONS)
                      | set(DISTRIBUTIONS) | set(CONSTANTS) | {"flat"})
        close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.7)
        if not close:
            lowered = {c.lower(): c for c in candidates}
            if name.lower() in lowered:
                close = [lowered[name.lower()]]
        self.error(f"'{name}' is not defined", span, f"Did you mean '{close[0]}'?" if close else None)

    def _expr_Array(self, e: ast.Array) -> Ty:
        tys = [self.expr(i) for i in e.items]
        if not tys:
            return Ty("real", 1, (0,))
        kinds = {("string" if t.base == "string" else "num" if t.is_numeric else t.base) for t in tys}
        if "string" in kinds and "num" in kinds:
            self.error("an array cannot mix strings and numbers", e.span)
            return Ty("unknown", 1, (len(tys),))
        if kinds & {"dist", "fun", "model"}:
            if kinds != {"dist"}:
                self.error("an array holds numbers, booleans or strings", e.span)
            return Ty("unknown", 1, (len(tys),))
        ranks = {t.rank for t in tys}
        if None in ranks:
            return Ty(join_types(tys), None)
        if len(ranks) > 1:
            self.error("the items of this array have different numbers of dimensions", e.span,
                       "Every row of a matrix literal must be an array of the same length.")
            return Ty(join_types(tys), None)
        inner = ranks.pop()
        shapes = {t.shape for t in tys}
        shape = None
        if len(shapes) == 1 and None not in shapes:
            shape = (len(tys),) + shapes.pop()
        elif inner >= 1 and all(t.shape is not None and None not in t.shape for t in tys):
            lengths = sorted({t.shape[0] for t in tys})
            self.error(f"the rows of this array have different lengths ({', '.join(map(str, lengths))})", e.span)
        base = "string" if "string" in kinds else join_types(tys)
        return Ty(base, inner + 1, shape if shape is not None else (len(tys),) + (None,) * inner)

    def _index_item(self, i) -> Ty:
        if isinstance(i, ast.Slice):
            for end in (i.start, i.stop):
                if end is not None:
                    ty = self.expr(end)
                    self._require_int(end, ty, "a slice bound")
            return Ty("slice", 0)
        ty = self.expr(i)
        if ty.base == "real" or ty.base in ("string", "dist", "fun", "model"):
            hint = "Indices are integers counted from 0."
            if isinstance(i, ast.BinOp) and i.op == "/":
                hint = "'/' always gives a real; use '//' for integer division."
            self.error(f"an index must be an integer, found {describe(ty)}", i.span, hint)
        elif ty.base == "bool":
            self.error(f"an index must be an integer, found {describe(ty)}", i.span, BOOL_INDEX_HINT)
        return ty

    def _expr_Index(self, e: ast.Index) -> Ty:
        base_ty = self.expr(e.base)
        items = [self._index_item(i) for i in e.indices]
        if base_ty.base in ("dist", "fun", "model"):
            self.error(f"cannot index {describe(base_ty)}", e.span)
            return UNKNOWN
        if base_ty.rank is None:
            return Ty(base_ty.base, None)
        n = len(items)
        name = expr_text(e.base)
        if base_ty.rank == 0 and base_ty.base != "unknown":
            self.error(f"'{name}' is {describe(base_ty)}; it cannot be indexed", e.span,
                       "Only arrays can be indexed.")
            return UNKNOWN
        if n > base_ty.rank:
            self.error(
                f"'{name}' has {rank_words(base_ty.rank)} but is indexed with {n} indices", e.span,
                f"'{name}' is {describe(base_ty)}; give at most {base_ty.rank} "
                f"ind{'ex' if base_ty.rank == 1 else 'ices'}.",
            )
            return UNKNOWN
        shape = base_ty.shape
        for k, (i, ity) in enumerate(zip(e.indices, items)):
            if isinstance(i, ast.Num) and isinstance(i.value, int) and shape is not None and shape[k] is not None:
                size = shape[k]
                if not -size <= i.value < size:
                    self.error(
                        f"index {i.value} is out of range for '{name}', which has {size} elements "
                        f"{'in dimension ' + str(k + 1) + ' ' if base_ty.rank > 1 else ''}(indices 0 to {size - 1})",
                        i.span, "Indices count from 0." if i.value == size else None,
                    )
        if any(t.rank != 0 for t in items if t.base != "slice"):
            return Ty(base_ty.base, None)  # indexing with arrays: a gather
        out_shape = None
        if shape is not None:
            kept = []
            for k, (i, t) in enumerate(zip(e.indices, items)):
                if t.base == "slice":
                    whole = isinstance(i, ast.Slice) and i.start is None and i.stop is None
                    kept.append(shape[k] if whole else None)
            out_shape = tuple(kept) + tuple(shape[n:])
        rank = base_ty.rank - sum(1 for t in items if t.base != "slice")
        return Ty(base_ty.base, rank, out_shape)

    def _expr_BinOp(self, e: ast.BinOp) -> Ty:
        a = self.expr(e.left)
        b = self.expr(e.right)
        op = e.op
        for side, t in ((e.left, a), (e.right, b)):
            bad = t.base in ("dist", "fun", "model") or (t.base == "string" and op not in ("==", "!="))
            if bad:
                self.error(f"cannot apply '{op}' to {describe(t)}", side.span)
                return UNKNOWN
        if op == "@":
            try:
                return matmul_rule([a, b])
            except TypeProblem as p:
                self.error(p.message, e.span, p.hint)
                return UNKNOWN
        try:
            shape_ty = broadcast([a, b])
        except TypeProblem:
            self.error(
                f"cannot combine {describe(a)} and {describe(b)} with '{op}': their shapes do not broadcast",
                e.span,
            )
            return UNKNOWN
        if op in ("==", "!=", "<", "<=", ">", ">=", "and", "or"):
            return Ty("bool", shape_ty.rank, shape_ty.shape)
        if op == "/":
            base = "real" if shape_ty.base != "unknown" else "unknown"
        elif op == "^" and shape_ty.base == "int":  # an integer power is an integer only when not negative
            known = isinstance(b.value, int) and not isinstance(b.value, bool)
            base = "unknown" if not known else ("int" if b.value >= 0 else "real")
        else:
            base = shape_ty.base
        value = None
        if a.value is not None and b.value is not None and op in ("+", "-", "*"):
            value = {"+": a.value + b.value, "-": a.value - b.value, "*": a.value * b.value}[op]
        return Ty(base, shape_ty.rank, shape_ty.shape, value=value)

    def _expr_UnaryOp(self, e: ast.UnaryOp) -> Ty:
        t = self.expr(e.operand)
        if t.base in ("string", "dist", "fun", "model"):
            self.error(f"cannot apply '{e.op}' to {describe(t)}", e.span)
            return UNKNOWN
        if e.op == "not":
            return Ty("bool", t.rank, t.shape)
        value = -t.value if (t.value is not None and e.op == "-") else t.value
        return Ty(t.base if t.base != "bool" else "int", t.rank, t.shape, value=value)

    def _expr_IfExpr(self, e: ast.IfExpr) -> Ty:
        c = self.expr(e.cond)
        self._require_condition(e.cond, c, "the condition of an if-expression")
        a = self.expr(e.then)
        b = self.expr(e.orelse)
        if a.base == b.base and a.rank == b.rank:
            return Ty(a.base, a.rank, a.shape if a.shape == b.shape else None)
        if a.is_numeric and b.is_numeric and a.rank == b.rank:
            return Ty(join_types([a, b]), a.rank)
        return UNKNOWN

    def _expr_Lambda(self, e: ast.Lambda) -> Ty:
        saved = self.scope, self.frame
        self.frame = Frame("lambda", "fn", Level("fn"))
        self.scope = Scope(self.scope, boundary=True)
        self._params(e.params, data=False)
        try:
            if isinstance(e.body, ast.Block):
                self.block(e.body)
            else:
                self.expr(e.body)
        finally:
            self.scope, self.frame = saved
        n = len(e.params)
        return fun_ty(n, n)

    def _expr_Slice(self, e) -> Ty:
        return self._index_item(e)

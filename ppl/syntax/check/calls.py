"""The checker's rules for calls: of builtins (through the registry ``ppl.syntax.builtins``), of
distributions, ``flat`` and its supports, ``param``, and of functions and models of the program."""

from __future__ import annotations

import difflib

from ppl.stdlib.errors import Span

from .. import ast
from ..builtins import (
    DISTRIBUTIONS, FUNCTIONS, SUPPORTS, UNKNOWN, Ty, TypeProblem, broadcast, describe, dist_ty,
)
from ..builtins.dist_functions import truncation_problem
from .scopes import Binding
from .words import ordinal, expr_text, target_text

__all__ = ["CallRules"]


class CallRules:
    """Rules for calls (a part of ``Checker``)."""

    # ------------------------------------------------------------------ calls
    def _expr_Call(self, e: ast.Call, dist_context: bool = False) -> Ty:
        f = e.func
        if isinstance(f, ast.Name):
            name = f.id
            b = self.scope.lookup(name) or self.module_names.get(name)
            if b is None:
                if name == "flat":
                    return self._flat(e, dist_context)
                if name == "param":
                    return self._param(e)
                if name in DISTRIBUTIONS:
                    return self._distribution(e, DISTRIBUTIONS[name])
                if name == "truncated":
                    self._check_truncation(e)
                if name in FUNCTIONS:
                    return self._builtin(e, name)
                b = self._lookup(name, f.span, dist_context=dist_context)
                if b is None:
                    for a in e.args:
                        self.expr(a)
                    return UNKNOWN
            return self._call_value(e, name, b)
        fty = self.expr(f)
        return self._call_value(e, expr_text(f) or "this expression", Binding("local", fty, None))

    def _call_value(self, e: ast.Call, name: str, b: Binding) -> Ty:
        args = [self.expr(a) for a in e.args]
        ty = b.ty
        if ty.base in ("fun", "model"):
            if ty.arity is not None:
                self._arity(e, name, ty.arity, len(args), b)
            if ty.base == "model" or b.kind == "model":
                if self.frame.kind == "top":
                    self.error(f"a model cannot be called at the top level of a file ('{name}')", e.span,
                               "Call it inside another model.")
            return UNKNOWN
        if ty.base == "unknown":
            return UNKNOWN
        self.error(f"'{name}' is {describe(ty)}, not a function; it cannot be called", e.span)
        return UNKNOWN

    def _check_truncation(self, e: ast.Call) -> None:
        """truncated(d, low, high) / d T[low, high]: a family without a cdf, or low >= high."""
        if len(e.args) != 3:
            return
        d, low, high = e.args
        dist_name = d.func.id if isinstance(d, ast.Call) and isinstance(d.func, ast.Name) \
            and self.scope.lookup(d.func.id) is None else None
        lit = lambda a: a.value if isinstance(a, ast.Num) else None  # noqa: E731
        problem = truncation_problem(dist_name, lit(low), lit(high))
        if problem is not None:
            self.error(problem[0], e.span, problem[1])

    def _arity(self, e: ast.Call, name: str, arity: tuple[int, int | None], n: int, b: Binding | None = None) -> bool:
        lo, hi = arity
        if lo <= n and (hi is None or n <= hi):
            return True
        if hi is None:
            want = f"at least {lo}"
        elif lo == hi:
            want = str(lo)
        else:
            want = f"{lo} to {hi}"
        noun = "argument" if (hi or lo) == 1 and lo == (hi or lo) else "arguments"
        where = ""
        if b is not None and b.span is not None and b.kind in ("def", "model"):
            where = f" (defined on line {b.span.line})" if b.span.file == e.span.file else f" (defined in '{b.span.file}')"
        self.error(f"{name}() takes {want} {noun}{where}, but {n} {'was' if n == 1 else 'were'} given", e.span,
                   self._signature_hint(name))
        return False

    def _signature_hint(self, name: str) -> str | None:
        if name in DISTRIBUTIONS:
            return f"It is written {name}({', '.join(DISTRIBUTIONS[name].params)})."
        if name in FUNCTIONS:
            return FUNCTIONS[name].doc[:1].upper() + FUNCTIONS[name].doc[1:] + "."
        return None

    def _builtin(self, e: ast.Call, name: str) -> Ty:
        spec = FUNCTIONS[name]
        args = [self.expr(a) for a in e.args]
        if not self._arity(e, name, spec.arity, len(args)):
            return UNKNOWN
        if self.frame.kind == "top" and not spec.pure and name not in ("map", "fold"):
            self.error(f"{name}(...) is random, and top-level constants cannot be", e.span,
                       "Random choices belong inside a model.")
        ok = True
        for i, (a, t) in enumerate(zip(e.args, args)):
            kind = spec.args[i] if i < len(spec.args) else spec.rest
            ok = self._arg(name, i, a, t, kind, spec.fun_arity) and ok
        if not ok:
            return UNKNOWN
        try:
            return spec.result(args)
        except TypeProblem as p:
            self.error(f"{name}(): {p.message}", e.span, p.hint)
            return UNKNOWN

    def _arg(self, fname: str, i: int, a, t: Ty, kind: str | None, fun_arity: int | None) -> bool:
        pos = ordinal(i + 1)
        if kind == "num" and not t.is_numeric:
            self.error(f"{fname}() expects a number or an array as its {pos} argument, found {describe(t)}", a.span)
            return False
        if kind == "int":
            if t.base == "real" or (t.base in ("string", "dist", "fun", "model", "bool")):
                self.error(f"{fname}() expects an integer as its {pos} argument, found {describe(t)}", a.span,
                           "Sizes and axes are integers.")
                return False
            if t.rank not in (0, None):
                self._not_scalar(a, t, f"the {pos} argument of {fname}()", "an integer")
                return False
        if kind == "dist" and t.base not in ("dist", "unknown"):
            self.error(f"{fname}() expects a distribution as its {pos} argument, found {describe(t)}", a.span,
                       "A distribution is written like normal(0, 1).")
            return False
        if kind == "fun":
            if t.base not in ("fun", "model", "unknown"):
                self.error(f"{fname}() expects a function as its {pos} argument, found {describe(t)}", a.span,
                           "Pass a def by name, or a lambda: fn(x) => ...")
                return False
            if fun_arity is not None and t.arity is not None:
                lo, hi = t.arity
                if not (lo <= fun_arity and (hi is None or fun_arity <= hi)):
                    self.error(
                        f"{fname}() calls its function with {fun_arity} argument{'s' if fun_arity != 1 else ''}, "
                        f"but {expr_text(a) or 'it'} takes {lo}",
                        a.span,
                    )
                    return False
        return True

    def _distribution(self, e: ast.Call, spec) -> Ty:
        args = [self.expr(a) for a in e.args]
        if not self._arity(e, spec.name, spec.arity, len(args)):
            return dist_ty(UNKNOWN)
        for i, (a, t) in enumerate(zip(e.args, args)):
            if not t.is_numeric:
                self.error(
                    f"{spec.name}'s {spec.params[i]} must be a number or an array, found {describe(t)}", a.span,
                )
                return dist_ty(UNKNOWN)
        try:
            return spec.result(args)
        except TypeProblem as p:
            self.error(f"{spec.name}(): {p.message}", e.span, p.hint)
            return dist_ty(UNKNOWN)

    def _flat(self, e: ast.Call, dist_context: bool) -> Ty:
        if not e.args:
            self.error("flat() needs a support, e.g. flat(positive) or flat(simplex, 3)", e.span)
            return dist_ty(UNKNOWN, improper=True)
        support_expr, sizes = e.args[0], e.args[1:]
        support, bounds = self._support(support_expr)
        size_values = []
        for s in sizes:
            t = self.expr(s)
            self._require_int(s, t, "a size")
            size_values.append(t.value if t.base == "int" else None)
        if support is not None and len(sizes) < support.min_rank:
            example = {1: "K", 2: "K, K"}[support.min_rank]
            self.error(
                f"flat({support.name}) needs {'a size' if support.min_rank == 1 else 'two sizes'}: "
                f"flat({support.name}, {example})",
                e.span,
            )
        if not sizes and bounds:
            try:
                b = broadcast(bounds)
            except TypeProblem:
                self.error(f"the bounds of {support.name if support else 'this support'} do not broadcast together",
                           support_expr.span)
                b = UNKNOWN
            return dist_ty(Ty("real", b.rank, b.shape), improper=True)
        return dist_ty(Ty("real", len(sizes), tuple(size_values)), improper=True)

    def _support(self, e):
        """The support named by ``e`` (None if unknown) and the types of its bounds."""
        if isinstance(e, ast.Name):
            s = SUPPORTS.get(e.id)
            if s is None:
                self._unknown_support(e.id, e.span)
                return None, []
            if s.args:
                self.error(f"the support {s.name} needs its bounds: {s.name}({', '.join(s.args)})", e.span)
            return s, []
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
            s = SUPPORTS.get(e.func.id)
            if s is None:
                self._unknown_support(e.func.id, e.func.span)
                for a in e.args:
                    self.expr(a)
                return None, []
            if len(e.args) != len(s.args):
                if s.args:
                    self.error(f"{s.name}() takes {len(s.args)} bound{'s' if len(s.args) != 1 else ''} "
                               f"({', '.join(s.args)}), but {len(e.args)} were given", e.span)
                else:
                    self.error(f"the support {s.name} takes no arguments: write flat({s.name}, ...)", e.span)
            bounds = []
            for a in e.args:
                t = self.expr(a)
                if not t.is_numeric:
                    self.error(f"a bound of {s.name}() must be a number, found {describe(t)}", a.span)
                    t = UNKNOWN
                bounds.append(t)
            return s, bounds
        self.error("the first argument of flat(...) must be a support, such as positive or interval(0, 1)",
                   e.span, "The supports are: " + ", ".join(SUPPORTS) + ".")
        return None, []

    def _estimator(self, s: ast.Tilde) -> None:
        """``x ~ d estimator = "..."``: a known estimator, and one that applies to d's kind (when d is a
        builtin distribution; the rest is checked when variational inference runs)."""
        from ppl.inference.vi.estimators import problem
        from ppl.semantics.effects import ESTIMATORS
        from ppl.stdlib import distributions as D

        est = s.estimator
        if est.value not in ESTIMATORS:
            close = difflib.get_close_matches(est.value, ESTIMATORS, n=1)
            self.error(f"'{est.value}' is not a gradient estimator", est.span,
                       (f"Did you mean '{close[0]}'? " if close else "")
                       + "The estimators are: " + ", ".join(ESTIMATORS) + ".")
            return
        d = s.dist
        if (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id in DISTRIBUTIONS
                and self.scope.lookup(d.func.id) is None):
            cls = getattr(D, DISTRIBUTIONS[d.func.id].cls)
            fail = problem(cls, est.value, target_text(s.target))
            if fail is not None:
                self.error(fail[0].replace(cls.__name__, d.func.id), est.span, fail[1])

    def _param(self, e: ast.Call) -> Ty:
        """``name = param(init)`` / ``param(init, support)``: a learnable value, named by its assignment."""
        if e is not getattr(self, "_param_site", None):
            self.error("param(...) must be the whole right side of an assignment, which names it", e.span,
                       "Write the parameter on its own line, e.g. m = param(0.0), then use m.")
        elif self.frame.kind == "top":
            self.error("param(...) belongs inside a model", e.span, "Declare parameters in the model or guide.")
        elif self.frame.depth > 0:
            self.error("param(...) is inside a loop, so it would be a new parameter at every step", e.span,
                       "Declare one array parameter before the loop (m = param(zeros(n))) and index it inside.")
        if not 1 <= len(e.args) <= 2:
            self.error(f"param takes an initial value and optionally a support: param(0.0) or "
                       f"param(1.0, positive), but was given {len(e.args)} argument(s)", e.span)
            return UNKNOWN
        ty = self.expr(e.args[0])
        if not ty.is_numeric:
            self.error(f"param's initial value must be a number or an array, found {describe(ty)}", e.args[0].span)
            return UNKNOWN
        if len(e.args) == 2:
            c = e.args[1]
            if isinstance(c, (ast.Name, ast.Call)) and isinstance(c.func if isinstance(c, ast.Call) else c,
                                                                  ast.Name):
                self._support(c)
            else:
                self.error("the second argument of param(...) must be a support, such as positive or "
                           "interval(0, 1)", c.span, "The supports are: " + ", ".join(SUPPORTS) + ".")
        return Ty("real", ty.rank, ty.shape)

    def _unknown_support(self, name: str, span: Span) -> None:
        close = difflib.get_close_matches(name, list(SUPPORTS), n=1)
        hint = f"Did you mean '{close[0]}'? " if close else ""
        self.error(f"unknown support '{name}'", span, hint + "The supports are: " + ", ".join(SUPPORTS) + ".")

"""The checker's rules for statements (one method per node kind, ``_stmt_<Kind>``), but ``~``."""

from __future__ import annotations

from dataclasses import replace

from .. import ast
from ..builtins import DISTRIBUTIONS, FUNCTIONS, INT, Ty, describe
from .scopes import Binding, Scope, Level
from .words import expr_text, expr_words

__all__ = ["StatementRules"]


class StatementRules:
    """Rules for statements (a part of ``Checker``)."""

    # ----------------------------------------------------------------- blocks
    def block(self, block: ast.Block) -> None:
        returned = None
        for s in block.stmts:
            if returned is not None:
                self.error(
                    f"this statement comes after the 'return' on line {returned.span.line} and never runs",
                    s.span,
                )
                returned = None
                continue
            self.stmt(s)
            if isinstance(s, ast.Return):
                returned = s

    def stmt(self, s) -> None:
        rule = getattr(self, "_stmt_" + type(s).__name__, None)
        if rule is None:
            self.error("this statement cannot appear here", s.span)
            return
        rule(s)

    def _stmt_Block(self, s: ast.Block) -> None:
        self.block(s)

    def _bind(self, name: str, binding: Binding) -> None:
        owner = self.scope.owner(name)
        (owner or self.scope).names[name] = binding

    def _stmt_Assign(self, s: ast.Assign) -> None:
        self._param_site = s.value  # param(...) is allowed as the whole right side (it takes the name)
        ty = self.expr(s.value)
        b = self.scope.lookup(s.name)
        if b is not None and b.kind == "loop" and self.scope.owner(s.name) is not None:
            self.error(f"cannot assign to the loop variable '{s.name}'", s.span,
                       "Use another name for the new value.")
            return
        self._bind(s.name, Binding("local", ty, s.span, self.frame.level))

    def _stmt_IndexAssign(self, s: ast.IndexAssign) -> None:
        value_ty = self.expr(s.value)
        b = self.scope.lookup(s.name) or self.module_names.get(s.name)
        if b is None:
            if not self.lenient:
                self.error(
                    f"'{s.name}' is not defined, so '{s.name}[...] = ...' has no array to update",
                    s.span, f"Create the array first, e.g. {s.name} = zeros(n).",
                )
            for i in s.indices:
                self._index_item(i)
            return
        if b.kind in ("loop", "def", "model"):
            self.error(f"cannot assign into '{s.name}': it is {self._kind_words(b)}", s.span)
            return
        fake = ast.Index(ast.Name(s.name, span=s.span), s.indices, span=s.span)
        elem = self._expr_Index(fake)
        if value_ty.base == "string" and elem.base in ("int", "real", "bool"):
            self.error(f"cannot store a string in '{s.name}', which holds numbers", s.value.span)
        if self.scope.owner(s.name) is not None:
            kind = "local" if b.kind != "random" else "random"
            span = s.span if kind == "local" and b.kind != "local" else b.span  # where it stopped being data
            self._bind(s.name, replace(b, kind=kind, span=span, level=self.frame.level))

    def _stmt_ExprStmt(self, s: ast.ExprStmt) -> None:
        e = s.expr
        self.expr(e)
        if not isinstance(e, ast.Call):
            self.error(
                f"the value of this {expr_words(e)} is computed and thrown away",
                s.span,
                "To keep the value, bind it to a name: x = ...",
            )
            return
        if isinstance(e.func, ast.Name) and self.scope.lookup(e.func.id) is None and e.func.id not in self.module_names:
            name = e.func.id
            if name in DISTRIBUTIONS or name == "flat":
                self.error(
                    f"a distribution on its own does nothing: {name}(...) is built and thrown away",
                    s.span, f"To draw from it, write x ~ {name}(...); to observe data, write y ~ {name}(...).",
                )
            elif name in FUNCTIONS and FUNCTIONS[name].pure:
                self.error(f"the value of {name}(...) is computed and thrown away", s.span,
                           "Bind it to a name: x = ...")

    def _stmt_Return(self, s: ast.Return) -> None:
        if s.value is not None:
            self.expr(s.value)
        if self.frame.kind == "top":
            self.error("'return' outside a function or model", s.span)
        elif self.frame.depth > 0:
            self.error("'return' inside a for loop", s.span,
                       "A loop runs all its iterations; compute the result and return it after the loop.")

    def _stmt_Factor(self, s: ast.Factor) -> None:
        ty = self.expr(s.log_weight)
        if ty.base in ("bool", "string", "dist", "fun", "model") or isinstance(s.log_weight, (ast.Bool, ast.Str)):
            self.error(
                f"factor expects a log weight (a real number), found {describe(ty)}",
                s.log_weight.span,
                "For a hard constraint on a boolean, use condition(...)." if ty.base == "bool" else None,
            )

    def _stmt_Condition(self, s: ast.Condition) -> None:
        e = s.pred
        ty = self.expr(e)
        if isinstance(e, (ast.Num, ast.Str)) or ty.base in ("int", "real", "string", "dist", "fun", "model"):
            found = f"the number {e.value}" if isinstance(e, ast.Num) else describe(ty)
            self.error(
                f"condition expects a boolean (true or false), found {found}",
                e.span,
                "Write a comparison such as condition(x > 0); to add a log weight, use factor(...).",
            )
        elif ty.rank not in (0, None):
            self.error(f"condition expects a single boolean, found {describe(ty)}", e.span,
                       "Use all(...) or any(...) to reduce an array of booleans.")

    def _stmt_Observe(self, s: ast.Observe) -> None:
        vty = self.expr(s.value)
        dty = self.expr(s.dist, dist_context=True)
        self._require_dist(s.dist, dty)
        if dty.base == "dist" and dty.improper:
            self.error("flat(...) is an improper prior: it cannot be the distribution of observed data",
                       s.dist.span, "Observe data with a proper distribution such as normal(mu, sigma).")
        if dty.base == "dist" and dty.elem is not None:
            self._check_value_vs_dist(vty, dty.elem, s.value, s.dist)
        name = ast.root_name(s.value)
        if name is None:
            return  # an anonymous site, named by its position
        key, words = self._tilde_key(name, s.value)
        if key in self.frame.sites:
            first_span, _ = self.frame.sites[key]
            self.error(
                f"the address {words} is used twice: 'observe {expr_text(s.value)} ~ ...' is named after "
                f"'{name}', like the random choice or observation on line {first_span.line}",
                s.value.span,
                f"To add a density term on a random value, write "
                f"factor(log_density({expr_text(s.dist)}, {expr_text(s.value)})).",
            )
            return
        self.frame.sites[key] = (s.span, words)

    def _stmt_If(self, s: ast.If) -> None:
        ty = self.expr(s.cond)
        self._require_condition(s.cond, ty, "an if condition")
        outer_sites = self.frame.sites
        branches = []
        for blk in (s.then, s.orelse):
            self.frame.sites = dict(outer_sites)
            saved = self.scope
            self.scope = Scope(saved)
            if blk is not None:
                self.block(blk)
            returns = blk is not None and bool(blk.stmts) and isinstance(blk.stmts[-1], ast.Return)
            branches.append((self.scope.names, self.frame.sites, returns))
            self.scope = saved
        merged = dict(outer_sites)
        for _, sites, _ in branches:
            merged.update(sites)
        self.frame.sites = merged
        (then_names, _, then_ret), (else_names, _, else_ret) = branches
        live = [n for n, _, r in branches if not r]
        for name in set(then_names) | set(else_names):
            present = [n for n in live if name in n]
            if not present:
                continue
            b = present[0][name]
            if len(present) < len(live):
                b = replace(b, kind="maybe", note=f"it is assigned in only one branch of the if on line {s.span.line}")
            self.scope.names[name] = b

    def _settle_rebindings(self, loop_level, outer_level) -> None:
        """A name of the enclosing body that the loop rebound with '=' holds, after the loop, the
        loop's last value: a value bound at the outer level (so ``y ~ ...`` after a loop that
        changed ``y`` is judged as after ``y = ...`` there, not as a new random choice)."""
        scope = self.scope
        while scope is not None:
            for name, b in scope.names.items():
                if b.kind == "local" and b.level is loop_level:
                    scope.names[name] = replace(b, level=outer_level)
            if scope.boundary:
                break
            scope = scope.parent

    def _stmt_For(self, s: ast.For) -> None:
        for bound in (s.start, s.stop):
            ty = self.expr(bound)
            self._require_int(bound, ty, "a loop bound")
        saved_scope, saved_level = self.scope, self.frame.level
        self.scope = Scope(saved_scope)
        level = Level(f"for {s.var}")
        self.frame.level = level
        self.frame.depth += 1
        self.frame.loop_vars = self.frame.loop_vars + (s.var,)
        self.scope.names[s.var] = Binding("loop", INT, s.span, level)
        try:
            self.block(s.body)
        finally:
            inner = self.scope.names
            self.scope = saved_scope
            self.frame.level = saved_level
            self.frame.depth -= 1
            self.frame.loop_vars = self.frame.loop_vars[:-1]
        self._settle_rebindings(level, saved_level)
        for name, b in inner.items():
            if name == s.var:
                continue
            if b.collected:
                ty = b.ty
                if s.var not in b.index_vars:
                    ty = Ty(ty.base, None if ty.rank is None else ty.rank + 1,
                            None if ty.shape is None else (None,) + ty.shape)
                self.scope.names[name] = replace(b, ty=ty, level=saved_level, collected=self.frame.depth > 0)
            else:
                self.frame.loop_locals.setdefault(name, s.span)

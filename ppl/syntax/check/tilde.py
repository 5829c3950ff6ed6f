"""The checker's rules for ``x ~ d``: the target, the distribution, the address and its duplicates,
and the value checks a statement needs (a distribution, an integer, a condition, a scalar)."""

from __future__ import annotations


from .. import ast
from ..builtins import UNKNOWN, Ty, TypeProblem, broadcast_shapes, describe
from .scopes import Binding
from .words import index_chain, shape_text, expr_text, target_text, with_article, expr_words

__all__ = ["TildeRules"]


class TildeRules:
    """Rules for ``~`` and the value checks of statements (a part of ``Checker``)."""

    # ------------------------------------------------------------------ tilde
    def _stmt_Tilde(self, s: ast.Tilde) -> None:
        dty = self.expr(s.dist, dist_context=True)
        is_dist = self._require_dist(s.dist, dty)
        if s.estimator is not None:
            self._estimator(s)
        target = s.target
        name = ast.root_name(target)
        if name is None:
            self._bad_tilde_target(s)
            return
        indices = index_chain(target)
        for items in indices:
            for i in items:
                self._index_item(i)
        b = self.scope.lookup(name) or self.module_names.get(name)
        if s.observed:
            if s.estimator is not None:
                self.error(f"'{name}' is data, so '{target_text(target)} ~ ...' is an observation: it has no "
                           "gradient estimator", s.estimator.span, "Give estimator = ... to random choices only.")
            self._observed_tilde(s, name, b, dty)
            return
        elem = dty.elem if (is_dist and dty.base == "dist" and dty.elem is not None) else UNKNOWN
        if b is not None and b.kind in ("def", "model", "loop"):
            what = "the loop variable" if b.kind == "loop" else self._kind_words(b)
            self.error(f"'{name}' is {what}; it cannot be drawn with '~'", target.span,
                       "Choose a new name for the random choice.")
            return
        owner = self.scope.owner(name) if b is not None else None
        same_level = b is not None and owner is not None and b.level is self.frame.level
        key, words = self._tilde_key(name, target)
        if same_level and b.kind == "local":
            text = target_text(target)
            self.error(
                f"'{name}' is bound by '=' on line {b.span.line} to a value that is not computed from data "
                f"alone, so '{text} ~ ...' is neither an observation nor a new random choice",
                target.span,
                "If the value depends on random choices, a density on it would need the Jacobian of that "
                "computation: put the prior on the random choice itself, or write "
                f"factor(log_density({expr_text(s.dist)}, {text})) to add the term as written. "
                "For a new random choice, use a new name.",
            )
            return
        if same_level and b.kind == "random" and isinstance(target, ast.Index):
            self.error(
                f"'{name}' is already a random choice (line {b.span.line}); "
                f"'{target_text(target)} ~ ...' would draw part of it again",
                target.span,
                f"To add a prior term on part of it, write "
                f"factor(log_density({expr_text(s.dist)}, {target_text(target)})).",
            )
            return
        if key in self.frame.sites:
            self._duplicate_site(key, s, words)
            return
        self.frame.sites[key] = (s.span, words)
        if isinstance(target, ast.Index) and b is None:
            if self.frame.depth == 0:
                self.error(
                    f"'{name}' is not defined, so '{target_text(target)} ~ ...' has no array to draw into",
                    target.span,
                    f"Draw the whole array at once, e.g. {name} ~ iid(normal(0, 1), n), "
                    f"or draw each element in a loop: for i in 0..n {{ {name}[i] ~ ... }}.",
                )
                return
            n_idx = sum(len(items) for items in indices)
            rank = None if elem.rank is None else n_idx + elem.rank
            index_vars = frozenset(i.id for items in indices for i in items if isinstance(i, ast.Name))
            self.scope.names[name] = Binding(
                "random", Ty(elem.base, rank), s.span, self.frame.level, collected=True, index_vars=index_vars,
            )
            return
        if isinstance(target, ast.Index):
            return  # an element of an existing array: the array keeps its type
        fresh = owner is None
        self._bind(name, Binding("random", elem, s.span, self.frame.level,
                                 collected=fresh and self.frame.depth > 0))

    def _observed_tilde(self, s: ast.Tilde, name: str, b: Binding | None, dty: Ty) -> None:
        key, words = self._tilde_key(name, s.target)
        if key in self.frame.sites:
            self._duplicate_site(key, s, words)
            return
        self.frame.sites[key] = (s.span, words)
        if dty.base == "dist" and dty.improper:
            self.error(
                f"'{name}' is data, and flat(...) is an improper prior: it cannot be the distribution of data",
                s.dist.span, "Give the data a proper distribution, such as normal(mu, sigma).",
            )
            return
        vty = self.expr(s.target)
        if dty.base == "dist" and dty.elem is not None:
            self._check_value_vs_dist(vty, dty.elem, s.target, s.dist)

    def _check_value_vs_dist(self, vty: Ty, elem: Ty, value, dist) -> None:
        if vty.base in ("string", "dist", "fun", "model"):
            self.error(f"cannot observe {describe(vty)}: a distribution gives numbers", value.span)
            return
        if vty.rank is not None and elem.rank is not None and vty.rank < elem.rank:
            self.error(
                f"{expr_text(value)} is {describe(vty)}, but the distribution describes "
                f"{describe(Ty(elem.base, elem.rank, elem.shape))}",
                dist.span,
                "An argument of the distribution is an array where one value was meant: "
                "check its indices (a row X[n] of a matrix times a vector is a vector; dot(X[n], beta) is a number).",
            )
            return
        if vty.shape is None or elem.shape is None or None in vty.shape or None in elem.shape:
            return
        try:
            broadcast_shapes(vty.shape, elem.shape)
        except TypeProblem:
            self.error(
                f"{expr_text(value)} has shape {shape_text(vty.shape)} but the distribution's draws "
                f"have shape {shape_text(elem.shape)}",
                dist.span,
            )

    def _tilde_key(self, name: str, target) -> tuple[tuple, str]:
        """The address of ``target ~ ...``: its variable's name, indexed by the enclosing loops."""
        depth = self.frame.depth
        if depth == 0:
            return (name, 0), f"'{name}'"
        loops = ", ".join(self.frame.loop_vars)
        return (name, depth), f"'{name}[{loops}]'"

    def _duplicate_site(self, key, s, words: str) -> None:
        first_span, _ = self.frame.sites[key]
        in_loop = " in every iteration" if self.frame.depth > 0 else ""
        self.error(
            f"the address {words} is used twice{in_loop}: it was already drawn or observed on line {first_span.line}",
            s.target.span if isinstance(s, ast.Tilde) else s.span,
            self._duplicate_hint(s, words),
        )

    def _duplicate_hint(self, s, words: str) -> str:
        if isinstance(s, ast.Tilde) and isinstance(s.target, ast.Index) and self.frame.depth == 0:
            return ("A random choice or observation is named after its variable, whatever the index: "
                    "draw or observe the elements in a loop, or all at once (y ~ normal(mu, sigma)).")
        text = expr_text(s.target) if isinstance(s, ast.Tilde) else "x"
        dist = expr_text(s.dist) if isinstance(s, ast.Tilde) else "d"
        return ("Each random choice needs its own name. To add another density term on a random value, write "
                f"factor(log_density({dist}, {text})).")

    def _bad_tilde_target(self, s: ast.Tilde) -> None:
        t = s.target
        text = expr_text(t) or "..."
        hint = f"To condition on a computed value, write 'observe {text} ~ ...'."
        if isinstance(t, (ast.Num, ast.Str, ast.Bool, ast.Array)):
            hint = "The left of '~' names a random choice (x ~ normal(0, 1)) or data (y ~ normal(mu, 1))."
        random = [n.id for n in ast.walk(t) if isinstance(n, ast.Name)
                  and (self.scope.lookup(n.id) or Binding("none", UNKNOWN, None)).kind in ("random", "local", "maybe")]
        if random and not isinstance(t, (ast.Num, ast.Str, ast.Bool, ast.Array)):
            self.error(
                f"the left of '~' is {text}, which depends on '{random[0]}', a value that is not data: '~' "
                "draws a variable or observes data (or an expression of data only)",
                t.span,
                "A density on a transformed random value would need the Jacobian of the transformation: "
                f"draw the random value itself and compute {text} from it, or write "
                f"factor(log_density({expr_text(s.dist)}, {text})) to add the term as written.",
            )
            return
        self.error(
            f"the left of '~' must be a variable (x) or an indexed variable (x[i]), found {with_article(expr_words(t))}",
            t.span, hint,
        )

    # --------------------------------------------------------------- checks
    def _require_dist(self, e, ty: Ty) -> bool:
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
            callee = self.scope.lookup(e.func.id) or self.module_names.get(e.func.id)
            if callee is not None and callee.kind == "model":
                self.error(f"'{e.func.id}' is a model, not a distribution: it cannot be on the right of '~'",
                           e.span, f"Call a model with '=': `z = {expr_text(e)}` runs it, nests its random "
                           f"choices under '{e.func.id}', and binds z to what it returns.")
                return False
        if ty.base in ("dist", "unknown"):
            return True
        hint = "The right of '~' is a distribution, such as normal(0, 1)."
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id == "sample":
            hint = "sample(d) draws a value; on the right of '~' write the distribution d itself."
        self.error(f"expected a distribution, found {describe(ty)}", e.span, hint)
        return False

    def _require_int(self, e, ty: Ty, what: str) -> None:
        if ty.rank not in (0, None) and ty.base not in ("dist", "fun", "model"):
            self._not_scalar(e, ty, what, "an integer")
        elif ty.base == "real" or (isinstance(e, ast.Num) and isinstance(e.value, float)):
            hint = "Convert with to_int(x)."
            if isinstance(e, ast.BinOp) and e.op == "/":
                hint = "'/' always gives a real; use '//' for integer division."
            self.error(f"{what} must be an integer, found a real number", e.span, hint)
        elif ty.base in ("string", "dist", "fun", "model", "bool"):
            self.error(f"{what} must be an integer, found {describe(ty)}", e.span)

    def _require_condition(self, e, ty: Ty, what: str) -> None:
        if ty.base in ("real", "string", "dist", "fun", "model"):
            self.error(f"{what} must be true or false, found {describe(ty)}", e.span,
                       "Compare it, e.g. x > 0." if ty.base == "real" else None)
        elif ty.rank not in (0, None):
            self._not_scalar(e, ty, what, "a single boolean",
                             "To choose elementwise, use where(c, a, b); to reduce, all(c) or any(c).")

    def _not_scalar(self, e, ty: Ty, what: str, want: str, hint: str | None = None) -> None:
        if isinstance(e, ast.Index) and isinstance(e.base, ast.Name):
            base = self.scope.lookup(e.base.id) or self.module_names.get(e.base.id)
            if base is not None and base.ty.rank is not None and base.ty.rank > len(e.indices):
                need = base.ty.rank
                example = ", ".join([expr_text(i) for i in e.indices] + ["j", "k", "l"][: need - len(e.indices)])
                self.error(
                    f"{what} must be {want}, but {expr_text(e)} is {describe(ty)}: "
                    f"'{e.base.id}' has {need} dimensions, so one value needs {need} indices",
                    e.span, f"Did you mean {e.base.id}[{example}]?",
                )
                return
        if isinstance(e, ast.Name) and what == "a loop bound":
            hint = f"Did you mean len({e.id})?"
        self.error(f"{what} must be {want}, found {describe(ty)}", e.span, hint)

"""The checker: finds the mistakes in a parsed program before anything runs.

``check(module, data_shapes)`` returns a list of ``CheckError`` (empty when the
program is well formed); ``CheckErrors`` holds several and renders them all.
It reports, collecting as many as it can:

* names that are not defined (with "did you mean" suggestions), names that may
  be unbound (assigned in one branch of an ``if`` only, or only inside a loop);
* calls with the wrong number of arguments (builtins, distributions, ``def``s,
  models, lambdas), unknown distributions and supports, a value that is not a
  function being called;
* types and shapes known from annotations, literals and ``data_shapes``:
  indexing a scalar, too many indices, a real where an integer is needed (loop
  bounds, indices, sizes), an array where one value is needed, shapes that do
  not broadcast, data that do not match their annotation;
* misuse of ``~``: a left side that is not a variable, a right side that is
  not a distribution, ``~`` on a name bound by ``=`` at the same level, the
  same address drawn twice, a flat prior on data;
* ``return`` outside a function or inside a loop, code after ``return``,
  ``condition``/``factor`` of the wrong kind of value, expressions whose value
  is thrown away, statements that cannot be at the top level of a file.

Rules are one method per node kind (``_stmt_Tilde``, ``_expr_Call``, ...).
The checker reads the tree only; it evaluates nothing.
"""

from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass, field, replace
from typing import Any

from ppl.stdlib.errors import CheckError, PPLError, Span

from . import ast
from .habits import stan_unbound_name
from .builtins.dist_functions import truncation_problem
from .builtins import (
    BOOL, CONSTANTS, DISTRIBUTIONS, FUNCTIONS, INT, SUPPORTS, TYPE_ALIASES, TYPE_NAMES,
    UNKNOWN, Ty, TypeProblem, broadcast, broadcast_shapes, describe, dist_ty, fun_ty, matmul_rule,
)

__all__ = ["check", "CheckErrors", "raise_if_errors"]

#: after this many errors the checker stops collecting
MAX_ERRORS = 50


class CheckErrors(PPLError):
    """Several check errors at once; ``errors`` is the list, ``render()`` shows them all."""

    kind = "Semantic error"

    def __init__(self, errors: list[PPLError]):
        self.errors = list(errors)
        n = len(self.errors)
        super().__init__(f"{n} error{'s' if n != 1 else ''} found", None)

    def render(self) -> str:
        parts = [e.render() for e in self.errors]
        if len(parts) > 1:
            parts.append(f"{len(parts)} errors found.")
        return "\n\n".join(parts)


def raise_if_errors(errors: list[PPLError]) -> None:
    """Raise ``CheckErrors(errors)`` when the list is not empty."""
    if errors:
        raise CheckErrors(errors)


def check(module: ast.Module, data_shapes: dict | None = None) -> list[CheckError]:
    """All the errors in ``module`` (and the modules it imports), in source order.

    ``data_shapes`` maps a model parameter's name to its data: a shape tuple
    (``(62,)``), or the value itself (a number, a nested list or an array;
    only its shape, element kind and, for an integer, its value are read). It is
    applied to the parameters of that name in every model of ``module``.

    A module whose imports have not been loaded (``resolve_imports``) is checked
    as if every unknown name could come from them.
    """
    checker = _Checker(data_shapes or {})
    try:
        checker.module(module)
    except RecursionError:
        checker.errors.append(CheckError("the program is nested too deeply to check", module.span))
    except _TooMany:
        pass
    seen = set()
    out = []
    for e in sorted(checker.errors, key=_order):
        key = (e.span, e.message)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def _order(e: PPLError):
    s = e.span
    return (s.file, s.line, s.column) if s is not None else ("", 0, 0)


class _TooMany(Exception):
    pass


# ---------------------------------------------------------------- environments


@dataclass
class Binding:
    """What a name means at a point of the program.

    kind: data (a parameter or constant), random (drawn with ~), local (bound
    by =), loop (a loop variable), def, model, maybe (bound on some paths only).
    level: the loop body (or function body) where it was last bound.
    """

    kind: str
    ty: Ty
    span: Span | None
    level: Any = None
    collected: bool = False  # first drawn inside the current loop
    index_vars: frozenset = frozenset()  # loop variables indexing its ~ target
    note: str = ""  # for kind 'maybe': why


class Scope:
    def __init__(self, parent: "Scope | None", boundary: bool = False):
        self.names: dict[str, Binding] = {}
        self.parent = parent
        self.boundary = boundary  # a function body: rebinding stops here

    def lookup(self, name: str) -> Binding | None:
        s = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        return None

    def owner(self, name: str) -> "Scope | None":
        """The scope of the current function that binds ``name``, if any."""
        s = self
        while s is not None:
            if name in s.names:
                return s
            if s.boundary:
                return None
            s = s.parent
        return None

    def visible(self) -> set[str]:
        out: set[str] = set()
        s = self
        while s is not None:
            out |= s.names.keys()
            s = s.parent
        return out


@dataclass
class Frame:
    """One function body (a model, a def, a lambda, or the top level of the file)."""

    kind: str  # model | def | lambda | top
    name: str
    level: Any = None
    depth: int = 0  # loops around the current statement
    loop_vars: tuple[str, ...] = ()
    sites: dict = field(default_factory=dict)  # address key -> (span, description)
    loop_locals: dict = field(default_factory=dict)  # name -> span of the loop it was local to
    reported: set = field(default_factory=set)  # unbound names already reported


class _Level:
    """A unique token for one loop body (or function body)."""

    def __init__(self, what: str):
        self.what = what


# --------------------------------------------------------------------- checker


class _Checker:
    def __init__(self, data_shapes: dict):
        self.data = data_shapes
        self.errors: list[PPLError] = []
        self.module_names: dict[str, Binding] = {}
        self.lenient = False  # unresolved imports: unknown names may come from them
        self.scope = Scope(None, boundary=True)
        self.frame = Frame("top", "<top>", _Level("top"))
        self.checked_modules: set[int] = set()

    # ---- reporting
    def error(self, message: str, span: Span | None, hint: str | None = None) -> None:
        self.errors.append(CheckError(message, span, hint))
        if len(self.errors) >= MAX_ERRORS:
            raise _TooMany()

    # ---------------------------------------------------------------- module
    def module(self, module: ast.Module) -> None:
        self.checked_modules.add(id(module))
        for imp in module.imports:
            if imp.module is None:
                self.lenient = True
            elif id(imp.module) not in self.checked_modules:
                sub = _Checker({})
                sub.checked_modules = self.checked_modules
                sub.module(imp.module)
                self.errors.extend(sub.errors)
        self._collect_definitions(module)
        self.definitions = {i.name: i for i in module.items if isinstance(i, (ast.ModelDef, ast.ModelDo))}
        top = self.scope
        for item in module.items:
            self._top_item(item)
        for item in module.items:
            if isinstance(item, (ast.ModelDef, ast.FunDef)):
                self._function(item, "model" if isinstance(item, ast.ModelDef) else "def")
        self.scope = top

    def _collect_definitions(self, module: ast.Module) -> None:
        names = self.module_names
        for imp in module.imports:
            if imp.module is None:
                continue
            for name, node in imp.module.definitions().items():
                if name in names:
                    other = names[name]
                    self.error(
                        f"'{name}' is defined by two imports: '{imp.path}' and the one on line {other.span.line}",
                        imp.span, "Rename one of the definitions.",
                    )
                    continue
                names[name] = Binding(self._def_kind(node), self._def_ty(node), imp.span,
                                      note=f"imported from '{imp.path}' on line {imp.span.line}")
        for item in module.items:
            if not isinstance(item, (ast.ModelDef, ast.FunDef, ast.ModelDo)):
                continue
            if item.name in names:
                self._redefined(item.name, _name_span(item), names[item.name])
                continue
            ty = self._def_ty(item)
            if isinstance(item, ast.ModelDo) and item.base in names:  # takes the data its base model takes
                ty = names[item.base].ty
            names[item.name] = Binding(self._def_kind(item), ty, item.span)

    def _redefined(self, name: str, span: Span, other: Binding) -> None:
        where = other.note or (f"on line {other.span.line}" if other.span is not None else "before")
        self.error(f"'{name}' is already defined, {where}", span, "Each top-level name can be defined once.")

    @staticmethod
    def _def_kind(node) -> str:
        return {ast.ModelDef: "model", ast.ModelDo: "model", ast.FunDef: "def"}.get(type(node), "data")

    @staticmethod
    def _def_ty(node) -> Ty:
        if isinstance(node, (ast.ModelDef, ast.FunDef)):
            n = len(node.params)
            return Ty("model" if isinstance(node, ast.ModelDef) else "fun", 0, arity=(n, n))
        return UNKNOWN

    def _top_item(self, item) -> None:
        if isinstance(item, (ast.Import, ast.ModelDef, ast.FunDef)):
            return
        if isinstance(item, ast.ModelDo):
            self._model_do(item)
            return
        if isinstance(item, ast.Assign):
            ty = self.expr(item.value)
            if item.name in self.module_names:
                self._redefined(item.name, _name_span(item), self.module_names[item.name])
                return
            self.module_names[item.name] = Binding("data", ty, item.span, self.frame.level)
            return
        if isinstance(item, (ast.Tilde, ast.Observe, ast.Factor, ast.Condition)):
            what = {ast.Tilde: "'~'", ast.Observe: "observe", ast.Factor: "factor", ast.Condition: "condition"}
            self.error(
                f"{what[type(item)]} outside a model: random choices and observations belong in a model",
                item.span, "Put it inside model NAME(...) { ... }.",
            )
            return
        if isinstance(item, ast.Return):
            self.error("'return' outside a function or model", item.span)
            return
        self.error(
            "only definitions (model, def, import) and constants (x = ...) can appear at the top level of a file",
            item.span, "Move this statement into a model or a def.",
        )

    def _model_do(self, item: ast.ModelDo) -> None:
        """``model m2 = m.do(...)``, ``m.condition(...)`` or ``m.counterfactual(...).do(...)``: a model,
        sites it makes, constant values (distributions only as new mechanisms in ``.do``)."""
        base = self.module_names.get(item.base)
        verb = {"do": "intervenes on", "condition": "conditions", "counterfactual": "asks a counterfactual of"}[item.kind]
        if base is None or base.kind != "model":
            models = [n for n, b in self.module_names.items() if b.kind == "model" and n != item.name]
            close = difflib.get_close_matches(item.base, models, n=1, cutoff=0.6)
            what = "is not defined" if base is None else f"is {base.kind}, not a model"
            self.error(f"'{item.base}' {what}: .{item.kind}(...) {verb} a model", item.span,
                       f"Did you mean '{close[0]}'?" if close else "Define the model first: model NAME(...) { ... }.")
            return
        sites = self._site_names(item.base)
        groups = [(item.given, "counterfactual")] if item.kind == "counterfactual" else []
        groups.append((item.items, "condition" if item.kind == "condition" else "do"))
        for items, method in groups:
            seen: set = set()
            for it in items:
                self._derived_item(item, it, method, sites, seen)

    def _derived_item(self, item: ast.ModelDo, it: ast.DoItem, method: str, sites, seen: set) -> None:
        what = "intervened on" if method == "do" else "given"
        if it.site in seen:
            self.error(f"the site '{it.site}' is {what} twice in .{method}(...)", it.span, "Give each site once.")
        seen.add(it.site)
        if sites is not None and "/" not in it.site and "[" not in it.site and it.site not in sites:
            close = difflib.get_close_matches(it.site, sorted(sites), n=1, cutoff=0.6)
            self.error(f"the model '{item.base}' makes no random choice named '{it.site}'", it.span,
                       (f"Did you mean '{close[0]}'? " if close else "")
                       + f"Its random choices: {', '.join(sorted(sites)) or 'none'}.")
        ty = self.expr(it.value)
        if method != "do":
            if it.draw:
                self.error(f"'{it.site} ~ ...' in .{method}(...): what was seen is a value", it.span,
                           f"Write {it.site} = value (a new mechanism belongs in .do(...)).")
            elif ty.base == "dist":
                self.error(f"'{it.site} = ...' in .{method}(...) needs a value, but this is a distribution",
                           it.span, f"Write {it.site} = value.")
            return
        if it.draw and ty.base not in ("dist", "unknown"):
            self.error(f"'{it.site} ~ ...' in .do(...) needs a distribution (a new mechanism for the site)",
                       it.span, f"To set the site to a value, write {it.site} = value.")
        if not it.draw and ty.base == "dist":
            self.error(f"'{it.site} = ...' in .do(...) sets a value, but this is a distribution", it.span,
                       f"To give the site a new distribution, write {it.site} ~ dist(...).")

    def _site_names(self, model: str) -> set | None:
        """The names the model draws with '~' (None when not known here: an import, an intervened model)."""
        node = self.definitions.get(model) if hasattr(self, "definitions") else None
        if not isinstance(node, ast.ModelDef):
            return None
        out = set()
        for n in ast.walk(node.body):
            if isinstance(n, (ast.Tilde, ast.Observe)):
                target = n.target if isinstance(n, ast.Tilde) else None
                name = ast.root_name(target) if target is not None else None
                if name is not None:
                    out.add(name)
        return out

    # --------------------------------------------------------------- functions
    def _function(self, node, kind: str) -> None:
        saved = self.scope, self.frame
        self.frame = Frame(kind, node.name, _Level(node.name))
        self.scope = Scope(self.scope, boundary=True)
        self._params(node.params, data=kind == "model")
        self.block(node.body)
        self.scope, self.frame = saved

    def _params(self, params, data: bool) -> None:
        seen: dict[str, ast.Param] = {}
        tys = {}
        for p in params:
            if p.name in seen:
                self.error(f"the parameter '{p.name}' is listed twice", p.span)
            seen[p.name] = p
            tys[p.name] = self._annotation(p.annotation) if p.annotation is not None else UNKNOWN
        # data first (it gives sizes their values), then sizes that name other parameters
        if data:
            for p in params:
                if p.name in self.data:
                    tys[p.name] = self._apply_data(p, tys[p.name], self.data[p.name])
        for p in params:
            self.scope.names[p.name] = Binding("data", tys[p.name], p.span, self.frame.level)
        for p in params:
            if p.annotation is not None and p.annotation.dims:
                tys[p.name] = self._sized(p, tys[p.name])
                self.scope.names[p.name].ty = tys[p.name]

    def _annotation(self, ann: ast.TypeAnn) -> Ty:
        base = ann.base
        if base not in TYPE_NAMES:
            alias = TYPE_ALIASES.get(base.lower())
            close = difflib.get_close_matches(base, TYPE_NAMES, n=1)
            hint = "The types are int, real and bool, with sizes for arrays: real[], int[N], real[N, D]."
            if alias is not None:
                hint = f"Did you mean '{alias}'? " + hint
            elif close:
                hint = f"Did you mean '{close[0]}'? " + hint
            self.error(f"unknown type '{base}'", ann.span, hint)
            base = "unknown"
        rank = ann.rank
        return Ty(base, rank, (None,) * rank if rank else None)

    def _sized(self, p: ast.Param, ty: Ty) -> Ty:
        """Check the size expressions of ``p``'s annotation; fill in known sizes."""
        sizes = []
        for d in p.annotation.dims:
            if d is None:
                sizes.append(None)
                continue
            dty = self.expr(d)
            self._require_int(d, dty, "an array size")
            sizes.append(dty.value if dty.base == "int" else None)
        shape = ty.shape or (None,) * len(sizes)
        merged = []
        for i, (have, want) in enumerate(zip(shape, sizes)):
            if have is not None and want is not None and have != want:
                dim = p.annotation.dims[i]
                size_text = _source_text(dim) or str(want)
                size_text = size_text if size_text == str(want) else f"{size_text} = {want}"
                where = f" in dimension {i + 1}" if len(sizes) > 1 else ""
                self.error(
                    f"'{p.name}' is declared with size {size_text}{where}, but the data has {have}",
                    p.span,
                )
            merged.append(have if have is not None else want)
        return replace(ty, shape=tuple(merged))

    def _apply_data(self, p: ast.Param, ty: Ty, value) -> Ty:
        info = _data_info(value)
        if info is None:
            self.error(f"the data for '{p.name}' is a ragged list (rows of different lengths)", p.span)
            return ty
        shape, base, scalar = info
        if p.annotation is not None and not _is_shape(value):
            # a value (not a shape tuple): the same check as when the model is called with it
            from .data_check import check_value

            found = check_value(p, value)
            for err in found:
                self.error(err.message, err.span, err.hint)
            if found:
                return ty
            base = None if base == "real" and ty.base == "int" else base
        if ty.rank is not None and p.annotation is not None and len(shape) != ty.rank:
            declared = _annotation_text(p.annotation)
            self.error(
                f"'{p.name}' is declared {declared} ({_rank_words(ty.rank)}) but the data has shape "
                f"{_shape_text(shape)} ({_rank_words(len(shape))})",
                p.span,
            )
            return ty
        if p.annotation is not None and base is not None:
            declared = ty.base
            if declared == "int" and base == "real":
                self.error(
                    f"'{p.name}' is declared {_annotation_text(p.annotation)} but the data holds reals",
                    p.span, "Declare it real, or pass integer data.",
                )
            if declared == "bool" and base == "real":
                self.error(f"'{p.name}' is declared bool but the data holds reals", p.span)
        out_base = ty.base if ty.base != "unknown" or base is None else base
        return Ty(out_base, len(shape), tuple(shape), value=scalar if not shape else None)

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
            self._bind(s.name, replace(b, kind="local" if b.kind != "random" else "random", level=self.frame.level))

    def _stmt_ExprStmt(self, s: ast.ExprStmt) -> None:
        e = s.expr
        self.expr(e)
        if not isinstance(e, ast.Call):
            self.error(
                f"the value of this {_expr_words(e)} is computed and thrown away",
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
                f"the address {words} is used twice: 'observe {_expr_text(s.value)} ~ ...' is named after "
                f"'{name}', like the random choice or observation on line {first_span.line}",
                s.value.span,
                f"To add a density term on a random value, write "
                f"factor(log_density({_expr_text(s.dist)}, {_expr_text(s.value)})).",
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

    def _stmt_For(self, s: ast.For) -> None:
        for bound in (s.start, s.stop):
            ty = self.expr(bound)
            self._require_int(bound, ty, "a loop bound")
        saved_scope, saved_level = self.scope, self.frame.level
        self.scope = Scope(saved_scope)
        level = _Level(f"for {s.var}")
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
        indices = _index_chain(target)
        for items in indices:
            for i in items:
                self._index_item(i)
        b = self.scope.lookup(name) or self.module_names.get(name)
        if s.observed:
            if s.estimator is not None:
                self.error(f"'{name}' is data, so '{_target_text(target)} ~ ...' is an observation: it has no "
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
            text = _target_text(target)
            self.error(
                f"'{name}' is bound by '=' on line {b.span.line} to a value that is not computed from data "
                f"alone, so '{text} ~ ...' is neither an observation nor a new random choice",
                target.span,
                "If the value depends on random choices, a density on it would need the Jacobian of that "
                "computation: put the prior on the random choice itself, or write "
                f"factor(log_density({_expr_text(s.dist)}, {text})) to add the term as written. "
                "For a new random choice, use a new name.",
            )
            return
        if same_level and b.kind == "random" and isinstance(target, ast.Index):
            self.error(
                f"'{name}' is already a random choice (line {b.span.line}); "
                f"'{_target_text(target)} ~ ...' would draw part of it again",
                target.span,
                f"To add a prior term on part of it, write "
                f"factor(log_density({_expr_text(s.dist)}, {_target_text(target)})).",
            )
            return
        if key in self.frame.sites:
            self._duplicate_site(key, s, words)
            return
        self.frame.sites[key] = (s.span, words)
        if isinstance(target, ast.Index) and b is None:
            if self.frame.depth == 0:
                self.error(
                    f"'{name}' is not defined, so '{_target_text(target)} ~ ...' has no array to draw into",
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
                f"{_expr_text(value)} is {describe(vty)}, but the distribution describes "
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
                f"{_expr_text(value)} has shape {_shape_text(vty.shape)} but the distribution's draws "
                f"have shape {_shape_text(elem.shape)}",
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
        text = _expr_text(s.target) if isinstance(s, ast.Tilde) else "x"
        dist = _expr_text(s.dist) if isinstance(s, ast.Tilde) else "d"
        return ("Each random choice needs its own name. To add another density term on a random value, write "
                f"factor(log_density({dist}, {text})).")

    def _bad_tilde_target(self, s: ast.Tilde) -> None:
        t = s.target
        text = _expr_text(t) or "..."
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
                f"factor(log_density({_expr_text(s.dist)}, {text})) to add the term as written.",
            )
            return
        self.error(
            f"the left of '~' must be a variable (x) or an indexed variable (x[i]), found {_a(_expr_words(t))}",
            t.span, hint,
        )

    # --------------------------------------------------------------- checks
    def _require_dist(self, e, ty: Ty) -> bool:
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
                example = ", ".join([_expr_text(i) for i in e.indices] + ["j", "k", "l"][: need - len(e.indices)])
                self.error(
                    f"{what} must be {want}, but {_expr_text(e)} is {describe(ty)}: "
                    f"'{e.base.id}' has {need} dimensions, so one value needs {need} indices",
                    e.span, f"Did you mean {e.base.id}[{example}]?",
                )
                return
        if isinstance(e, ast.Name) and what == "a loop bound":
            hint = f"Did you mean len({e.id})?"
        self.error(f"{what} must be {want}, found {describe(ty)}", e.span, hint)

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
            return Ty(_join(tys), None)
        if len(ranks) > 1:
            self.error("the items of this array have different numbers of dimensions", e.span,
                       "Every row of a matrix literal must be an array of the same length.")
            return Ty(_join(tys), None)
        inner = ranks.pop()
        shapes = {t.shape for t in tys}
        shape = None
        if len(shapes) == 1 and None not in shapes:
            shape = (len(tys),) + shapes.pop()
        elif inner >= 1 and all(t.shape is not None and None not in t.shape for t in tys):
            lengths = sorted({t.shape[0] for t in tys})
            self.error(f"the rows of this array have different lengths ({', '.join(map(str, lengths))})", e.span)
        base = "string" if "string" in kinds else _join(tys)
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
        name = _expr_text(e.base)
        if base_ty.rank == 0 and base_ty.base != "unknown":
            self.error(f"'{name}' is {describe(base_ty)}; it cannot be indexed", e.span,
                       "Only arrays can be indexed.")
            return UNKNOWN
        if n > base_ty.rank:
            self.error(
                f"'{name}' has {_rank_words(base_ty.rank)} but is indexed with {n} indices", e.span,
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
            return Ty(_join([a, b]), a.rank)
        return UNKNOWN

    def _expr_Lambda(self, e: ast.Lambda) -> Ty:
        saved = self.scope, self.frame
        self.frame = Frame("lambda", "fn", _Level("fn"))
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
        return self._call_value(e, _expr_text(f) or "this expression", Binding("local", fty, None))

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
        pos = _ordinal(i + 1)
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
                        f"but {_expr_text(a) or 'it'} takes {lo}",
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
            fail = problem(cls, est.value, _target_text(s.target))
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

    # ------------------------------------------------------------------ words
    @staticmethod
    def _kind_words(b: Binding) -> str:
        where = f" (line {b.span.line})" if b.span is not None else ""
        return {
            "def": f"a function defined with def{where}", "model": f"a model{where}",
            "loop": "a loop variable", "builtin": "a builtin",
        }.get(b.kind, "a variable")


# ---------------------------------------------------------------------- helpers


def _name_span(node) -> Span:
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


def _index_chain(target) -> list[tuple]:
    """The index tuples of ``x[i][j]`` from the outside in: [(i,), (j,)] (innermost first)."""
    out = []
    while isinstance(target, ast.Index):
        out.append(target.indices)
        target = target.base
    return list(reversed(out))


def _join(tys) -> str:
    bases = {t.base for t in tys}
    if "unknown" in bases:
        return "unknown"
    if "real" in bases:
        return "real"
    if bases == {"bool"}:
        return "bool"
    return "int"


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(n, f"{n}th")


def _rank_words(rank: int) -> str:
    return {0: "no dimensions", 1: "1 dimension"}.get(rank, f"{rank} dimensions")


def _shape_text(shape) -> str:
    inner = ", ".join("?" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _annotation_text(ann: ast.TypeAnn) -> str:
    """The annotation as written: real, int[], real[,], real[N, 2]."""
    if ann.dims is None:
        return ann.base
    if all(d is None for d in ann.dims):
        return ann.base + "[" + "," * (len(ann.dims) - 1) + "]"
    return ann.base + "[" + ", ".join("" if d is None else _expr_text(d) for d in ann.dims) + "]"


def _source_text(node) -> str | None:
    """The source text of ``node`` when it lies on one line."""
    s = node.span
    if s is None or s.end_line not in (None, s.line) or s.end_column is None:
        return None
    line = s.source_line(s.line)
    if line is None:
        return None
    return line[s.column - 1 : s.end_column]


def _expr_text(e) -> str:
    """A short text for an expression: its source when on one line, else a description."""
    if e is None:
        return ""
    text = _source_text(e)
    if text:
        return text
    return _expr_words(e)


def _target_text(t) -> str:
    return _expr_text(t)


def _a(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def _expr_words(e) -> str:
    return {
        ast.Call: "function call", ast.Num: "number", ast.Str: "string", ast.Bool: "boolean",
        ast.BinOp: "operation", ast.UnaryOp: "operation", ast.Array: "array literal",
        ast.IfExpr: "if-expression", ast.Lambda: "function (fn)", ast.Index: "indexed value",
        ast.Name: "name",
    }.get(type(e), "expression")


def _is_shape(value) -> bool:
    """A shape tuple such as ``(62,)`` (the other form of ``data_shapes``), not a value."""
    return isinstance(value, tuple) and all(isinstance(v, numbers.Integral) for v in value)


def _data_info(value) -> tuple[tuple[int, ...], str | None, int | None] | None:
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
        infos = [_data_info(v) for v in value]
        if any(i is None for i in infos):
            return None
        shapes = {i[0] for i in infos}
        if len(shapes) != 1:
            return None
        bases = {i[1] for i in infos}
        base = "real" if "real" in bases else ("int" if "int" in bases else (bases.pop() if len(bases) == 1 else None))
        return (len(value),) + shapes.pop(), base, None
    return (), None, None

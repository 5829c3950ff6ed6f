"""The checker's rules for a module's definitions: models, functions, constants, derived models
(``m.do(...)``), imports, and the parameters and data annotations of a model."""

from __future__ import annotations

import difflib
from dataclasses import replace

from ppl.stdlib.errors import Span

from .. import ast
from ..builtins import TYPE_ALIASES, TYPE_NAMES, UNKNOWN, Ty
from .scopes import Binding, Scope, Frame, Level
from .words import name_span, rank_words, shape_text, annotation_text, source_text, is_shape, data_info

__all__ = ["DefinitionRules"]


class DefinitionRules:
    """Rules for the definitions of a module and the parameters of a model (a part of ``Checker``)."""

    # ---------------------------------------------------------------- module
    def module(self, module: ast.Module) -> None:
        self.checked_modules.add(id(module))
        for imp in module.imports:
            if imp.module is None:
                self.lenient = True
            elif id(imp.module) not in self.checked_modules:
                sub = type(self)({})
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
                self._redefined(item.name, name_span(item), names[item.name])
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
                self._redefined(item.name, name_span(item), self.module_names[item.name])
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
        self.frame = Frame(kind, node.name, Level(node.name))
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
                size_text = source_text(dim) or str(want)
                size_text = size_text if size_text == str(want) else f"{size_text} = {want}"
                where = f" in dimension {i + 1}" if len(sizes) > 1 else ""
                self.error(
                    f"'{p.name}' is declared with size {size_text}{where}, but the data has {have}",
                    p.span,
                )
            merged.append(have if have is not None else want)
        return replace(ty, shape=tuple(merged))

    def _apply_data(self, p: ast.Param, ty: Ty, value) -> Ty:
        info = data_info(value)
        if info is None:
            self.error(f"the data for '{p.name}' is a ragged list (rows of different lengths)", p.span)
            return ty
        shape, base, scalar = info
        if p.annotation is not None and not is_shape(value):
            # a value (not a shape tuple): the same check as when the model is called with it
            from ..data_check import check_value

            found = check_value(p, value)
            for err in found:
                self.error(err.message, err.span, err.hint)
            if found:
                return ty
            base = None if base == "real" and ty.base == "int" else base
        if ty.rank is not None and p.annotation is not None and len(shape) != ty.rank:
            declared = annotation_text(p.annotation)
            self.error(
                f"'{p.name}' is declared {declared} ({rank_words(ty.rank)}) but the data has shape "
                f"{shape_text(shape)} ({rank_words(len(shape))})",
                p.span,
            )
            return ty
        if p.annotation is not None and base is not None:
            declared = ty.base
            if declared == "int" and base == "real":
                self.error(
                    f"'{p.name}' is declared {annotation_text(p.annotation)} but the data holds reals",
                    p.span, "Declare it real, or pass integer data.",
                )
            if declared == "bool" and base == "real":
                self.error(f"'{p.name}' is declared bool but the data holds reals", p.span)
        out_base = ty.base if ty.base != "unknown" or base is None else base
        return Ty(out_base, len(shape), tuple(shape), value=scalar if not shape else None)

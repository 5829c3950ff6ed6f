"""The checker's entry point ``check`` and the ``Checker`` it runs (its rules live in the modules
beside this one, one part of the language each)."""

from __future__ import annotations

from ppl.stdlib.errors import CheckError, PPLError, Span

from .. import ast
from .errors import MAX_ERRORS, TooMany, error_order
from .scopes import Binding, Scope, Frame, Level
from .definitions import DefinitionRules
from .statements import StatementRules
from .tilde import TildeRules
from .expressions import ExpressionRules
from .calls import CallRules

__all__ = ["check", "Checker"]


def check(module: ast.Module, data_shapes: dict | None = None) -> list[CheckError]:
    """All the errors in ``module`` (and the modules it imports), in source order.

    ``data_shapes`` maps a model parameter's name to its data: a shape tuple
    (``(62,)``), or the value itself (a number, a nested list or an array;
    only its shape, element kind and, for an integer, its value are read). It is
    applied to the parameters of that name in every model of ``module``.

    A module whose imports have not been loaded (``resolve_imports``) is checked
    as if every unknown name could come from them.
    """
    checker = Checker(data_shapes or {})
    try:
        checker.module(module)
    except RecursionError:
        checker.errors.append(CheckError("the program is nested too deeply to check", module.span))
    except TooMany:
        pass
    seen = set()
    out = []
    for e in sorted(checker.errors, key=error_order):
        key = (e.span, e.message)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


# --------------------------------------------------------------------- checker


class Checker(DefinitionRules, StatementRules, TildeRules, ExpressionRules, CallRules):
    """The checker: the rules of each part, and the state they share (scopes, frame, errors)."""

    def __init__(self, data_shapes: dict):
        self.data = data_shapes
        self.errors: list[PPLError] = []
        self.module_names: dict[str, Binding] = {}
        self.lenient = False  # unresolved imports: unknown names may come from them
        self.scope = Scope(None, boundary=True)
        self.frame = Frame("top", "<top>", Level("top"))
        self.checked_modules: set[int] = set()

    # ---- reporting
    def error(self, message: str, span: Span | None, hint: str | None = None) -> None:
        self.errors.append(CheckError(message, span, hint))
        if len(self.errors) >= MAX_ERRORS:
            raise TooMany()

    # ------------------------------------------------------------------ words
    @staticmethod
    def _kind_words(b: Binding) -> str:
        where = f" (line {b.span.line})" if b.span is not None else ""
        return {
            "def": f"a function defined with def{where}", "model": f"a model{where}",
            "loop": "a loop variable", "builtin": "a builtin",
        }.get(b.kind, "a variable")

"""The REPL's session: the definitions typed or loaded so far, and the module they evaluate to.

What the user types is either definitions (``model``, ``def``, ``import``, ``name = expr``),
which join the session, a later definition of a name replacing the earlier one, or bare
expressions (``1 + 2``), evaluated against the session and printed. Each piece of typed
text is an *entry*, numbered from 1; it is parsed once, on its own, with the origin
``<repl:N>``, so its spans (and every error and IR comment that quotes them) are lines and
columns of the entry as typed. A loaded file's items keep the file's path as their origin.
Earlier entries are never parsed again: the session keeps their AST items, and
``program.py`` joins, checks and evaluates them (see there). A change that does not check
or evaluate leaves the session as it was.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable

from ppl.commands import format_value
from ppl.stdlib.errors import PPLError, SyntaxError_
from ppl.syntax import ast as A

from . import running
from .program import Item, check_items, evaluate_items, item_of, source_text, with_resolved_imports

__all__ = ["Session", "Item", "VALUE_NAME", "entry_origin"]

#: the constant a bare expression is bound to for evaluation
VALUE_NAME = "_"


def entry_origin(number: int) -> str:
    """The file name in the spans of the ``number``-th entry typed: ``<repl:3>``."""
    return f"<repl:{number}>"


def _typed(file: str) -> bool:
    return file.startswith("<repl:")


class Session:
    """The definitions typed or loaded so far (``items``, by key) and their evaluated ``module``."""

    def __init__(self, out: Callable[[str], None] | None = None):
        self.items: dict[str, Item] = {}
        self.module = None
        self.entries = 0      # how many entries have been typed (each is parsed once)
        self._serial = 0
        self.out = out or (lambda text: print(text))

    # -- definitions -------------------------------------------------------------------
    def add(self, source: str) -> list[tuple[str, Any]]:
        """Add the definitions typed in ``source`` (the next entry) and evaluate its bare expressions.

        Returns ``(expression text, value)`` for each expression. All or nothing:
        on an error the session is unchanged (the entry keeps its number).
        """
        from ppl.syntax import parse

        self.entries += 1
        origin = entry_origin(self.entries)
        cwd = os.getcwd()
        module = with_resolved_imports(parse(source, origin, annotated=False), cwd)
        items = dict(self.items)
        exprs = []
        for node in module.items:
            if isinstance(node, A.ExprStmt):
                exprs.append(node)
                continue
            self._serial += 1
            item = item_of(node, origin, cwd, self._serial)
            items.pop(item.key, None)
            items[item.key] = item
        loaded = self.module
        if len(exprs) < len(module.items) or loaded is None:
            loaded = evaluate_items(it.node for it in items.values())
        values = []
        base = [it.node for key, it in items.items() if key != VALUE_NAME]
        for node in exprs:
            value = A.Assign(VALUE_NAME, node.expr, span=node.span)
            values.append((source_text(source, node.span), evaluate_items([*base, value]).constants[VALUE_NAME]))
        self.items, self.module = items, loaded
        return values

    def load_file(self, path: str) -> list[str]:
        """Add a file's definitions (the file must check on its own, as ``ppl check`` would)."""
        file = pathlib.Path(path).expanduser()
        if not file.exists():
            raise PPLError(f"no such file: {path}")
        if file.is_dir():
            raise PPLError(f"{path} is a folder, not a .ppl file")
        if file.suffix != ".ppl":
            raise PPLError(f"{path} is not a .ppl file", hint="Give the path of a .ppl file.")
        module = _parse_file(file, str(path))
        folder = str(file.resolve().parent)
        module = with_resolved_imports(module, folder)
        check_items(module.items, str(path))
        before = set(self.items)
        items = dict(self.items)
        new = []
        for node in module.items:
            self._serial += 1
            item = item_of(node, str(path), folder, self._serial)
            items.pop(item.key, None)
            items[item.key] = item
            new.append(item)
        loaded = evaluate_items(it.node for it in items.values())
        self.items, self.module = items, loaded
        return [f"{it.key} ({it.kind}{', replaced' if it.key in before else ''})"
                for it in new if it.kind not in ("import", "statement")]

    def reset(self) -> None:
        """Forget every definition (entries keep counting, so no two share an origin)."""
        self.items, self.module = {}, None

    # -- what the session holds ---------------------------------------------------
    @property
    def models(self) -> dict:
        return dict(self.module.models) if self.module else {}

    @property
    def constants(self) -> dict:
        return dict(self.module.constants) if self.module else {}

    @property
    def functions(self) -> dict:
        return dict(self.module.functions) if self.module else {}

    def _where(self, name: str) -> str:
        it = self.items.get(name)
        if it is None:
            return "imported"
        return "typed" if _typed(it.file) else f"{it.file}, line {it.line}"

    def listing(self) -> str:
        """The session's definitions, one per line, grouped by kind."""
        if not self.module or not (self.models or self.functions or self.constants):
            return "no definitions yet (type a model, or :load FILE)"
        lines = []
        if self.models:
            lines.append("models:")
            for name, m in self.models.items():
                params = ", ".join(getattr(m, "param_names", []) or [])
                lines.append(f"  {name}({params})".ljust(34) + f"  # {self._where(name)}")
        if self.functions:
            lines.append("functions:")
            for name, f in self.functions.items():
                params = ", ".join(getattr(f, "params", ()) or ())
                lines.append(f"  {name}({params})".ljust(34) + f"  # {self._where(name)}")
        if self.constants:
            lines.append("constants:")
            for name, v in self.constants.items():
                text = format_value(v, limit=8)
                if len(text) > 60:
                    text = text[:57] + "..."
                lines.append(f"  {name} = {text}")
        return "\n".join(lines)

    # -- running models (see running.py) ---------------------------------------------
    def model(self, name: str | None):
        """The session's model ``name``, or an error listing the models there are."""
        return running.find_model(self.models, name)

    def arguments(self, model, tokens) -> tuple[list, dict]:
        """Model arguments and inference options from command tokens (see ``running.arguments``)."""
        return running.arguments(model, tokens, self.constants)

    def ir(self, tokens) -> str:
        """``:ir NAME args``: the printed IR of the model for these arguments."""
        return running.ir(self.models, self.constants, tokens)

    def diagram(self, tokens) -> str:
        """``:diagram NAME args``: the string diagram of the model."""
        return running.diagram(self.models, self.constants, tokens)

    def infer(self, tokens):
        """``:infer NAME args options``: run ``ppl.infer``; returns the Posterior."""
        return running.infer(self.models, self.constants, tokens)


def _parse_file(file: pathlib.Path, name: str) -> A.Module:
    """A file's unannotated items; spans name it as ``name`` (the path as the user gave it)."""
    from ppl.syntax import parse

    try:
        text = file.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the program
    except UnicodeDecodeError as e:
        raise SyntaxError_(f"'{name}' is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse(text, name, annotated=False)

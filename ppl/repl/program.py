"""The session's program: from the stored items of a session to a checked, evaluated module.

Each entry is parsed once, with its own origin (``<repl:3>``, or the path of a loaded
file), into unannotated AST items whose spans point into that entry's text. A change to
the session joins the stored items (never their text) into one module, annotates it as a
whole (what a ``~`` observes and what recurses depend on every top-level definition),
checks it and evaluates it: the checker and the evaluator that ``ppl run`` uses, so an
entry is checked against the whole session, and a redefinition that breaks an older
definition is refused at that definition, in its own text.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable

from ppl.stdlib.errors import SyntaxError_
from ppl.syntax import ast as A

__all__ = ["SESSION_FILE", "Item", "item_of", "with_resolved_imports", "check_items", "evaluate_items",
           "source_text"]

#: the file name of the joined module (spans never name it: every node keeps its own origin)
SESSION_FILE = "<session>"


@dataclasses.dataclass(frozen=True)
class Item:
    """One top-level item of the session, as parsed from where it came from.

    ``node`` is the unannotated AST item (imports resolved); its spans name ``file``:
    an entry's origin such as ``<repl:3>``, or the path of a loaded file.
    """

    key: str        # the name it defines; imports and other statements have keys of their own
    kind: str       # "model", "function", "constant", "import", "statement"
    node: A.Node
    file: str

    @property
    def line(self) -> int:
        """Its first line in ``file``."""
        return self.node.span.line if self.node.span is not None else 1


def item_of(node: A.Node, file: str, base_dir: str, serial: int) -> Item:
    """The session item for a parsed top-level ``node`` (not a bare expression). ``base_dir``
    is the folder a relative import was resolved against; ``serial`` keys a statement."""
    if isinstance(node, (A.ModelDef, A.ModelDo)):
        return Item(node.name, "model", node, file)
    if isinstance(node, A.FunDef):
        return Item(node.name, "function", node, file)
    if isinstance(node, A.Assign):
        return Item(node.name, "constant", node, file)
    if isinstance(node, A.Import):
        where = node.path if node.stdlib else os.path.normpath(os.path.join(base_dir, node.path))
        return Item(f"import {'stdlib ' if node.stdlib else ''}{where}", "import", node, file)
    return Item(f"#stmt{serial}", "statement", node, file)


def with_resolved_imports(module: A.Module, base_dir: str) -> A.Module:
    """``module`` with its imports loaded (relative to ``base_dir``), its other items untouched.

    Raises ``CheckErrors`` at an import that cannot be loaded."""
    from ppl.syntax import resolve_imports

    imports = module.imports
    if not imports:
        return module
    resolved = iter(resolve_imports(dataclasses.replace(module, items=imports), base_dir).items)
    return dataclasses.replace(module, items=tuple(next(resolved) if isinstance(i, A.Import) else i
                                                   for i in module.items))


def _annotated(nodes: Iterable[A.Node], file: str) -> A.Module:
    from ppl.syntax.annotate import annotate

    nodes = tuple(nodes)
    imported = set()
    for node in nodes:
        if isinstance(node, A.Import) and node.module is not None:
            imported |= set(node.module.constants)
    try:
        return annotate(A.Module(nodes, file), imported)
    except RecursionError:
        raise SyntaxError_("the program is nested too deeply to read", None) from None


def check_items(nodes: Iterable[A.Node], file: str = SESSION_FILE) -> A.Module:
    """The items joined into one annotated module, checked; ``CheckErrors`` if it is not well formed."""
    from ppl.syntax import CheckErrors, check

    module = _annotated(nodes, file)
    errors = check(module)
    if errors:
        raise CheckErrors(errors)
    return module


def evaluate_items(nodes: Iterable[A.Node]):
    """The items checked and evaluated: a ``PplModule`` of the session's models, functions and
    constants."""
    from ppl.evaluate import evaluate_module

    return evaluate_module(check_items(nodes))


def source_text(source: str, span) -> str:
    """The text of ``source`` that ``span`` covers."""
    lines = source.splitlines()
    first, last = span.line, span.end_line or span.line
    if first == last:
        return lines[first - 1][span.column - 1:span.end_column]
    tail = lines[last - 1][:span.end_column] if span.end_column is not None else lines[last - 1]
    return "\n".join([lines[first - 1][span.column - 1:], *lines[first:last - 1], tail])

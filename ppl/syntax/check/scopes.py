"""What a name means where the checker stands: ``Binding``, the nested ``Scope``s, the ``Frame`` of
the function body being checked, and ``Level``, a token for one loop or function body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ppl.stdlib.errors import Span

from ..builtins import Ty

__all__ = ["Binding", "Scope", "Frame", "Level"]


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


class Level:
    """A unique token for one loop body (or function body)."""

    def __init__(self, what: str):
        self.what = what

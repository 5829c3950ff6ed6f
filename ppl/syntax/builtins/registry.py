"""What a builtin function of the .ppl language is: one record with its name, its
implementation, its type rule and its doc.

The checker reads a ``Builtin``'s argument kinds, arity and type rule; the evaluator
(``ppl.evaluate``) calls its implementation; the language reference, the REPL's
completion and the syntax highlighter list its name and doc. Each builtin is declared
once, in the module of its family (``math``, ``arrays``, ``random``, ``ode``, ``stan``,
``dist_functions``), and ``table`` gathers a family into a dict, refusing a name
declared twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from .types import Ty

__all__ = ["Builtin", "Constant", "table", "merge"]


@dataclass(frozen=True)
class Builtin:
    """A builtin function.

    ``args`` are the kinds of the positional arguments (``num``: a number or array;
    ``int``: a single integer (a size); ``dist``; ``fun``: a function value; ``any``),
    ``rest`` the kind of extra arguments, ``optional`` how many trailing ``args`` may be
    left out. ``result`` is the type rule: the argument types -> the result type (or
    ``TypeProblem``). ``impl`` is the implementation: called with the argument values,
    or, for a *form* (``form=True``: it names a random choice or needs its arguments
    unevaluated, like ``sample`` and ``map``), with the evaluator, the call node and the
    environment. Only a function that is not a form is a first-class value.

    ``pure``: calling it for nothing but its value (as a statement) is a mistake.
    ``fun_arity``: for a ``fun`` argument, how many arguments it must take.
    ``elementwise``: it acts on each element of its arguments separately, so a loop that
    uses it can run as one vectorised plate. ``random``: it may make random choices
    (itself, or through the function it is given).
    """

    name: str
    args: tuple[str, ...]
    result: Callable[[list[Ty]], Ty]
    doc: str
    impl: Callable
    optional: int = 0
    rest: str | None = None
    pure: bool = True
    fun_arity: int | None = None
    form: bool = False
    elementwise: bool = True
    random: bool = False

    @property
    def arity(self) -> tuple[int, int | None]:
        lo = len(self.args) - self.optional
        return lo, None if self.rest else len(self.args)


@dataclass(frozen=True)
class Constant:
    """A builtin constant: its static type, its value and its doc."""

    name: str
    ty: Ty
    value: float
    doc: str


def table(entries: Iterable) -> dict:
    """The entries (``Builtin``s or ``Constant``s) by name; a name declared twice is an error."""
    out: dict = {}
    for entry in entries:
        if entry.name in out:
            raise RuntimeError(f"the builtin '{entry.name}' is declared twice")
        out[entry.name] = entry
    return out


def merge(*tables: dict) -> dict:
    """One table of several families, in order; a name in two families is an error."""
    out: dict = {}
    for t in tables:
        clash = sorted(set(out) & set(t))
        if clash:
            raise RuntimeError(f"builtins declared in two families: {clash}")
        out.update(t)
    return out

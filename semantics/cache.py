"""The compile cache: compiled functions remembered per program, and freed with it.

``cached(program, key, build)`` returns ``build()``, computed once per
``(program, key)``. The table lives on the program object itself, so the
compiled functions (which usually close over the program) form a cycle with
it that the garbage collector frees once nothing else holds the program: a
model that is dropped frees its compiled programs. (A module-level dictionary
keyed by program would keep them forever; a weak-keyed one whose values refer
to the key would too.)
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from ppl.semantics import ir

__all__ = ["cached", "entries"]


def cached(program: ir.Program, key: Hashable, build: Callable[[], Any]) -> Any:
    """``build()`` for ``(program, key)``, built on first use and kept while the program lives."""
    table = program.__dict__.get("_compiled")
    if table is None:
        table = {}
        object.__setattr__(program, "_compiled", table)
    try:
        return table[key]
    except KeyError:
        value = table[key] = build()
        return value


def entries(program: ir.Program) -> dict:
    """What the cache holds for ``program`` (a copy; for tests and diagnostics)."""
    return dict(program.__dict__.get("_compiled", {}))

"""The driver's compiled programs, remembered per target and plan.

``program_for(owner, key, build)`` returns ``build(ref)``, built once per
``(owner, key)``, where ``ref()`` gives the owner back:

- an ``ir.Program`` (MH, Gibbs): kept in the project's compile cache on the
  program itself (``semantics.cache.cached``), freed with the program;
- a log density function (``run_chains``; NUTS and HMC pass the function the
  compile cache keeps for their program): a table keyed weakly by the
  function, whose programs refer to it only weakly, so they are freed with it;
  a function that cannot be weakly referenced keeps a bounded number of
  strong entries.

``clear()`` forgets every program of the second kind (benchmarks time cold
starts with it; programs of the first kind go with their ``ir.Program``).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable

from ppl.semantics import ir
from ppl.semantics.cache import cached

__all__ = ["program_for", "clear"]

_PROGRAMS: "weakref.WeakKeyDictionary[Callable, dict]" = weakref.WeakKeyDictionary()
_PROGRAMS_STRONG: "OrderedDict[tuple, tuple]" = OrderedDict()
_STRONG_LIMIT = 32


def program_for(owner: Any, key: Hashable, build: Callable[[Callable[[], Any]], Any]) -> Any:
    """The program for ``(owner, key)``: ``build(ref)`` on first use (see the module docstring)."""
    if isinstance(owner, ir.Program):
        return cached(owner, ("mcmc-driver", key), lambda: build(lambda: owner))
    try:
        table = _PROGRAMS.get(owner)
        if table is None:
            table = {}
            _PROGRAMS[owner] = table
        program = table.get(key)
        if program is None:
            program = table[key] = build(weakref.ref(owner))
        return program
    except TypeError:  # not weakly referenceable: keep a bounded number of strong entries
        strong = (id(owner), key)
        entry = _PROGRAMS_STRONG.get(strong)
        if entry is not None and entry[0] is owner:
            _PROGRAMS_STRONG.move_to_end(strong)
            return entry[1]
        program = build(lambda: owner)
        _PROGRAMS_STRONG[strong] = (owner, program)
        while len(_PROGRAMS_STRONG) > _STRONG_LIMIT:
            _PROGRAMS_STRONG.popitem(last=False)
        return program


def clear() -> None:
    """Forget every compiled program kept per log density function."""
    _PROGRAMS.clear()
    _PROGRAMS_STRONG.clear()

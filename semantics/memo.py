"""Stochastic memoisation (``mem``): a random function whose value at each argument is drawn
once per run of the model."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ppl.semantics.handler import MemoOnTracedValue, NeedsDynamic, current_handler, require_handler
from ppl.semantics.user_spans import caller_span


def mem(fn: Callable, name: str | None = None, *, nest: bool = True) -> Callable:
    """Stochastic memoisation: a random function whose value at each argument is drawn once.

    The memo table belongs to the current run of the model (it is created afresh
    by each run), so ``mem`` is a pure transformation of the program's meaning.
    Random choices made inside ``fn(*args)`` are nested under ``name[args]``
    (``strength[alice]/...``), where ``name`` is given or the function's name
    (``mem`` for a Python lambda), in the scope where ``mem`` was called: the
    address of a memoised value does not depend on where it is first asked for.
    ``nest=False``: ``fn`` names its own random choice (``memo_label(name, args)``).
    """
    fname = name or getattr(fn, "__name__", None) or "mem"
    if fname == "<lambda>":
        fname = "mem"
    creator = current_handler()
    home = list(creator.scope) if creator is not None else None

    def memoised(*args):
        h = require_handler("mem")
        table = h.memo.setdefault(id(memoised), {})
        key = tuple(_memo_key(a) for a in args)
        if key not in table and getattr(h, "branch_depth", 0) > 0:
            raise NeedsDynamic(
                f"the memoised function '{fname}' is first called inside a branch on a random value "
                "(its value must exist whichever branch runs)", caller_span())
        if key not in table:
            with h.enter_scope(home if h is creator else None):
                if nest:
                    with h.enter_call(memo_label(fname, args)):
                        table[key] = fn(*args)
                else:
                    table[key] = fn(*args)
        return table[key]

    memoised.__name__ = f"mem({fname})"
    return memoised


def memo_label(name: str, args: tuple) -> str:
    """``strength[alice]``: the name of a memoised function at these arguments."""
    return f"{name}[{','.join(str(_memo_key(a)) for a in args)}]"


def _memo_key(a):
    from ppl.stdlib.jax_compat import is_tracer

    if is_tracer(a):
        raise MemoOnTracedValue()
    if isinstance(a, (str, int, bool, float, tuple)):
        return a
    arr = np.asarray(a)
    if arr.shape == ():
        return arr.item()
    return tuple(arr.ravel().tolist())

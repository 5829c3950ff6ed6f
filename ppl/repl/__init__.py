"""The interactive loop: ``ppl repl`` (or plain ``ppl``).

A session is a growing ``.ppl`` program. What the user types is either

* definitions (``model``, ``def``, ``import``, ``name = expr``): they join the
  session, a later definition of a name replacing the earlier one;
* a bare expression (``1 + 2``): evaluated against the session's definitions
  and printed;
* a command: ``:load FILE``, ``:ir NAME args``, ``:infer NAME args options``,
  ``:diagram NAME args``, ``:models``, ``:reset``, ``:help``, ``:quit``.

Each typed entry is parsed once with its own origin, ``<repl:N>`` for the N-th,
so errors point at the entry as typed (a loaded file's definitions keep the
file's name); the session keeps the parsed definitions and checks and evaluates
them together with the checker and the evaluator that ``ppl run`` uses, so a
definition that does not load leaves the session as it was.

The modules: ``reading`` (when input is complete; ``:command`` lines),
``program`` (stored items -> checked, evaluated module), ``session`` (the
definitions and what they hold), ``running`` (``:ir``, ``:diagram``,
``:infer``), ``loop`` (executing submissions) and ``terminal`` (prompt_toolkit).
"""

from __future__ import annotations

from ppl.commands import format_value

from .loop import Repl, run_repl
from .program import Item
from .reading import (COMMANDS, HELP, Command, brackets_open, did_you_mean, needs_more, parse_command,
                      split_arguments, submissions)
from .session import VALUE_NAME, Session, entry_origin

__all__ = [
    "run_repl", "Repl", "Session", "Item", "Command", "parse_command", "split_arguments", "needs_more",
    "brackets_open", "submissions", "did_you_mean", "format_value", "entry_origin", "VALUE_NAME", "COMMANDS",
    "HELP",
]

"""Reading what is typed at the REPL: when a submission is complete, how input lines group
into submissions, and what a ``:command`` line says.

Nothing here knows the session; it turns text into submissions and ``Command`` values.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Iterator

from ppl.stdlib.errors import PPLError

__all__ = ["COMMANDS", "HELP", "Command", "parse_command", "split_arguments", "did_you_mean", "brackets_open",
           "needs_more", "submissions"]

COMMANDS = {
    "load": ":load FILE                  add the definitions of a .ppl file to the session",
    "ir": ":ir NAME [args...]           print the IR of model NAME for these arguments",
    "infer": ":infer NAME [args...] [method=M] [samples=N] [seed=N] [warmup=N] [chains=N] [depth=N] [bound=K]\n"
             "                             run inference and print the posterior summary",
    "diagram": ":diagram NAME [args...]      print the string diagram of model NAME (its sites and their parents)",
    "models": ":models                     list the session's models, functions and constants",
    "reset": ":reset                      forget every definition",
    "help": ":help                       this text",
    "quit": ":quit                       leave (also :q, :exit, Ctrl-D)",
}
_ALIASES = {"q": "quit", "exit": "quit", "h": "help", "?": "help", "l": "load", "m": "models"}

HELP = "\n".join([
    "Type .ppl definitions, expressions and commands.",
    "",
    "  model coin(flips) { ... }   define a model (Enter submits once the braces balance)",
    "  def f(x) { ... }            define a function",
    "  n = 10                      define a constant",
    "  n * 2                       evaluate an expression against the session",
    "",
    *("  " + text for text in COMMANDS.values()),
    "",
    "Arguments are JSON values ([1, 0, 1], 2.5, true) or names of session constants;",
    "a model parameter can also be given as NAME=VALUE, and one left out is taken from",
    "the session constant of the same name. Methods: enumerate, importance, smc, nuts,",
    "hmc, chees, mh, gibbs, pmmh, vi (default: chosen from the model, as `ppl run` does);",
    "depth=N bounds exact enumeration of a recursive model, bound=K the values it takes",
    "of a distribution with infinitely many (Poisson: 0..K-1).",
    "A definition of a name that exists replaces it. Esc-Enter inserts a newline;",
    "a blank line submits what has been typed once its brackets balance (two blank",
    "lines submit it anyway); Ctrl-C discards it. Errors name the entry they are in:",
    "<repl:3> is the third piece of .ppl text typed in this session.",
])


# ---------------------------------------------------------------------------
# When is a submission complete?

_CONTINUE_WORDS = {"then", "else", "and", "or", "not", "in", "import", "model", "def", "fn", "observe", "let",
                   "for", "if", "return"}
_CONTINUE_SYMBOLS = ("=>", "..", "+", "-", "*", "/", "%", "^", "@", "<", ">", "==", "!=", "<=", ">=", "+=", "-=",
                     "*=", "/=", ",", "\\")


def brackets_open(text: str) -> bool:
    """Whether ``text`` has a bracket that is not closed yet (strings and comments aside): then
    a blank line is part of what is being typed, not its end.

    >>> brackets_open("model m() {\\n  x ~ normal(0, 1)\\n"), brackets_open("x = [1, 2]")
    (True, False)
    """
    return _scan(text)[0] > 0


def needs_more(text: str) -> bool:
    """Whether ``text`` is visibly unfinished: an open bracket, or a last line ending in an
    operator, ``,`` or a keyword that must be followed by more (strings and comments aside).
    As in the language, ``=`` and ``~`` at the end of a line do not continue it.

    >>> needs_more("model m() {"), needs_more("model m() { x ~ normal(0, 1) }"), needs_more("x = 1 +")
    (True, False, True)
    """
    depth, last = _scan(text)
    if depth > 0:
        return True
    if depth < 0 or not last:
        return False
    if last.endswith(_CONTINUE_SYMBOLS):
        return True
    word = re.search(r"([A-Za-z_][A-Za-z0-9_]*)$", last)
    return bool(word and word.group(1) in _CONTINUE_WORDS)


def _scan(text: str) -> tuple[int, str]:
    """The bracket depth at the end of ``text`` and its last line of code (strings as ``s``)."""
    depth = 0
    last = ""
    for line in text.splitlines() or [""]:
        i, n = 0, len(line)
        code = []
        while i < n:
            c = line[i]
            if c == "#":
                break
            if c in "\"'":
                j = i + 1
                while j < n and line[j] != c:
                    j += 2 if line[j] == "\\" else 1
                code.append("s")
                i = j + 1
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            code.append(c)
            i += 1
        stripped = "".join(code).rstrip()
        if stripped:
            last = stripped
    return depth, last


def submissions(lines: Iterator[str]) -> Iterator[str]:
    """Group input lines into submissions: a command line alone; definitions until they are
    complete (brackets balanced, no trailing operator), or a blank line when no bracket is
    open, or two blank lines in a row."""
    buf: list[str] = []
    for line in lines:
        line = line.rstrip("\r\n")
        if line.lstrip().startswith(":"):  # a command is never part of .ppl text
            if buf:
                yield "\n".join(buf).rstrip()
                buf = []
            yield line
            continue
        if not buf and not line.strip():
            continue
        if buf and not line.strip():
            if brackets_open("\n".join(buf)) and buf[-1].strip():
                buf.append(line)  # a blank line inside a model's braces: still typing
                continue
            yield "\n".join(buf).rstrip()
            buf = []
            continue
        buf.append(line)
        if not needs_more("\n".join(buf)):
            yield "\n".join(buf)
            buf = []
    if buf:
        yield "\n".join(buf)


# ---------------------------------------------------------------------------
# Commands


@dataclasses.dataclass(frozen=True)
class Command:
    """A parsed ``:command``: its canonical ``name`` and the raw argument tokens."""

    name: str
    args: tuple[str, ...]


def split_arguments(text: str) -> list[str]:
    """Split on spaces outside brackets and strings: ``'m [1, 2] x="a b"'`` -> three tokens."""
    tokens, cur, depth, quote = [], [], 0, None
    for c in text:
        if quote:
            cur.append(c)
            if c == quote and (len(cur) < 2 or cur[-2] != "\\"):
                quote = None
            continue
        if c in "\"'":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c.isspace() and depth <= 0:
            if cur:
                tokens.append("".join(cur))
                cur = []
            continue
        cur.append(c)
    if quote or depth > 0:
        raise PPLError(f"unbalanced {'quote' if quote else 'brackets'} in the arguments: {text.strip()}")
    if cur:
        tokens.append("".join(cur))
    return tokens


def parse_command(line: str) -> Command:
    """``':infer coin [1, 0] method=nuts'`` -> ``Command('infer', ('coin', '[1, 0]', 'method=nuts'))``."""
    body = line.strip()
    if not body.startswith(":"):
        raise PPLError(f"not a command: {body!r}", hint="Commands start with ':'; type :help for the list.")
    word, _, rest = body[1:].partition(" ")
    name = _ALIASES.get(word.strip(), word.strip())
    if name not in COMMANDS:
        close = [c for c in COMMANDS if c.startswith(name[:2])] if name else []
        if not close and name:
            close = [_ALIASES.get(c, c) for c in difflib.get_close_matches(name, [*COMMANDS, *_ALIASES], n=1)]
        hint = f"Did you mean :{close[0]}?" if close else "Type :help for the list of commands."
        raise PPLError(f"unknown command ':{word.strip()}'", hint=hint)
    return Command(name, tuple(split_arguments(rest)))


def did_you_mean(word: str, choices) -> str | None:
    """The closest of ``choices`` to a mistyped ``word`` (``'nutz'`` -> ``'nuts'``), or None."""
    close = difflib.get_close_matches(word.lower(), [str(c) for c in choices], n=1, cutoff=0.6)
    return close[0] if close else None

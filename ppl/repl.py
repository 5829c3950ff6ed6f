"""The interactive loop: ``ppl repl`` (or plain ``ppl``).

A session is a growing ``.ppl`` program. What the user types is either

* definitions (``model``, ``def``, ``import``, ``name = expr``): they join the
  session, a later definition of a name replacing the earlier one;
* a bare expression (``1 + 2``): evaluated against the session's definitions
  and printed;
* a command: ``:load FILE``, ``:ir NAME args``, ``:infer NAME args options``,
  ``:models``, ``:reset``, ``:help``, ``:quit``.

The session keeps the *text* of each definition and re-loads the whole program
with ``ppl.loads`` after every change, so the REPL runs exactly the checker and
the lowering that ``ppl run`` does, and a definition that does not load leaves
the session as it was. Errors point at what the user typed (or at the file a
definition came from), not at the session's combined text.

Interactively (a terminal on both ends) input is read with prompt_toolkit:
multi-line editing (Enter submits once brackets balance; a blank line submits
what has no open bracket, two blank lines submit anything; Ctrl-C discards the
input; Esc-Enter inserts a newline), history in ``~/.ppl_history``
(``PPL_HISTORY=off`` keeps it in memory, ``PPL_HISTORY=PATH`` moves it),
highlighting with ``ppl.syntax.highlight.PplLexer`` and Tab completion of
commands and names. Otherwise lines are read from the input stream with the
same grouping rules and no prompt; the exit status is then 1 if any input
failed, so a piped script can be checked.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import pathlib
import re
import sys
import warnings
from typing import Any, Callable, Iterator, TextIO

from ppl.commands import METHODS, build_method, format_value, model_parameters, return_summary
from ppl.stdlib.errors import PPLError, Span

__all__ = [
    "run_repl", "Session", "Item", "Command", "parse_command", "split_arguments", "needs_more", "brackets_open",
    "format_value",
    "COMMANDS", "HELP",
]

#: the file name of the session's combined text (never shown: errors are moved to their origin)
SESSION_FILE = "<session>"
#: the file name of what the user typed at the prompt
INPUT_FILE = "<repl>"
#: the constant a bare expression is bound to for evaluation
VALUE_NAME = "_"

COMMANDS = {
    "load": ":load FILE                  add the definitions of a .ppl file to the session",
    "ir": ":ir NAME [args...]           print the IR of model NAME for these arguments",
    "infer": ":infer NAME [args...] [method=M] [samples=N] [seed=N] [warmup=N] [chains=N] [depth=N]\n"
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
    "hmc, mh, gibbs (default: chosen from the model, as `ppl run` does); depth=N bounds",
    "exact enumeration of a recursive model.",
    "A definition of a name that exists replaces it. Esc-Enter inserts a newline;",
    "a blank line submits what has been typed once its brackets balance (two blank",
    "lines submit it anyway); Ctrl-C discards it.",
])

_OPTIONS = {"method", "samples", "seed", "warmup", "chains", "depth"}


# ---------------------------------------------------------------------------
# Reading input: when is it complete?

_CONTINUE_WORDS = {"then", "else", "and", "or", "not", "in", "import", "model", "def", "fn", "observe", "let",
                   "for", "if", "return"}
_CONTINUE_SYMBOLS = ("=>", "..", "+", "-", "*", "/", "%", "^", "@", "<", ">", "==", "!=", "<=", ">=", "+=", "-=",
                     "*=", "/=", ",", "\\")


def brackets_open(text: str) -> bool:
    """Whether ``text`` has a bracket that is not closed yet (strings and comments aside): then
    a blank line is part of what is being typed, not its end.

    >>> brackets_open("model m() {\n  x ~ normal(0, 1)\n"), brackets_open("x = [1, 2]")
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


# ---------------------------------------------------------------------------
# Commands and their arguments


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


#: bare words a Python user types to leave or to ask for help, and what they mean here
_BARE_WORDS = {"help": "help", "quit": "quit", "exit": "quit"}


def _json_value(token: str, constants: dict) -> Any:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token) and token not in ("true", "false", "null"):
        if token in constants:
            return constants[token]
        raise PPLError(f"'{token}' is not a constant of the session",
                       hint="Give a JSON value, or define it first: " + f"{token} = ...")
    try:
        return json.loads(token)
    except json.JSONDecodeError:
        raise PPLError(f"cannot read the argument {token!r}: give a JSON value ([1, 0, 1], 2.5, true) "
                       "or the name of a session constant") from None


# ---------------------------------------------------------------------------
# Values


# ---------------------------------------------------------------------------
# The session


@dataclasses.dataclass(frozen=True)
class Item:
    """One top-level item of the session, with where its text came from.

    ``text`` is placed so that its columns are those of the origin (the first
    line is padded with spaces), except that the first line's columns are
    shifted by ``column_shift`` (a bare expression written as ``_ = expr``).
    """

    key: str        # the name it defines; imports and other statements have their own keys
    kind: str       # "model", "function", "constant", "import", "statement"
    text: str
    file: str       # where it came from: INPUT_FILE or a path
    line: int       # its first line there
    source: str     # the whole text it came from (to show excerpts of it)
    column_shift: int = 0


def _slice(source: str, span: Span) -> str:
    lines = source.splitlines()
    first, last = span.line, span.end_line or span.line
    end_col = span.end_column
    if first == last:
        body = lines[first - 1][span.column - 1:end_col]
    else:
        body = "\n".join([lines[first - 1][span.column - 1:], *lines[first:last - 1],
                          lines[last - 1][:end_col] if end_col is not None else lines[last - 1]])
    return " " * (span.column - 1) + body


class Session:
    """The definitions typed or loaded so far, and the module they load to.

    Every change builds the combined text of the items, loads it with
    ``ppl.loads`` and commits only if that succeeds; errors are moved from the
    combined text back to where each item came from.
    """

    def __init__(self, out: Callable[[str], None] | None = None):
        self.items: dict[str, Item] = {}
        self.module = None
        self._table: list[tuple[int, int, Item]] = []
        self._counter = 0
        self.out = out or (lambda text: print(text))

    # -- the combined program ------------------------------------------------------
    def _compose(self, items) -> tuple[str, list[tuple[int, int, Item]]]:
        chunks, table, line = [], [], 1
        for it in items:
            n = it.text.count("\n") + 1
            table.append((line, n, it))
            chunks.append(it.text)
            line += n
        return "\n".join(chunks) + "\n", table

    def _load(self, items: list[Item]):
        import ppl

        text, table = self._compose(items)
        try:
            return ppl.loads(text, SESSION_FILE), table
        except PPLError as err:
            raise _relocate(err, table) from None

    def relocate(self, err: PPLError) -> PPLError:
        """Move an error's span (from a run of a session model) to the user's text."""
        return _relocate(err, self._table)

    def relabel(self, text: str) -> str:
        """Rewrite line references into the session text (IR comments, notes) to the user's lines."""
        return _relabel(text, self._table)

    # -- definitions -------------------------------------------------------------------
    def _items_of(self, source: str, file: str, module) -> list[Item]:
        from ppl.syntax import ast as A

        items: list[Item] = []
        for node in module.items:
            span = node.span
            text = _slice(source, span)
            if isinstance(node, (A.ModelDef, A.ModelDo)):
                key, kind = node.name, "model"
            elif isinstance(node, A.FunDef):
                key, kind = node.name, "function"
            elif isinstance(node, A.Assign):
                key, kind = node.name, "constant"
            elif isinstance(node, A.Import):
                if not node.stdlib and file != INPUT_FILE:
                    # a file's import is relative to that file; the session's text lives in the working folder
                    target = pathlib.Path(file).resolve().parent / node.path
                    rel = os.path.relpath(target, pathlib.Path.cwd()).replace(os.sep, "/")
                    text = " " * (span.column - 1) + f"import {json.dumps(rel)}"
                key, kind = f"import {node.path}" if node.stdlib else f"import {text.strip()}", "import"
            elif isinstance(node, A.ExprStmt):
                self._counter += 1
                key, kind = f"#expr{self._counter}", "expression"
                shift = span.column - 1 - len(f"{VALUE_NAME} = ")
                text = f"{VALUE_NAME} = " + text.lstrip(" ")
                items.append(Item(key, kind, text, file, span.line, source, shift))
                continue
            else:
                self._counter += 1
                key, kind = f"#stmt{self._counter}", "statement"
            items.append(Item(key, kind, text, file, span.line, source))
        return items

    def add(self, source: str, file: str = INPUT_FILE) -> list[tuple[str, Any]]:
        """Add the definitions in ``source`` and evaluate its bare expressions.

        Returns ``(expression text, value)`` for each expression. All or nothing:
        on an error the session is unchanged.
        """
        from ppl.syntax import parse

        module = parse(source, file)
        new = self._items_of(source, file, module)
        items = dict(self.items)
        values = []
        exprs = []
        for it in new:
            if it.kind == "expression":
                exprs.append(it)
                continue
            items.pop(it.key, None)
            items[it.key] = it
        if len(exprs) < len(new) or self.module is None:
            loaded, table = self._load(list(items.values()))
        else:
            loaded, table = self.module, self._table
        for it in exprs:
            base = [v for k, v in items.items() if k != VALUE_NAME]
            mod, _ = self._load(base + [it])
            values.append((it.text[len(VALUE_NAME) + 3:], mod.constants[VALUE_NAME]))
        self.items, self.module, self._table = items, loaded, table
        return values

    def load_file(self, path: str) -> list[str]:
        """Add a file's definitions (the file must load on its own, as ``ppl check`` would)."""
        import ppl

        file = pathlib.Path(path).expanduser()
        if not file.exists():
            raise PPLError(f"no such file: {path}")
        if file.is_dir():
            raise PPLError(f"{path} is a folder, not a .ppl file")
        ppl.load(file)
        source = file.read_text(encoding="utf-8")
        before = set(self.items)
        from ppl.syntax import parse

        module = parse(source, str(path))
        new = [it for it in self._items_of(source, str(path), module) if it.kind != "expression"]
        items = dict(self.items)
        for it in new:
            items.pop(it.key, None)
            items[it.key] = it
        loaded, table = self._load(list(items.values()))
        self.items, self.module, self._table = items, loaded, table
        return [f"{it.key} ({it.kind}{', replaced' if it.key in before else ''})"
                for it in new if it.kind != "import" and not it.key.startswith("#")]

    def reset(self) -> None:
        self.items, self.module, self._table = {}, None, []

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
        return f"{it.file}, line {it.line}" if it.file != INPUT_FILE else "typed"

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

    # -- running models --------------------------------------------------------------
    def model(self, name: str | None):
        if not name:
            raise PPLError("name a model", hint="The session's models: " + (", ".join(self.models) or "none"))
        models = self.models
        if name not in models:
            have = ", ".join(models) or "none yet"
            raise PPLError(f"there is no model named '{name}' in the session (models: {have})",
                           hint="Define it, or :load a file that does.")
        return models[name]

    def arguments(self, model, tokens) -> tuple[list, dict]:
        """Model arguments and inference options from command tokens.

        Positional tokens fill the model's parameters in order; ``param=value``
        names one; a parameter left out takes the session constant of its name.
        ``method=``, ``samples=``, ``seed=``, ``warmup=``, ``chains=`` are options.
        """

        params = model_parameters(model)
        constants = self.constants
        positional, named, options = [], {}, {}
        for tok in tokens:
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)", tok, re.S)
            if m and m.group(1) in _OPTIONS and m.group(1) not in params:
                key, raw = m.groups()
                if key == "method":
                    options[key] = raw.strip().lower()
                else:
                    try:
                        options[key] = int(raw)
                    except ValueError:
                        raise PPLError(f"{key}= needs a whole number, not {raw!r}") from None
            elif m and m.group(1) in params:
                named[m.group(1)] = _json_value(m.group(2), constants)
            elif m:
                guess = did_you_mean(m.group(1), [*params, *sorted(_OPTIONS)])
                raise PPLError(f"'{m.group(1)}' is neither a parameter of '{model.name}' "
                               f"({', '.join(params) or 'none'}) nor an option ({', '.join(sorted(_OPTIONS))})",
                               hint=f"Did you mean {guess}=...?" if guess else None)
            else:
                positional.append(_json_value(tok, constants))
        if len(positional) > len(params):
            raise PPLError(f"the model '{model.name}' takes {len(params)} argument(s) "
                           f"({', '.join(params) or 'none'}), but was given {len(positional)}")
        values = dict(zip(params, positional))
        for k, v in named.items():
            if k in values:
                raise PPLError(f"the argument '{k}' of '{model.name}' is given twice")
            values[k] = v
        missing = []
        for p in params:
            if p not in values:
                if p in constants:
                    values[p] = constants[p]
                else:
                    missing.append(p)
        if missing:
            raise PPLError(f"the model '{model.name}' needs {', '.join(repr(m) for m in missing)}",
                           hint="Give them after the model's name (JSON values or constant names), "
                                "or define session constants of those names.")
        return [values[p] for p in params], options

    def ir(self, tokens) -> str:
        name, *rest = tokens or [None]
        model = self.model(name)
        args, options = self.arguments(model, rest)
        if options:
            raise PPLError(f":ir takes no options ({', '.join(options)})")
        return self.relabel(str(model.ir(*args)))

    def diagram(self, tokens) -> str:
        from ppl.inference.causal import diagram

        name, *rest = tokens or [None]
        model = self.model(name)
        args, options = self.arguments(model, rest)
        if options:
            raise PPLError(f":diagram takes no options ({', '.join(options)})")
        return self.relabel(str(diagram(model, *args)))

    def infer(self, tokens):
        """Run ``ppl.infer`` as ``:infer`` asks; returns the Posterior."""
        import ppl

        name, *rest = tokens or [None]
        model = self.model(name)
        args, options = self.arguments(model, rest)
        method_name = options.get("method")
        if method_name is not None and method_name not in METHODS:
            guess = did_you_mean(method_name, METHODS)
            raise PPLError(f"unknown method '{method_name}'; choose one of {', '.join(METHODS)}",
                           hint=f"Did you mean method={guess}?" if guess else None)
        if "depth" in options:
            if method_name not in (None, "enumerate"):
                raise PPLError("depth= bounds exact enumeration; it goes with method=enumerate")
            method = ppl.Enumerate(max_depth=options["depth"])
        else:
            program, leaves = model.program(*args)
            method = build_method(method_name, program, options.get("samples"), options.get("warmup"),
                                  options.get("chains"), leaves=leaves)
        return ppl.infer(model, *args, method=method, seed=options.get("seed", 0))


def _move(span: Span | None, table) -> Span | None:
    if span is None or span.file != SESSION_FILE:
        return span
    for start, n, it in table:
        if start <= span.line < start + n:
            line = it.line + span.line - start
            col = span.column + (it.column_shift if span.line == start else 0)
            end_line, end_col = span.end_line, span.end_column
            if end_line is not None and start <= end_line < start + n:
                if end_col is not None and end_line == start:
                    end_col += it.column_shift
                end_line = it.line + end_line - start
            elif end_line is not None:
                end_line, end_col = line, None
            return Span(it.file, line, max(col, 1), end_line, end_col, it.source)
    return span


def _relocate(err: PPLError, table) -> PPLError:
    for e in getattr(err, "errors", None) or []:
        _relocate(e, table)
    if err.span is not None:
        err.span = _move(err.span, table)
        err.args = (err.render(),)
    return err


def _relabel(text: str, table) -> str:
    def where(line: int) -> tuple[str, int] | None:
        moved = _move(Span(SESSION_FILE, line), table)
        return None if moved is None or moved.file == SESSION_FILE else (moved.file, moved.line)

    def ir_comment(m):
        got = where(int(m.group(1)))
        if got is None:
            return m.group(0)
        file, line = got
        return f"# line {line}" if file == INPUT_FILE else f"# {file}, line {line}"

    def paren(m):
        got = where(int(m.group(1)))
        return m.group(0) if got is None else f"({got[0]}, line {got[1]})"

    text = re.sub(r"# line (\d+)", ir_comment, text)
    return re.sub(re.escape(f"({SESSION_FILE}, line ") + r"(\d+)\)", paren, text)


# ---------------------------------------------------------------------------
# The loop


class Repl:
    """Executes what the user submits; ``execute(text)`` returns False to stop."""

    def __init__(self, write: Callable[[str], None]):
        self.write = write
        self.session = Session(write)
        self.failures = 0

    def execute(self, text: str) -> bool:
        if not text.strip():
            return True
        caught: list = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                if text.lstrip().startswith(":"):
                    return self._command(parse_command(text))
                word = text.strip()
                if word in _BARE_WORDS and word not in self.session.items:
                    # as Python answers `quit` and `help` typed without the call: do what was meant
                    if _BARE_WORDS[word] == "quit":
                        return False
                    self.write("Type :help for help (commands start with ':'), :quit or Ctrl-D to leave.")
                    self.write(HELP)
                    return True
                for _, value in self.session.add(text):
                    self.write(format_value(value))
        except PPLError as err:
            self.failures += 1
            self.write(self.session.relabel(self.session.relocate(err).render()))
        except KeyboardInterrupt:
            self.failures += 1
            self.write("interrupted")
        except RecursionError:
            self.failures += 1
            self.write("error: the model recursed deeper than Python allows: a recursive function needs a "
                       "base case that stops it (a branch that returns without calling it again).")
        except Exception as err:  # an internal error: report it, keep the session
            self.failures += 1
            self.write(f"internal error (a bug in ppl, please report it): {type(err).__name__}: {err}")
            if os.environ.get("PPL_DEBUG"):
                import traceback

                self.write(traceback.format_exc())
        finally:
            for w in caught:  # sampling diagnostics, in words
                self.write(f"warning: {w.message}")
        return True

    def _command(self, cmd: Command) -> bool:
        s = self.session
        if cmd.name == "quit":
            return False
        if cmd.name == "help":
            self.write(HELP)
        elif cmd.name == "reset":
            s.reset()
            self.write("the session is empty")
        elif cmd.name == "models":
            self.write(s.listing())
        elif cmd.name == "load":
            if len(cmd.args) != 1:
                raise PPLError(":load takes one file name", hint="For example :load examples/coin.ppl")
            path = cmd.args[0].strip("\"'")
            added = s.load_file(path)
            self.write(f"loaded {path}: " + (", ".join(added) if added else "no definitions"))
        elif cmd.name == "ir":
            self.write(s.ir(cmd.args))
        elif cmd.name == "diagram":
            self.write(s.diagram(cmd.args))
        elif cmd.name == "infer":
            post = s.infer(cmd.args)
            self.write(s.relabel(post.summary()))

            table = return_summary(post)
            if table:
                self.write(table)
        return True


def _submissions(lines: Iterator[str]) -> Iterator[str]:
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


def _history():
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    where = os.environ.get("PPL_HISTORY", "")
    if where.lower() in ("off", "0", "none", "memory"):
        return InMemoryHistory()
    path = pathlib.Path(where).expanduser() if where else pathlib.Path.home() / ".ppl_history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


def _prompt_session(repl: Repl):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.filters import has_completions
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.lexers import PygmentsLexer

    from prompt_toolkit.lexers import Lexer

    from ppl.syntax.highlight import PplLexer

    class _Highlight(Lexer):
        """.ppl highlighting, except on command lines."""

        def __init__(self):
            self.ppl = PygmentsLexer(PplLexer)

        def lex_document(self, document):
            if document.text.lstrip().startswith(":"):
                return lambda i: [("", document.lines[i])] if i < len(document.lines) else []
            return self.ppl.lex_document(document)

    kb = KeyBindings()

    @kb.add("enter", filter=~has_completions)
    def _enter(event):
        buf = event.current_buffer
        text = buf.document.text
        last_line = text.split("\n")[-1]
        lines = text.split("\n")
        blank_end = "\n" in text and not last_line.strip()
        if (not text.strip() or text.lstrip().startswith(":") or not needs_more(text)
                or (blank_end and (not brackets_open(text) or not lines[-2].strip()))):
            buf.validate_and_handle()  # a blank line ends the input unless a bracket is open; two always do
            return
        indent = re.match(r"[ \t]*", buf.document.current_line).group(0)
        if buf.document.current_line_before_cursor.rstrip().endswith(("{", "(", "[")):
            indent += "  "
        buf.insert_text("\n" + indent)

    @kb.add("escape", "enter")
    def _newline(event):
        event.current_buffer.insert_text("\n")

    @kb.add("}")
    def _close(event):
        buf = event.current_buffer
        before = buf.document.current_line_before_cursor
        if before and not before.strip() and len(before) >= 2:
            buf.delete_before_cursor(2)
        buf.insert_text("}")

    class _Names(Completer):
        def get_completions(self, document, complete_event):
            word = document.get_word_before_cursor(WORD=True)
            line = document.text_before_cursor
            if line.startswith(":") and " " not in line:
                for c in COMMANDS:
                    if (":" + c).startswith(line):
                        yield Completion(":" + c, start_position=-len(line))
                return
            word = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", line)
            if not word:
                return
            stem = word.group(0)
            from ppl.syntax import builtins as B

            names = [*repl.session.models, *repl.session.functions, *repl.session.constants,
                     *B.DISTRIBUTIONS, *B.FUNCTIONS]
            for n in sorted(set(names)):
                if n.startswith(stem) and n != stem:
                    yield Completion(n, start_position=-len(stem))

    return PromptSession(
        message="ppl> ", multiline=True, key_bindings=kb, history=_history(), lexer=_Highlight(),
        prompt_continuation=lambda width, line_number, wrap_count: "...  ".rjust(width),
        completer=_Names(), complete_while_typing=False, enable_history_search=False,
    )


def run_repl(input: TextIO | None = None, output: TextIO | None = None) -> int:
    """Run the interactive loop until ``:quit`` or end of input.

    With a terminal on both ends: prompt_toolkit (editing, history, highlighting).
    Otherwise lines are read from ``input`` (default stdin) and results written to
    ``output`` (default stdout), without prompts; the status is 1 if any input failed.
    """
    stdin = input if input is not None else sys.stdin
    stdout = output if output is not None else sys.stdout

    def write(text: str) -> None:
        print(text, file=stdout, flush=True)

    repl = Repl(write)
    interactive = _isatty(stdin) and _isatty(stdout) and input is None and output is None
    if not interactive:
        for text in _submissions(iter(stdin.readline, "")):
            if not repl.execute(text):
                break
        return 1 if repl.failures else 0

    write("ppl — a probabilistic programming language.  :help for help, :quit or Ctrl-D to leave.")
    session = _prompt_session(repl)
    while True:
        try:
            text = session.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        if not repl.execute(text):
            break
    return 0


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False

"""The loop: execute each submission against the session and write what it gives.

With a terminal on both ends the input is read with prompt_toolkit (``terminal.py``);
otherwise lines are read from the input stream with the same grouping rules and no
prompt, and the exit status is 1 if any input failed, so a piped script can be checked.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Callable, TextIO

from ppl.commands import format_value, return_summary
from ppl.stdlib.errors import PPLError

from .reading import HELP, Command, parse_command, submissions
from .session import Session

__all__ = ["Repl", "run_repl"]

#: bare words a Python user types to leave or to ask for help, and what they mean here
_BARE_WORDS = {"help": "help", "quit": "quit", "exit": "quit"}


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
            self.write(err.render())
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
            self.write(post.summary())
            table = return_summary(post)
            if table:
                self.write(table)
        return True


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
        for text in submissions(iter(stdin.readline, "")):
            if not repl.execute(text):
                break
        return 1 if repl.failures else 0

    from .terminal import prompt_session

    write("ppl — a probabilistic programming language.  :help for help, :quit or Ctrl-D to leave.")
    session = prompt_session(repl)
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

"""The REPL at a terminal: prompt_toolkit's editor with ``.ppl`` highlighting, history,
the Enter key that submits once the input is complete, and Tab completion of commands and names.

Interactively (a terminal on both ends) input is read with prompt_toolkit: multi-line
editing (Enter submits once brackets balance; a blank line submits what has no open
bracket, two blank lines submit anything; Ctrl-C discards the input; Esc-Enter inserts a
newline), history in ``~/.ppl_history`` (``PPL_HISTORY=off`` keeps it in memory,
``PPL_HISTORY=PATH`` moves it), highlighting with ``ppl.syntax.highlight.PplLexer`` and Tab
completion of commands and names.
"""

from __future__ import annotations

import os
import pathlib
import re

from .reading import COMMANDS, brackets_open, needs_more

__all__ = ["history", "prompt_session"]


def history():
    """Where input history is kept: ``PPL_HISTORY`` (``off``: in memory), else ``~/.ppl_history``."""
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


def prompt_session(repl):
    """A prompt_toolkit session for ``repl`` (a ``loop.Repl``): its editor, keys and completion."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.lexers import Lexer, PygmentsLexer

    from ppl.syntax.highlight import PplLexer

    class _Highlight(Lexer):
        """.ppl highlighting, except on command lines."""

        def __init__(self):
            self.ppl = PygmentsLexer(PplLexer)

        def lex_document(self, document):
            if document.text.lstrip().startswith(":"):
                return lambda i: [("", document.lines[i])] if i < len(document.lines) else []
            return self.ppl.lex_document(document)

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
        message="ppl> ", multiline=True, key_bindings=_key_bindings(), history=history(), lexer=_Highlight(),
        prompt_continuation=lambda width, line_number, wrap_count: "...  ".rjust(width),
        completer=_Names(), complete_while_typing=False, enable_history_search=False,
    )


def _key_bindings():
    """Enter submits complete input (else a newline, indented after an opening bracket);
    Esc-Enter inserts a newline; ``}`` on a blank indented line dedents first."""
    from prompt_toolkit.filters import has_completions
    from prompt_toolkit.key_binding import KeyBindings

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
    return kb

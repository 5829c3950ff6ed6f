"""Text -> AST: ``parse(source, file)`` and ``parse_file(path)``.

The grammar is ``grammar.lark`` (LALR(1)); the lexer (``lexer.py``) handles
newlines and brackets; the transformer of ``build.py`` turns lark's tree into
``ast`` nodes (without recursion, so long expressions are fine) and gives each a
span. lark's exceptions never leave this module: they are translated at the
boundary (``parse_errors.py``) into ``SyntaxError_`` that say, in words, what was
expected and what was found.

Parsing runs no code from the file: a .ppl file is data.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources

from lark import Lark
from lark.exceptions import LarkError, UnexpectedInput, VisitError

from ppl.stdlib.errors import PPLError, SyntaxError_

from . import ast
from .annotate import annotate
from .build import CURRENT_SOURCE, Build
from .habits import stan_syntax_error
from .lexer import CURRENT_FILE, PplLexer, end_of_file_span
from .parse_errors import translate

__all__ = ["parse", "parse_file"]


# -------------------------------------------------------------------- public API


def parse(source: str, file: str = "<string>", *, annotated: bool = True) -> ast.Module:
    """Parse the text of a .ppl file into an ``ast.Module``.

    ``file`` names the text in every span (a path, or an origin such as
    ``<repl:3>``). ``annotated=False`` leaves out the resolution facts of
    ``annotate`` (which depend on the other top-level definitions), for a
    caller that annotates the fragment later together with the rest of its
    program, as the REPL does with each entry.

    Raises ``SyntaxError_`` (with the file, line, column and what was expected)
    if the text is not a program; never a lark exception.

    >>> m = parse("model coin(flips: int[]) {\\n  p ~ beta(1, 1)\\n}")
    >>> m.models["coin"].body.stmts[0]
    Tilde(target=Name(id='p'), dist=Call(func=Name(id='beta'), args=(Num(value=1), Num(value=1))), observed=False)
    """
    if not isinstance(source, str):
        raise TypeError(f"parse() takes the program text as a str, not {type(source).__name__}")
    file_token = CURRENT_FILE.set(file)
    source_token = CURRENT_SOURCE.set(source)
    try:
        try:
            tree = _parser().parse(source)
        except UnexpectedInput as e:
            habit = stan_syntax_error(source, file, getattr(e, "line", None))
            raise (habit or translate(e, source, file, _parser().terminals)) from None
        except LarkError as e:  # any other lark failure is still the user's text
            raise SyntaxError_(f"cannot parse this text ({type(e).__name__})", end_of_file_span(file, source)) from None
        try:
            module = Build().transform(tree)
        except VisitError as e:
            if isinstance(e.orig_exc, PPLError):
                span = getattr(e.orig_exc, "span", None)
                habit = stan_syntax_error(source, file, getattr(span, "line", None))
                raise (habit or e.orig_exc) from None
            raise
        if not annotated:
            return module
        try:
            return annotate(module)
        except RecursionError:
            raise SyntaxError_("the program is nested too deeply to read", None) from None
    finally:
        CURRENT_FILE.reset(file_token)
        CURRENT_SOURCE.reset(source_token)


def parse_file(path: str | os.PathLike) -> ast.Module:
    """Read a .ppl file (UTF-8) and parse it; spans name the file as ``path`` was given."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not part of the program
            text = f.read()
    except UnicodeDecodeError as e:
        raise SyntaxError_(f"'{path}' is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse(text, file=path)


# ------------------------------------------------------------------- the parser


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer=PplLexer,
        propagate_positions=True,
        maybe_placeholders=True,
    )

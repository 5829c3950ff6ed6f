"""Syntax highlighting of .ppl files for pygments (and so for Sphinx, rich and the REPL).

    >>> from pygments import highlight
    >>> from pygments.formatters import NullFormatter
    >>> highlight("x ~ normal(0, 1)", PplLexer(), NullFormatter())
    'x ~ normal(0, 1)\\n'
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from .builtins import CONSTANTS, DISTRIBUTIONS, FUNCTIONS, SUPPORTS, TYPE_NAMES

__all__ = ["PplLexer"]


class PplLexer(RegexLexer):
    """Lexer for the ppl probabilistic programming language (.ppl files)."""

    name = "ppl"
    aliases = ["ppl"]
    filenames = ["*.ppl"]
    mimetypes = ["text/x-ppl"]

    tokens = {
        "root": [
            (r"[ \t\f\r]+", Whitespace),
            (r"\n", Whitespace),
            (r"#.*?$", Comment.Single),
            (r"\\\n", Text),
            (r"(model|def)(\s+)([A-Za-z_][A-Za-z0-9_]*)", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (words(("import", "let", "fn"), suffix=r"\b"), Keyword.Declaration),
            (words(("if", "then", "else", "for", "in", "return"), suffix=r"\b"), Keyword),
            (words(("observe", "factor", "condition", "estimator"), suffix=r"\b"), Keyword.Pseudo),
            (words(("param",), suffix=r"\b"), Name.Builtin),
            (words(("and", "or", "not"), suffix=r"\b"), Operator.Word),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (r"(:)(\s*)(" + "|".join(TYPE_NAMES) + r")\b", bygroups(Punctuation, Whitespace, Keyword.Type)),
            (words(tuple(DISTRIBUTIONS) + ("flat",), suffix=r"\b"), Name.Class),
            (words(tuple(SUPPORTS), suffix=r"\b"), Name.Constant),
            (words(tuple(FUNCTIONS), suffix=r"\b"), Name.Builtin),
            (words(tuple(CONSTANTS), suffix=r"\b"), Name.Constant),
            (r'"([^"\\\n]|\\.)*"', String.Double),
            (r"'([^'\\\n]|\\.)*'", String.Single),
            (r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"\.\.|=>|\*\*|//|==|!=|<=|>=|\+=|-=|\*=|/=|[-+*/%^@<>=~]", Operator),
            (r"[()\[\]{},;:.]", Punctuation),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r".", Text),
        ]
    }

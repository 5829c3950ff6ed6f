"""lark's parse errors -> ``SyntaxError_`` in words: what was expected, what was found, and a
hint for a habit from another language (``&&``, ``elif``, a reserved word used as a name)."""

from __future__ import annotations

from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ppl.stdlib.errors import PPLError, Span, SyntaxError_

from .lexer import describe_token, end_of_file_span, innermost_open_bracket, token_span

__all__ = ["translate", "KEYWORDS"]

#: the reserved words of the language
KEYWORDS = (
    "model", "def", "fn", "let", "if", "then", "else", "for", "in", "return", "observe",
    "factor", "condition", "import", "and", "or", "not", "true", "false", "estimator",
)

_EXPR_START = {"NAME", "INT", "REAL", "STRING", "TRUE", "FALSE", "LPAR", "LSQB", "NOT", "IF", "FN"}
_OPERATORS = {"COMPOP", "ADDOP", "MULOP", "POWOP", "OR", "AND", "AUGOP"}
_POSTFIX = {"LPAR", "LSQB"}

_CHAR_HINTS = {
    "&": "Write 'and' for logical and.",
    "|": "Write 'or' for logical or.",
    "!": "Write 'not' for logical negation ('!=' means not equal).",
    "?": "A choice between two values is written 'if c then a else b'.",
    "`": "Strings are written in single or double quotes.",
    "$": "Names are made of letters, digits and '_'.",
}


def translate(e: UnexpectedInput, source: str, file: str, terminals) -> SyntaxError_:
    """The error for lark's ``e`` in ``source``; ``terminals`` are the parser's (their literal text names
    them in words)."""
    if isinstance(e, UnexpectedCharacters):
        return _bad_character(e, source, file)
    if isinstance(e, UnexpectedToken):
        return _bad_token(e, source, file, terminals)
    line = getattr(e, "line", None)
    column = getattr(e, "column", None)
    if isinstance(line, int) and isinstance(column, int):
        span = Span(file, line, column, line, column, source)
    else:
        span = end_of_file_span(file, source)
    return SyntaxError_("unexpected end of the file", span)


def _bad_character(e: UnexpectedCharacters, source: str, file: str) -> SyntaxError_:
    pos = e.pos_in_stream
    char = source[pos] if pos is not None and pos < len(source) else ""
    span = Span(file, e.line, e.column, e.line, e.column, source)
    if char in "'\"":
        line_end = source.find("\n", pos)
        line_end = len(source) if line_end < 0 else line_end
        end_col = e.column + max(0, line_end - pos - 1)
        return SyntaxError_(
            f"this string is never closed: expected a closing {char} on the same line",
            Span(file, e.line, e.column, e.line, end_col, source),
            "A string cannot span several lines.",
        )
    if char == ".":
        return SyntaxError_(
            "unexpected '.': numbers need digits on both sides of the point (write 0.5, 1.0)",
            span,
            "A range is written with two dots: for i in 0..n.",
        )
    shown = char if char.isprintable() else repr(char)
    hint = _CHAR_HINTS.get(char)
    if hint is None and char and not char.isascii():
        hint = f"(U+{ord(char):04X}) Names use ASCII letters, digits and '_'."
    return SyntaxError_(f"unexpected character '{shown}'", span, hint)


def _terminal_words(name: str, value_of: dict[str, str]) -> str:
    words = {
        "NAME": "a name", "INT": "a number", "REAL": "a number", "STRING": "a string",
        "_SEP": "a new line", "$END": "the end of the file", "COMPOP": "a comparison",
        "ADDOP": "'+' or '-'", "MULOP": "'*' or '/'", "POWOP": "'^'", "AUGOP": "'+='",
        "TRUNC": "a truncation T[low, high]",
    }
    if name in words:
        return words[name]
    if name in value_of:
        return f"'{value_of[name]}'"
    return name.lower()


def _expected_words(accepts: set[str], value_of: dict[str, str]) -> list[str]:
    # '|' only in normal_lcdf(x | ...), 'estimator' only after a '~' for variational inference: not worth offering
    accepts = set(accepts) - {"VBAR", "ESTIMATOR"}
    out: list[str] = []
    if {"NAME", "INT", "LPAR"} <= accepts:
        out.append("an expression")
        accepts -= _EXPR_START | {"ADDOP"}
    operators = accepts & (_OPERATORS | _POSTFIX)
    has_operators = len(accepts & {"COMPOP", "MULOP", "POWOP", "OR", "AND"}) >= 2
    if has_operators:
        accepts -= operators
    if "$END" in accepts and "_SEP" in accepts:
        accepts.discard("$END")
    order = ["RPAR", "RSQB", "COMMA", "RBRACE", "LBRACE", "_SEP", "$END"]
    ranked = sorted(accepts, key=lambda t: (order.index(t) if t in order else -1, t))
    seen = set(out)
    for t in ranked:
        w = _terminal_words(t, value_of)
        if w not in seen:
            out.append(w)
            seen.add(w)
    if has_operators:
        out.append("an operator")
    return out


def _join_words(words: list[str]) -> str:
    if not words:
        return "something else"
    if len(words) > 6:
        return "one of " + ", ".join(words)
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _bad_token(e: UnexpectedToken, source: str, file: str, terminals) -> SyntaxError_:
    tok = e.token
    value_of = {t.name: t.pattern.value for t in terminals if t.pattern.type == "str"}
    try:
        accepts = set(e.accepts or e.expected)
    except (PPLError, LarkError, RecursionError):
        accepts = set(e.expected)
    span = token_span(tok, file, source)
    words = _expected_words(accepts, value_of)
    found = describe_token(tok)
    message = f"expected {_join_words(words)}, found {found}"
    hint = None
    value = str(tok.value)
    if tok.type in value_of and value in KEYWORDS and "NAME" in accepts:
        hint = f"'{value}' is a reserved word and cannot be used as a name."
    elif value in ("elif", "elsif", "elseif") and tok.type == "NAME":
        hint = "Write 'else if'."
    elif value == "=" and accepts & {"COMPOP", "THEN", "LBRACE", "RPAR", "COMMA", "RSQB"}:
        hint = "To compare two values, write '=='."
    elif "THEN" in accepts and value == "{":
        hint = "An if used as a value is written 'if c then a else b'; an if statement needs no '='."
    elif _name_of("..", value_of) in accepts:
        hint = "A loop is written 'for i in a..b', from a up to b - 1."
    elif value == ":" and "LBRACE" in accepts:
        hint = "Blocks are written in braces: { ... }, not with ':'."
    elif value == ".":
        hint = "A number needs digits after its point (1.0, not 1.); a range is written a..b."
    elif value in ("|", "||"):
        hint = "Write 'or' for logical or ('|' only separates the value in normal_lcdf(x | mu, sigma))."
    elif tok.type == "COMPOP":
        hint = "Comparisons do not chain: write a < b and b < c."
    elif tok.type in ("NAME", "INT", "REAL", "STRING") and "_SEP" in accepts:
        hint = "Is an operator or a ',' missing? Two statements on one line need a ';' between them."
    elif tok.type == "_SEP" and "an expression" in words:
        hint = "To continue an expression on the next line, end this line with an operator or open a bracket."
    if hint is None and accepts & {"RPAR", "RSQB"}:
        opener = innermost_open_bracket(source, tok)
        if opener is not None and opener[0] < span.line:
            hint = f"The '{opener[2]}' on line {opener[0]}, column {opener[1]} is not closed yet."
    return SyntaxError_(message, span, hint)


def _name_of(text: str, value_of: dict[str, str]) -> str | None:
    for name, value in value_of.items():
        if value == text:
            return name
    return None

"""The lexer of .ppl files: lark's basic lexer plus newline and bracket rules.

Statements end at a newline (or ``;``), but a newline is dropped where it
cannot end a statement, so that expressions flow over several lines:

* inside ``( )`` and ``[ ]`` (a ``{ }`` block nested in them restores
  newlines, so a lambda with a block body works inside a call);
* after a token that cannot end a statement (an operator, ``,``, ``{``,
  ``=>``, ``..``, ``then``, ``else``, ``and``, ``or``, ``not``); not after
  ``=`` or ``~``, so that ``x =`` with nothing after it is reported as such;
* before ``}``, ``else``, ``then`` and a binary operator: a line that starts
  with an operator continues the previous one (``}`` / ``else {`` and a
  leading ``+ beta[3] * x`` on the next line both work);
* at the start of the file; runs of separators fold into one.

Brackets are matched here: a closing bracket that does not match, or a bracket
left open at the end of the file, is reported with the position of the opening
bracket, which is where the user has to look.

The lexer keeps no state between calls: everything lives in the generator.
"""

from __future__ import annotations

from contextvars import ContextVar

from lark.lexer import BasicLexer, Lexer, LexerState, Token

from ppl.stdlib.errors import Span, SyntaxError_

__all__ = ["PplLexer", "CURRENT_FILE", "innermost_open_bracket", "MAX_NESTING", "token_span", "end_of_file_span", "describe_token"]

#: the deepest nesting of brackets accepted (deeper input is certainly not a model,
#: and the tree walkers recurse over it).
MAX_NESTING = 64

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")": "(", "]": "[", "}": "{"}

#: tokens after which a newline never ends a statement (by their text)
_CONTINUE_AFTER = {
    "(", "[", "{", ",", "=>", "..", ":", ".",
    "then", "else", "and", "or", "not", "in", "import", "model", "def", "fn",
    "observe", "let", "for", "if",
}
#: token types after which a newline never ends a statement (operators)
_CONTINUE_AFTER_TYPES = {"ADDOP", "MULOP", "POWOP", "COMPOP", "AUGOP", "OR", "AND", "NOT"}


def token_span(token: Token, file: str, source: str) -> Span:
    """The span of one token (lark's end column is exclusive; ours is inclusive)."""
    line = getattr(token, "line", None)
    column = getattr(token, "column", None)
    if line is None or column is None or token.type == "$END":
        return end_of_file_span(file, source)
    if token.type == "_SEP" and token.value.endswith("\n"):
        return Span(file, line, column, line, column, source)
    end_line = getattr(token, "end_line", None) or line
    end_column = getattr(token, "end_column", None)
    end_column = column if end_column is None else max(column, end_column - 1)
    return Span(file, line, column, end_line, end_column, source)


def end_of_file_span(file: str, source: str) -> Span:
    """A one-character span just after the last non-blank character of ``source``."""
    lines = source.splitlines() or [""]
    n = len(lines)
    while n > 1 and not lines[n - 1].strip():
        n -= 1
    text = lines[n - 1].rstrip()
    column = len(text) + 1
    return Span(file, n, column, n, column, source)


def describe_token(token: Token) -> str:
    """A token in words, for 'found ...' in messages."""
    kind = token.type
    if kind == "$END":
        return "the end of the file"
    if kind == "_SEP":
        return "';'" if token.value == ";" else "the end of the line"
    if kind == "NAME":
        return f"the name '{token.value}'"
    if kind in ("INT", "REAL"):
        return f"the number {token.value}"
    if kind == "STRING":
        text = token.value if len(token.value) <= 20 else token.value[:17] + "..."
        return f"the string {text}"
    return f"'{token.value}'"


def _truncation_follows(tok: Token, prev: Token | None, source: str) -> bool:
    """Whether this 'T' is Stan's truncation ``d T[a, b]``: right after an expression (a name
    cannot follow one anywhere else) and before '['. It becomes the token TRUNC, so that
    the grammar's other states keep their lookaheads (and their error messages)."""
    if prev is None or not (prev.type in ("NAME", "INT", "REAL") or prev.value in (")", "]")):
        return False
    rest = source[tok.end_pos:tok.end_pos + 64] if tok.end_pos is not None else ""
    return rest.lstrip(" \t").startswith("[")


class PplLexer(Lexer):
    """lark's BasicLexer, followed by the newline and bracket rules above."""

    __future_interface__ = 2

    def __init__(self, lexer_conf):
        self._basic = BasicLexer(lexer_conf)
        by_text = {t.pattern.value: t.name for t in lexer_conf.terminals if t.pattern.type == "str"}
        self._continue_before = {by_text.get("else", "ELSE"), by_text.get("}", "RBRACE")}
        self._continue_before |= {"ADDOP", "MULOP", "POWOP", "COMPOP", "OR", "AND"}

    def lex(self, lexer_state: LexerState, parser_state):
        source = lexer_state.text
        source = source.text if hasattr(source, "text") else source
        file = CURRENT_FILE.get()
        stack: list[Token] = []  # open brackets
        prev: Token | None = None  # the last token passed on
        pending: Token | None = None  # a separator waiting to see the next token
        for tok in self._basic.lex(lexer_state, parser_state):
            if tok.type == "_SEP":
                if stack and stack[-1].value != "{":
                    continue
                if prev is None or prev.type in _CONTINUE_AFTER_TYPES:
                    continue
                if prev.type != "STRING" and prev.value in _CONTINUE_AFTER:
                    continue
                if pending is None:
                    pending = tok
                continue
            separated = False  # a statement ended just before this token
            if pending is not None:
                if tok.type not in self._continue_before and tok.value not in ("then", ".."):
                    yield pending
                    separated = True
                pending = None
            text = tok.value
            if tok.type == "NAME" and text == "T" and not separated and _truncation_follows(tok, prev, source):
                tok = Token.new_borrow_pos("TRUNC", text, tok)
            if tok.type != "STRING":
                if text in _OPEN:
                    if len(stack) >= MAX_NESTING:
                        raise SyntaxError_(
                            f"brackets nested more than {MAX_NESTING} deep",
                            token_span(tok, file, source),
                            "Split the expression into named parts.",
                        )
                    stack.append(tok)
                elif text in _CLOSE:
                    _match_close(tok, stack, file, source)
            yield tok
            prev = tok
        if stack:
            opener = stack[-1]
            raise SyntaxError_(
                f"'{opener.value}' is never closed: expected '{_OPEN[opener.value]}' before the end of the file",
                token_span(opener, file, source),
            )


def innermost_open_bracket(source: str, token: Token) -> tuple[int, int, str] | None:
    """(line, column, bracket) of the innermost '(' or '[' still open where ``token`` starts."""
    stop = getattr(token, "start_pos", None)
    if stop is None:
        stop = len(source)
    stack: list[tuple[int, int, str]] = []
    line, col, i = 1, 1, 0
    quote = None
    while i < min(stop, len(source)):
        c = source[i]
        if quote:
            if c == "\\":
                i += 2
                col += 2
                continue
            if c == quote or c == "\n":
                quote = None
        elif c == "#":
            j = source.find("\n", i)
            j = len(source) if j < 0 else j
            col += j - i
            i = j
            continue
        elif c in "'\"":
            quote = c
        elif c in "([{":
            stack.append((line, col, c))
        elif c in ")]}" and stack:
            stack.pop()
        if c == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    if stack and stack[-1][2] != "{":
        return stack[-1]
    return None


def _match_close(tok: Token, stack: list[Token], file: str, source: str) -> None:
    want = _CLOSE[tok.value]
    if stack and stack[-1].value == want:
        stack.pop()
        return
    if not stack:
        raise SyntaxError_(
            f"found '{tok.value}' with no matching '{want}' before it",
            token_span(tok, file, source),
        )
    opener = stack[-1]
    raise SyntaxError_(
        f"found '{tok.value}' but the '{opener.value}' on line {opener.line}, column {opener.column} "
        f"is still open: expected '{_OPEN[opener.value]}' first",
        token_span(tok, file, source),
    )


#: the file name of the text being lexed, for spans (set by the parser around a parse)
CURRENT_FILE: ContextVar[str] = ContextVar("ppl_current_file", default="<string>")

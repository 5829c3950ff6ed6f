"""Text -> AST: ``parse(source, file)`` and ``parse_file(path)``.

The grammar is ``grammar.lark`` (LALR(1)); the lexer (``lexer.py``) handles
newlines and brackets; the transformer below turns lark's tree into ``ast``
nodes (without recursion, so long expressions are fine) and gives each a
span. lark's exceptions never leave this module: they are translated at the
boundary into ``SyntaxError_`` that say, in words, what was expected and what
was found.

Parsing runs no code from the file: a .ppl file is data.
"""

from __future__ import annotations

import math
import os
from contextvars import ContextVar
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from ppl.stdlib.errors import PPLError, Span, SyntaxError_

from . import ast
from .annotate import annotate
from .habits import stan_syntax_error
from .lexer import CURRENT_FILE, PplLexer, describe_token, end_of_file_span, innermost_open_bracket, token_span

__all__ = ["parse", "parse_file", "KEYWORDS"]

KEYWORDS = (
    "model", "def", "fn", "let", "if", "then", "else", "for", "in", "return", "observe",
    "factor", "condition", "import", "and", "or", "not", "true", "false", "estimator",
)

_SOURCE: ContextVar[str] = ContextVar("ppl_current_source", default="")

_MAX_INT = 2**63 - 1


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
    source_token = _SOURCE.set(source)
    try:
        try:
            tree = _parser().parse(source)
        except UnexpectedInput as e:
            habit = stan_syntax_error(source, file, getattr(e, "line", None))
            raise (habit or _translate(e, source, file)) from None
        except LarkError as e:  # any other lark failure is still the user's text
            raise SyntaxError_(f"cannot parse this text ({type(e).__name__})", end_of_file_span(file, source)) from None
        try:
            module = _Build().transform(tree)
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
        _SOURCE.reset(source_token)


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


def _span(meta) -> Span:
    file, source = CURRENT_FILE.get(), _SOURCE.get()
    if getattr(meta, "empty", True):
        return end_of_file_span(file, source)
    end_col = max(meta.column, meta.end_column - 1) if meta.end_line == meta.line else max(1, meta.end_column - 1)
    return Span(file, meta.line, meta.column, meta.end_line, end_col, source)


def _tok_span(tok: Token) -> Span:
    return token_span(tok, CURRENT_FILE.get(), _SOURCE.get())


def _error(message: str, span: Span, hint: str | None = None) -> SyntaxError_:
    return SyntaxError_(message, span, hint)


def _decode_string(tok: Token) -> str:
    body = tok.value[1:-1]
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt not in escapes:
                raise _error(
                    f"unknown escape '\\{nxt}' in a string",
                    _tok_span(tok),
                    "The escapes are \\n, \\t, \\\\, \\', \\\" and \\0.",
                )
            out.append(escapes[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _present(items):
    return tuple(i for i in items if i is not None)


def _assign_target(target, what: str):
    """``(name, indices)`` for ``x`` or ``x[i, j]`` on the left of ``=``; a SyntaxError_ otherwise."""
    if isinstance(target, ast.Name):
        return target.id, None
    if isinstance(target, ast.Index) and isinstance(target.base, ast.Name):
        return target.base.id, target.indices
    if isinstance(target, ast.Index) and isinstance(target.base, ast.Index):
        root = ast.root_name(target)
        if root is not None:
            raise _error(
                f"cannot assign to a chain of indices such as {root}[i][j]",
                target.span,
                f"Index once with all the positions: {root}[i, j] {what} ...",
            )
    found = _describe_expr(target)
    raise _error(
        f"the left of '{what}' must be a variable (x) or an indexed variable (x[i]), found {found}",
        target.span,
        "To compare two values, write '=='." if what == "=" and isinstance(target, ast.BinOp) else None,
    )


def _describe_expr(e) -> str:
    kinds = {
        ast.Call: "a function call", ast.Num: "a number", ast.Str: "a string", ast.Bool: "a boolean",
        ast.BinOp: "an operation", ast.UnaryOp: "an operation", ast.Array: "an array literal",
        ast.IfExpr: "an if-expression", ast.Lambda: "a function (fn)", ast.Index: "an indexed expression",
        ast.Name: "a name",
    }
    return kinds.get(type(e), "an expression")


@v_args(meta=True)
class _Build(Transformer_NonRecursive):
    """Builds AST nodes from the grammar's rules (one method per rule or alias)."""

    # ---- file level
    def start(self, meta, items):
        return ast.Module(_present(items), CURRENT_FILE.get(), span=_span(meta))

    def import_file(self, meta, items):
        return ast.Import(_decode_string(items[0]), False, span=_span(meta))

    def import_lib(self, meta, names):
        parts = [str(n) for n in names]
        if parts[0] != "stdlib" or len(parts) < 2:
            raise _error(
                f"cannot import '{'.'.join(parts)}': expected a file path in quotes or a library module such as stdlib.mixtures",
                _span(meta),
                f"Write import \"{parts[-1]}.ppl\" for a file next to this one, "
                "or import stdlib.<module> for the standard library (stdlib.discrete, stdlib.mixtures).",
            )
        return ast.Import("/".join(parts[1:]) + ".ppl", True, span=_span(meta))

    def model_def(self, meta, items):
        name, params, body = items
        return ast.ModelDef(str(name), params or (), body, span=_span(meta))

    def model_do(self, meta, items):
        name, base, *groups = items
        groups = [g for g in groups if g is not None]
        first_method, first_items = groups[0]
        methods = [str(m) for m, _ in groups]
        hint = (f"Write model {name} = {base}.do(site = value, ...), {base}.condition(site = value, ...) "
                f"or {base}.counterfactual(site = value, ...).do(site = value, ...).")
        for m, _ in groups:
            if str(m) not in ("do", "condition", "counterfactual"):
                raise _error(f"expected '{base}.do(...)', '{base}.condition(...)' or '{base}.counterfactual(...)' "
                             f"after 'model {name} =', not '{base}.{m}(...)'", _tok_span(m), hint)
        span = _span(meta)
        if methods == ["do"]:
            return ast.ModelDo(str(name), str(base), first_items, span=span)
        if methods == ["condition"]:
            return ast.ModelDo(str(name), str(base), first_items, "condition", span=span)
        if methods == ["counterfactual", "do"]:
            return ast.ModelDo(str(name), str(base), groups[1][1], "counterfactual", first_items, span=span)
        if methods == ["counterfactual"]:
            raise _error(f"'{base}.counterfactual(...)' says what was seen; the world it asks about needs "
                         "interventions too", _tok_span(first_method),
                         f"Write model {name} = {base}.counterfactual(site = value, ...).do(site = value, ...).")
        raise _error(f"'{base}.{methods[0]}(...).{methods[1]}(...)' is not a model this file can define",
                     _tok_span(groups[1][0]), hint)

    def do_group(self, meta, items):
        method, *rest = items
        return method, tuple(i for i in rest if i is not None)

    def do_set(self, meta, items):
        return ast.DoItem(items[0], items[1], False, span=_span(meta))

    def do_draw(self, meta, items):
        return ast.DoItem(items[0], items[1], True, span=_span(meta))

    def do_site(self, meta, items):
        tok = items[0]
        return _decode_string(tok) if tok.type == "STRING" else str(tok)

    def fun_def(self, meta, items):
        name, params, body = items
        return ast.FunDef(str(name), params or (), body, span=_span(meta))

    def params(self, meta, items):
        return _present(items)

    def param(self, meta, items):
        name, ann = items
        return ast.Param(str(name), ann, span=_span(meta))

    def type_ann(self, meta, items):
        name, dims = items
        return ast.TypeAnn(str(name), dims, span=_span(meta))

    def dims(self, meta, items):
        return tuple(items)

    # ---- statements
    def block(self, meta, items):
        return ast.Block(_present(items), span=_span(meta))

    def tilde(self, meta, items):
        return ast.Tilde(items[0], _truncate(items[1], items[2]), estimator=items[3], span=_span(meta))

    def estimator(self, meta, items):
        return ast.Str(_decode_string(items[0]), span=_span(meta))

    def observe(self, meta, items):
        return ast.Observe(items[0], _truncate(items[1], items[2]), span=_span(meta))

    def truncation(self, meta, items):
        _, low, high = items
        span = _span(meta)
        inf = lambda sign: ast.Num(sign * math.inf, span=span)  # noqa: E731
        return (low if low is not None else inf(-1), high if high is not None else inf(1), span)

    def assign(self, meta, items):
        target, value = items
        name, indices = _assign_target(target, "=")
        if indices is None:
            return ast.Assign(name, value, span=_span(meta))
        return ast.IndexAssign(name, indices, value, span=_span(meta))

    def aug_assign(self, meta, items):
        target, op, value = items
        name, indices = _assign_target(target, str(op))
        new = ast.BinOp(str(op)[0], target, value, span=_span(meta))
        if indices is None:
            return ast.Assign(name, new, span=_span(meta))
        return ast.IndexAssign(name, indices, new, span=_span(meta))

    def let(self, meta, items):
        return ast.Assign(str(items[0]), items[1], let=True, span=_span(meta))

    def factor(self, meta, items):
        return ast.Factor(items[0], span=_span(meta))

    def condition(self, meta, items):
        return ast.Condition(items[0], span=_span(meta))

    def return_stmt(self, meta, items):
        return ast.Return(items[0], span=_span(meta))

    def if_stmt(self, meta, items):
        cond, then, orelse = items
        if isinstance(orelse, ast.If):
            orelse = ast.Block((orelse,), span=orelse.span)
        return ast.If(cond, then, orelse, span=_span(meta))

    def for_stmt(self, meta, items):
        var, start, stop, body = items
        return ast.For(str(var), start, stop, body, span=_span(meta))

    def expr_stmt(self, meta, items):
        return ast.ExprStmt(items[0], span=_span(meta))

    # ---- expressions
    def lambda_expr(self, meta, items):
        return ast.Lambda(items[0] or (), items[1], span=_span(meta))

    lambda_block = lambda_expr

    def if_expr(self, meta, items):
        return ast.IfExpr(*items, span=_span(meta))

    def binop(self, meta, items):
        left, op, right = items
        op = "^" if op == "**" else str(op)
        return ast.BinOp(op, left, right, span=_span(meta))

    def unop(self, meta, items):
        op, operand = items
        if op == "-" and isinstance(operand, ast.Num):
            return ast.Num(-operand.value, span=_span(meta))
        return ast.UnaryOp(str(op), operand, span=_span(meta))

    def call(self, meta, items):
        func, args = items
        return ast.Call(func, args or (), span=_span(meta))

    def call_given(self, meta, items):
        func, first, rest = items
        if not (isinstance(func, ast.Name) and func.id in _GIVEN_FUNCTIONS):
            raise _error("'|' separates the value from the parameters only in a distribution function "
                         "such as normal_lcdf(x | mu, sigma)", _span(meta),
                         "Write 'or' for logical or.")
        return ast.Call(func, (first,) + tuple(rest or ()), span=_span(meta))

    def index(self, meta, items):
        base, indices = items
        return ast.Index(base, indices, span=_span(meta))

    def args(self, meta, items):
        return _present(items)

    def indices(self, meta, items):
        return _present(items)

    def slice(self, meta, items):
        return ast.Slice(items[0], items[1], span=_span(meta))

    def int_lit(self, meta, items):
        value = int(items[0])
        if value > _MAX_INT:
            raise _error(f"the integer {items[0]} is too large (the largest is {_MAX_INT})", _span(meta))
        return ast.Num(value, span=_span(meta))

    def real_lit(self, meta, items):
        value = float(items[0])
        if math.isinf(value):
            raise _error(f"the number {items[0]} is too large for a real (at most about 1.8e308)", _span(meta))
        return ast.Num(value, span=_span(meta))

    def str_lit(self, meta, items):
        return ast.Str(_decode_string(items[0]), span=_span(meta))

    def true_lit(self, meta, items):
        return ast.Bool(True, span=_span(meta))

    def false_lit(self, meta, items):
        return ast.Bool(False, span=_span(meta))

    def name(self, meta, items):
        return ast.Name(str(items[0]), span=_span(meta))

    def array(self, meta, items):
        return ast.Array(items[0] or (), span=_span(meta))



def _truncate(dist, truncation):
    """``d T[low, high]`` as the call ``truncated(d, low, high)`` (a missing bound is infinite)."""
    if truncation is None:
        return dist
    low, high, span = truncation
    whole = Span(span.file, dist.span.line, dist.span.column, span.end_line, span.end_column, span.source)
    return ast.Call(ast.Name("truncated", span=span), (dist, low, high), span=whole)


# the names that take Stan's f(x | params): the distribution functions (normal_lcdf, ...)
from .builtins.dist_functions import DIST_FUNCTIONS as _GIVEN_FUNCTIONS  # noqa: E402


# ------------------------------------------------------------ error translation

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


def _translate(e: UnexpectedInput, source: str, file: str) -> SyntaxError_:
    if isinstance(e, UnexpectedCharacters):
        return _bad_character(e, source, file)
    if isinstance(e, UnexpectedToken):
        return _bad_token(e, source, file)
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


def _bad_token(e: UnexpectedToken, source: str, file: str) -> SyntaxError_:
    tok = e.token
    parser = _parser()
    value_of = {t.name: t.pattern.value for t in parser.terminals if t.pattern.type == "str"}
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

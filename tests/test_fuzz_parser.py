"""Fuzzing the front end: whatever the text, parse + check raise only the language's errors.

Token soups, printable noise, and mutations (deleting, inserting, swapping
characters and tokens) of the valid reference programs. Any exception other
than SyntaxError_, CheckError or CheckErrors is a bug. The default run is
bounded; ``pytest -m slow`` runs many more examples.
"""

from __future__ import annotations

import pathlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppl.stdlib.errors import CheckError, Span, SyntaxError_
from ppl.syntax import CheckErrors, ast, check, parse
from ppl.syntax.parser import _parser

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "language.md"
PROGRAMS = re.findall(r"```ppl\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
# the appendix is long; split it into its models so that mutations stay cheap
PROGRAMS = PROGRAMS[:-1] + [p for p in re.split(r"\n(?=# \d+\. )", PROGRAMS[-1]) if p.strip()]

TOKENS = (
    "model def fn let if then else for in return observe factor condition import and or not true false "
    "x y mu sigma theta N i normal beta flat positive simplex interval iid sample flip mem len sum "
    "0 1 2 0.5 1e-3 'alice' \"bob\" stdlib "
    "+ - * / // % ^ ** @ == != < <= > >= = += ~ => .. : , ; . ( ) [ ] { } # \\"
).split() + ["\n", "\n", " ", "  ", "\t", "'", '"', "\\\n"]

TERMINAL_NAMES = {t.name for t in _parser().terminals} | {"$END"}

FAST = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=4000, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def front_end(text: str) -> None:
    """Parse and check ``text``; only the language's own errors may escape."""
    try:
        module = parse(text, "fuzz.ppl")
    except SyntaxError_ as e:
        _well_formed(e, text)
        return
    _spans_inside(module, text)
    try:
        errors = check(module, None)
    except (CheckErrors, CheckError) as e:  # pragma: no cover - check returns, but both are allowed
        e.render()
        return
    for e in errors:
        assert isinstance(e, CheckError)
        _well_formed(e, text)
    if errors:
        CheckErrors(errors).render()


def _well_formed(e, text: str) -> None:
    rendered = e.render()
    assert e.message and "Token(" not in rendered and "__ANON" not in rendered
    leaked = set(re.findall(r"\b[A-Z_$]{3,}\b", e.message)) & TERMINAL_NAMES
    assert not leaked, (leaked, e.message)
    if e.span is not None:
        assert e.span.line >= 1 and e.span.column >= 1


def _spans_inside(module: ast.Module, text: str) -> None:
    n = max(1, len(text.splitlines()))
    for node in ast.walk(module):
        assert isinstance(node.span, Span)
        assert 1 <= node.span.line <= n + 1


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s+|[A-Za-z_]\w*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|'[^'\n]*'|\"[^\"\n]*\"|\.\.|=>|\*\*|//|[=!<>+\-*/]=|.",
                      text)


@st.composite
def token_soup(draw):
    return "".join(draw(st.lists(st.sampled_from(TOKENS), max_size=40)))


@st.composite
def mutated_program(draw):
    """A valid program with a few character or token edits."""
    text = draw(st.sampled_from(PROGRAMS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "swap", "drop_token", "dup_token", "swap_tokens",
                                     "replace_token"]))
        if kind in ("delete", "insert", "swap"):
            if not text:
                break
            i = draw(st.integers(0, len(text) - 1))
            if kind == "delete":
                j = min(len(text), i + draw(st.integers(1, 8)))
                text = text[:i] + text[j:]
            elif kind == "insert":
                text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
            else:
                j = draw(st.integers(0, len(text) - 1))
                chars = list(text)
                chars[i], chars[j] = chars[j], chars[i]
                text = "".join(chars)
        else:
            toks = _tokens(text)
            if not toks:
                break
            i = draw(st.integers(0, len(toks) - 1))
            if kind == "drop_token":
                del toks[i]
            elif kind == "dup_token":
                toks.insert(i, toks[i])
            elif kind == "replace_token":
                toks[i] = draw(st.sampled_from(TOKENS))
            else:
                j = draw(st.integers(0, len(toks) - 1))
                toks[i], toks[j] = toks[j], toks[i]
            text = "".join(toks)
    return text


def test_the_seed_programs_are_valid():
    assert len(PROGRAMS) >= 20
    for text in PROGRAMS:
        assert check(parse(text)) == []


@FAST
@given(token_soup())
def test_token_soup(text):
    front_end(text)


@FAST
@given(mutated_program())
def test_mutated_programs(text):
    front_end(text)


@FAST
@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=60))
def test_printable_noise(text):
    front_end(text)


@pytest.mark.parametrize(
    "text",
    [
        "", "\n", ";", "#", "\\", "'", '"', "{", "}", "(", ")", "[", "]", "..", "model", "model m",
        "model m(", "model m() {", "x", "x =", "x ~", "x ~ normal(", "fn", "fn(x) =>", "if", "for i in",
        "import", 'import "', "import stdlib.", "\x00", "\ufeffmodel m() { }", "x = 1\r\ny = 2\r\n",
        "model m() { x = 1 }" * 50, "(" * 200 + ")" * 200, "[" * 70, "{" * 70, "-" * 5000 + "1",
        "not " * 3000 + "true", "x = " + "[" * 60 + "]" * 60, "model m() {\n" + "  x ~ normal(0, 1)\n" * 3 + "}",
    ],
)
def test_edge_cases(text):
    front_end(text)


def _run_slow(pytestconfig, strategy) -> None:
    """Run ``front_end`` on many examples, only when the slow tests were asked for (-m slow)."""
    if "slow" not in (pytestconfig.getoption("markexpr") or "") or "not slow" in pytestconfig.getoption("markexpr"):
        pytest.skip("many examples: run with -m slow")
    SLOW(given(strategy)(front_end))()


@pytest.mark.slow
def test_token_soup_slow(pytestconfig):
    _run_slow(pytestconfig, token_soup())


@pytest.mark.slow
def test_mutated_programs_slow(pytestconfig):
    _run_slow(pytestconfig, mutated_program())


@pytest.mark.slow
def test_unicode_noise_slow(pytestconfig):
    _run_slow(pytestconfig, st.text(max_size=200))

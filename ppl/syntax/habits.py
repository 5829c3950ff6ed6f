"""Habits from Stan that are not ppl, recognised in the user's text so that the
error says how to write the same thing in ppl (instead of what the parser
expected at the first token it could not read).

``stan_syntax_error(source, file, line)`` is asked by the parser when a
program does not parse: it looks at the line where parsing stopped (and, for a
whole Stan program, at the block headers) and returns a ``SyntaxError_`` or
None. ``stan_unbound_name(name)`` is asked by the checker for a name that is
not defined (``target``, ``print``, ``normal_lpdf``, ...) and returns
``(message, hint)`` or None.

Pure text functions: no parsing, no evaluation.
"""

from __future__ import annotations

import re

from ppl.stdlib.errors import Span, SyntaxError_

from .builtins import DISTRIBUTIONS

__all__ = ["stan_syntax_error", "stan_unbound_name"]

_BLOCK_RE = (r"^\s*(functions|data|transformed\s+data|parameters|transformed\s+parameters|model|"
                       r"generated\s+quantities)\s*\{")

_STAN_TYPES = ("real", "int", "vector", "row_vector", "matrix", "simplex", "ordered", "positive_ordered",
               "unit_vector", "cov_matrix", "corr_matrix", "cholesky_factor_corr", "cholesky_factor_cov",
               "array")
_DECL_RE = (
    r"^\s*(?P<type>" + "|".join(_STAN_TYPES) + r")\s*(?P<bounds><[^>]*>)?\s*(?P<dims>\[[^\]]*\])?"
    r"\s*(?P<elem>(?:real|int|vector|row_vector|matrix)\s*(?:<[^>]*>)?\s*(?:\[[^\]]*\])?)?"
    r"\s*(?P<name>[A-Za-z_]\w*)\s*(?P<init>=[^;]*)?;?\s*(?:(?://|#).*)?$"
)
_TARGET_RE = (r"\btarget\s*\+=\s*(?P<rhs>.*?);?\s*$")
_LPDF_RE = (r"\b(?P<dist>[a-z_]+?)_(?:lpdf|lpmf|lupdf|lupmf)\s*\(\s*(?P<value>[^|()]+?)\s*\|\s*"
                      r"(?P<args>[^()]*(?:\([^()]*\)[^()]*)*)\)")
_FOR_RE = (r"\bfor\s*\(\s*(?P<var>[A-Za-z_]\w*)\s+in\s+(?P<lo>[^:)]+?)\s*:\s*(?P<hi>[^)]+?)\s*\)")
_COMMENT_RE = (r"^\s*(//|/\*)")


def _span(file: str, source: str, line: int, text: str, col0: int | None = None, col1: int | None = None) -> Span:
    stripped = len(text) - len(text.lstrip())
    start = (col0 if col0 is not None else stripped) + 1
    end = col1 if col1 is not None else max(start, len(text.rstrip()))
    return Span(file, line, start, line, max(start, end), source)


def _lpdf_to_ppl(m: re.Match) -> tuple[str, str]:
    """``normal_lpdf(y | mu, 1)`` -> ("y ~ normal(mu, 1)", "log_density(normal(mu, 1), y)")."""
    d = f"{m.group('dist')}({m.group('args').strip()})"
    return f"{m.group('value')} ~ {d}", f"log_density({d}, {m.group('value')})"


def _ppl_type(m: re.Match) -> str:
    """The ppl annotation for a Stan declaration (a guide, not a full translation)."""
    base = m.group("type")
    dims = (m.group("dims") or "")[1:-1].strip()
    if base == "array":
        elem = (m.group("elem") or "real").split("<")[0].split("[")[0].strip()
        inner = re.search(r"\[([^\]]*)\]", m.group("elem") or "")
        sizes = [dims] + ([inner.group(1).strip()] if inner else [])
        base = "int" if elem == "int" else "real"
        return f"{base}[{', '.join(s for s in sizes if s)}]"
    if base == "int":
        return "int"
    if base == "real":
        return "real"
    if base == "matrix" or base.startswith(("cov_", "corr_", "cholesky_")):
        return f"real[{dims}]" if "," in dims else "real[,]"
    return f"real[{dims}]"


def _prior_hint(m: re.Match) -> str:
    name, bounds, base = m.group("name"), (m.group("bounds") or "").replace(" ", ""), m.group("type")
    if base == "simplex":
        return f"{name} ~ dirichlet(ones(K))"
    if base in ("ordered", "positive_ordered"):
        return f"{name} ~ flat({base}, K)"
    if "lower=0" in bounds and "upper" not in bounds:
        return f"{name} ~ half_normal(1)"
    if "lower=0" in bounds and "upper=1" in bounds:
        return f"{name} ~ beta(1, 1)"
    if base == "vector":
        return f"{name} ~ iid(normal(0, 1), N)"
    return f"{name} ~ normal(0, 1)"


def stan_syntax_error(source: str, file: str, line: int | None) -> SyntaxError_ | None:
    """A SyntaxError_ naming the Stan habit on or around ``line`` (1-based), or None."""
    lines = source.splitlines()
    # a whole Stan program: data { ... } parameters { ... } model { ... }
    for i, text in enumerate(lines, start=1):
        m = re.match(_BLOCK_RE, text)
        if m:
            word = " ".join(m.group(1).split())
            return SyntaxError_(
                f"'{word} {{ ... }}' is a block of a Stan program; ppl programs have no {word} block",
                _span(file, source, i, text, col1=text.index("{") + 1),
                "Write one model whose parameters are the data, and draw each Stan parameter with '~': "
                "data { int N; vector[N] y; } parameters { real mu; } model { y ~ normal(mu, 1); } is "
                "model m(N: int, y: real[N]) { mu ~ normal(0, 1); y ~ normal(mu, 1) } "
                "(transformed data and transformed parameters become '=' statements in the model, "
                "generated quantities a return value).",
            )
    if line is None or not (1 <= line <= len(lines)):
        return None
    text = lines[line - 1]
    m = re.search(_TARGET_RE, text)
    if m:
        lp = re.search(_LPDF_RE, m.group("rhs"))
        if lp:
            tilde, dens = _lpdf_to_ppl(lp)
            hint = f"Write {tilde} (or factor({dens}))."
        else:
            hint = f"Write factor({m.group('rhs').strip() or 'e'}) to add a term to the log density."
        return SyntaxError_(
            "'target += ...' is Stan's way to add to the log density; ppl writes factor(...)",
            _span(file, source, line, text, col0=m.start(), col1=len(text.rstrip())),
            hint,
        )
    m = re.search(_LPDF_RE, text)
    if m:
        _, dens = _lpdf_to_ppl(m)
        return SyntaxError_(
            f"'{m.group(0)}' is Stan's notation for a log density; ppl has no '|' in calls",
            _span(file, source, line, text, col0=m.start(), col1=m.end()),
            f"Write {dens}.",
        )
    m = re.search(_FOR_RE, text)
    if m:
        lo, hi, var = m.group("lo").strip(), m.group("hi").strip(), m.group("var")
        same = f"for {var} in 0..{hi}" if lo == "1" else f"for {var} in {lo}..{hi} + 1"
        return SyntaxError_(
            "'for (i in a:b)' is Stan's loop; ppl writes 'for i in a..b' without parentheses",
            _span(file, source, line, text, col0=m.start(), col1=m.end()),
            f"The range a..b runs from a up to b - 1, and arrays count from 0: Stan's "
            f"for ({var} in {lo}:{hi}) over indices is {same} {{ ... }} here.",
        )
    m = re.match(_COMMENT_RE, text)
    if m:
        return SyntaxError_(
            f"'{m.group(1)}' does not start a comment in ppl ('//' is integer division)",
            _span(file, source, line, text, col1=len(text) - len(text.lstrip()) + 2),
            "Comments start with '#' and run to the end of the line.",
        )
    m = re.match(_DECL_RE, text)
    if m and m.group("name") not in _STAN_TYPES:
        name = m.group("name")
        decl = text.strip().rstrip(";")
        if m.group("init"):
            hint = f"Bind it without a type: {name} {m.group('init').strip()}."
        elif _ppl_type(m).startswith("int"):
            hint = (f"Integers are data: make it a parameter of the model, with a type: "
                    f"model m({name}: {_ppl_type(m)}).")
        else:
            hint = (f"A parameter is drawn, not declared: {_prior_hint(m)}; data are parameters of the model, "
                    f"with a type: model m({name}: {_ppl_type(m)}).")
        return SyntaxError_(
            f"'{decl}' is a Stan declaration; ppl does not declare variables",
            _span(file, source, line, text),
            hint,
        )
    return None


_UNBOUND = {
    "target": ("'target' is Stan's log density; ppl has no 'target' variable",
               "Write factor(e) to add e to the log density (Stan's target += e), "
               "or y ~ normal(mu, sigma) for an observation."),
    "increment_log_prob": ("increment_log_prob(...) is old Stan; ppl writes factor(...)",
                           "Write factor(e) to add e to the log density."),
    "print": ("ppl has no print(...): a model's values are seen in its results",
              "Return the value from the model (return x), or bind it to a name in the model, "
              "and read it in the posterior summary."),
    "reject": ("ppl has no reject(...)",
               "To rule out the executions where a condition fails, write condition(c); "
               "for an error in the data, check the data before inference."),
    "fatal_error": ("ppl has no fatal_error(...)", "Check the data before inference."),
}


def stan_unbound_name(name: str) -> tuple[str, str] | None:
    """(message, hint) for an undefined name that is a Stan habit, or None."""
    if name in _UNBOUND:
        return _UNBOUND[name]
    m = re.fullmatch(r"([a-z_]+?)_(lpdf|lpmf|lupdf|lupmf|log|rng)", name)
    if m and m.group(1) in DISTRIBUTIONS:
        d = m.group(1)
        if m.group(2) == "rng":
            return (f"'{name}' is Stan's random number generator; ppl draws with sample(...)",
                    f"Write x = sample({d}(...)), or x ~ {d}(...) for a named random choice.")
        return (f"'{name}' is Stan's log density function; ppl writes log_density(d, x)",
                f"Write log_density({d}(...), y) for Stan's {d}_{m.group(2)}(y | ...), or y ~ {d}(...) "
                f"to observe y.")
    return None

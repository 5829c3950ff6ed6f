"""The parser: grammar, newline rules, precedence, spans, annotations, imports, errors."""

from __future__ import annotations

import builtins
import json
import pathlib
import re

import pytest

from ppl.stdlib.errors import CheckError, PPLError, Span, SyntaxError_
from ppl.syntax import CheckErrors, ast, check, load_file, parse, parse_file, resolve_imports
from ppl.syntax.builtins import DISTRIBUTIONS, FUNCTIONS, SUPPORTS
from ppl.syntax.highlight import PplLexer

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "language.md"
POSTERIORDB = pathlib.Path(__file__).resolve().parent / "data" / "posteriordb"


def doc_programs() -> list[str]:
    """The complete programs (```ppl blocks) of the language reference."""
    return re.findall(r"```ppl\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


COIN = """\
# coin.ppl: is this coin fair?
model coin(flips: int[]) {
  p ~ beta(1, 1)
  for i in 0..len(flips) {
    flips[i] ~ bernoulli(p)        # data on the left of ~ means observe
  }
  return p
}

def geometric(p) {                  # recursion; flip(p) is a random choice
  if flip(p) { return 0 }
  return 1 + geometric(p)
}

model ssm(ys: real[]) {
  x = 0.0
  for t in 0..len(ys) {             # carried state: compiled as a scan
    x ~ normal(0.9 * x, 1)          # address ("x", t), indexed automatically
    ys[t] ~ normal(x, 0.5)
  }
}
"""


def body(src: str):
    """The statements of the only model in ``src``."""
    (m,) = parse(src).models.values()
    return m.body.stmts


def expr(src: str):
    """The expression ``src`` (parsed as the value of a binding)."""
    (item,) = parse(f"x = {src}").items
    return item.value


# ------------------------------------------------------------------ the example


def test_issue_example_parses_and_is_annotated():
    m = parse(COIN, "coin.ppl")
    coin, geometric, ssm = m.items
    assert isinstance(coin, ast.ModelDef) and coin.name == "coin"
    assert coin.params == (ast.Param("flips", ast.TypeAnn("int", (None,))),)
    p, loop, ret = coin.body.stmts
    assert p == ast.Tilde(ast.Name("p"), ast.Call(ast.Name("beta"), (ast.Num(1), ast.Num(1))))
    assert not p.observed
    assert loop.var == "i" and loop.carried == () and loop.collected == ()
    assert loop.body.stmts[0].observed  # flips is data
    assert ret == ast.Return(ast.Name("p"))
    assert isinstance(geometric, ast.FunDef) and geometric.recursive
    assert not coin.recursive
    x0, scan = ssm.body.stmts
    assert scan.carried == ("x",)
    x_draw, y_obs = scan.body.stmts
    assert not x_draw.observed and y_obs.observed
    assert check(m) == []


def test_spans_point_at_the_text():
    m = parse(COIN, "coin.ppl")
    coin = m.items[0]
    assert coin.span.file == "coin.ppl" and coin.span.line == 2 and coin.span.column == 1
    p = coin.body.stmts[0]
    assert (p.span.line, p.span.column, p.span.end_line, p.span.end_column) == (3, 3, 3, 16)
    beta = p.dist
    assert (beta.span.column, beta.span.end_column) == (7, 16)
    assert p.span.source == COIN
    loop = coin.body.stmts[1]
    assert (loop.span.line, loop.span.end_line) == (4, 6)


def test_every_node_has_a_span_inside_the_source():
    for src in doc_programs() + [COIN]:
        m = parse(src, "doc.ppl")
        n_lines = len(src.splitlines())
        for node in ast.walk(m):
            s = node.span
            assert isinstance(s, Span) and s.file == "doc.ppl", node
            assert 1 <= s.line <= n_lines and s.column >= 1, node
            assert s.end_line >= s.line, node


def test_equality_ignores_layout():
    a = parse("model m(y: real[]) { mu ~ normal(0, 1); y ~ normal(mu, 1) }")
    b = parse("model m(y: real[]) {\n\n  mu ~ normal( 0 , 1 )   # prior\n  y ~ normal(mu,\n 1)\n}\n")
    assert a == b
    assert hash(a.items[0].body) == hash(b.items[0].body)


# ------------------------------------------------------------------ newlines


@pytest.mark.parametrize(
    "src",
    [
        "model m() {\n  x = 1 +\n      2\n}",
        "model m() {\n  x = 1\n      + 2\n}",
        "model m() {\n  x = (1\n   +\n 2)\n}",
        "model m() {\n  x = f(1,\n        2)\n}",
        "model m() {\n  x = [1,\n 2]\n}",
        "model m() {\n  x = 1 \\\n + 2\n}",
        "model m() { x = 1 + 2 }",
        "model m() {\n\n  # a comment\n\n  x = 1 + 2   # trailing\n\n}\n\n",
        "model m() { ; x = 1 + 2 ;; }",
    ],
)
def test_statements_continue_over_lines(src):
    (stmt,) = body(src)
    assert isinstance(stmt, ast.Assign) and stmt.name == "x"
    assert isinstance(stmt.value, (ast.BinOp, ast.Call, ast.Array))


def test_semicolons_and_newlines_separate_statements():
    assert len(body("model m() { a = 1; b = 2\n c = 3 }")) == 3


def test_else_on_the_next_line():
    (s,) = body("model m() {\n  if true {\n    x = 1\n  }\n  else if false {\n    x = 2\n  }\n  else {\n    x = 3\n  }\n}")
    assert isinstance(s, ast.If)
    (inner,) = s.orelse.stmts
    assert isinstance(inner, ast.If) and inner.orelse is not None


def test_lambda_with_block_inside_a_call():
    (s,) = body("model m(xs: real[]) {\n  ys = map(fn(x) {\n    y = x * 2\n    return y\n  }, xs)\n}")
    lam = s.value.args[0]
    assert isinstance(lam, ast.Lambda) and isinstance(lam.body, ast.Block) and len(lam.body.stmts) == 2


# ------------------------------------------------------------------ expressions


def test_precedence():
    assert expr("1 + 2 * 3") == ast.BinOp("+", ast.Num(1), ast.BinOp("*", ast.Num(2), ast.Num(3)))
    assert expr("-x ^ 2") == ast.UnaryOp("-", ast.BinOp("^", ast.Name("x"), ast.Num(2)))
    assert expr("2 ^ 3 ** 2") == ast.BinOp("^", ast.Num(2), ast.BinOp("^", ast.Num(3), ast.Num(2)))
    assert expr("x ^ -1") == ast.BinOp("^", ast.Name("x"), ast.Num(-1))
    assert expr("a - b - c") == ast.BinOp("-", ast.BinOp("-", ast.Name("a"), ast.Name("b")), ast.Name("c"))
    assert expr("not a and b or c") == ast.BinOp(
        "or", ast.BinOp("and", ast.UnaryOp("not", ast.Name("a")), ast.Name("b")), ast.Name("c"))
    assert expr("a + 1 < b * 2") == ast.BinOp(
        "<", ast.BinOp("+", ast.Name("a"), ast.Num(1)), ast.BinOp("*", ast.Name("b"), ast.Num(2)))
    assert expr("A @ x + b") == ast.BinOp("+", ast.BinOp("@", ast.Name("A"), ast.Name("x")), ast.Name("b"))
    assert expr("n // 2 % 3").op == "%"


def test_if_expression_and_lambda():
    e = expr("if a > 0 then a else -a")
    assert isinstance(e, ast.IfExpr) and e.orelse == ast.UnaryOp("-", ast.Name("a"))
    lam = expr("fn(p, q) => p + q")
    assert lam == ast.Lambda((ast.Param("p"), ast.Param("q")), ast.BinOp("+", ast.Name("p"), ast.Name("q")))
    nested = expr("fn(x) => if x then 1 else 2")
    assert isinstance(nested.body, ast.IfExpr)


def test_literals():
    assert expr("42") == ast.Num(42) and isinstance(expr("42").value, int)
    assert expr("2.5") == ast.Num(2.5) and expr("1e-10") == ast.Num(1e-10) and expr("3E2") == ast.Num(300.0)
    assert isinstance(expr("3E2").value, float)
    assert expr("-3") == ast.Num(-3)
    assert expr("true") == ast.Bool(True) and expr("false") == ast.Bool(False)
    assert expr("'alice'") == ast.Str("alice") and expr('"bob"') == ast.Str("bob")
    assert expr(r"'it\'s\n'") == ast.Str("it's\n")
    assert expr("[]") == ast.Array(())
    assert expr("[[1, 2], [3, 4],]") == ast.Array(
        (ast.Array((ast.Num(1), ast.Num(2))), ast.Array((ast.Num(3), ast.Num(4)))))


def test_indexing_and_slices():
    e = expr("X[n, d]")
    assert e == ast.Index(ast.Name("X"), (ast.Name("n"), ast.Name("d")))
    assert expr("x[a:b]").indices == (ast.Slice(ast.Name("a"), ast.Name("b")),)
    assert expr("X[:, 1]").indices == (ast.Slice(None, None), ast.Num(1))
    assert expr("x[:b]").indices == (ast.Slice(None, ast.Name("b")),)
    assert expr("x[a:]").indices == (ast.Slice(ast.Name("a"), None),)
    assert expr("f(x)[0][1]") == ast.Index(
        ast.Index(ast.Call(ast.Name("f"), (ast.Name("x"),)), (ast.Num(0),)), (ast.Num(1),))


def test_range_is_not_a_number():
    (loop,) = body("model m() { for i in 0..10 { } }")
    assert loop.start == ast.Num(0) and loop.stop == ast.Num(10)
    (loop,) = body("model m(n: int) { for i in 1..n-1 { } }")
    assert loop.stop == ast.BinOp("-", ast.Name("n"), ast.Num(1))


# ------------------------------------------------------------------ statements


def test_statement_forms():
    src = """model m(y: real[]) {
  let a = 1
  b = 2
  b += 3
  v = zeros(3)
  v[0] = 1.5
  v[1] *= 2
  mu ~ normal(0, 1)
  observe log(y) ~ normal(mu, 1)
  factor(-mu ^ 2)
  condition(mu > -5)
  sub(y)
  return mu
}
def sub(y) { return }
"""
    stmts = parse(src).models["m"].body.stmts
    kinds = [type(s).__name__ for s in stmts]
    assert kinds == ["Assign", "Assign", "Assign", "Assign", "IndexAssign", "IndexAssign", "Tilde",
                     "Observe", "Factor", "Condition", "ExprStmt", "Return"]
    assert stmts[0].let and not stmts[1].let
    assert stmts[2] == ast.Assign("b", ast.BinOp("+", ast.Name("b"), ast.Num(3)))
    assert stmts[5] == ast.IndexAssign("v", (ast.Num(1),), ast.BinOp(
        "*", ast.Index(ast.Name("v"), (ast.Num(1),)), ast.Num(2)))
    assert parse(src).functions["sub"].body.stmts == (ast.Return(None),)


def test_type_annotations():
    (m,) = parse("model m(a: int, b: real[], c: real[,], d: real[N, 2], e, f: bool[3]) { }").models.values()
    anns = {p.name: p.annotation for p in m.params}
    assert anns["a"] == ast.TypeAnn("int") and anns["a"].rank == 0
    assert anns["b"] == ast.TypeAnn("real", (None,))
    assert anns["c"] == ast.TypeAnn("real", (None, None)) and anns["c"].rank == 2
    assert anns["d"] == ast.TypeAnn("real", (ast.Name("N"), ast.Num(2)))
    assert anns["e"] is None
    assert anns["f"].dims == (ast.Num(3),)


def test_imports_and_constants():
    m = parse('import "lib/helpers.ppl"\nimport stdlib.gp.kernels\nlet data = [1, 2]\nn = 3\n')
    assert m.imports == (ast.Import("lib/helpers.ppl"), ast.Import("gp/kernels.ppl", stdlib=True))
    assert set(m.constants) == {"data", "n"}
    assert m.definitions().keys() == {"data", "n"}


# ------------------------------------------------------------------ annotation


def test_carried_and_collected():
    src = """model m(N: int, y: real[N]) {
  level = 0.0
  acc = zeros(N)
  for t in 0..N {
    step = y[t] - level
    level = level + 0.5 * step
    acc[t] = level
    z ~ normal(0, 1)
    w[t] ~ normal(z, 1)
  }
  for i in 0..N {
    for j in 0..N {
      u[i, j] ~ normal(0, 1)
    }
  }
}"""
    first, second = [s for s in body(src) if isinstance(s, ast.For)]
    assert first.carried == ("level", "acc")
    assert first.collected == ("z", "w")
    inner = second.body.stmts[0]
    assert inner.collected == ("u",) and second.collected == ("u",)
    assert second.carried == () and inner.carried == ()


def test_observed_depends_on_data():
    src = """let obs = [1.0, 2.0]
def lik(v, mu) {
  v ~ normal(mu, 1)
  fresh ~ normal(0, 1)
  return fresh
}
model m(y: real[]) {
  mu ~ normal(0, 1)
  obs ~ normal(mu, 1)
  y ~ normal(mu, 1)
  g = fn(q) { q ~ normal(0, 1) }
}"""
    m = parse(src)
    v, fresh, _ = m.functions["lik"].body.stmts
    assert v.observed and not fresh.observed
    mu, obs, y, g = m.models["m"].body.stmts
    assert not mu.observed and obs.observed and y.observed
    assert g.value.body.stmts[0].observed  # a lambda's parameter is data


def test_mutual_recursion_is_recursive():
    m = parse("def even(n) { return if n == 0 then true else odd(n - 1) }\n"
              "def odd(n) { return if n == 0 then false else even(n - 1) }\n"
              "def plain(n) { return even(n) }")
    fs = m.functions
    assert fs["even"].recursive and fs["odd"].recursive and not fs["plain"].recursive


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "src, words",
    [
        ("x = ", "expected an expression, found the end of the file"),
        ("model m() {\n  x = 1 +\n}", "expected an expression, found '}'"),
        ("model m( { }", "expected a name or ')', found '{'"),
        ("model m() { x = [1, 2) }", "found ')' but the '[' on line 1, column 17 is still open"),
        ("model m() {", "'{' is never closed"),
        ("model m() { }}", "found '}' with no matching '{'"),
        ("x = 'abc", "this string is never closed"),
        ("x = a $ b", "unexpected character '$'"),
        ("let if = 2", "'if' is a reserved word"),
        ("f(x) = 1", "the left of '=' must be a variable"),
        ("x[i][j] = 1", "cannot assign to a chain of indices"),
        ("import os.path", "expected a file path in quotes or a library module such as stdlib.mixtures"),
        ("x = 99999999999999999999", "too large"),
        ("x = 1e999", "too large"),
        ("x = 'a\\q'", "unknown escape"),
        ("x = (((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1)))))))))))))))))))))"
         "))))))))))))))))))))))))))))))))))))))))))))))", "nested more than"),
    ],
)
def test_syntax_errors_are_in_words(src, words):
    with pytest.raises(SyntaxError_) as info:
        parse(src, "bad.ppl")
    e = info.value
    assert words in e.render(), e.render()
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)
    text = e.render()
    assert text.startswith("Syntax error in 'bad.ppl', line ")
    for internal in ("__ANON", "RBRACE", "LPAR", "_SEP", "$END", "Token("):
        assert internal not in text


def test_parse_rejects_non_text():
    with pytest.raises(TypeError):
        parse(b"x = 1")


def test_parse_file(tmp_path):
    f = tmp_path / "m.ppl"
    f.write_text(COIN, encoding="utf-8")
    m = parse_file(f)
    assert m.file == str(f) and m.items[0].span.file == str(f)
    bad = tmp_path / "bad.ppl"
    bad.write_bytes(b"x = '\xff'")
    with pytest.raises(SyntaxError_, match="not UTF-8"):
        parse_file(bad)


def test_long_inputs():
    values = ", ".join(str(i * 0.5) for i in range(20000))
    m = parse(f"let data = [{values}]\n")
    assert len(m.constants["data"].value.items) == 20000
    long_sum = " + ".join(f"x{i}" for i in range(3000))
    m = parse(f"let s = {long_sum}\n")  # no recursion in the parser
    assert isinstance(m.items[0].value, ast.BinOp)
    errors = check(m)  # the checker recurses; it must fail as an error, not crash
    assert all(isinstance(e, CheckError) for e in errors)
    ok = parse("let s = " + " + ".join(["1"] * 150) + "\n")
    assert check(ok) == []


# ------------------------------------------------------------------ imports


def _write(folder: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_imports_resolve_relative_paths_and_stdlib(tmp_path):
    lib = tmp_path / "stdlib_lib"
    _write(lib, "priors.ppl", "model scale_prior() {\n  tau ~ half_cauchy(5)\n  return tau\n}\n")
    _write(tmp_path, "common/helpers.ppl", "let scale = 2.0\ndef double(x) { return x * scale }\n")
    main = _write(tmp_path, "project/main.ppl",
                  'import "../common/helpers.ppl"\nimport stdlib.priors\n'
                  "model m(y: real[]) {\n  tau = scale_prior()\n  mu ~ normal(0, double(tau))\n"
                  "  scale ~ normal(0, 1)\n}\n")
    m = resolve_imports(parse_file(main), main.parent, lib)
    helpers, priors = (i.module for i in m.imports)
    assert set(helpers.definitions()) == {"scale", "double"}
    assert set(priors.models) == {"scale_prior"}
    assert check(m) == []
    # an imported constant is data: 'scale ~' observes it
    assert m.models["m"].body.stmts[2].observed
    assert load_file(main, stdlib_dir=lib).models["m"].name == "m"


def test_imports_open_only_the_imported_files(tmp_path, monkeypatch):
    _write(tmp_path, "a.ppl", 'import "b.ppl"\nimport "c.ppl"\ndef fa(x) { return fb(x) + fc(x) }\n')
    _write(tmp_path, "b.ppl", 'import "c.ppl"\ndef fb(x) { return fc(x) }\n')
    _write(tmp_path, "c.ppl", "def fc(x) { return x }\n")
    _write(tmp_path, "secret.txt", "do not read")
    opened = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    m = resolve_imports(parse('import "a.ppl"\nmodel m() { x = fa(1) }\n', "main.ppl"), tmp_path, tmp_path / "lib")
    monkeypatch.undo()
    assert sorted(pathlib.Path(p).name for p in opened) == ["a.ppl", "b.ppl", "c.ppl"]
    a = m.imports[0].module
    assert a.imports[1].module is a.imports[0].module.imports[0].module  # c.ppl is read once
    assert check(m) == []


@pytest.mark.parametrize(
    "imp, words",
    [
        ('import "/etc/passwd.ppl"', "import paths are relative"),
        ('import "notes.txt"', "only .ppl files can be imported"),
        ('import "missing.ppl"', "there is no file 'missing.ppl'"),
        ("import stdlib.missing", "the standard library has no file 'missing.ppl'"),
    ],
)
def test_bad_imports(tmp_path, imp, words):
    _write(tmp_path, "notes.txt", "x")
    with pytest.raises(CheckErrors) as info:
        resolve_imports(parse(imp + "\n", "main.ppl"), tmp_path, tmp_path / "lib")
    assert words in info.value.render()


def test_import_cycle_shows_the_chain(tmp_path):
    _write(tmp_path, "a.ppl", 'import "b.ppl"\n')
    _write(tmp_path, "b.ppl", 'import "c.ppl"\n')
    _write(tmp_path, "c.ppl", 'import "a.ppl"\n')
    with pytest.raises(CheckErrors, match=r"import cycle: a.ppl -> b.ppl -> c.ppl -> a.ppl"):
        load_file(tmp_path / "a.ppl")


def test_syntax_error_in_an_imported_file_names_that_file(tmp_path):
    _write(tmp_path, "lib/broken.ppl", "def f(x) {\n  return x +\n}\n")
    with pytest.raises(SyntaxError_) as info:
        resolve_imports(parse('import "lib/broken.ppl"\n', "main.ppl"), tmp_path)
    assert info.value.span.file == "lib/broken.ppl" and info.value.span.line == 3


def test_names_from_imports_conflict(tmp_path):
    _write(tmp_path, "one.ppl", "def f(x) { return x }\n")
    m = resolve_imports(parse('import "one.ppl"\ndef f(y) { return y }\n', "main.ppl"), tmp_path)
    (e,) = check(m)
    assert "'f' is already defined, imported from 'one.ppl' on line 1" in e.message


# ------------------------------------------------------------------ documents


@pytest.mark.parametrize("i", range(len(doc_programs())))
def test_reference_programs_parse_and_check(i):
    src = doc_programs()[i]
    assert check(parse(src, f"language.md#{i}")) == []


def test_reference_lists_every_builtin():
    text = DOC.read_text(encoding="utf-8")
    for name in list(FUNCTIONS) + list(DISTRIBUTIONS) + list(SUPPORTS) + ["flat", "pi", "inf"]:
        assert re.search(rf"`{name}\b", text), name


def test_reference_has_the_seventeen_models():
    appendix = doc_programs()[-1]
    assert len(parse(appendix).models) == 17


_POSTERIORS = {
    "kilpisjarvi": "kilpisjarvi_mod-kilpisjarvi", "blr": "sblrc-blr",
    "logmesquite_logvolume": "mesquite-logmesquite_logvolume", "kidscore_momiq": "kidiq-kidscore_momiq",
    "kidscore_interaction": "kidiq-kidscore_interaction", "logmesquite": "mesquite-logmesquite",
    "nes": "nes2000-nes", "eight_schools_noncentered": "eight_schools-eight_schools_noncentered",
    "eight_schools_centered": "eight_schools-eight_schools_centered", "arK": "arK-arK",
    "arma11": "arma-arma11", "garch11": "garch-garch11",
    "low_dim_gauss_mix": "low_dim_gauss_mix-low_dim_gauss_mix", "hmm_example": "hmm_example-hmm_example",
    "gp_pois_regr": "gp_pois_regr-gp_pois_regr", "gp_regr": "gp_pois_regr-gp_regr",
    "lotka_volterra": "hudson_lynx_hare-lotka_volterra",
}


@pytest.mark.parametrize("name", sorted(_POSTERIORS))
def test_posteriordb_models_check_against_their_data(name):
    path = POSTERIORDB / f"{_POSTERIORS[name]}.data.json"
    assert path.is_file(), f"{path} ships with the repository (tests/data/posteriordb)"
    import dataclasses

    m = parse(doc_programs()[-1], "appendix.ppl")
    items = tuple(i for i in m.items if getattr(i, "name", None) in (name, "dz_dt"))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert check(dataclasses.replace(m, items=items), data) == []


# ------------------------------------------------------------------ misc


def test_highlighting_covers_every_reference_program():
    lexer = PplLexer()
    assert lexer.aliases == ["ppl"] and "*.ppl" in lexer.filenames
    for src in doc_programs():
        tokens = list(lexer.get_tokens(src))
        assert "".join(v for _, v in tokens) == src if src.endswith("\n") else src + "\n"
        assert not [v for t, v in tokens if "Error" in str(t)]


def test_no_code_is_run_from_a_program():
    for path in (ROOT / "ppl" / "syntax").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\b(eval|exec|compile)\(", text), path.name
        assert "literal_eval" not in text and "__import__" not in text


def test_errors_are_user_errors():
    assert issubclass(CheckErrors, PPLError) and issubclass(SyntaxError_, PPLError)

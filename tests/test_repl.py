"""The REPL: its core (commands, accumulation, error recovery) in-process, and a
whole session typed into a pseudo-terminal as a person would type it."""

from __future__ import annotations

import fcntl
import io
import os
import pathlib
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest

from ppl import repl as R
from ppl.stdlib.errors import PPLError

TWO_COINS = """model two() {
  a ~ bernoulli(0.5)
  b ~ bernoulli(0.5)
  condition(a == 1 or b == 1)
  return a
}"""


def run_script(text: str) -> tuple[int, str]:
    out = io.StringIO()
    code = R.run_repl(io.StringIO(text), out)
    return code, out.getvalue()


# ---------------------------------------------------------------------------
# Reading input


@pytest.mark.parametrize("text, more", [
    ("model m() {", True),
    ("model m() {\n  x ~ normal(0, 1)\n}", False),
    ("x = [1, 2,", True),
    ("x = 1 +", True),
    ("x = a and", True),
    ("x = if a then", True),
    ("x = 1", False),
    ("x =", False),               # as in the language: the statement ends, and the error says so
    ("x ~", False),
    ("y = f(1) # a comment with {", False),
    ("s = \"{\"", False),
    ("model m() { }}", False),     # too many closers: submit, and let the parser say where
    ("", False),
])
def test_needs_more(text, more):
    assert R.needs_more(text) is more


def test_submissions_group_lines_until_complete():
    # a blank line inside open brackets is still typing; two blank lines submit anyway
    lines = ["", "x = 1", "model m() {", "  y ~ normal(0, 1)", "}", ":models", "model bad( {", "", "", "2 * x",
             "def f(a) {"]
    got = list(R.submissions(iter(lines)))
    assert got == ["x = 1", "model m() {\n  y ~ normal(0, 1)\n}", ":models", "model bad( {", "2 * x", "def f(a) {"]


def test_a_command_line_ends_unfinished_text():
    got = list(R.submissions(iter(["model m() {", ":quit"])))
    assert got == ["model m() {", ":quit"]


# ---------------------------------------------------------------------------
# Commands and arguments


def test_parse_command_and_aliases():
    assert R.parse_command(":infer coin [1, 0, 1] method=enumerate") == \
        R.Command("infer", ("coin", "[1, 0, 1]", "method=enumerate"))
    assert R.parse_command("  :q").name == "quit"
    assert R.parse_command(":exit").name == "quit"
    assert R.parse_command(":load 'my file.ppl'").args == ("'my file.ppl'",)


def test_unknown_command_suggests():
    with pytest.raises(PPLError, match="unknown command ':inf'") as e:
        R.parse_command(":inf coin")
    assert "Did you mean :infer?" in e.value.render()


def test_split_arguments_keeps_brackets_and_strings_whole():
    assert R.split_arguments('m [[1, 2], [3, 4]] {"a": 1}  "x y" seed=3') == \
        ["m", "[[1, 2], [3, 4]]", '{"a": 1}', '"x y"', "seed=3"]
    with pytest.raises(PPLError, match="unbalanced brackets"):
        R.split_arguments("m [1, 2")


@pytest.mark.parametrize("value, text", [
    (3, "3"), (2.5, "2.5"), (True, "true"), ("a", "'a'"),
    ([1, 2], "[1, 2]"),
])
def test_format_value_plain(value, text):
    assert R.format_value(value) == text


def test_format_value_arrays():
    import jax.numpy as jnp
    import numpy as np

    assert R.format_value(jnp.asarray([1.0, 2.5])) == "[1.0, 2.5]"
    assert R.format_value(np.eye(2, dtype=np.int32)) == "[[1, 0], [0, 1]]"
    assert R.format_value(np.asarray(True)) == "true"
    assert R.format_value(np.float32(0.1)) == "0.1"
    assert R.format_value(np.arange(60)).endswith("... (60 in all)]")


# ---------------------------------------------------------------------------
# The session


def test_definitions_accumulate_and_a_later_one_replaces():
    s = R.Session()
    assert s.add("n = 3") == []
    s.add("model m(k) {\n  x ~ normal(0, 1)\n  return x * k\n}")
    s.add("def twice(v) { return 2 * v }")
    assert set(s.models) == {"m"} and set(s.functions) == {"twice"}
    assert int(s.constants["n"]) == 3
    s.add("n = 5")                       # replaces, no 'defined twice' error
    assert int(s.constants["n"]) == 5
    assert list(s.items) == ["m", "twice", "n"]
    s.add("n = 1; k = n + 1")           # two items on one line
    assert int(s.constants["k"]) == 2


def test_bare_expression_is_evaluated_against_the_session():
    s = R.Session()
    assert [R.format_value(v) for _, v in s.add("1 + 2")] == ["3"]
    s.add("xs = [1.0, 2.0, 4.0]")
    (_, v), = s.add("sum(xs) / len(xs)")
    assert abs(float(v) - 7 / 3) < 1e-6
    (_, v), = s.add("len(xs) * 2")
    assert R.format_value(v) == "6"
    assert "_" not in s.items and "_" not in s.constants


def test_errors_leave_the_session_unchanged_and_point_at_what_was_typed():
    s = R.Session()
    s.add("n = 3")
    s.add(TWO_COINS)
    before = dict(s.items)
    with pytest.raises(PPLError) as e:
        s.add("model bad( {\n}")
    text = e.value.render()
    assert "Syntax error in '<repl:3>', line 1, column 12" in text   # the third entry typed
    assert "  1 | model bad( {" in text and re.search(r"\n\s+\|\s{12}\^", text)
    with pytest.raises(PPLError) as e:
        s.add("model m() {\n  z ~ normal(0, sigam)\n  return z\n}")
    text = e.value.render()
    assert "Semantic error in '<repl:4>', line 2, column 17" in text   # line 2 of what was typed
    assert "'sigam' is not defined" in text
    with pytest.raises(PPLError, match="'nope' is not defined"):
        s.add("nope + 1")
    assert s.items == before and set(s.models) == {"two"}


def test_a_redefinition_that_breaks_an_older_definition_is_refused_there():
    s = R.Session()
    s.add("n = 3")
    s.add("model m() {\n  for i in 0..n { y ~ normal(0, 1) }\n}")
    with pytest.raises(PPLError) as e:
        s.add('n = "three"')
    text = e.value.render()
    assert "'<repl:2>', line 2" in text and "for i in 0..n" in text   # the model's own text
    assert int(s.constants["n"]) == 3


def test_load_file_adds_definitions_and_errors_name_the_file(tmp_path):
    good = tmp_path / "lib.ppl"
    good.write_text("bias = 0.7\n\nmodel flip_it() {\n  h ~ bernoulli(bias)\n  return h\n}\n")
    bad = tmp_path / "bad.ppl"
    bad.write_text("model b() {\n  x ~ normal(0, 1)\n  y ~ normal(x, oops)\n}\n")
    s = R.Session()
    added = s.load_file(str(good))
    assert added == ["bias (constant)", "flip_it (model)"]
    assert "flip_it" in s.listing() and f"{good}, line 3" in s.listing()
    with pytest.raises(PPLError) as e:
        s.load_file(str(bad))
    assert f"'{bad}', line 3" in e.value.render()
    with pytest.raises(PPLError, match="no such file"):
        s.load_file(str(tmp_path / "missing.ppl"))
    assert set(s.models) == {"flip_it"}


def test_load_file_keeps_its_imports_working(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "helpers.ppl").write_text("def sq(v) { return v * v }\n")
    (tmp_path / "sub" / "main.ppl").write_text('import "helpers.ppl"\n\nk = sq(3)\n')
    monkeypatch.chdir(tmp_path)
    s = R.Session()
    s.load_file("sub/main.ppl")
    assert int(s.constants["k"]) == 9


def test_arguments_positional_named_and_from_constants():
    s = R.Session()
    s.add("flips = [1, 0]\nmodel coin(flips, a) {\n  p ~ beta(a, 1)\n  for i in 0..len(flips) { flips[i] ~ bernoulli(p) }\n}")
    model = s.model("coin")
    args, opts = s.arguments(model, ["[1, 1, 1]", "2", "method=importance", "samples=50", "seed=4"])
    assert args == [[1, 1, 1], 2] and opts == {"method": "importance", "samples": 50, "seed": 4}
    args, _ = s.arguments(model, ["a=2.5"])
    assert [int(v) for v in args[0]] == [1, 0] and args[1] == 2.5
    with pytest.raises(PPLError, match="needs 'a'"):
        s.arguments(model, [])
    with pytest.raises(PPLError, match="not a constant of the session"):
        s.arguments(model, ["ys", "1"])
    with pytest.raises(PPLError, match="takes 2 argument"):
        s.arguments(model, ["[1]", "1", "2"])
    with pytest.raises(PPLError, match="neither a parameter"):
        s.arguments(model, ["colour=3"])
    with pytest.raises(PPLError, match="no model named 'coins'"):
        s.model("coins")


def test_ir_lines_refer_to_what_was_typed():
    s = R.Session()
    s.add("n = 1")
    s.add("model m() {\n  x ~ normal(0, 1)\n  return x\n}")
    text = s.ir(["m"])
    assert "sample 'x' ~ Normal" in text and "# line 2" in text


# ---------------------------------------------------------------------------
# Entries: each parsed once, with its own origin


def test_an_error_in_entry_n_points_at_that_entry_as_typed():
    s = R.Session()
    s.add("n = 3")
    s.add("xs = [1.0, 2.0]\nys = [3.0]")
    with pytest.raises(PPLError):
        s.add("model bad( {")                                  # a failed entry keeps its number
    with pytest.raises(PPLError) as e:
        s.add("model m() {\n  z ~ normal(0, 1)\n  w ~ normal(z, sigam)\n}")
    span = e.value.errors[0].span if getattr(e.value, "errors", None) else e.value.span
    assert (span.file, span.line, span.column, span.end_column) == ("<repl:4>", 3, 17, 21)
    text = e.value.render()
    assert "in '<repl:4>', line 3, column 17 to column 21" in text
    assert "  3 |   w ~ normal(z, sigam)" in text and re.search(r"\n\s+\|\s{17}\^{5}\n", text), text
    with pytest.raises(PPLError) as e:
        s.add("2 * n + nope")                                  # a bare expression: no shifted columns
    assert "'<repl:5>', line 1, column 9 to column 12" in e.value.render()
    assert s.entries == 5 and set(s.constants) == {"n", "xs", "ys"}
    assert {it.file for it in s.items.values()} == {"<repl:1>", "<repl:2>"}
    assert s.items["ys"].node.span.line == 2                   # line 2 of entry 2, as typed


def test_an_error_while_running_points_at_the_entry_that_defined_the_model():
    s = R.Session()
    s.add("xs = [1.0, 2.0]")
    s.add("model m(k: int) {\n  x ~ normal(0, 1)\n  return x + xs[k]\n}")
    with pytest.raises(PPLError) as e:
        s.ir(["m", "5"])
    text = e.value.render()
    assert "in '<repl:2>', line 3, column 17" in text and "  3 |   return x + xs[k]" in text, text


def test_a_model_redefined_in_a_later_entry_replaces_it_everywhere():
    s = R.Session()
    s.add("model coin() {\n  a ~ bernoulli(0.5)\n  return a\n}")
    s.add("model pair() {\n  c = coin()\n  d ~ bernoulli(0.5)\n  return c + d\n}")
    assert abs(float(s.infer(["pair", "method=enumerate"]).mean()) - 1.0) < 1e-6
    s.add("model coin() {\n  a ~ bernoulli(0.9)\n  h ~ bernoulli(0.5)\n  return a\n}")
    assert abs(float(s.infer(["coin", "method=enumerate"]).mean()) - 0.9) < 1e-6
    assert abs(float(s.infer(["pair", "method=enumerate"]).mean()) - 1.4) < 1e-6   # pair calls the new coin
    assert list(s.models) == ["pair", "coin"] and s.items["coin"].file == "<repl:3>"
    assert "sample 'h' ~ Bernoulli" in s.ir(["coin"])
    with pytest.raises(PPLError, match="'coin' takes 0 argument|takes 0"):
        s.add("x = 1\nmodel pair() {\n  c = coin(x)\n  return c\n}")    # checked against the session
    assert set(s.constants) == set() and "x" not in s.items


def test_a_long_session_parses_each_entry_once(monkeypatch):
    import ppl.syntax
    import ppl.syntax.parser

    parsed: list[tuple[str, int]] = []
    real = ppl.syntax.parser.parse

    def counting(source, file="<string>", **options):
        parsed.append((file, len(source)))
        return real(source, file, **options)

    monkeypatch.setattr(ppl.syntax.parser, "parse", counting)
    monkeypatch.setattr(ppl.syntax, "parse", counting)
    s = R.Session()
    s.add("model m(k) {\n  x ~ normal(0, 1)\n  return x * k\n}")
    for i in range(2, 31):
        s.add(f"c{i} = {i}" if i % 3 else f"c{i - 1} * 2")
    assert [f for f, _ in parsed] == [f"<repl:{i}>" for i in range(1, 31)]
    assert max(n for _, n in parsed[1:]) <= len("c29 = 29")     # only the entry's own text
    assert int(s.constants["c29"]) == 29 and "m" in s.models


def test_printed_ir_and_errors_have_no_relocation_artifacts(tmp_path):
    lib = tmp_path / "lib.ppl"
    lib.write_text("# a comment\n\nmodel g() {\n  u ~ normal(0, 1)\n  v ~ normal(u, 1)\n}\n")
    s = R.Session()
    s.add("n = 1")
    s.add("\n\nmodel m() {\n  x ~ normal(0, 1)\n\n  y ~ normal(x, 1)\n  return y\n}")
    s.load_file(str(lib))
    text = s.ir(["m"])
    assert re.search(r"sample 'x' ~ Normal.*# line 4\n", text) and re.search(r"sample 'y' ~ Normal.*# line 6\n",
                                                                             text), text
    text = s.ir(["g"])
    assert re.search(r"sample 'u' ~ Normal.*# line 4\n", text) and re.search(r"sample 'v' ~ Normal.*# line 5\n",
                                                                             text), text
    code, out = run_script("n = 1\nmodel m() {\n  x ~ normal(0, 1)\n  return x\n}\n:ir m\n:infer nope\nm2 = \n")
    for shown in (text, out):
        assert "<session>" not in shown and "relocat" not in shown
    assert "# line 2" in out and "<repl:3>" in out
    assert not hasattr(R.Session, "relocate") and not hasattr(R.Session, "relabel")


def test_typed_imports_resolve_against_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "helpers.ppl").write_text("def sq(v) { return v * v }\nscale = 2\n")
    monkeypatch.chdir(tmp_path)
    s = R.Session()
    s.add('import "helpers.ppl"')
    (_, v), = s.add("sq(3) * scale")
    assert int(v) == 18
    with pytest.raises(PPLError) as e:
        s.add('import "missing.ppl"')
    assert "'<repl:3>', line 1" in e.value.render() and "no file 'missing.ppl'" in e.value.render()


def test_infer_by_enumeration_is_exact():
    s = R.Session()
    s.add(TWO_COINS)
    post = s.infer(["two", "method=enumerate"])
    assert post.method == "Enumerate"
    assert abs(post.mean() - 2 / 3) < 1e-6


@pytest.mark.filterwarnings("ignore::ppl.inference.mcmc.checks.SamplingWarning")  # 400 draws: R-hat, ESS
@pytest.mark.parametrize("method, name", [("importance", "Importance"), ("smc", "SMC"), ("mh", "MH"),
                                           ("gibbs", "Gibbs")])
def test_infer_takes_the_sampling_methods_and_their_options(method, name):
    """:infer with method=, samples=, warmup=, chains= and seed= (the options ppl run has), on a
    conjugate coin whose posterior mean is (1 + 3) / (2 + 4) = 2/3."""
    s = R.Session()
    s.add("model coin(flips: int[]) {\n  p ~ beta(1, 1)\n  flips ~ bernoulli(p)\n  return p\n}")
    opts = ["samples=400", "seed=3"] + (["warmup=200", "chains=2"] if method in ("mh", "gibbs") else [])
    post = s.infer(["coin", "[1, 1, 0, 1]", f"method={method}", *opts])
    assert post.method == name
    x = np.asarray(post.samples["p"], dtype=np.float64)
    if post.weights is None:
        from ppl.inference.diagnostics import ess_bulk

        assert x.shape == (2, 400)
        mean, se = x.mean(), x.std() / np.sqrt(float(ess_bulk(x)))
    else:
        assert x.shape == (400,)
        w = post.weights
        mean = float(np.sum(w * x))
        se = float(np.sqrt(np.sum(w**2 * (x - mean) ** 2)))
    assert abs(mean - 2 / 3) < 4 * se                   # z < 4 at seed 3


def test_infer_refuses_an_unknown_method_and_lists_them():
    s = R.Session()
    s.add(TWO_COINS)
    with pytest.raises(PPLError) as info:
        s.infer(["two", "method=magic"])
    for m in ("enumerate", "importance", "smc", "nuts", "hmc", "mh", "gibbs"):
        assert m in info.value.message


# ---------------------------------------------------------------------------
# The loop, non-interactively


def test_run_repl_script_end_to_end():
    script = "\n".join([
        "1 + 2",
        TWO_COINS,
        ":infer two method=enumerate",
        "model bad( {",
        "",
        ":models",
        ":ir two",
        ":nonsense",
        ":reset",
        ":models",
        ":quit",
        "this is never read",
    ])
    code, out = run_script(script)
    assert code == 1                       # some input failed
    assert out.splitlines()[0] == "3"
    assert "Enumerate on 'two'" in out and "0.6667" in out
    assert "return value:" in out and "1  0.6667" in out
    assert "Syntax error in '<repl:3>', line 1, column 12" in out   # commands are not entries
    assert re.search(r"models:\n  two\(\)", out)
    assert "program two():" in out
    assert "unknown command ':nonsense'" in out
    assert "the session is empty" in out and "no definitions yet" in out
    assert "never read" not in out
    assert "Traceback" not in out


def test_run_repl_clean_script_exits_zero_and_help_lists_commands():
    code, out = run_script(":help\nx = 2\nx * 21\n")
    assert code == 0
    for c in R.COMMANDS:
        assert f":{c}" in out
    assert out.rstrip().endswith("42")


def test_internal_errors_are_reported_and_the_session_survives(monkeypatch):
    r = R.Repl(lambda text: lines.append(text))
    lines: list[str] = []

    def boom(tokens):
        raise ZeroDivisionError("x")

    monkeypatch.setattr(r.session, "ir", boom)
    r.execute("n = 2")
    assert r.execute(":ir m") is True
    assert lines[-1].startswith("internal error (a bug in ppl")
    r.execute("n + 1")
    assert lines[-1] == "3"


def test_history_location(monkeypatch, tmp_path):
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    from ppl.repl import terminal

    monkeypatch.setenv("PPL_HISTORY", "off")
    assert isinstance(terminal.history(), InMemoryHistory)
    monkeypatch.setenv("PPL_HISTORY", str(tmp_path / "h" / "hist"))
    assert isinstance(terminal.history(), FileHistory)
    assert (tmp_path / "h" / "hist").exists()
    home = tmp_path / "home"
    (home / ".ppl_history").mkdir(parents=True)   # cannot be opened as a file, even by root
    monkeypatch.delenv("PPL_HISTORY")
    monkeypatch.setenv("HOME", str(home))
    assert isinstance(terminal.history(), InMemoryHistory)


# ---------------------------------------------------------------------------
# A person at a terminal

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


class Terminal:
    """``ppl repl`` in a pseudo-terminal, read and typed into like a person would."""

    def __init__(self, cwd: pathlib.Path, env: dict):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 110, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ppl.cli", "repl"], stdin=slave, stdout=slave, stderr=slave,
            cwd=cwd, env=env, start_new_session=True, close_fds=True,
        )
        os.close(slave)
        self.raw = b""
        self.pos = 0      # how far expect() has read in the plain text

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")

    def _pump(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:   # the child has closed the terminal
            return False
        self.raw += data
        return bool(data)

    def expect(self, pattern: str, timeout: float = 90.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            m = re.compile(pattern).search(self.text, self.pos)
            if m:
                self.pos = m.end()
                return m
            if time.monotonic() > deadline or not self._pump(0.1):
                raise AssertionError(f"did not see {pattern!r}; the terminal shows:\n{self.text[self.pos:]}")

    def type(self, keys: str) -> None:
        for ch in keys:
            os.write(self.master, ch.encode())
            time.sleep(0.002)

    def line(self, text: str) -> None:
        self.type(text + "\r")
        time.sleep(0.05)

    def close(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        try:
            while self.proc.poll() is None and time.monotonic() < deadline:
                if not self._pump(0.1):
                    break
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.master)


@pytest.fixture
def terminal(tmp_path):
    env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", PPL_HISTORY=str(tmp_path / "history"),
               COLUMNS="110", LINES="40")
    t = Terminal(tmp_path, env)
    yield t
    if t.proc.poll() is None:
        t.proc.kill()
        t.proc.wait()


def test_a_session_at_the_terminal(terminal, tmp_path):
    t = terminal
    t.expect(r"ppl>")
    # a multi-line definition, typed as a person types it: the REPL indents after '{'
    for line in ["model two() {", "a ~ bernoulli(0.5)", "b ~ bernoulli(0.5)", "condition(a == 1 or b == 1)",
                 "return a", "}"]:
        t.line(line)
    t.expect(r"ppl>")
    assert re.search(r"\x1b\[[0-9;]*m(bernoulli)", t.raw.decode()), "no syntax highlighting seen"
    t.line(":infer two method=enumerate")
    t.expect(r"Enumerate on 'two'")
    t.expect(r"\ba\s+│\s+0\.6667")
    t.expect(r"return value:\s*\n\s*0\s+0\.3333\s*\n\s*1\s+0\.6667")
    t.expect(r"ppl>")
    # a syntax error: an open brace continues the input, even over a blank line; two blank lines submit it
    t.line("model bad( {")
    t.line("")
    t.line("")
    t.expect(r"Syntax error in '<repl:2>', line 1, column 12")
    m = t.expect(r"1 \| model bad\( \{\n(.*)\n")
    assert re.fullmatch(r"\s+\|\s{12}\^", m.group(1)), m.group(1)
    t.expect(r"expected a name or '\)'")
    # the session is alive and kept its model
    t.line(":models")
    t.expect(r"models:\s*\n\s+two\(\)")
    t.line("1 + 2")
    t.expect(r"\n3\n")
    t.line(":quit")
    assert t.close() == 0
    history = (tmp_path / "history").read_text()
    assert ":infer two method=enumerate" in history and "condition(a == 1 or b == 1)" in history


def test_ctrl_d_leaves(terminal):
    terminal.expect(r"ppl>")
    terminal.line("2 * 21")
    terminal.expect(r"\n42\n")
    terminal.expect(r"ppl>")
    terminal.type("\x04")
    assert terminal.close() == 0


def test_infer_takes_a_support_bound_and_its_hint_says_so():
    code, out = run_script("model pk() {\n  k ~ poisson(3)\n  return k\n}\n:infer pk method=enumerate\n"
                           ":infer pk bound=5\n")
    assert ":infer ... bound=K" in out  # the hint of the first :infer is the REPL's own option
    assert "took only 5 values" in out and "0.2748" in out  # P(k = 3 | k < 5)

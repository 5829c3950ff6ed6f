"""REPL friction: a blank line inside an open brace keeps reading; ``help``, ``quit`` and ``exit``
typed without the colon do what a Python user means; mistyped methods, options and commands get a
"did you mean"."""

from __future__ import annotations

import io

import pytest

from ppl import repl as R
from ppl.stdlib.errors import PPLError

GAPPED = """model coin(flips) {
  p ~ beta(1, 1)

  for i in 0..len(flips) {

    observe flips[i] ~ bernoulli(p)
  }
}
"""


def run_script(text: str) -> tuple[int, str]:
    out = io.StringIO()
    code = R.run_repl(io.StringIO(text), out)
    return code, out.getvalue()


# --------------------------------------------------------------------------- blank lines


@pytest.mark.parametrize("text, open_", [
    ("model m() {\n  x ~ normal(0, 1)\n", True),
    ("model m() {\n  x ~ normal(0, 1)\n}", False),
    ("x = [1,\n", True),
    ('s = "{"', False),
    ("y = 1  # {", False),
    ("", False),
])
def test_brackets_open(text, open_):
    assert R.brackets_open(text) is open_


def test_a_blank_line_inside_a_model_does_not_submit_it():
    got = list(R.submissions(iter(GAPPED.splitlines())))
    assert got == [GAPPED.rstrip()]


def test_a_model_with_blank_lines_loads_and_runs():
    code, out = run_script(GAPPED + ":models\n:infer coin [1, 1, 0, 1] method=importance samples=4000\n")
    assert code == 0 and "Syntax error" not in out and "coin(flips)" in out, out
    row = next(line for line in out.splitlines() if line.startswith("│ p "))
    mean = float(row.split("│")[2])
    assert abs(mean - 4 / 6) < 0.05, row  # Beta(4, 2): the loop observed all four flips


def test_two_blank_lines_submit_a_broken_definition_so_the_user_is_never_stuck():
    got = list(R.submissions(iter(["model bad( {", "", "", "x = 2"])))
    assert got == ["model bad( {", "x = 2"]
    code, out = run_script("model bad( {\n\n\nx = 2\nx * 3\n")
    assert code == 1 and "Syntax error in '<repl:1>', line 1" in out and "\n6\n" in out, out


def test_a_blank_line_after_a_complete_or_operator_ended_line_still_submits():
    assert list(R.submissions(iter(["x = 1 +", "", "y = 2"]))) == ["x = 1 +", "y = 2"]


# --------------------------------------------------------------------------- help, quit, exit


@pytest.mark.parametrize("word", ["quit", "exit", "  quit  "])
def test_quit_and_exit_without_the_colon_leave(word):
    code, out = run_script(f"x = 2\n{word}\nx * 21\n")
    assert "42" not in out and "not defined" not in out and code == 0, out


def test_help_without_the_colon_helps():
    code, out = run_script("help\n")
    assert code == 0 and "Type :help for help" in out and ":infer NAME" in out and "not defined" not in out


def test_a_session_constant_named_help_is_still_a_value():
    code, out = run_script("help = 7\nhelp\n")
    assert code == 0 and out.strip().splitlines()[-1] == "7", out


# --------------------------------------------------------------------------- did you mean


@pytest.mark.parametrize("typed, meant", [(":infr", ":infer"), (":modles", ":models"), (":lod", ":load"),
                                          (":hlep", ":help"), (":quti", ":quit")])
def test_a_mistyped_command_gets_a_did_you_mean(typed, meant):
    with pytest.raises(PPLError) as e:
        R.parse_command(typed + " x")
    assert f"unknown command '{typed}'" in e.value.render() and f"Did you mean {meant}?" in e.value.render()


def test_a_command_far_from_every_command_gets_the_list():
    with pytest.raises(PPLError) as e:
        R.parse_command(":zzzzzz")
    assert "Type :help for the list of commands." in e.value.render()


MODEL = "model two() {\n  a ~ bernoulli(0.5)\n  return a\n}\n"


@pytest.mark.parametrize("typed, meant", [("nutz", "nuts"), ("enumrate", "enumerate"), ("gibs", "gibbs"),
                                          ("importnce", "importance")])
def test_a_mistyped_method_gets_a_did_you_mean(typed, meant):
    code, out = run_script(MODEL + f":infer two method={typed}\n")
    assert code == 1 and f"unknown method '{typed}'" in out and f"Did you mean method={meant}?" in out, out


def test_a_mistyped_option_gets_a_did_you_mean():
    code, out = run_script(MODEL + ":infer two sampels=10\n")
    assert code == 1 and "'sampels' is neither a parameter" in out and "Did you mean samples=...?" in out, out


def test_did_you_mean_returns_nothing_for_nonsense():
    assert R.did_you_mean("qqqqq", ["nuts", "mh"]) is None
    assert R.did_you_mean("NUTZ", ["nuts", "mh"]) == "nuts"


# --------------------------------------------------------------------------- at a terminal


@pytest.fixture
def terminal(tmp_path):
    import os

    from test_repl import Terminal

    env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", PPL_HISTORY=str(tmp_path / "history"),
               COLUMNS="110", LINES="40")
    t = Terminal(tmp_path, env)
    yield t
    if t.proc.poll() is None:
        t.proc.kill()
        t.proc.wait()


def test_at_the_terminal_a_blank_line_inside_braces_keeps_the_model_open(terminal):
    t = terminal
    t.expect(r"ppl>")
    for line in ["model two() {", "a ~ bernoulli(0.5)", "", "b ~ bernoulli(0.5)", "return a + b", "}"]:
        t.line(line)
    t.expect(r"ppl>")
    t.line(":infer two method=enumerate")
    t.expect(r"Enumerate on 'two'")
    t.expect(r"ppl>")
    t.line("help")
    t.expect(r"Type :help for help")
    t.expect(r"ppl>")
    t.line("quit")
    assert t.close() == 0
    assert "Syntax error" not in t.text and "not defined" not in t.text, t.text

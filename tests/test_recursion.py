"""Recursion without a base case: one clear error at the user's recursive call,
in both front ends (ppl/evaluate/, semantics/recursion.py), never a raw
RecursionError and never advice to use a method that fails the same way."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import ppl
from ppl import dist
from ppl.stdlib.errors import ModelError

ENDLESS = """def count(n) {
  return 1 + count(n + 1)
}

model m() {
  x ~ normal(0, 1)
  return count(0) + x
}
"""

ENDLESS_RANDOM = """def geo() {
  if flip(0.5) {
    return 1 + geo()
  }
  return geo()
}

model m() {
  return geo()
}
"""

GEOMETRIC = """def geometric() {
  if flip(0.5) {
    return 0
  }
  return 1 + geometric()
}

model m() {
  return geometric()
}
"""


@pytest.mark.parametrize("src,lines,name", [(ENDLESS, (2,), "count"), (ENDLESS_RANDOM, (3, 5), "geo")])
def test_ppl_endless_recursion_names_the_function_and_line(src, lines, name):
    module = ppl.loads(src, file="rec.ppl")
    with pytest.raises(ModelError) as err:
        ppl.infer(module.m, method=ppl.Importance(num_particles=4), seed=0)
    e = err.value
    assert e.span is not None and e.span.line in lines  # a recursive call (geo has two)
    text = e.render()
    assert f"the function '{name}' calls itself without end" in text
    assert "base case" in text
    assert "importance" not in text.lower()
    assert e.__cause__ is None and e.__suppress_context__


def test_ppl_recursion_with_a_base_case_still_runs():
    module = ppl.loads(GEOMETRIC)
    post = ppl.infer(module.m, method=ppl.Importance(num_particles=300), seed=0)
    # E[failures] of a geometric(1/2) is 1, its sd sqrt(2): the mean of 300 equal-weight draws is
    # within 5 standard errors of 1
    assert abs(float(post.mean()) - 1.0) < 5 * 2 ** 0.5 / 300 ** 0.5


def _count(n):
    x = ppl.sample(("x", n), dist.Normal(0.0, 1.0))
    return _count(n + 1) + x  # the recursive call


@ppl.model
def endless():
    return _count(0)


def test_python_endless_recursion_is_one_error_at_the_users_line():
    with pytest.raises(ModelError) as err:
        ppl.infer(endless, method=ppl.Importance(num_particles=4), seed=0)
    e = err.value
    assert e.span is not None and e.span.file == __file__
    assert "_count(n + 1)" in pathlib.Path(__file__).read_text().splitlines()[e.span.line - 1]
    assert "the function '_count' calls itself without end" in str(e)
    assert e.__cause__ is None and e.__suppress_context__


def test_cli_says_it_in_a_few_lines(tmp_path):
    path = tmp_path / "rec.ppl"
    path.write_text(ENDLESS, encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", "import sys; from ppl.cli import main; sys.exit(main())",
                          "run", str(path), "--method", "importance"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "line 2" in out.stderr and "count" in out.stderr
    assert "--method importance" not in out.stderr

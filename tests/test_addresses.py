"""Readable addresses for lambdas and mem (ppl/evaluate/, semantics/effects.mem):
a lambda bound by '=' is named after its variable, a memoised draw is
``name[argument]`` where mem was called, and addresses stay unique."""

from __future__ import annotations

import pathlib

import jax
import numpy as np
import pytest
from scipy import stats

import ppl
from ppl import dist
from ppl.stdlib.errors import AddressError

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _choices(model, *args):
    return sorted(model.simulate(jax.random.key(0), *args).choices)


def test_tug_of_war_addresses_read_like_the_program():
    m = ppl.load(EXAMPLES / "tug_of_war.ppl").tug_of_war
    names = _choices(m)
    assert [n for n in names if n.startswith("strength")] == [
        "strength[alice]", "strength[bob]", "strength[sue]", "strength[tom]"]
    flips = [n for n in names if not n.startswith("strength")]
    assert len(flips) == 12 and all(n.startswith("team") and "/pulling" in n for n in flips)
    assert not any("fn" in n.split("/") or n.startswith("fn") for n in names)
    assert m.is_static()


def test_memo_value_does_not_depend_on_where_it_is_first_asked_for():
    src = """
model m() {
  strength = mem(fn(p) => sample(normal(0, 1)))
  f = fn(p) => strength(p) * 2
  a = f('alice')
  b = strength('alice')
  return a - 2 * b
}
"""
    module = ppl.loads(src)
    trace = module.m.simulate(jax.random.key(1))
    assert sorted(trace.choices) == ["strength[alice]"]
    assert abs(float(trace.retval)) < 1e-6


def test_memoised_body_with_several_draws_nests_under_the_name():
    src = """
model m() {
  noise = mem(fn(i) { a ~ normal(0, 1); b ~ normal(a, 1); return b })
  f = fn(x) => sample(normal(x, 1))
  return noise(1) + noise(2) + noise(1) + f(0.0) + f(1.0)
}
"""
    assert _choices(ppl.loads(src).m) == [
        "f/_sample", "f_1/_sample", "noise[1]/a", "noise[1]/b", "noise[2]/a", "noise[2]/b"]


def test_mem_made_in_a_function_is_unique_per_call():
    src = """
def make() {
  s = mem(fn(p) => sample(normal(0, 1)))
  return s
}
model two() {
  s1 = make()
  s2 = make()
  return s1(0) + s2(0) + s1(0)
}
"""
    assert _choices(ppl.loads(src).two) == ["make/s[0]", "make_1/s[0]"]


def test_log_density_by_the_new_names():
    src = """
model m(y: real) {
  mu = mem(fn(k) => sample(normal(0, 1)))
  y ~ normal(mu(0) + mu(1), 1)
}
"""
    module = ppl.loads(src)
    got = module.m.log_density({"mu[0]": 0.2, "mu[1]": -0.5}, 1.0)
    want = stats.norm.logpdf(0.2) + stats.norm.logpdf(-0.5) + stats.norm.logpdf(1.0, -0.3, 1)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_python_mem_names():
    @ppl.model
    def tug():
        strength = ppl.mem(lambda person: ppl.sample("s", dist.Normal(0.0, 1.0)), name="strength")
        return strength("alice") + strength("bob") + strength("alice")

    assert _choices(tug) == ["strength[alice]/s", "strength[bob]/s"]

    def skill(person):
        return ppl.sample("s", dist.Normal(0.0, 1.0))

    @ppl.model
    def by_def():
        f = ppl.mem(skill)
        return f("alice", ) + f("bob")

    assert _choices(by_def) == ["skill[alice]/s", "skill[bob]/s"]


def test_duplicate_addresses_still_fire():
    src = """
model m() {
  s = mem(fn(p) => sample(normal(0, 1)))
  a = s(0)
  s = mem(fn(p) => sample(normal(5, 1)))
  return a + s(0)
}
"""
    with pytest.raises(AddressError, match=r"s\[0\]"):
        ppl.loads(src).m.simulate(jax.random.key(0))


ANONYMOUS = """
model m(y: real) {
  a = flip(0.3)
  b = flip(0.6)
  factor(if a then -1.0 else 0.0)
  observe y * 2 ~ normal(sample(normal(0, 1)), 1)
  return a
}
"""


def test_anonymous_sites_are_numbered_per_body_not_placed_by_line_and_column():
    module = ppl.loads(ANONYMOUS)
    trace = module.m.simulate(jax.random.key(0), 1.0)
    assert sorted(trace.choices) == ["_flip", "_flip_2", "_sample"]
    terms = module.m.ir(1.0).sites
    assert {"_factor", "_observe"} <= set(terms)


def test_anonymous_addresses_survive_an_edit_elsewhere():
    """Lines added above and indentation changed: the same addresses, so stored draws still fit."""
    edited = "# a comment\n\n\nk = 3\n" + ANONYMOUS.replace("\n  a = flip", "\n      a = flip")
    before = sorted(ppl.loads(ANONYMOUS).m.ir(1.0).sites)
    after = sorted(ppl.loads(edited).m.ir(1.0).sites)
    assert before == after

"""Booleans in .ppl arithmetic count as 0 and 1, as the language reference says. They were added as
JAX adds booleans, a logical or: the number of heads of two flips came out as {False, True}, and
``sum((y > 0) + (y > 1))`` as 2 for 3."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import ppl

KEY = jax.random.key(0)

MODELS = ppl.loads("""
model two_flips() {
  a = flip(0.3)
  b = flip(0.6)
  return a + b
}
model count(y: real[]) {
  return sum((y > 0) + (y > 1))
}
model count_loop(y: real[]) {
  n = false
  for i in 0..len(y) { n = n + (y[i] > 0) }
  return n
}
model products(y: real[]) {
  return [dot(y > 0, y > 0), (y > 0) @ (y > 0), sum((y > 0) * (y > 1)), sum(-(y > 0)), sum((y > 0) - (y > 1))]
}
model logic(flag: bool, counts: int[]) {
  return [(1 and 2) + 0, (0 or 3) + 0, sum(flag and counts), sum(counts > 0 or flag)]
}
model reals_of_integers(k: int) {
  return [logistic(k), inv_logit(k), log_inv_logit(k > 0), round(k > 1), log_logistic(true)]
}
""")

Y = [-1.0, 0.5, 2.0]


def test_two_flips_count_heads():
    probs = ppl.infer(MODELS.two_flips, method=ppl.Enumerate()).probs()
    assert probs == pytest.approx({0: 0.28, 1: 0.54, 2: 0.18}, abs=1e-6)


@pytest.mark.parametrize("name, expected", [("count", 3), ("count_loop", 2)])
def test_sums_of_comparisons_count(name, expected):
    out = getattr(MODELS, name).simulate(KEY, Y).retval
    assert int(out) == expected and np.asarray(out).dtype.kind == "i"


def test_products_and_negation_of_booleans_count():
    assert np.asarray(MODELS.products.simulate(KEY, Y).retval).tolist() == [2, 2, 1, -2, 1]


def test_and_or_give_booleans_never_an_operand():
    got = np.asarray(MODELS.logic.simulate(KEY, True, [5, 0, 7]).retval).tolist()
    assert got == [1, 1, 2, 3]


def test_real_functions_take_integers_and_booleans():
    got = np.asarray(MODELS.reals_of_integers.simulate(KEY, 2).retval, np.float64)
    s = 1 / (1 + np.exp(-2.0))
    assert got == pytest.approx([s, s, np.log(1 / (1 + np.exp(-1.0))), 1.0, np.log(1 / (1 + np.exp(-1.0)))], rel=1e-5)

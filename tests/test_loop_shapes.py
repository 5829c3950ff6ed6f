"""Loops whose iterations draw or observe whole rows (Stan's ``y[g] ~ normal(theta[g], sigma)``).

A loop of independent iterations is stacked into a plate only when each
iteration's sites are scalars; otherwise it stays a loop, which the compiled
engine runs as ``vmap`` over its steps (tests/test_vectorised_loops.py). Either
way the density is the sum over iterations, checked here against scipy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import ppl

SOURCE = """
model rows(G: int, N: int, y: real[G, N]) {
  mu ~ normal(0, 5)
  tau ~ half_normal(5)
  sigma ~ half_normal(5)
  theta ~ iid(normal(mu, tau), G)
  for g in 0..G {
    y[g] ~ normal(theta[g], sigma)
  }
}

model scalars(G: int, y: real[G]) {
  mu ~ normal(0, 5)
  for g in 0..G {
    y[g] ~ normal(mu, 1)
  }
}
"""

RNG = np.random.default_rng(0)
Y = RNG.normal(size=(4, 3)).astype(np.float32)


def expected(point, y):
    lp = stats.norm.logpdf(point["mu"], 0, 5) + stats.halfnorm.logpdf(point["tau"], scale=5)
    lp += stats.halfnorm.logpdf(point["sigma"], scale=5)
    lp += stats.norm.logpdf(point["theta"], point["mu"], point["tau"]).sum()
    lp += stats.norm.logpdf(y, point["theta"][:, None], point["sigma"]).sum()
    return lp


def test_a_loop_over_rows_has_the_density_of_its_iterations():
    m = ppl.loads(SOURCE)
    point = {"mu": 0.3, "tau": 1.2, "sigma": 0.7, "theta": np.array([0.1, -0.4, 1.0, 0.5], np.float32)}
    got = float(m.rows.log_density(point, 4, 3, Y))
    assert got == pytest.approx(expected(point, Y.astype(np.float64)), rel=1e-5)
    # one observe site covering the whole matrix, in a loop of per-row iterations
    assert "for 4 steps" in str(m.rows.ir(4, 3, Y))


def test_a_loop_of_scalar_iterations_is_still_a_plate():
    m = ppl.loads(SOURCE)
    text = str(m.scalars.ir(5, np.zeros(5, np.float32)))
    assert "for 5 steps" not in text


def test_a_loop_choice_drawn_in_one_branch_is_a_clear_error_with_a_rewrite():
    """It failed with the internal text "None is not a valid value for jnp.array"."""
    src = ("model m() {\n  tot = 0\n  for t in 0..3 {\n    z ~ bernoulli(0.5)\n    if z == 1 {\n"
           "      a ~ bernoulli(0.9)\n      tot = tot + a\n    }\n  }\n  return tot\n}")
    with pytest.raises(ppl.ModelError) as err:
        ppl.infer(ppl.loads(src).m, method=ppl.Enumerate())
    assert "'a' is not drawn in every iteration of this loop" in str(err.value)
    assert "before the `if`" in str(err.value)
    rewritten = ("model m() {\n  tot = 0\n  for t in 0..3 {\n    z ~ bernoulli(0.5)\n    a ~ bernoulli(0.9)\n"
                 "    if z == 1 {\n      tot = tot + a\n    }\n  }\n  return tot\n}")
    from scipy.stats import binom

    got = {int(k): v for k, v in ppl.infer(ppl.loads(rewritten).m, method=ppl.Enumerate()).probs().items()}
    assert got == pytest.approx({k: binom.pmf(k, 3, 0.45) for k in range(4)}, abs=1e-6)

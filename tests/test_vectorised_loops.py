"""Loops without a carry run their steps side by side (``vmap``) in the compiled engine.

The steps of such a loop are independent, so running them at once must give what the scan
gives: the same draws (each step keeps its key), the same density and gradient up to the
order of the sums. Loops with a carry, with a branch, or too large to hold at once stay scans.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics.compile import interpreter

SOURCE = """
model latent_rows(G: int, N: int, y: real[G, N]) {
  sigma ~ half_normal(5)
  for g in 0..G {
    z ~ iid(normal(0, 1), N)
    y[g] ~ normal(z, sigma)
  }
}

model branchy(G: int, y: real[G, 2]) {
  for g in 0..G {
    z ~ iid(normal(0, 1), 2)
    if y[g, 0] > 0 {
      y[g] ~ normal(z, 1)
    } else {
      y[g] ~ normal(z, 2)
    }
  }
}
"""

G, N = 5, 3
Y = np.random.default_rng(0).normal(size=(G, N)).astype(np.float32)


def _program(model, *args):
    program, leaves = model.program(*args)
    return program, leaves


def _loop(program) -> ir.For:
    return next(s for s in program.block.stmts if isinstance(s, ir.For))


def _with_loop(program, **changes):
    """``program`` with its top-level loop's fields changed (e.g. ``reverse=True``)."""
    stmts = tuple(dataclasses.replace(s, **changes) if isinstance(s, ir.For) else s for s in program.block.stmts)
    return dataclasses.replace(program, block=dataclasses.replace(program.block, stmts=stmts))


def _run_both(monkeypatch, program, leaves, mode, **kw):
    vectorised = C.run(program, mode, leaves, **kw)
    monkeypatch.setattr(interpreter.Interpreter, "vectorize_loops", False)
    scanned = C.run(program, mode, leaves, **kw)
    monkeypatch.undo()
    return vectorised, scanned


def test_which_loops_vectorise(monkeypatch):
    m = ppl.loads(SOURCE)
    rows, _ = _program(m.latent_rows, G, N, Y)
    assert interpreter.loop_vectorizes(_loop(rows))
    branchy, _ = _program(m.branchy, G, Y[:, :2])
    assert not interpreter.loop_vectorizes(_loop(branchy))  # an if: both branches would run
    monkeypatch.setattr(interpreter, "VECTORISED_LOOP_BYTES", 16)
    assert not interpreter.loop_vectorizes(_loop(rows))  # too large to hold at once
    ppl_scan = ppl.model(lambda ys: ppl.scan(lambda c, y: (c + ppl.sample("e", dist.Normal(y, 1.0)), c), 0.0, ys))
    carried, _ = _program(ppl_scan, np.ones(3, np.float32))
    assert not interpreter.loop_vectorizes(_loop(carried))


@pytest.mark.parametrize("reverse", [False, True])
def test_draws_and_density_equal_the_scans(monkeypatch, reverse):
    m = ppl.loads(SOURCE)
    program, leaves = _program(m.latent_rows, G, N, Y)
    program = _with_loop(program, reverse=reverse)
    key = jax.random.key(3)
    vec, scan = _run_both(monkeypatch, program, leaves, C.Simulate(), key=key)
    assert set(vec.choices) == set(scan.choices) == {"sigma", "z"}
    for a in vec.choices:  # each step draws with its own key, as in the scan: the same bits
        np.testing.assert_array_equal(np.asarray(vec.choices[a]), np.asarray(scan.choices[a]))
    assert float(vec.log_prior) == pytest.approx(float(scan.log_prior), rel=1e-6)
    assert float(vec.log_likelihood) == pytest.approx(float(scan.log_likelihood), rel=1e-6)
    # and the draws are not the same for every step (the steps' keys differ)
    z = np.asarray(vec.choices["z"])
    assert z.shape == (G, N) and len(np.unique(z[:, 0])) == G


def test_gradient_equals_the_scans(monkeypatch):
    m = ppl.loads(SOURCE)
    program, leaves = _program(m.latent_rows, G, N, Y)
    z = jnp.asarray(np.random.default_rng(1).normal(size=(G, N)), jnp.float32)

    def grads():
        def lj(sigma, z):
            t = C.run(program, C.Given(), leaves, inputs={"sigma": sigma, "z": z})
            return t.log_prior + t.log_likelihood

        return jax.grad(lj, argnums=(0, 1))(jnp.float32(0.8), z)

    vec = grads()
    monkeypatch.setattr(interpreter.Interpreter, "vectorize_loops", False)
    scan = grads()
    np.testing.assert_allclose(np.asarray(vec[0]), np.asarray(scan[0]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(vec[1]), np.asarray(scan[1]), rtol=1e-5)
    # the closed form: d/dz_gn = -z_gn + (y_gn - z_gn) / sigma^2
    np.testing.assert_allclose(np.asarray(vec[1]), np.asarray(-z + (Y - z) / 0.8**2), rtol=1e-4, atol=1e-5)


def test_an_out_of_range_index_in_a_vectorised_loop_is_still_caught():
    src = """
model oob(G: int, y: real[G]) {
  mu ~ normal(0, 1)
  for g in 0..G {
    y[g + 1] ~ normal(mu, 1)
  }
}
"""
    m = ppl.loads(src)
    with pytest.raises(Exception, match="(?i)index|range|bounds"):
        m.oob.log_density({"mu": 0.0}, 3, np.zeros(3, np.float32))

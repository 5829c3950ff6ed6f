"""HMC and NUTS transitions as SMC rejuvenation kernels (``ppl.inference.smc.HMCMove``, ``NUTSMove``).

Each move must leave its target invariant (checked from exact draws, one
move each, with the standard errors of independent draws), and resample-move
SMC with it must keep the evidence unbiased and the static parameter's
posterior mean right (checked against quadrature over the parameter with the
Kalman likelihood; z-scores over seeds).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl.inference.smc import HMCMove, NUTSMove
from test_smc import LG_YS, evidence_runs, posterior_of_q, unknown_noise, z_of_mean

MOVES = {"hmc": HMCMove(step_size=0.4, num_integration_steps=5, num_moves=2),
         "nuts": NUTSMove(step_size=0.4, num_moves=2)}


@pytest.mark.parametrize("name", sorted(MOVES))
def test_move_leaves_a_correlated_gaussian_invariant(name):
    move = MOVES[name]
    cov = np.array([[1.0, 0.6], [0.6, 1.0]])
    prec = jnp.asarray(np.linalg.inv(cov), jnp.float32)
    f = lambda p: -0.5 * p["v"] @ prec @ p["v"]
    m = 20000
    x0 = jax.random.multivariate_normal(jax.random.key(1), jnp.zeros(2), jnp.asarray(cov, jnp.float32), (m,))
    keys = jax.random.split(jax.random.key(2), m)
    x = np.asarray(jax.jit(jax.vmap(lambda k, v: move(k, {"v": v}, f)["v"]))(keys, x0), np.float64)
    # x is one Markov step from exact draws x0: still exact draws (correlated with x0, hence the 1.5)
    assert np.all(np.abs(x.mean(0)) < 4 * 1.5 * np.sqrt(np.diag(cov) / m))
    assert np.all(np.abs(x.var(0) - np.diag(cov)) < 4 * 1.5 * np.sqrt(2 * np.diag(cov) ** 2 / m))
    cross = x[:, 0] * x[:, 1]
    assert abs(cross.mean() - cov[0, 1]) < 4 * 1.5 * cross.std() / math.sqrt(m)
    assert np.mean(np.any(x != np.asarray(x0), axis=1)) > 0.5  # it moves


@pytest.mark.parametrize("name", sorted(MOVES))
def test_resample_move_with_gradient_moves_targets_the_posterior(name):
    ys = LG_YS[:20]
    log_z, q_mean = posterior_of_q(ys)
    move = {"hmc": HMCMove(step_size=0.2, num_integration_steps=4),
            "nuts": NUTSMove(step_size=0.2, max_tree_depth=4)}[name]
    posts = evidence_runs(unknown_noise, (ys,), ppl.SMC(num_particles=200, rejuvenation=move), range(10))
    assert abs(z_of_mean([np.exp(p.log_evidence - log_z) for p in posts], 1.0)) < 4
    assert abs(z_of_mean([p.mean("q") for p in posts], q_mean)) < 4
    assert np.mean(posts[0].sample_stats["moved"][posts[0].sample_stats["resampled"]]) > 0.2


@pytest.mark.parametrize("method", [ppl.NUTS(), ppl.HMC()], ids=["NUTS", "HMC"])
def test_an_inference_method_as_rejuvenation_is_refused_with_the_kernel_to_use(method):
    with pytest.raises(ppl.ModelError, match="rejuvenation takes one MCMC kernel") as err:
        ppl.SMC(num_particles=10, rejuvenation=method)
    assert "Move(step_size=" in str(err.value)


def test_move_options_are_validated():
    with pytest.raises(ppl.ModelError, match="step_size"):
        NUTSMove(step_size=0.0)
    with pytest.raises(ppl.ModelError, match="num_integration_steps"):
        HMCMove(num_integration_steps=0)

"""Particle marginal Metropolis-Hastings (``ppl.PMMH``) against exact answers.

The model: a linear-Gaussian state-space model with an unknown transition
noise ``q``; its exact posterior over ``q`` comes from quadrature with the
Kalman-filter likelihood. PMMH's chain mean must be within 4 Monte Carlo
standard errors (autocorrelation included) of the exact mean, whatever the
number of particles; the last state's mean is checked the same way against
the exact smoothing mean integrated over ``q``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ppl
from chain_checks import z_score
from test_smc import A, LG_YS, R, kalman, posterior_of_q, unknown_noise

# Short chains get R-hat / ESS SamplingWarnings (tests/test_warnings.py checks those); here the
# draws are checked against exact answers instead.
pytestmark = pytest.mark.filterwarnings("ignore::ppl.inference.mcmc.checks.SamplingWarning")


def exact_last_state_mean(ys):
    grid = np.linspace(1e-3, 5.0, 2000)
    from scipy.stats import norm

    log_post = np.array([kalman(ys, q=g)[0] for g in grid]) + norm.logpdf(grid, scale=1.0)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    m_last = np.array([kalman(ys, q=g)[1] for g in grid])
    return float(np.sum(w * m_last))


def test_pmmh_targets_the_posterior_of_the_static_parameter():
    ys = LG_YS[:15]
    _, q_mean = posterior_of_q(ys)
    post = ppl.infer(unknown_noise, ys, method=ppl.PMMH(num_samples=1500, num_warmup=300, num_chains=4,
                                                          num_particles=64, step_size=0.4), seed=0)
    assert post.method == "PMMH" and post.engine == "compiled"
    q = np.asarray(post.samples["q"], np.float64)
    assert q.shape == (4, 1500)
    assert abs(z_score(q, q_mean)) < 4
    x = np.asarray(post.samples["x"], np.float64)
    assert x.shape == (4, 1500, 15)  # one particle's trajectory per draw
    assert abs(z_score(x[..., -1], exact_last_state_mean(ys))) < 4
    assert 0.05 < float(np.mean(post.sample_stats["accept_prob"])) < 0.9
    assert np.allclose(np.asarray(post.returns), q)  # the model returns q


def test_pmmh_needs_a_loop_and_parameters():
    @ppl.model
    def no_parameters(ys):
        def step(x, y):
            x = ppl.sample("x", ppl.dist.Normal(A * x, 1.0))
            ppl.observe("y", ppl.dist.Normal(x, R), y)
            return x, x

        return ppl.scan(step, 0.0, ys)

    with pytest.raises(ppl.ModelError, match="static parameters"):
        ppl.infer(no_parameters, LG_YS[:5], method=ppl.PMMH(num_samples=10, num_warmup=0))
    with pytest.raises(ppl.ModelError, match="step_size"):
        ppl.PMMH(step_size=-1.0)


def test_pmmh_chains_compile_once_per_shape():
    from test_recompile import count_compilations

    method = ppl.PMMH(num_samples=50, num_warmup=10, num_chains=2, num_particles=16, step_size=0.4)
    a = ppl.infer(unknown_noise, LG_YS[:10], method=method, seed=1)
    with count_compilations() as seen:  # new data and a new step size: the same compiled chains
        b = ppl.infer(unknown_noise, LG_YS[10:20], method=ppl.PMMH(num_samples=50, num_warmup=10, num_chains=2,
                                                                     num_particles=16, step_size=0.3), seed=2)
    assert len(seen) == 0, f"{len(seen)} compilations on the second run"
    assert not np.allclose(a.samples["q"], b.samples["q"])
    assert math.isfinite(float(np.mean(b.sample_stats["log_likelihood_estimate"])))

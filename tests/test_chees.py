"""ChEES-HMC (``ppl.ChEES``): posterior moments against exact and reference values, the many-chain
structure of its transitions, and clear errors for what it cannot do.

Tolerances are Monte Carlo errors: a mean's z-score uses the draws' bulk ESS, a variance's the ESS of
the squared deviations; |z| < 4 with fixed seeds. The kernel itself is also in the contract test
(``tests/test_kernel_contract.py``); the sharded run is in the slow suite (a subprocess with 4
virtual devices).
"""

from __future__ import annotations

import doctest
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference import diagnostics
from ppl.inference.mcmc import chees
from ppl.stdlib.errors import ModelError

from posteriordb_util import EXAMPLES, check_posterior, format_checks, load_data, load_reference, model_args

Z = 4.0

# a ~ N(0, 10), b ~ N(0, 10); y_a ~ N(a, 0.1), y_b ~ N(b, 5): posterior scales 50x apart (the metric matters)
Y_A = np.array([1.02, 0.95, 1.1, 0.98, 1.05])
Y_B = np.array([-3.0, 4.0, 1.5, -0.5, 2.5])
NOISE_A, NOISE_B, PRIOR = 0.1, 5.0, 10.0


@ppl.model
def two_scales(ya, yb):
    a = ppl.sample("a", dist.Normal(0.0, PRIOR))
    b = ppl.sample("b", dist.Normal(0.0, PRIOR))
    with ppl.plate("obs", ya.shape[0]):
        ppl.observe("ya", dist.Normal(a, NOISE_A), ya)
        ppl.observe("yb", dist.Normal(b, NOISE_B), yb)


def conjugate(y, noise):
    precision = 1.0 / PRIOR**2 + len(y) / noise**2
    return (np.sum(y) / noise**2) / precision, 1.0 / precision


def z_scores(draws: np.ndarray, mean: float, var: float) -> tuple[float, float]:
    """(z of the mean, z of the variance) of (chains, draws) against the exact moments."""
    x = np.asarray(draws, np.float64)
    z_mean = (x.mean() - mean) / np.sqrt(var / diagnostics.ess_bulk(x))
    sq = (x - mean) ** 2
    z_var = (sq.mean() - var) / (sq.std() / np.sqrt(diagnostics.ess_bulk(sq)))
    return float(z_mean), float(z_var)


def test_conjugate_posterior_moments():
    post = ppl.infer(two_scales, Y_A, Y_B, method=ppl.ChEES(num_chains=64, num_warmup=300, num_samples=100),
                     seed=1)
    assert post.samples["a"].shape == (64, 100)
    for site, y, noise in (("a", Y_A, NOISE_A), ("b", Y_B, NOISE_B)):
        mean, var = conjugate(y, noise)
        z_mean, z_var = z_scores(post.samples[site], mean, var)
        assert abs(z_mean) < Z and abs(z_var) < Z, (site, z_mean, z_var)


def test_eight_schools_noncentred_against_the_reference():
    name = "eight_schools-eight_schools_noncentered"
    data, reference = load_data(name), load_reference(name)
    model = ppl.load(EXAMPLES / "eight_schools_noncentered.ppl").eight_schools_noncentered
    post = ppl.infer(model, *model_args(model, data),
                     method=ppl.ChEES(num_chains=64, num_warmup=300, num_samples=100), seed=8)
    arrays = {k: np.asarray(v) for k, v in post.samples.items()}
    arrays["theta"] = np.asarray(post.returns)
    checks = check_posterior(arrays, reference)
    assert all(c.ok for c in checks), format_checks(checks)
    stats = post.sample_stats
    # what makes ChEES vectorise: every chain takes the same number of leapfrog steps in a transition,
    # with one step size and one trajectory length, fixed after warm-up
    steps = np.asarray(stats["num_steps"])
    assert np.all(steps == steps[:1]) and len(np.unique(steps)) > 1  # jittered over transitions
    for name in ("step_size", "trajectory_length"):
        assert np.all(np.asarray(stats[name]) == np.asarray(stats[name]).flat[0])
    assert post.devices and not post.notes


def test_too_few_chains_is_a_clear_error():
    with pytest.raises(ModelError) as err:
        ppl.infer(two_scales, Y_A, Y_B, method=ppl.ChEES(num_chains=1))
    message = str(err.value)
    assert f"at least {chees.MIN_CHAINS} chains" in message and "num_chains=1" in message
    assert "ppl.NUTS" in message  # what to do with a few chains
    with pytest.raises(ModelError, match="diagonal metric"):
        ppl.infer(two_scales, Y_A, Y_B, method=ppl.ChEES(dense_mass=True))


def test_jitter_is_the_halton_sequence():
    assert doctest.testmod(chees).failed == 0
    u = np.asarray(jax.vmap(chees.jitter)(jnp.arange(1023, dtype=jnp.int32)))
    assert np.all((u > 0) & (u < 1)) and abs(u.mean() - 0.5) < 1e-3  # low discrepancy: evenly spread
    params = chees.Params(jnp.float32(0.1), jnp.ones(2), jnp.float32(1.0))
    assert [int(chees.num_steps(params, jnp.int32(i))) for i in range(3)] == [5, 3, 8]



def test_the_chees_gradient_points_to_a_quarter_period():
    """On a standard normal the exact flow is x' = x cos t + p sin t, and the ChEES criterion
    E[(|x'|^2 - |x|^2)^2] grows with t up to pi / 2 and falls after it: its estimated derivative
    changes sign there (a proposal at a NaN density is left out, not propagated)."""
    from ppl.inference.mcmc.chees_warmup import harmonic_mean, trajectory_gradient

    rng = np.random.default_rng(0)
    x, p = rng.normal(size=(2, 512, 3))
    ones, keep = jnp.ones(512), jnp.ones(512, bool)
    grads = []
    for t in (0.3, 1.0, 1.4, 1.75, 2.5):
        moved, velocity = x * np.cos(t) + p * np.sin(t), -x * np.sin(t) + p * np.cos(t)
        grads.append(float(trajectory_gradient(jnp.asarray(x), jnp.asarray(moved), jnp.asarray(velocity),
                                               jnp.full(512, t), ones, keep, jnp.ones(3))))
    assert grads[0] > 0 and grads[1] > 0 and grads[2] > 0 and grads[3] < 0 and grads[4] < 0, grads
    moved = x.copy()
    moved[0] = np.nan
    assert np.isfinite(float(trajectory_gradient(jnp.asarray(x), jnp.asarray(moved), jnp.asarray(p),
                                                 jnp.ones(512), ones, keep, jnp.ones(3))))
    # the step size follows the harmonic mean of the acceptance (divergent chains left out)
    assert float(harmonic_mean(jnp.array([0.5, 1.0, 0.0]), jnp.array([True, True, False]))) == pytest.approx(2 / 3)

SHARDED = """
import json, numpy as np, ppl
from ppl import dist
ppl.config(x64=True)
@ppl.model
def m(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    s = ppl.sample("s", dist.HalfNormal(5.0))
    with ppl.plate("obs", y.shape[0]):
        ppl.observe("y", dist.Normal(mu, s), y)
y = np.array([1.0, 2.5, 0.3, 1.7, 2.2])
method = ppl.ChEES(num_chains=32, num_warmup=100, num_samples=20, progress=False)
p4 = ppl.infer(m, y, method=method, seed=3)
p1 = ppl.infer(m, y, method=method, seed=3, devices=1)
print(json.dumps({"devices": [len(p4.devices), len(p1.devices)],
                  "diff": max(float(np.max(np.abs(p4.samples[k] - p1.samples[k]))) for k in p1.samples)}))
"""


@pytest.mark.slow
def test_chains_split_over_four_devices_give_the_draws_of_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", PPL_CACHE="off")
    out = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=600,
                         cwd=pathlib.Path(__file__).parent)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == [4, 1]
    # the same draws up to rounding: the cross-chain means are collectives (float64), summed in another
    # order on four devices, and the trajectories amplify that rounding (1e-12 to 2e-6 over seeds 0-5 on
    # this CPU); another random stream, or chains tuned apart, would differ by the posterior's scale (~1)
    assert result["diff"] < 1e-4


def _many_chain_warnings(draws):
    """The messages of the many-chain checks on ``draws`` (chains, draws) of one coordinate."""
    import warnings

    from ppl.inference.mcmc import many_chains
    from ppl.inference.result import Result

    result = Result(samples={"x": draws}, returns=None, method="ChEES", engine="compiled", chains=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return many_chains.check_result(result, ["x"])


def test_many_chain_checks_run_when_the_chains_do_not_divide_into_superchains():
    """20 chains (not a multiple of 8 superchains): the checks ran on none of them. Two chains stuck 5
    sds away must give a nested R-hat warning, and 20 x 10 draws an ESS below 400 a low-ESS warning."""
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(20, 10))
    messages = _many_chain_warnings(draws)
    assert any("effective sample size below 400" in m for m in messages), messages
    draws = rng.normal(size=(20, 100))
    draws[:2] += 5.0
    messages = _many_chain_warnings(draws)
    assert any("nested R-hat" in m for m in messages), messages

"""Thinning for NUTS and HMC (``thin=`` on the method, ``--thin`` on the command line), as MH and
Gibbs have it: a thinned run keeps exactly every k-th draw of the unthinned run with the same seed
(rows k-1, 2k-1, ...), and its sampler statistics with them."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist

Y = jnp.array([0.3, 1.2, -0.4, 2.0, 0.9])


@ppl.model
def normal_model(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    s = ppl.sample("s", dist.HalfNormal(2.0))
    with ppl.plate("n", y.shape[0]):
        ppl.observe("y", dist.Normal(mu, s), y)
    return mu + s


def _run(method):
    with warnings.catch_warnings():  # short chains: their convergence warnings are not the point
        warnings.simplefilter("ignore")
        return ppl.infer(normal_model, Y, method=method, seed=3)


@pytest.mark.parametrize("cls", [ppl.NUTS, pytest.param(ppl.HMC, marks=pytest.mark.slow)])
def test_thinned_draws_are_every_kth_draw_of_the_unthinned_run(cls):
    k = 3
    full = _run(cls(num_warmup=30, num_samples=12 * k, num_chains=2, progress=False))
    thin = _run(cls(num_warmup=30, num_samples=12, num_chains=2, thin=k, progress=False))
    for site in ("mu", "s"):
        a, b = np.asarray(full.samples[site]), np.asarray(thin.samples[site])
        assert b.shape == (2, 12)
        np.testing.assert_array_equal(b, a[:, k - 1::k])
        assert not np.array_equal(b, a[:, :12])  # not simply the first draws
    np.testing.assert_array_equal(np.asarray(thin.returns), np.asarray(full.returns)[:, k - 1::k])
    for stat in ("accept_prob", "step_size"):
        np.testing.assert_array_equal(thin.sample_stats[stat], full.sample_stats[stat][:, k - 1::k])


def test_thin_must_be_positive():
    with pytest.raises(ppl.ModelError, match="thin >= 1"):
        _run(ppl.NUTS(num_warmup=5, num_samples=5, num_chains=1, thin=0))


def test_thin_on_the_command_line_goes_to_nuts_and_hmc():
    from ppl import cli

    program, _ = normal_model.program(Y)
    for name, cls in (("nuts", ppl.NUTS), ("hmc", ppl.HMC)):
        method = cli.build_method(name, program, 10, thin=4)
        assert isinstance(method, cls) and method.thin == 4 and method.num_samples == 10


def test_the_memory_refusal_suggests_thinning_for_nuts():
    from ppl import memory

    program, leaves = normal_model.program(Y)
    with pytest.raises(memory.MemoryLimitError) as e:
        memory.check(program, leaves, ppl.NUTS(num_samples=10**9), available=10**8)
    hint = e.value.hint
    assert "thin=" in hint and "num_samples=" in hint
    with pytest.raises(memory.MemoryLimitError) as e:
        memory.check(program, leaves, ppl.HMC(num_samples=10**9), available=10**8, command_line=True)
    assert "--thin " in e.value.hint
    # a run that already thins is told to thin more, never to run fewer iterations
    with pytest.raises(memory.MemoryLimitError) as e:
        memory.check(program, leaves, ppl.NUTS(num_samples=10**9, thin=5), available=10**8)
    k = int(e.value.hint.split("thin=")[1].rstrip("."))
    kept = int(e.value.hint.split("num_samples=")[-1].split(",")[0])
    assert k % 5 == 0 and k > 5 and 0 <= 10**9 * 5 - kept * k < k and kept < 10**9

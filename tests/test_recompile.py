"""A second ``ppl.infer`` with arguments of the same shapes compiles nothing.

Compilations are counted with ``jax.monitoring``'s backend-compile event, which
JAX records once per XLA compilation (a persistent-cache hit records none).
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"

# these tests count compilations; how well short chains mix is checked elsewhere
pytestmark = pytest.mark.filterwarnings("ignore::ppl.inference.mcmc.base.SamplingWarning")


@contextlib.contextmanager
def count_compilations():
    seen: list[str] = []

    def listener(name, _secs, **_kw):
        if name == COMPILE_EVENT:
            seen.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def second_run_compiles_nothing(model, method, first_args, second_args, seeds=(0, 1)):
    """Run ``model`` twice with ``method`` (new data of the same shapes the second time): the first run
    compiles, the second compiles nothing. Returns both posteriors."""
    with count_compilations() as first:
        a = ppl.infer(model, *first_args, method=method, seed=seeds[0])
    with count_compilations() as second:
        b = ppl.infer(model, *second_args, method=method, seed=seeds[1])
    assert len(first) > 0
    assert len(second) == 0, f"{len(second)} compilations on the second run"
    return a, b


@ppl.model
def regression(x, y):
    alpha = ppl.sample("alpha", dist.Normal(0.0, 5.0))
    beta = ppl.sample("beta", dist.Normal(0.0, 5.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(2.0))
    with ppl.plate("data", x.shape[0]):
        ppl.observe("y", dist.Normal(alpha + beta * x, sigma), y)


def data(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=20).astype(np.float32)
    return x, (1.0 + 2.0 * x + 0.5 * rng.normal(size=20)).astype(np.float32)


def test_second_nuts_run_with_new_data_of_the_same_shapes_compiles_nothing():
    method = ppl.NUTS(num_warmup=300, num_samples=500, num_chains=2)
    a, b = second_run_compiles_nothing(regression, method, data(0), data(1))
    # and the second run really used the new data
    assert abs(float(a.mean("beta")) - float(b.mean("beta"))) > 0.0


def test_second_smc_run_compiles_nothing():
    @ppl.model
    def walk(ys):
        def step(x, y):
            x = ppl.sample("x", dist.Normal(0.9 * x, 1.0))
            ppl.observe("y", dist.Normal(x, 0.5), y)
            return x, x

        return ppl.scan(step, jnp.float32(0.0), ys)

    method = ppl.SMC(num_particles=200)
    ys = np.linspace(-1.0, 1.0, 12).astype(np.float32)
    with count_compilations() as first:
        ppl.infer(walk, ys, method=method, seed=0)
    with count_compilations() as second:
        ppl.infer(walk, ys[::-1].copy(), method=method, seed=1)
    assert len(first) > 0
    assert len(second) == 0, f"{len(second)} compilations on the second run"


def test_ppl_data_declared_real_is_one_program_whether_given_ints_or_floats():
    m = ppl.loads("model mean(y: real[]) {\n  mu ~ normal(0, 10)\n  y ~ normal(mu, 1)\n  return mu\n}\n").mean
    method = ppl.NUTS(num_warmup=300, num_samples=500, num_chains=2)
    with count_compilations() as first:
        a = ppl.infer(m, [1, 2, 3, 4], method=method, seed=0)       # ints, as JSON data often are
    with count_compilations() as second:
        b = ppl.infer(m, [1.5, 2.5, 3.5, 4.5], method=method, seed=0)
    assert len(first) > 0 and len(second) == 0, f"{len(second)} compilations on the second run"
    assert abs(float(b.mean("mu")) - float(a.mean("mu")) - 0.5) < 0.2  # the new data were used


def test_second_exact_enumeration_with_new_data_compiles_at_most_the_support_probe():
    from shared_models import hmm

    ppl.infer(hmm, np.array([0.1, 1.2, -0.3, 0.8], np.float32), method=ppl.Enumerate())
    with count_compilations() as second:
        post = ppl.infer(hmm, np.array([1.1, 0.2, -1.3, 0.5], np.float32), method=ppl.Enumerate())
    # the grid's log weights run in the program compiled the first time; only the (eager)
    # probe that finds each site's support may compile a tiny program
    assert len(second) <= 1, f"{len(second)} compilations on the second run"
    assert post.engine == "compiled" and abs(sum(post.probs("z").values()) - 1) < 1e-6

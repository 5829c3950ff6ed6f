"""Sharded runs on 4 virtual CPU devices, against the same runs on one device (run by test_devices.py).

Started in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag must be
set before JAX starts); prints one JSON object of measured values, which the test asserts on.
``python devices_check.py [lean|full|reference]``: the default suite runs ``lean`` (short runs, the
paths every method takes); ``full`` adds HMC, a 2-D mesh and the automatic fallback, with longer runs;
``reference`` prints the draws that the two-process run (devices_multihost.py) must reproduce.
"""

from __future__ import annotations

import json
import time
import warnings
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("PPL_CACHE", "off")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

import ppl  # noqa: E402

ppl.config(x64=True)  # float64: the few ulps a split sum changes stay far below every decision NUTS takes
from ppl import dist  # noqa: E402


@ppl.model
def normal_mean(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(5.0))
    with ppl.plate("obs", y.shape[0]):
        ppl.observe("y", dist.Normal(mu, sigma), y)
    return mu


@ppl.model
def logistic(x, y):
    w = ppl.sample("w", dist.Normal(jnp.zeros(x.shape[1]), 1.0))
    with ppl.plate("rows", x.shape[0], shard=True):
        ppl.observe("y", dist.Bernoulli(logits=x @ w), y)
    return w


@ppl.model
def logistic_axis(x, y):
    w = ppl.sample("w", dist.Normal(jnp.zeros(x.shape[1]), 1.0))
    with ppl.plate("rows", x.shape[0], shard="rows"):
        ppl.observe("y", dist.Bernoulli(logits=x @ w), y)
    return w


@ppl.model
def random_walk(ys):
    def step(x, y):
        x = ppl.sample("x", dist.Normal(x, 1.0))
        ppl.observe("y", dist.Normal(x, 1.0), y)
        return x, x

    _, xs = ppl.scan(step, 0.0, ys)
    return xs


def kalman_log_evidence(ys):
    """Exact log p(y) of random_walk (x_t = x_{t-1} + N(0,1), y_t = x_t + N(0,1), x_0 = 0)."""
    m, v, total = 0.0, 0.0, 0.0
    for y in np.asarray(ys, np.float64):
        v = v + 1.0
        s = v + 1.0
        total += -0.5 * (np.log(2 * np.pi * s) + (y - m) ** 2 / s)
        k = v / s
        m, v = m + k * (y - m), (1 - k) * v
    return total


def max_diff(a: dict, b: dict) -> float:
    return float(max(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64))) for k in a))


def error_of(fn) -> str:
    try:
        fn()
    except ppl.PPLError as err:
        return str(err)
    return ""


def main(full: bool) -> dict:
    warnings.simplefilter("ignore")  # short runs: the sampling warnings are expected here
    start = time.perf_counter()
    out: dict = {"num_devices": len(jax.devices())}
    rng = np.random.default_rng(0)
    y = jnp.asarray(rng.normal(1.0, 2.0, 40), jnp.float32)
    nuts = ppl.NUTS(num_warmup=100 if full else 40, num_samples=50 if full else 20, num_chains=8, progress=False)

    # chains: 8 on 4 devices (the default when several are present) against one device
    p4 = ppl.infer(normal_mean, y, method=nuts, seed=3)
    p1 = ppl.infer(normal_mean, y, method=nuts, seed=3, devices=1)
    out["nuts_devices"] = [len(p4.devices), len(p1.devices)]
    out["nuts_max_diff"] = max_diff(p4.samples, p1.samples)
    out["nuts_shape"] = list(np.shape(p4.samples["mu"]))

    # particles: SMC with global resampling, and importance samples
    ys = jnp.asarray(rng.normal(0.0, 1.5, 25), jnp.float32)
    smc = ppl.SMC(num_particles=1000)
    s4 = ppl.infer(random_walk, ys, method=smc, seed=5)
    s1 = ppl.infer(random_walk, ys, method=smc, seed=5, devices=1)
    out["smc_devices"] = [len(s4.devices), len(s1.devices)]
    out["smc_max_diff"] = max_diff(s4.samples, s1.samples)
    out["smc_log_z"] = [s4.log_evidence, s1.log_evidence]
    out["kalman_log_z"] = kalman_log_evidence(ys)
    imp = ppl.Importance(num_particles=1000)
    i4 = ppl.infer(normal_mean, y, method=imp, seed=2)
    i1 = ppl.infer(normal_mean, y, method=imp, seed=2, devices=1)
    out["importance_devices"] = [len(i4.devices), len(i1.devices)]
    out["importance_max_diff"] = max(max_diff(i4.samples, i1.samples),
                                     float(np.max(np.abs(i4.log_weights - i1.log_weights))))

    # island resampling: 4 independent populations, evidence is the mean of theirs
    runs = [ppl.infer(random_walk, ys, method=ppl.SMC(num_particles=400, islands=4), seed=s)
            for s in range(40 if full else 20)]
    out["island_devices"] = len(runs[0].devices)
    out["island_log_z_small"] = [r.log_evidence for r in runs]

    # data: a plate whose rows are split over the devices (each device its slice of the likelihood)
    x = jnp.asarray(rng.normal(size=(400, 3)), jnp.float32)
    w_true = np.array([1.0, -0.5, 0.25])
    yb = jnp.asarray(rng.random(400) < 1 / (1 + np.exp(-np.asarray(x) @ w_true)), jnp.int32)
    nuts4 = ppl.NUTS(num_warmup=100, num_samples=50, num_chains=4, progress=False)
    if full:
        d4 = ppl.infer(logistic, x, yb, method=nuts4, seed=1)
        d1 = ppl.infer(logistic, x, yb, method=nuts4, seed=1, devices=1)
        out["data_devices"] = [len(d4.devices), len(d1.devices)]
        out["data_mean"] = [np.asarray(d4.mean("w")).tolist(), np.asarray(d1.mean("w")).tolist()]
        out["data_max_diff"] = max_diff(d4.samples, d1.samples)
        hmc = ppl.HMC(num_warmup=50, num_samples=20, num_chains=4, num_steps=8, progress=False)
        h4 = ppl.infer(logistic, x, yb, method=hmc, seed=1)
        h1 = ppl.infer(logistic, x, yb, method=hmc, seed=1, devices=1)
        out["hmc_data_max_diff"] = max_diff(h4.samples, h1.samples)
        out["hmc_data_mean"] = [np.asarray(h4.mean("w")).tolist(), np.asarray(h1.mean("w")).tolist()]
        # a 2-D mesh: chains over one axis, rows over the other
        mesh = Mesh(np.array(jax.devices()).reshape(2, 2), ("batch", "rows"))
        m4 = ppl.infer(logistic_axis, x, yb, method=nuts4, seed=1, devices=mesh)
        out["mesh2d_devices"] = len(m4.devices)
        out["mesh2d_max_diff"] = max_diff(m4.samples, d1.samples)
    # the compiled density itself, on sharded data
    from ppl.inference import sharding
    from ppl.semantics import compile as C

    program, leaves = logistic.program(x, yb)
    placement, placed = sharding.for_program(program, leaves, None)
    choices = {"w": jnp.asarray([0.3, -0.2, 0.1])}
    dens = jax.jit(lambda c, a: C.log_density(program, c, list(a)))
    out["density"] = [float(dens(choices, placed)), float(dens(choices, leaves))]
    out["density_data_sharded"] = str(placed[0].sharding.spec)

    # bad input: each a clear error
    out["error_chains"] = error_of(lambda: ppl.infer(normal_mean, y, method=ppl.NUTS(num_chains=6, num_warmup=5,
                                                     num_samples=5, progress=False), devices=4))
    out["error_axis"] = error_of(lambda: ppl.infer(logistic_axis, x, yb, method=nuts4, devices=4))
    out["error_mesh_axis"] = error_of(lambda: sharding.resolve(Mesh(np.array(jax.devices()), ("d",)),
                                                               batch_axis="chains"))
    out["error_rows"] = error_of(lambda: ppl.infer(logistic, x[:398], yb[:398], method=nuts4))
    out["error_devices"] = error_of(lambda: ppl.infer(normal_mean, y, method=nuts, devices=9))
    if full:
        # the automatic default with a count that does not divide: the largest dividing number of devices
        odd = ppl.infer(normal_mean, y, method=ppl.NUTS(num_warmup=20, num_samples=10, num_chains=6,
                                                        progress=False), seed=0)
        out["auto_odd_devices"] = len(odd.devices)
    out["seconds"] = time.perf_counter() - start
    return out


def multihost_draws() -> list:
    """The run that devices_multihost.py repeats over 2 processes x 2 devices."""
    y = jnp.asarray(np.linspace(-1.0, 3.0, 16), jnp.float32)
    post = ppl.infer(normal_mean, y, method=ppl.NUTS(num_warmup=60, num_samples=20, num_chains=4, progress=False),
                     seed=11)
    return np.asarray(post.samples["mu"], np.float64).ravel().tolist()


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "lean"
    result = {"multihost_reference": multihost_draws()} if mode == "reference" else main(mode == "full")
    print("RESULT " + json.dumps(result))
    sys.stdout.flush()

"""Sharded runs on 4 virtual CPU devices, against the same runs on one device (run by test_devices.py).

Started in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag must be
set before JAX starts); prints one JSON object of measured values, which the test asserts on.
``python devices_check.py [lean|full|reference]``: the default suite runs ``lean`` (short runs, the
paths every method takes); ``full`` adds HMC, a 2-D mesh and the automatic fallback, with longer runs;
``reference`` prints the results that the two-process run (devices_multihost.py) must reproduce.
"""

from __future__ import annotations

import gc
import json
import time
import weakref
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
from ppl.inference import sharding  # noqa: E402
from ppl.semantics import compile as C  # noqa: E402
from ppl.semantics.cache import entries  # noqa: E402


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
def normal_mean_unmarked(y, keep_whole=None):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(5.0))
    with ppl.plate("obs", y.shape[0], shard=keep_whole):  # None: split automatically when large
        ppl.observe("y", dist.Normal(mu, sigma), y)
    return mu


@ppl.model
def two_coins():
    a = ppl.sample("a", dist.Bernoulli(probs=0.3))
    b = ppl.sample("b", dist.Bernoulli(probs=jnp.where(a == 1, 0.1, 0.4)))
    ppl.factor("evidence", jnp.where(b == 1, jnp.log(0.1), 0.0))
    return a


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


def dropped_model_is_freed(method, y) -> bool:
    """Run a fresh model on the mesh, drop it: are its program and every compiled entry freed?"""
    @ppl.model
    def fresh(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
        with ppl.plate("data", y.shape[0]):
            ppl.observe("y", dist.Normal(mu, 2.0), y)

    ppl.infer(fresh, y, method=method, seed=0)
    program, _ = fresh.program(y)
    refs = [weakref.ref(program)]
    for value in entries(program).values():
        try:
            refs.append(weakref.ref(value))
        except TypeError:  # not weakly referenceable (a tuple, a dict): held by the entries only
            pass
    del program, fresh, value
    gc.collect()
    return len(refs) > 1 and all(r() is None for r in refs)


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
    laps: dict = {}

    def lap(name: str) -> None:  # CPU seconds per part (the suite's budget)
        laps[name] = round(time.process_time() - sum(laps.values()), 2)
    out: dict = {"num_devices": len(jax.devices())}
    rng = np.random.default_rng(0)
    y = jnp.asarray(rng.normal(1.0, 2.0, 40), jnp.float32)
    nuts = ppl.NUTS(num_warmup=100 if full else 40, num_samples=50 if full else 20, num_chains=8, progress=False)

    # chains: 8 on 4 devices (the default when several are present) against one device; each device
    # runs the loop of its 2 chains (driver.on_devices)
    p4 = ppl.infer(normal_mean, y, method=nuts, seed=3)
    p1 = ppl.infer(normal_mean, y, method=nuts, seed=3, devices=1)
    out["nuts_devices"] = [len(p4.devices), len(p1.devices)]
    out["nuts_max_diff"] = max_diff(p4.samples, p1.samples)
    out["nuts_shape"] = list(np.shape(p4.samples["mu"]))
    lap("nuts")
    # trace MH and Gibbs: the same driver (its transition loop), chains split the same way; the
    # default suite runs MH on 4 devices only (a compile each), the slow one compares with one device
    mh = ppl.MH(num_warmup=10, num_samples=10, num_chains=8)
    m4 = ppl.infer(normal_mean, y, method=mh, seed=4)
    out["mh_devices"] = len(m4.devices)
    out["mh_shape"] = list(np.shape(m4.samples["mu"]))
    out["mh_finite"] = bool(np.all(np.isfinite(m4.samples["mu"])))
    if full:
        out["mh_max_diff"] = max_diff(m4.samples, ppl.infer(normal_mean, y, method=mh, seed=4, devices=1).samples)
    lap("mh")
    # exact enumeration: the grid's 4 outcomes split over the devices
    e4, e1 = (ppl.infer(two_coins, method=ppl.Enumerate(), devices=d) for d in (None, 1))
    out["enumerate_devices"] = [len(e4.devices), len(e1.devices)]
    out["enumerate_max_diff"] = max(max_diff(e4.samples, e1.samples),
                                    float(np.max(np.abs(e4.log_weights - e1.log_weights))))
    out["enumerate_log_z"] = [e4.log_evidence, e1.log_evidence]

    lap("enumerate")
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

    lap("smc_importance")
    # island resampling: 4 independent populations, evidence is the mean of theirs
    runs = [ppl.infer(random_walk, ys, method=ppl.SMC(num_particles=400, islands=4), seed=s)
            for s in range(40 if full else 20)]
    out["island_devices"] = len(runs[0].devices)
    out["island_log_z_small"] = [r.log_evidence for r in runs]

    lap("islands")
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
        hc = ppl.HMC(num_warmup=40, num_samples=20, num_chains=8, num_steps=8, progress=False)
        out["hmc_max_diff"] = max_diff(ppl.infer(normal_mean, y, method=hc, seed=3).samples,
                                       ppl.infer(normal_mean, y, method=hc, seed=3, devices=1).samples)
        gibbs = ppl.Gibbs(num_warmup=10, num_samples=20, num_chains=8)
        g4, g1 = (ppl.infer(two_coins, method=gibbs, seed=6, devices=d) for d in (None, 1))
        out["gibbs_devices"] = [len(g4.devices), len(g1.devices)]
        out["gibbs_max_diff"] = max_diff(g4.samples, g1.samples)
        # a large plate split without being marked (the threshold lowered to 200 rows for the test)
        yl = jnp.asarray(rng.normal(1.0, 2.0, 400))
        ppl.config(auto_shard_rows=200)
        a4 = ppl.infer(normal_mean_unmarked, yl, method=nuts4, seed=2)
        a1 = ppl.infer(normal_mean_unmarked, yl, method=nuts4, seed=2, devices=1)
        ppl.config(auto_shard_rows=sharding.AUTO_SHARD_ROWS)
        out["auto_nuts_devices"] = [len(a4.devices), len(a1.devices)]
        out["auto_nuts_max_diff"] = max_diff(a4.samples, a1.samples)
        # a 2-D mesh: chains over one axis, rows over the other
        mesh = Mesh(np.array(jax.devices()).reshape(2, 2), ("batch", "rows"))
        m4 = ppl.infer(logistic_axis, x, yb, method=nuts4, seed=1, devices=mesh)
        out["mesh2d_devices"] = len(m4.devices)
        out["mesh2d_max_diff"] = max_diff(m4.samples, d1.samples)
    lap("data")
    # the compiled density itself, on sharded data
    program, leaves = logistic.program(x, yb)
    placement, placed, _ = sharding.for_program(program, leaves, None)
    choices = {"w": jnp.asarray([0.3, -0.2, 0.1])}
    dens = jax.jit(lambda c, a: C.log_density(program, c, list(a)))
    out["density"] = [float(dens(choices, placed)), float(dens(choices, leaves))]
    out["density_data_sharded"] = str(placed[0].sharding.spec)
    out.update(automatic(rng))

    lap("density_automatic")
    # bad input: each a clear error
    out["error_chains"] = error_of(lambda: ppl.infer(normal_mean, y, method=ppl.NUTS(num_chains=6, num_warmup=5,
                                                     num_samples=5, progress=False), devices=4))
    out["error_axis"] = error_of(lambda: ppl.infer(logistic_axis, x, yb, method=nuts4, devices=4))
    out["error_mesh_axis"] = error_of(lambda: sharding.resolve(Mesh(np.array(jax.devices()), ("d",)),
                                                               batch_axis="chains"))
    out["error_rows"] = error_of(lambda: ppl.infer(logistic, x[:398], yb[:398], method=nuts4))
    out["error_devices"] = error_of(lambda: ppl.infer(normal_mean, y, method=nuts, devices=9))
    two_axes = Mesh(np.array(jax.devices()).reshape(2, 2), ("x", "y"))
    out["error_mesh_names"] = error_of(lambda: ppl.infer(normal_mean, y, method=nuts, devices=two_axes))
    no_data = Mesh(np.array(jax.devices()).reshape(2, 2), ("batch", "y"))
    out["error_no_data_axis"] = error_of(lambda: ppl.infer(logistic, x, yb, method=nuts4, devices=no_data))
    if full:
        # the automatic default with a count that does not divide: the largest dividing number of devices
        odd = ppl.infer(normal_mean, y, method=ppl.NUTS(num_warmup=20, num_samples=10, num_chains=6,
                                                        progress=False), seed=0)
        out["auto_odd_devices"] = len(odd.devices)
    lap("errors")
    # a dropped model frees its placed programs too (their table lives on the compiled function)
    out["dropped_freed"] = [dropped_model_is_freed(m, y) for m in (ppl.SMC(num_particles=64),
                                                                   ppl.Importance(num_particles=64))]
    lap("freed")
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = laps
    return out


def automatic(rng) -> dict:
    """A plate over observations split without being marked, once it reaches ``auto_shard_rows`` rows
    (lowered to 200 here): the same log density, placement and notes as the rules say."""
    out = {}
    y = jnp.asarray(rng.normal(1.0, 2.0, 400))
    choices = {"mu": jnp.asarray(0.7), "sigma": jnp.asarray(1.8)}
    ppl.config(auto_shard_rows=200)
    try:
        program, leaves = normal_mean_unmarked.program(y)
        placement, placed, notes = sharding.for_program(program, leaves, None)
        dens = jax.jit(lambda c, a: C.log_density(program, c, list(a)))
        out["auto_density"] = [float(dens(choices, placed)), float(dens(choices, leaves))]
        out["auto_spec"] = str(placed[0].sharding.spec)
        out["auto_axes"] = [placement.batch_axis, placement.data_axis]
        small, _ = normal_mean_unmarked.program(y[:100])  # below the threshold: chains split instead
        out["auto_small_axes"] = list(sharding.for_program(small, [y[:100]], None)[0][1:3])
        whole, whole_leaves = normal_mean_unmarked.program(y, False)  # shard=False: never split
        out["auto_off_axes"] = list(sharding.for_program(whole, whole_leaves, None)[0][1:3])
        odd, odd_leaves = normal_mean_unmarked.program(y[:398])  # 398 rows do not divide over 4
        odd_placement, _, odd_notes = sharding.for_program(odd, odd_leaves, None)
        out["auto_odd_axes"] = [odd_placement.batch_axis, odd_placement.data_axis]
        out["auto_odd_notes"] = odd_notes
        post = ppl.infer(normal_mean_unmarked, y[:398], method=ppl.Importance(num_particles=100))
        out["auto_odd_posterior_notes"] = list(post.notes)
    finally:
        ppl.config(auto_shard_rows=sharding.AUTO_SHARD_ROWS)
    return out


def multihost_results() -> dict:
    """The runs that devices_multihost.py repeats over 2 processes x 2 devices: NUTS chains, SMC
    particles and importance samples, each split over the 4 devices (of one or of two processes), and
    VI on a plate whose rows are split over them."""
    y = jnp.asarray(np.linspace(-1.0, 3.0, 16), jnp.float32)
    post = ppl.infer(normal_mean, y, method=ppl.NUTS(num_warmup=60, num_samples=20, num_chains=4, progress=False),
                     seed=11)
    ys = jnp.asarray(np.linspace(-2.0, 2.0, 12), jnp.float32)
    smc = ppl.infer(random_walk, ys, method=ppl.SMC(num_particles=400), seed=12)
    imp = ppl.infer(normal_mean, y, method=ppl.Importance(num_particles=400), seed=13)
    # VI on a plate whose 400 rows are split over the 4 devices (each step's row sum an all-reduce)
    import optax

    rng = np.random.default_rng(14)
    x = jnp.asarray(rng.normal(size=(400, 3)))
    yb = jnp.asarray(rng.random(400) < 1 / (1 + np.exp(-np.asarray(x) @ np.array([1.0, -0.5, 0.25]))), jnp.int32)
    vi = ppl.infer(logistic, x, yb, method=ppl.VI(guide=ppl.AutoNormal(), objective=ppl.ELBO(4),
                                                  optimizer=optax.adam(1e-2), num_steps=60, num_samples=20,
                                                  progress=False), seed=15)
    return {"nuts": np.asarray(post.samples["mu"], np.float64).ravel().tolist(),
            "nuts_devices": len(post.devices),
            "smc": np.asarray(smc.samples["x"], np.float64).ravel().tolist(),
            "smc_log_weights": np.asarray(smc.log_weights, np.float64).tolist(),
            "smc_log_z": smc.log_evidence, "smc_devices": len(smc.devices),
            "importance": np.asarray(imp.samples["mu"], np.float64).ravel().tolist(),
            "importance_log_weights": np.asarray(imp.log_weights, np.float64).tolist(),
            "importance_devices": len(imp.devices),
            "vi_history": np.asarray(vi.history, np.float64).tolist(),
            "vi": np.asarray(vi.samples["w"], np.float64).ravel().tolist(), "vi_devices": len(vi.devices)}


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "lean"
    result = {"multihost_reference": multihost_results()} if mode == "reference" else main(mode == "full")
    print("RESULT " + json.dumps(result))
    sys.stdout.flush()

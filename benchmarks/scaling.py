"""How time grows with chains, particles and data rows, on 1 and on 4 (virtual) devices.

    python benchmarks/scaling.py [--quick] [--devices 1 4] [--plot benchmarks/scaling.png]

Three sweeps, each through ``ppl.infer`` (or the compiled density) on the same model and seed:

- chains (1 -> 4096): NUTS on a 10-dimensional Gaussian, 100 warm-up + 100 draws per chain;
- particles (10^3 -> 10^6): bootstrap SMC on a 50-step linear-Gaussian state-space model;
- data rows (10^3 -> 10^7): the log density and gradient of a logistic regression whose plate is
  marked ``shard=True`` (what NUTS and HMC evaluate at every integration step).

Each device count runs in its own process (JAX fixes the device count when it starts:
``XLA_FLAGS=--xla_force_host_platform_device_count=D`` on CPU; on a machine with real devices
``--devices`` picks the first D). Times are medians of ``--repeats`` warm calls (compiled before
timing). On a CPU the virtual devices share the same cores, so 4 devices show the cost of the
partitioned program rather than a speed-up; on several GPUs the same script shows the speed-up.
Chains run one loop per device (no collective per integration step; benchmarks/chain_loops.py
compares that with the partitioned loop ppl used before); split rows end each evaluation of the
density with an all-reduce. ``--quick`` measures two points per sweep with shorter runs (a check that the script works).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHAINS = [1, 4, 16, 64, 256, 1024, 4096]
PARTICLES = [1_000, 10_000, 100_000, 1_000_000]
ROWS = [1_000, 10_000, 100_000, 1_000_000, 10_000_000]
QUICK = {"chains": [4, 64], "particles": [1_000, 10_000], "rows": [1_000, 100_000]}


def _median_time(fn, repeats: int, label: str = "") -> float:
    fn()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    t = statistics.median(times)
    print(f"  {label}: {t * 1e3:.1f} ms", file=sys.stderr, flush=True)  # progress, as it goes
    return t


def measure(devices: int, quick: bool, repeats: int) -> dict:
    """The three sweeps in this process, on ``devices`` devices."""
    import warnings

    warnings.simplefilter("ignore")  # short runs of many chains: sampling warnings are expected
    import jax
    import jax.numpy as jnp
    import numpy as np

    import ppl
    from ppl import dist
    from ppl.inference import sharding
    from ppl.semantics import compile as C

    @ppl.model
    def gaussian():
        ppl.sample("x", dist.Normal(jnp.zeros(10), 1.0))

    @ppl.model
    def state_space(ys):
        def step(x, y):
            x = ppl.sample("x", dist.Normal(0.9 * x, 1.0))
            ppl.observe("y", dist.Normal(x, 0.5), y)
            return x, None

        ppl.scan(step, 0.0, ys)

    @ppl.model
    def logistic(x, y):
        w = ppl.sample("w", dist.Normal(jnp.zeros(x.shape[1]), 1.0))
        with ppl.plate("rows", x.shape[0], shard=True):
            ppl.observe("y", dist.Bernoulli(logits=x @ w), y)

    sizes = QUICK if quick else {"chains": CHAINS, "particles": PARTICLES, "rows": ROWS}
    out = {"devices": devices, "platform": jax.devices()[0].platform, "chains": {}, "particles": {}, "rows": {}}
    for c in sizes["chains"]:
        draws = 50 if quick else 100
        method = ppl.NUTS(num_warmup=draws, num_samples=draws, num_chains=c, progress=False)
        on = devices if c % devices == 0 else 1  # one chain cannot be split
        out["chains"][c] = _median_time(lambda: ppl.infer(gaussian, method=method, devices=on), repeats,
                                        f"{devices} device(s), {c} chains")
    ys = jnp.asarray(np.random.default_rng(0).normal(size=50), jnp.float32)
    for n in sizes["particles"]:
        method = ppl.SMC(num_particles=n, ess_threshold=1.0)
        out["particles"][n] = _median_time(lambda: ppl.infer(state_space, ys, method=method, devices=devices),
                                           repeats, f"{devices} device(s), {n} particles")
    rng = np.random.default_rng(1)
    for n in sizes["rows"]:
        x = rng.normal(size=(n, 5)).astype(np.float32)
        y = (rng.random(n) < 0.5).astype(np.int32)
        program, leaves = logistic.program(jnp.asarray(x), jnp.asarray(y))
        _, placed, _ = sharding.for_program(program, leaves, devices)
        grad = jax.jit(jax.value_and_grad(lambda w, a: C.log_density(program, {"w": w}, list(a))))
        w = jnp.full((5,), 0.1, jnp.float32)
        out["rows"][n] = _median_time(lambda: jax.block_until_ready(grad(w, placed)), repeats,
                                      f"{devices} device(s), {n} rows")
    return out


def run_child(devices: int, quick: bool, repeats: int) -> dict:
    env = dict(os.environ)
    env.setdefault("PPL_CACHE", "off")
    import jax  # only to ask the platform; the child starts its own JAX

    if jax.devices()[0].platform == "cpu":
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    args = [sys.executable, __file__, "--child", str(devices), "--repeats", str(repeats)] + (["--quick"] if quick else [])
    proc = subprocess.run(args, stdout=subprocess.PIPE, text=True, env=env, check=False)  # progress: stderr
    if proc.returncode != 0:
        raise RuntimeError(f"the run on {devices} device(s) failed (its messages are above)")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def render(results: list[dict]) -> None:
    for sweep, label in (("chains", "chains"), ("particles", "particles"), ("rows", "data rows")):
        print(f"\n{label:>12} " + " ".join(f"{r['devices']:>3} device(s)" for r in results) + "   ratio")
        keys = list(results[0][sweep])
        for k in keys:
            ts = [r[sweep].get(k) for r in results]
            ratio = f"{ts[-1] / ts[0]:6.2f}" if None not in ts else ""
            print(f"{int(k):>12} " + " ".join(f"{t * 1e3:10.1f} ms" for t in ts) + f"   {ratio}")


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (sweep, label) in zip(axes, (("chains", "NUTS chains"), ("particles", "SMC particles"),
                                         ("rows", "data rows (density + gradient)"))):
        for r in results:
            xs = [int(k) for k in r[sweep]]
            ax.loglog(xs, [r[sweep][k] for k in r[sweep]], marker="o", label=f"{r['devices']} device(s)")
        ax.set_xlabel(label)
        ax.set_ylabel("seconds per call (median)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"ppl scaling on {results[0]['platform']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--plot", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "scaling.png"))
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print("RESULT " + json.dumps(measure(args.child, args.quick, args.repeats)))
        return
    results = [run_child(d, args.quick, args.repeats) for d in args.devices]
    render(results)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()

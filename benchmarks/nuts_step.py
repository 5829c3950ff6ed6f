"""What one leapfrog step of ppl's NUTS driver costs, by dimension: the sampler's own overhead.

The density is a diagonal Gaussian (scales 0.5 .. 3) whose gradient is a few elementwise
operations, so what is timed is the driver: momentum, the U-turn checks against the stored
checkpoints, the trajectory's bookkeeping. 4 chains, warm (compiled before timing). A step's cost
is the extra time of ``--extra`` more draws divided by the extra leapfrog steps of the busiest
chain (the chains run side by side, each starting its next transition when it ends one).

    python benchmarks/nuts_step.py --dims 10,32,33,53,200

The jump between d = 32 and d = 33 was XLA's CPU compiler splitting every reduction wider than
32 into a ``reduce-window`` pass (``hmc.inner`` now sums in blocks of 32).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("PPL_CACHE", "off")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ppl.inference.mcmc import base, nuts  # noqa: E402


def per_step(d: int, chains: int, extra: int, rounds: int) -> tuple[float, float]:
    """``(microseconds per leapfrog step, leapfrog steps per draw)`` at dimension ``d``."""
    scale = jnp.linspace(0.5, 3.0, d)

    def density(p):
        return -0.5 * jnp.sum((p["x"] / scale) ** 2)

    init = {"x": jax.random.uniform(jax.random.PRNGKey(0), (chains, d), minval=-2.0, maxval=2.0)}

    def run(samples, seed):
        return base.run_chains(jax.random.PRNGKey(seed), density, init, nuts.Builder(), num_warmup=1000,
                               num_samples=samples, warn=False, progress=False)

    timed = {}
    for samples in (1000, 1000 + extra):
        jax.block_until_ready(run(samples, 0).positions)  # compile
        times = []
        for r in range(rounds):
            start = time.perf_counter()
            out = run(samples, 1)
            jax.block_until_ready(out.positions)
            times.append(time.perf_counter() - start)
        steps = float(np.asarray(out.sample_stats["num_steps"]).sum(axis=1).max())
        timed[samples] = (statistics.median(times), steps)
    dt = timed[1000 + extra][0] - timed[1000][0]
    ds = timed[1000 + extra][1] - timed[1000][1]
    return dt / ds * 1e6, ds / extra


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="10,32,33,53,200")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--extra", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    cfg = parser.parse_args(argv)
    print(f"jax {jax.__version__}; {cfg.chains} chains; medians of {cfg.rounds}")
    for d in (int(x) for x in cfg.dims.split(",")):
        us, steps = per_step(d, cfg.chains, cfg.extra, cfg.rounds)
        print(f"  d = {d:5d}   {us:6.1f} us per leapfrog step   {steps:5.2f} steps per draw")


if __name__ == "__main__":
    main()

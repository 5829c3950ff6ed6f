"""Chains split over devices: one loop per device (``shard_map``) against one partitioned loop.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python benchmarks/chain_loops.py [--repeats 5]

Runs NUTS and HMC (``run_chains`` on a normal model with 200 observations, 16 chains, 300 warm-up
and 300 draws, float64) three ways in one process, interleaved, on the same key:

- ``1 device``: all chains on the first device;
- ``partitioned``: the chains split over the devices by XLA's partitioner, as ppl did before
  ``driver.on_devices``: one loop for all chains, whose conditions (``any`` chain still running)
  are an all-reduce across the devices at every integration step;
- ``per device``: what ppl does now, each device running the loop of its own chains, the devices
  exchanging nothing until the draws are returned.

Prints the median seconds per run (warm), the collectives in each compiled program, and the
largest difference of the draws from the one-device run. On a CPU the virtual devices share the
same cores, so neither split is faster than one device; the comparison that matters is between
the two splits (on GPUs the per-device loops also let each device run at its own pace).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chains", type=int, default=16)
    args = parser.parse_args(argv)
    import warnings

    warnings.simplefilter("ignore")
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ppl.inference import sharding
    from ppl.inference.mcmc import base, driver, hmc, nuts
    from ppl.inference.mcmc import init as init_mod

    jax.config.update("jax_enable_x64", True)  # float64: the draws can be compared to many digits
    y = jnp.asarray(np.random.default_rng(0).normal(1.0, 2.0, 200))

    def density():  # a new function object per mode: each keeps its own compiled program
        def logp(p, y):
            mu, ls = p["mu"], p["log_sigma"]
            return jnp.sum(jax.scipy.stats.norm.logpdf(y, mu, jnp.exp(ls))) - mu ** 2 / 200 - ls ** 2 / 2

        return logp

    per_device = driver.on_devices

    def partitioned(run, plan, setup, adapt, keys, placement):  # the loop of every chain, partitioned
        return per_device(run, plan, setup, adapt, keys, None)

    template = {"mu": jnp.zeros(()), "log_sigma": jnp.zeros(())}
    modes = {"1 device": (per_device, None), "partitioned": (partitioned, sharding.resolve(len(jax.devices()))),
             "per device": (per_device, sharding.resolve(len(jax.devices())))}
    builders = (("NUTS", nuts.Builder()), ("HMC", hmc.Builder(num_integration_steps=16)))
    every = {(name, mode): density() for name, _ in builders for mode in modes}  # all alive to the end
    for name, builder in builders:
        logps = {mode: every[name, mode] for mode in modes}
        times = {m: [] for m in modes}
        draws, collectives = {}, {}
        for rep in range(args.repeats + 1):
            for mode, (on_devices, placement) in modes.items():
                driver.on_devices = on_devices  # read when the program is first traced
                with sharding.placed(placement):
                    start = time.perf_counter()
                    r = base.run_chains(jax.random.key(1), logps[mode], init_mod.uniform(template), builder,
                                        num_warmup=300, num_samples=300, num_chains=args.chains, args=(y,),
                                        warn=False, progress=False)
                    jax.block_until_ready(r)
                    if rep:  # the first round compiles
                        times[mode].append(time.perf_counter() - start)
                    else:
                        collectives[mode] = _collectives(base, logps[mode], template, builder, args.chains, y)
                draws[mode] = np.asarray(r.positions["mu"])
        driver.on_devices = per_device
        print(f"{name}: {args.chains} chains on {len(jax.devices())} {jax.devices()[0].platform} devices, "
              f"median of {args.repeats} warm runs")
        for mode in modes:
            diff = float(np.max(np.abs(draws[mode] - draws["1 device"])))
            print(f"  {mode:>12}: {statistics.median(times[mode]):7.3f} s   collectives {collectives[mode]}   "
                  f"max |draws - 1 device| {diff:.2g}")


def _collectives(base, logp, template, builder, chains, y) -> dict:
    """Collective operations in the compiled program of the run just made (by kind)."""
    import jax

    from ppl.inference.mcmc import adaptation, driver, init as init_mod

    strategy = init_mod.uniform(template)
    plan = driver.Plan(chains, 300, 300)
    adapt = adaptation.Adaptation()
    key = jax.random.key(1)
    program = base._compiled(key, logp, strategy, template, (y,), builder, adapt, plan)
    text = program.lower(key, strategy.data, (y,), adapt.numbers()).compile().as_text()
    kinds = ("all-reduce", "all-gather", "collective-permute", "all-to-all")
    return {k: len(re.findall(rf"= \S+ {k}\(", text)) + len(re.findall(rf" {k}-start\(", text)) for k in kinds}


if __name__ == "__main__":
    main()

"""NUTS warm runs side by side, interleaved: for a machine too loaded (or too noisy) for ``nuts.py``'s
single warm run per repeat.

Each sampler of ``nuts.py`` (ppl through ``ppl.infer``, ppl's driver on the hand-written density,
NumPyro's ``mcmc.run`` under ``jax.jit``, BlackJAX) is compiled once; then ``--rounds`` rounds run
each sampler warm in turn with a new seed, so that load on the machine falls on every row alike.
Reported: median wall time, median smallest bulk ESS, their ratio (ESS/s) and ppl's ESS/s over each.

    python benchmarks/nuts_warm.py --problem eight_schools --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import nuts as bench  # noqa: E402  (sets JAX_PLATFORMS and PPL_CACHE first)

import jax  # noqa: E402


def samplers(problem, cfg):
    """name -> ``f(seed)`` returning the draws of one warm run (chains first)."""
    import ppl
    from ppl.inference.mcmc import base, nuts

    method = ppl.NUTS(num_warmup=cfg.warmup, num_samples=cfg.samples, num_chains=cfg.chains, progress=False)
    init = bench.initial_positions(problem, cfg.chains, 0)
    blackjax_sample = bench.blackjax_sampler(problem, cfg)
    numpyro_sample = bench.numpyro_jitted(problem, cfg)

    def ppl_run(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = ppl.infer(problem.ppl_model, *problem.ppl_args, method=method, seed=seed)
        return {k: v for k, v in post.samples.items() if k in problem.template}

    def driver(seed):
        return base.run_chains(jax.random.PRNGKey(seed), problem.logdensity, init, nuts.Builder(),
                               num_warmup=cfg.warmup, num_samples=cfg.samples, warn=False, progress=False).positions

    return {"ppl": ppl_run, "ppl driver, hand density": driver,
            "NumPyro (jitted)": lambda seed: numpyro_sample(jax.random.PRNGKey(seed), init),
            "BlackJAX": lambda seed: blackjax_sample(jax.random.PRNGKey(seed), init)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="eight_schools", choices=sorted(bench.PROBLEMS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    cfg = parser.parse_args(argv)
    problem = bench.PROBLEMS[cfg.problem]()
    fns = samplers(problem, cfg)
    for f in fns.values():  # compile
        bench.to_host(f(0))
    runs = {name: [] for name in fns}
    for r in range(cfg.rounds):
        for name, f in fns.items():
            seconds, draws = bench.timed(f, 100 + r)
            runs[name].append((seconds, bench.min_bulk_ess(draws)))
    table = {}
    for name, v in runs.items():
        warm, ess = statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)
        table[name] = (warm, ess, ess / warm)
    print(f"{problem.name}: {cfg.rounds} interleaved warm rounds, {cfg.chains} x ({cfg.warmup} + {cfg.samples}), medians")
    for name, (warm, ess, rate) in table.items():
        ratio = "" if name == "ppl" else f"{table['ppl'][2] / rate:6.2f}"
        print(f"   {name:26s} warm {warm:8.3f} s   min bulk ESS {ess:6.0f}   ESS/s {rate:9.0f}   ppl/x {ratio}")
    return table


if __name__ == "__main__":
    main()

"""Many chains: time to a target min-ESS with ppl.ChEES against ppl.NUTS, at 1,024 and 4,096 chains.

    python benchmarks/chees.py [--chains 1024 4096] [--target 1000] [--warmup 300] [--repeats 3]

Problems (ppl models through ``ppl.infer``, float32, on the default device):

- ``gaussian50``: a 50-d Gaussian with AR(1) correlation 0.9 between neighbours and scales
  log-spaced from 0.5 to 2 (``MultivariateNormal(0, scale_tril=L)``);
- ``hierarchical``: a normal hierarchical model, 50 groups x 20 observations (centred; the model of
  ``first_draw.py``).

Both samplers get the same warm-up length (``--warmup``; NUTS: Stan's windows, ChEES: its
cross-chain adaptation) and start from the same kind of points (uniform in (-2, 2), unconstrained).
For each sampler, problem and chain count, the untimed first run (it compiles) finds the fewest
draws per chain, doubling from ``--samples``, whose smallest bulk or tail ESS over all coordinates
reaches ``--target``; then ``--repeats`` runs with fresh seeds, NUTS and ChEES interleaved, time
``ppl.infer`` end to end (warm-up, sampling, building the Posterior, the checks). Reported:
median wall seconds, the draws per chain used, median min-ESS, the largest nested R-hat
(``diagnostics.nested_rhat``, 8 groups; below 1.01 means warm-up reached the posterior), the
largest error of the posterior mean in posterior standard deviations (gaussian50, against the exact
mean 0), and the time ratio ChEES / NUTS (below 1: ChEES reaches the target sooner).

``device.py`` runs this on an accelerator with ``--chains 1024 4096``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import ppl
from ppl import dist
from ppl.inference import diagnostics

from first_draw import HIERARCHICAL_PPL  # noqa: E402 - the same model as the first-draw benchmark


def gaussian50_scale_tril(d: int = 50, rho: float = 0.9) -> np.ndarray:
    idx = np.arange(d)
    corr = rho ** np.abs(idx[:, None] - idx[None, :])
    scales = np.logspace(np.log10(0.5), np.log10(2.0), d)
    return np.linalg.cholesky(corr * np.outer(scales, scales)).astype(np.float32)


@ppl.model
def gaussian50(scale_tril):
    return ppl.sample("x", dist.MultivariateNormal(jnp.zeros(scale_tril.shape[0]), scale_tril=scale_tril))


def problem(name: str):
    """(model, args, exact posterior standard deviations or None)."""
    if name == "gaussian50":
        tril = gaussian50_scale_tril()
        return gaussian50, (tril,), np.sqrt(np.diag(tril.astype(np.float64) @ tril.T.astype(np.float64)))
    rng = np.random.default_rng(0)
    theta = 1.0 + 2.0 * rng.normal(size=50)
    y = (theta[:, None] + rng.normal(size=(50, 20))).astype(np.float32)
    return ppl.loads(HIERARCHICAL_PPL).hierarchical, (50, 20, y), None


def draws_of(post) -> np.ndarray:
    """All latent coordinates as (chains, draws, coordinates)."""
    blocks = [np.asarray(v, np.float64).reshape(v.shape[0], v.shape[1], -1) for v in post.samples.values()]
    return np.concatenate(blocks, axis=-1)


def measure(name: str, sampler: str, chains: int, warmup: int, samples: int, seed: int) -> dict:
    model, args, sd = problem(name)
    cls = ppl.ChEES if sampler == "ChEES" else ppl.NUTS
    method = cls(num_chains=chains, num_warmup=warmup, num_samples=samples, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NUTS's per-chain ESS floor does not fit short chains
        start = time.perf_counter()
        post = ppl.infer(model, *args, method=method, seed=seed)
        seconds = time.perf_counter() - start
    x = draws_of(post)
    ess = np.fmin(diagnostics.ess_bulk(x), diagnostics.ess_tail(x))
    out = {"seconds": seconds, "min_ess": float(np.min(ess)),
           "nested_rhat": float(np.max(diagnostics.nested_rhat(x, 8)))}
    if sd is not None:
        out["mean_error_sd"] = float(np.max(np.abs(x.mean(axis=(0, 1))) / sd))
    print(f"  ({name}, {chains} chains, {sampler}, {samples} draws, seed {seed}: "
          + ", ".join(f"{k} {v:.4g}" for k, v in out.items()) + ")", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--problems", default="gaussian50,hierarchical")
    parser.add_argument("--target", type=float, default=1000.0)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=10, help="first number of draws per chain tried")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"device: {jax.devices()[0].device_kind} ({jax.devices()[0].platform}), jax {jax.__version__}; "
          f"target min-ESS {args.target:.0f}, warm-up {args.warmup}, medians of {args.repeats}", flush=True)
    header = (f"{'problem':<13} {'chains':>6} {'sampler':<6} {'draws':>5} {'first s':>8} {'wall s':>8} "
              f"{'min ESS':>8} {'nRhat':>6} {'mean err':>8} {'ChEES/NUTS':>10}")
    print(header, flush=True)
    for name in args.problems.split(","):
        for chains in args.chains:
            plan = {}
            for sampler in ("NUTS", "ChEES"):  # the first run compiles and sizes the sampling
                samples = args.samples
                for _ in range(4):
                    first = measure(name, sampler, chains, args.warmup, samples, seed=0)
                    if first["min_ess"] >= args.target:
                        break
                    samples *= 2
                plan[sampler] = (samples, first)
            runs = {s: [] for s in plan}
            for r in range(args.repeats):  # interleaved
                for sampler, (samples, _) in plan.items():
                    runs[sampler].append(measure(name, sampler, chains, args.warmup, samples, seed=r + 1))
            med = {s: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for s, rs in runs.items()}
            for sampler in plan:
                m = med[sampler]
                ratio = f"{med['ChEES']['seconds'] / med['NUTS']['seconds']:>10.2f}" if sampler == "ChEES" else ""
                err = f"{m['mean_error_sd']:>8.3f}" if "mean_error_sd" in m else f"{'':>8}"
                print(f"{name:<13} {chains:>6} {sampler:<6} {plan[sampler][0]:>5} {plan[sampler][1]['seconds']:>8.1f} "
                      f"{m['seconds']:>8.2f} {m['min_ess']:>8.0f} {m['nested_rhat']:>6.3f} {err} {ratio}",
                      flush=True)


if __name__ == "__main__":
    main()

"""SMC: ppl's bootstrap filter against a hand-written JAX bootstrap filter.

Target: ratio ppl / hand-written <= 1.2 at 1,000, 10,000 and 100,000 particles.

    python benchmarks/smc.py [--repeats 9] [--steps 100] [--particles 1000 10000 100000]
    python benchmarks/smc.py --memory 1000000     # peak memory of one run with 10^6 particles

The model is the 1-D linear-Gaussian state-space model
``x_t = a x_{t-1} + N(0, q^2)``, ``y_t = x_t + N(0, r^2)``, ``x_0 = 0``, with
``T`` steps. ppl runs it through ``ppl.infer`` on the decorated model with
``SMC(num_particles=N, ess_threshold=1.0)`` (systematic resampling after every
step but the last), warm: compiled once before timing, so each timed call is
what a user pays per ``ppl.infer``: argument handling, the compiled filter, and
building the posterior (log-evidence, final weights and statistics). The particles'
ancestral paths ``x`` of shape ``(N, T)`` (and the return values, the same paths)
are read back when the samples are first read: "ppl+paths" times ``ppl.infer``
followed by ``post.samples["x"]``, what a user who reads them pays. The hand-written filter
is one jitted function with the same resampling, returning the log-evidence and
the final weighted particles; it is timed twice, with the usual ``searchsorted``
resampler ("hand"), with ppl's O(N) systematic resampler and ppl's in-bounds, sorted
gather of the ancestors ("hand O(N)"), and with those and its normals hashed by a written-out
Threefry that XLA fuses ("+fused", the fastest hand-written filter we know; ``jax.random``
runs Threefry as a rolled loop on CPU); "ppl/best" divides by the fastest of the three. All run in the same process, in turn, on
the same data; the table reports the median over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

import ppl
from ppl import dist
from ppl.inference.smc import SMC
from ppl.inference.smc import resampling
from ppl.stdlib.particle_keys import PARTICLE_KEY

A, Q, R = 0.9, 1.0, 0.5


@ppl.model
def linear_gaussian(ys, a, q, r):
    def step(x, y):
        x = ppl.sample("x", dist.Normal(a * x, q))
        ppl.observe("y", dist.Normal(x, r), y)
        return x, x

    _, xs = ppl.scan(step, 0.0, ys)
    return xs


def _fused_key(key):
    """``key`` as a key whose draws hash with the written-out Threefry (one fused kernel) instead of
    ``jax.random``'s rolled loop: ppl's particle-key kind with particle index 0."""
    words = jax.random.bits(key, (2,), jnp.uint32)
    return jax.random.wrap_key_data(jnp.concatenate([words, jnp.zeros((1,), jnp.uint32)]), impl=PARTICLE_KEY)


def by_hand(n: int, resampler=None, fast_gather: bool = False, fused_rng: bool = False):
    """A bootstrap filter as one would write it in JAX: systematic resampling after every step.

    ``resampler(key, log_w) -> ancestors``: by default the usual ``searchsorted`` on the
    cumulative weights (O(N log N)); pass ppl's O(N) systematic resampler to compare the rest.
    ``fast_gather``: gather the resampled particles with the promise that the ancestors are in
    range and sorted (what ppl's filter does), instead of ``x[idx]``.
    ``fused_rng``: the step's normals hashed by the written-out Threefry (``_fused_key``) instead of
    ``jax.random``'s rolled loop: with the two above, the fastest hand-written filter we know.
    """

    def normal_log_density(x, loc, scale):
        z = (x - loc) / scale
        return -0.5 * z * z - jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi)

    def systematic(key, log_w):
        w = jnp.exp(log_w - logsumexp(log_w))
        u = (jnp.arange(n) + jax.random.uniform(key)) / n
        return jnp.clip(jnp.searchsorted(jnp.cumsum(w), u), 0, n - 1)

    def run(key, ys, a, q, r):
        def step(state, inp):
            x, log_z, _ = state
            key, y, last = inp
            k_move, k_resample = jax.random.split(key)
            x = a * x + q * jax.random.normal(_fused_key(k_move) if fused_rng else k_move, (n,))
            log_w = normal_log_density(y, x, r)
            log_z = log_z + logsumexp(log_w) - jnp.log(n)
            idx = jnp.where(last, jnp.arange(n), (resampler or systematic)(k_resample, log_w))
            x = x.at[idx].get(mode="promise_in_bounds", indices_are_sorted=True) if fast_gather else x[idx]
            return (x, log_z, log_w), None

        steps = ys.shape[0]
        keys = jax.random.split(key, steps)
        last = jnp.arange(steps) == steps - 1
        init = (jnp.zeros(n), jnp.zeros(()), jnp.zeros(n))
        (x, log_z, log_w), _ = jax.lax.scan(step, init, (keys, ys, last))
        return log_z, x, log_w

    return jax.jit(run)


def simulate(steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x, ys = 0.0, []
    for _ in range(steps):
        x = A * x + Q * rng.normal()
        ys.append(x + R * rng.normal())
    return np.asarray(ys, dtype=np.float32)


def kalman_log_evidence(ys) -> float:
    m, p, ll = 0.0, 0.0, 0.0
    for y in np.asarray(ys, dtype=np.float64):
        m, p = A * m, A * A * p + Q * Q
        s = p + R * R
        ll += -0.5 * np.log(2 * np.pi * s) - 0.5 * (y - m) ** 2 / s
        k = p / s
        m, p = m + k * (y - m), (1 - k) * p
    return ll


def bench(n: int, ys, repeats: int):
    """Median seconds per run and mean log Z of: ppl, ppl reading the paths, by hand (searchsorted),
    by hand (ppl's resampler), by hand (ppl's resampler, fused Threefry)."""
    method = SMC(num_particles=n, ess_threshold=1.0)
    hands = [by_hand(n), by_hand(n, resampling.systematic, fast_gather=True),
             by_hand(n, resampling.systematic, fast_gather=True, fused_rng=True)]
    ys_j = jnp.asarray(ys)

    def run_ppl(seed):
        post = ppl.infer(linear_gaussian, ys, A, Q, R, method=method, seed=seed)
        return post.log_evidence

    def run_ppl_paths(seed):
        post = ppl.infer(linear_gaussian, ys, A, Q, R, method=method, seed=seed)
        assert post.samples["x"].shape == (n, len(ys))
        return post.log_evidence

    def runner(hand):
        def run(seed):
            log_z, x, log_w = hand(jax.random.key(seed), ys_j, A, Q, R)
            return float(jax.block_until_ready(log_z))

        return run

    runs = [run_ppl, run_ppl_paths] + [runner(h) for h in hands]
    for run in runs:  # compile
        run(0)
    times = [[] for _ in runs]
    log_z = [[] for _ in runs]
    for i in range(repeats):
        for j, run in enumerate(runs):
            t0 = time.perf_counter()
            log_z[j].append(run(i + 1))
            times[j].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times], [float(np.mean(z)) for z in log_z]


def peak_memory(n: int, ys) -> None:
    """One ``ppl.infer`` with ``n`` particles in this process; prints its result and the peak RSS."""
    import resource

    t0 = time.perf_counter()
    post = ppl.infer(linear_gaussian, ys, A, Q, R, method=SMC(num_particles=n, ess_threshold=1.0), seed=1)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB
    print(f"{n:,} particles, T={len(ys)}: log Z {post.log_evidence:.3f} (exact {kalman_log_evidence(ys):.3f}), "
          f"paths {post.samples['x'].shape}, {seconds:.1f} s with compilation, peak RSS {peak:.2f} GiB")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--particles", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--memory", type=int, metavar="N",
                        help="instead of timing: one run with N particles and the process's peak memory")
    args = parser.parse_args(argv)
    ys = simulate(args.steps)
    if args.memory:
        return peak_memory(args.memory, ys)
    exact = kalman_log_evidence(ys)
    print(f"linear-Gaussian state-space model, T={args.steps}, bootstrap filter, systematic resampling every step")
    print(f"device: {jax.devices()[0].platform}, exact log Z = {exact:.3f}")
    print("ratios: ppl / each hand-written filter; 'best' is the fastest of the three at that size")
    print(f"{'particles':>10} {'ppl ms':>9} {'hand ms':>9} {'ratio':>6} {'hand O(N) ms':>13} {'ratio':>6}"
          f" {'+fused ms':>10} {'ratio':>6} {'ppl/best':>9} {'ppl+paths ms':>13} {'/best':>6} {'log Z: ppl':>11} {'hand':>9}")
    for n in args.particles:
        (tp, tpp, th, to, tf), (zp, _, zh, _, _) = bench(n, ys, args.repeats)
        best = min(th, to, tf)
        print(f"{n:>10,} {tp * 1e3:>9.2f} {th * 1e3:>9.2f} {tp / th:>6.2f} {to * 1e3:>13.2f} {tp / to:>6.2f}"
              f" {tf * 1e3:>10.2f} {tp / tf:>6.2f} {tp / best:>9.2f} {tpp * 1e3:>13.2f} {tpp / best:>6.2f}"
              f" {zp:>11.3f} {zh:>9.3f}")


if __name__ == "__main__":
    main()

"""ppl's hand-written Dormand-Prince (``ppl.ode.ode_rk45``) against diffrax's Dopri5.

The Lotka-Volterra system of examples/posteriordb/lotka_volterra.ppl (20 output times,
rtol 1e-6, atol 1e-5, as that model calls it), solved alone and solved with the gradient of
a scalar of the solution with respect to the four parameters and the initial state (what
NUTS needs). Both are jitted in one process, timed alternately on the same inputs; the
median over repeats is printed, with the ratio hand-written / diffrax (below 1: the
hand-written solver is faster). The two must also agree to the tolerance.

    python benchmarks/ode.py [--repeats 7] [--calls 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from ppl.ode import ode_rk45
from ppl.ode_stiff import ode_dopri5

TS = jnp.arange(1.0, 21.0)
THETA = jnp.array([0.55, 0.028, 0.80, 0.024])
Z0 = jnp.array([34.0, 5.9])
RTOL, ATOL = 1e-6, 1e-5


def lotka_volterra(t, z, theta):
    u, v = z[0], z[1]
    return jnp.stack([(theta[0] - theta[1] * v) * u, (-theta[2] + theta[3] * u) * v])


def make(solver):
    def solve(theta, z0):
        return solver(lotka_volterra, z0, 0.0, TS, theta, RTOL, ATOL)

    def loss(theta, z0):
        return jnp.sum(jnp.log(solve(theta, z0)))

    return jax.jit(solve), jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def time_calls(fn, calls: int) -> float:
    """Microseconds per call, blocking on the result of every call."""
    start = time.perf_counter()
    for _ in range(calls):
        jax.block_until_ready(fn(THETA, Z0))
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()

    ours_solve, ours_grad = make(ode_rk45)
    theirs_solve, theirs_grad = make(ode_dopri5)
    compile_s = {}
    for name, fn in (("hand-written solve", ours_solve), ("diffrax solve", theirs_solve),
                     ("hand-written gradient", ours_grad), ("diffrax gradient", theirs_grad)):
        start = time.perf_counter()
        jax.block_until_ready(fn(THETA, Z0))
        compile_s[name] = time.perf_counter() - start

    a, b = np.asarray(ours_solve(THETA, Z0)), np.asarray(theirs_solve(THETA, Z0))
    print(f"max relative difference of the solutions: {np.max(np.abs(a - b) / np.abs(b)):.2e}")
    ga, gb = ours_grad(THETA, Z0)[1], theirs_grad(THETA, Z0)[1]
    rel = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)) / (np.abs(np.asarray(y)) + 1e-6)))
              for x, y in zip(ga, gb))
    print(f"max relative difference of the gradients: {rel:.2e}")

    rows = []
    for what, ours, theirs in (("solve", ours_solve, theirs_solve), ("solve + gradient", ours_grad, theirs_grad)):
        t_ours, t_theirs = [], []
        for _ in range(args.repeats):
            t_ours.append(time_calls(ours, args.calls))
            t_theirs.append(time_calls(theirs, args.calls))
        mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
        rows.append((what, mo, mt, mo / mt))

    print("\n| what | hand-written (us) | diffrax Dopri5 (us) | ratio hand-written / diffrax |")
    print("|---|---|---|---|")
    for what, mo, mt, r in rows:
        print(f"| {what} | {mo:.1f} | {mt:.1f} | {r:.3f} |")
    print("\nfirst call (trace + compile + run), seconds: "
          + ", ".join(f"{k} {v:.2f}" for k, v in compile_s.items()))


if __name__ == "__main__":
    main()

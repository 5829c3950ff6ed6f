"""The compiled log density (and its gradient) against a hand-written JAX function.

Target: ratio ppl / hand-written <= 1.05 — the PPL adds no cost to the compiled density.

    python benchmarks/log_density.py [--repeats 7] [--calls 2000]

Both functions are jitted and timed in the same process, on the same inputs,
alternating, and the median over repeats is reported.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import ppl
from ppl import dist

DATA = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "posteriordb"


# --- eight schools, non-centred --------------------------------------------------------


@ppl.model
def eight_schools(y, sigma):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    tau = ppl.sample("tau", dist.HalfCauchy(5.0))
    with ppl.plate("schools", y.shape[0]):
        theta_trans = ppl.sample("theta_trans", dist.Normal(0.0, 1.0))
        ppl.observe("y", dist.Normal(mu + tau * theta_trans, sigma), y)


def eight_schools_by_hand(y, sigma):
    def logp(u):
        mu, log_tau, tt = u["mu"], u["tau"], u["theta_trans"]
        tau = jnp.exp(log_tau)
        lp = -0.5 * (mu / 5.0) ** 2 - jnp.log(5.0) - 0.5 * jnp.log(2 * jnp.pi)
        lp += jnp.log(2.0) - jnp.log(jnp.pi * 5.0) - jnp.log1p((tau / 5.0) ** 2) + log_tau
        lp += jnp.sum(-0.5 * tt**2 - 0.5 * jnp.log(2 * jnp.pi))
        theta = mu + tau * tt
        lp += jnp.sum(-0.5 * ((y - theta) / sigma) ** 2 - jnp.log(sigma) - 0.5 * jnp.log(2 * jnp.pi))
        return lp

    return logp


# --- Bayesian logistic regression, N=5000, D=25 -------------------------------------------


@ppl.model
def logistic(X, y):
    beta = ppl.sample("beta", dist.Normal(jnp.zeros(X.shape[1]), 1.0))
    with ppl.plate("data", X.shape[0]):
        ppl.observe("y", dist.Bernoulli(logits=X @ beta), y)


def logistic_by_hand(X, y):
    def logp(u):
        beta = u["beta"]
        lp = jnp.sum(-0.5 * beta**2 - 0.5 * jnp.log(2 * jnp.pi))
        logits = X @ beta
        lp += jnp.sum(y * jax.nn.log_sigmoid(logits) + (1 - y) * jax.nn.log_sigmoid(-logits))
        return lp

    return logp


def problems():
    d = json.loads((DATA / "eight_schools-eight_schools_noncentered.data.json").read_text())
    y, sigma = jnp.asarray(d["y"], jnp.float32), jnp.asarray(d["sigma"], jnp.float32)
    u8 = {"mu": jnp.float32(1.0), "tau": jnp.float32(0.5), "theta_trans": jnp.linspace(-1, 1, 8)}
    key = jax.random.key(0)
    X = jax.random.normal(key, (5000, 25))
    beta_true = jax.random.normal(jax.random.key(1), (25,))
    yb = jax.random.bernoulli(jax.random.key(2), jax.nn.sigmoid(X @ beta_true)).astype(jnp.int32)
    ub = {"beta": 0.1 * beta_true}
    return [
        ("eight schools (non-centred)", eight_schools.log_density_function(y, sigma, unconstrained=True),
         eight_schools_by_hand(y, sigma), u8),
        ("logistic regression N=5000 D=25", logistic.log_density_function(X, yb, unconstrained=True),
         logistic_by_hand(X, yb.astype(jnp.float32)), ub),
    ]


def time_calls(fn, arg, calls):
    jax.block_until_ready(fn(arg))
    start = time.perf_counter()
    for _ in range(calls):
        out = fn(arg)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    opts = parser.parse_args()
    print(f"{'model':34} {'what':9} {'ppl (us)':>10} {'hand (us)':>10} {'ratio':>7}")
    for name, ours, hand, u in problems():
        a, b = float(jax.jit(ours)(u)), float(jax.jit(hand)(u))
        assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), f"{name}: densities differ: {a} vs {b}"
        for what, f, g in (("density", ours, hand), ("gradient", jax.grad(ours), jax.grad(hand))):
            f, g = jax.jit(f), jax.jit(g)
            tf, tg = [], []
            for _ in range(opts.repeats):
                tf.append(time_calls(f, u, opts.calls))
                tg.append(time_calls(g, u, opts.calls))
            mf, mg = statistics.median(tf), statistics.median(tg)
            print(f"{name:34} {what:9} {mf * 1e6:10.2f} {mg * 1e6:10.2f} {mf / mg:7.3f}")


if __name__ == "__main__":
    main()

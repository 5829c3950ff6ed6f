"""Variational inference speed, side by side in one process, printed as ratios (medians of several runs).

1. Mean-field logistic regression (N=5000, D=25), per optimisation step (ELBO, P particles, Adam):
   ppl's compiled step (``VI``'s own chunk, a ``lax.scan`` of steps) vs a hand-written JAX+optax step
   (same estimator and particles, jitted, the same ``lax.scan``) vs NumPyro's ``svi.run`` (plain and with
   its progress bar), each per step over a run of ``--steps`` steps.
2. The VAE of ``examples/vae.py`` (all 1797 digits), per gradient step: ppl vs hand-written JAX.
3. A whole ``ppl.infer(..., method=ppl.VI(...))`` of 10,000 steps vs NumPyro's ``svi.run`` of 10,000 steps on the
   logistic regression, first call (compiling) and second call (new data, same shapes).

    python benchmarks/vi.py [--repeats 5] [--steps 1000] [--particles 4]
"""

from __future__ import annotations

import argparse
import math
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ppl
from ppl import dist
from ppl.inference.vi.guides import bind_guide
from ppl.inference.vi.method import compiled
from ppl.inference.vi.paramset import with_model_params

N, D = 5000, 25


def data(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)).astype(np.float32)
    w = rng.normal(size=D).astype(np.float32)
    y = (rng.uniform(size=N) < 1 / (1 + np.exp(-X @ w))).astype(np.float32)
    return X, y


@ppl.model
def logreg(X, y):
    w = ppl.sample("w", dist.Normal(jnp.zeros(X.shape[1]), 1.0))
    with ppl.plate("data", X.shape[0]):
        ppl.observe("y", dist.Bernoulli(logits=X @ w), y)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------
# ppl's own loop, one chunk of `steps` steps (what VI runs)


def ppl_chunk(model, args, method):
    program, leaves = model.program(*args)
    guide = with_model_params(bind_guide(method.guide, program, leaves), program, leaves)
    fns = compiled(program, method, guide, method.optimizer)
    phi = guide.init(jax.random.key(0))
    state = (phi, method.optimizer.init(phi), jnp.zeros(()), jnp.zeros((), jnp.int32), jax.random.key(1))
    chunk = fns.chunk(int(method.chunk_size))
    return lambda: chunk(state, leaves)[1]


# ---------------------------------------------------------------------------
# hand-written: the same mean-field ELBO, reparameterised, P particles, Adam, in a lax.scan


def handwritten_logreg(X, y, steps, particles, lr):
    opt = optax.adam(lr)

    def elbo(phi, key, X, y):
        eps = jax.random.normal(key, (particles, D))
        w = phi["loc"] + jnp.exp(phi["log_scale"]) * eps
        log_prior = jnp.sum(-0.5 * w ** 2 - 0.5 * math.log(2 * math.pi), axis=1)
        logits = w @ X.T  # (P, N)
        log_lik = jnp.sum(y * logits - jnp.logaddexp(0.0, logits), axis=1)
        log_q = jnp.sum(-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi) - phi["log_scale"], axis=1)
        return jnp.mean(log_prior + log_lik - log_q)

    def step(state, _, X, y):
        phi, opt_state, key = state
        key, sub = jax.random.split(key)
        value, grads = jax.value_and_grad(lambda p: -elbo(p, sub, X, y))(phi)
        updates, opt_state = opt.update(grads, opt_state, phi)
        return (optax.apply_updates(phi, updates), opt_state, key), -value

    @jax.jit
    def run(state, X_, y_):  # the data as arguments, as ppl's chunk takes them (not constants XLA may fold)
        return jax.lax.scan(lambda st, i: step(st, i, X_, y_), state, None, length=steps)

    phi = {"loc": jnp.zeros(D), "log_scale": jnp.full(D, math.log(0.1))}
    state = (phi, opt.init(phi), jax.random.key(1))
    X, y = jnp.asarray(X), jnp.asarray(y)
    return lambda: run(state, X, y)[1]


def numpyro_svi(particles, lr):
    import numpyro
    import numpyro.distributions as nd
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    def model(X, y):
        w = numpyro.sample("w", nd.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
        with numpyro.plate("data", X.shape[0]):
            numpyro.sample("y", nd.Bernoulli(logits=X @ w), obs=y)

    return SVI(model, AutoNormal(model, init_scale=0.1), optax.adam(lr), Trace_ELBO(num_particles=particles))


def numpyro_logreg(X, y, steps, particles, lr, progress, svi=None):
    svi = numpyro_svi(particles, lr) if svi is None else svi
    return lambda: svi.run(jax.random.key(0), steps, X, y, progress_bar=progress).losses


# ---------------------------------------------------------------------------
# the VAE


def vae_parts():
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
    import vae

    return vae


def handwritten_vae(vae, x, steps, lr):
    """The same VAE and ELBO(1) as examples/vae.py, written directly in JAX (decoder weights and the
    Equinox encoder's arrays trained by Adam)."""
    import equinox as eqx

    enc = vae.encoder(0)
    enc_params, enc_static = eqx.partition(enc, eqx.is_inexact_array)
    dec = {"w1": vae.init_weights((vae.LATENT, vae.HIDDEN), 1), "b1": np.zeros(vae.HIDDEN, np.float32),
           "w2": vae.init_weights((vae.HIDDEN, vae.PIXELS), 2), "b2": np.zeros(vae.PIXELS, np.float32)}
    params = {"enc": enc_params, "dec": jax.tree.map(jnp.asarray, dec)}
    opt = optax.adam(lr)

    def elbo(p, key, x):
        out = jax.vmap(eqx.combine(p["enc"], enc_static))(x)
        loc, log_scale = out[:, :vae.LATENT], out[:, vae.LATENT:]
        eps = jax.random.normal(key, loc.shape)
        z = loc + jnp.exp(log_scale) * eps
        logits = jnp.tanh(z @ p["dec"]["w1"] + p["dec"]["b1"]) @ p["dec"]["w2"] + p["dec"]["b2"]
        log_lik = jnp.sum(x * logits - jnp.logaddexp(0.0, logits))
        log_prior = jnp.sum(-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi))
        log_q = jnp.sum(-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi) - log_scale)
        return log_lik + log_prior - log_q

    def step(state, _, x):
        p, s, key = state
        key, sub = jax.random.split(key)
        value, grads = jax.value_and_grad(lambda q: -elbo(q, sub, x))(p)
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), s, key), -value

    @jax.jit
    def run(state, x):
        return jax.lax.scan(lambda st, i: step(st, i, x), state, None, length=steps)

    state = (params, opt.init(params), jax.random.key(1))
    return lambda: run(state, x)[1]


# ---------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--particles", type=int, default=4)
    parser.add_argument("--whole-steps", type=int, default=10_000)
    parser.add_argument("--skip-vae", action="store_true")
    opts = parser.parse_args(argv)
    steps, P, lr, R = opts.steps, opts.particles, 1e-2, opts.repeats
    X, y = data(0)
    print(f"devices: {jax.devices()}; {R} repeats (medians), {steps} steps per run, {P} particles")

    method = ppl.VI(guide=ppl.AutoNormal(), objective=ppl.ELBO(P), optimizer=optax.adam(lr), num_steps=steps,
                    chunk_size=steps, progress=False)
    fns = {"ppl (VI's compiled chunk)": ppl_chunk(logreg, (X, y), method),
           "hand-written JAX+optax": handwritten_logreg(X, y, steps, P, lr)}
    try:
        fns["NumPyro svi.run"] = numpyro_logreg(X, y, steps, P, lr, progress=False)
        fns["NumPyro svi.run (progress bar)"] = numpyro_logreg(X, y, steps, P, lr, progress=True)
    except ImportError:
        print("numpyro not installed: its rows are skipped")
    for fn in fns.values():  # compile / warm up
        jax.block_until_ready(fn())
    runs = {name: [] for name in fns}
    for _ in range(R):  # interleaved, so that load on the machine hits every row alike
        for name, fn in fns.items():
            runs[name].append(median_time(fn, 1) / steps)
    per_step = {name: statistics.median(v) for name, v in runs.items()}
    base = per_step["hand-written JAX+optax"]
    print(f"\n1. mean-field logistic regression, N={N}, D={D}: one optimisation step")
    for name, t in per_step.items():
        print(f"   {name:34s} {t * 1e6:10.1f} us/step   {t / base:6.2f}x hand-written")

    if not opts.skip_vae:
        vae = vae_parts()
        x = vae.digits()
        vsteps = max(steps // 5, 50)
        vmethod = ppl.VI(guide=ppl.Amortized(vae.encoder_guide, vae.encoder(0)), objective=ppl.ELBO(1),
                         optimizer=optax.adam(3e-3), num_steps=vsteps, chunk_size=vsteps, progress=False)
        vfns = {"ppl": ppl_chunk(vae.decoder, (x,), vmethod), "hand-written JAX": handwritten_vae(vae, x, vsteps, 3e-3)}
        for fn in vfns.values():
            jax.block_until_ready(fn())
        vruns = {name: [] for name in vfns}
        for _ in range(R):
            for name, fn in vfns.items():
                vruns[name].append(median_time(fn, 1) / vsteps)
        vt = {name: statistics.median(v) for name, v in vruns.items()}
        print(f"\n2. VAE on the digits ({x.shape[0]} images): one gradient step (ELBO(1), Adam)")
        for name, t in vt.items():
            print(f"   {name:34s} {t * 1e3:10.3f} ms/step   {t / vt['hand-written JAX']:6.2f}x hand-written")

    W = opts.whole_steps
    print(f"\n3. a whole fit of {W} steps (ELBO({P}), Adam), logistic regression; seconds")
    whole = ppl.VI(guide=ppl.AutoNormal(), objective=ppl.ELBO(P), optimizer=optax.adam(lr), num_steps=W,
                   progress=False)
    rows = []
    try:
        svi = numpyro_svi(P, lr)
    except ImportError:
        svi = None
    for call, seed in (("first call", 0), ("second call, new data", 1)):
        Xs, ys = data(seed)
        start = time.perf_counter()
        ppl.infer(logreg, Xs, ys, method=whole, seed=seed)
        t_ppl = time.perf_counter() - start
        t_np = math.nan
        if svi is not None:  # the same SVI object both times
            start = time.perf_counter()
            jax.block_until_ready(numpyro_logreg(Xs, ys, W, P, lr, progress=False, svi=svi)())
            t_np = time.perf_counter() - start
        rows.append((call, t_ppl, t_np))
        print(f"   {call:24s} ppl.infer {t_ppl:7.2f} s   NumPyro svi.run {t_np:7.2f} s   ratio {t_ppl / t_np:5.2f}x")
    return per_step, rows


if __name__ == "__main__":
    main()

"""``ppl.marginal(..., reverse=r)``: SIR with a learned reverse model r(u | z) (Ranganath et al. 2016;
Sobolev & Vetrov 2019). With the exact reverse q(u | z) every importance weight is q(z), so the
density estimate is exact and the bound is tight (the ELBO of the exact marginal) for any K; on the
noisy cone, training a reverse model raises IWHVI's bound above SIR from the prior.
Tolerances: 1e-5 for exact identities, 4 standard errors for Monte Carlo means (fixed seeds)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

import ppl
from ppl.inference.vi.guides import bind_guide
from ppl.inference.vi.objectives import Context
from ppl.stdlib.errors import ModelError

YS = np.array([0.3, 1.2, -0.4, 2.0, 0.9], np.float32)
A0, B0, S0 = 0.4, 0.8, 0.5


@ppl.model
def normal_mean(y):
    mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", ppl.dist.Normal(mu, 1.0), y)


@ppl.model
def hierarchical():
    a = ppl.param("a", A0)
    b = ppl.param("b", B0)
    s = ppl.param("s", S0, constraint=ppl.constraints.positive)
    u = ppl.sample("u", ppl.dist.Normal(0.0, 1.0))
    ppl.sample("mu", ppl.dist.Normal(a + b * u, s))


@ppl.model
def exact_reverse(z):
    """q(u | mu) = Normal(b (mu - a) / v, s / sqrt(v)), v = b^2 + s^2: reads the guide's own parameters."""
    a = ppl.param("a", A0)
    b = ppl.param("b", B0)
    s = ppl.param("s", S0, constraint=ppl.constraints.positive)
    v = b**2 + s**2
    ppl.sample("u", ppl.dist.Normal(b * (z["mu"] - a) / v, s / jnp.sqrt(v)))


@ppl.model
def learned_reverse(z):
    c = ppl.param("c", 0.0)
    w = ppl.param("w", 0.0)
    r = ppl.param("r", 1.0, constraint=ppl.constraints.positive)
    ppl.sample("u", ppl.dist.Normal(c + w * z["mu"], r))


def bound(guide):
    program, leaves = normal_mean.program(YS)
    g = bind_guide(guide, program, leaves)
    return program, leaves, g, g.init(jax.random.key(0))


def test_the_exact_reverse_gives_the_exact_marginal_density():
    _, _, g, phi = bound(ppl.marginal(hierarchical, over="u", K=3, reverse=exact_reverse))
    assert set(phi) == {"a", "b", "s"}  # the reverse's parameters are the guide's: one each
    for m, seed in [(-1.0, 0), (0.3, 1), (2.5, 2)]:
        got = g.log_density(phi, {"mu": jnp.asarray(m)}, key=jax.random.key(seed))
        want = stats.norm.logpdf(m, A0, math.sqrt(B0**2 + S0**2))
        np.testing.assert_allclose(float(got), want, atol=1e-5)


def elbo_of_the_marginal(a, b, s):
    v, n = b**2 + s**2, YS.size
    e_log_p = -0.5 * (n + 1) * math.log(2 * math.pi) - 0.5 * (a**2 + v) - 0.5 * np.sum((YS - a) ** 2) - 0.5 * n * v
    return float(e_log_p + 0.5 * math.log(2 * math.pi * v) + 0.5)


@pytest.mark.parametrize("K", [1, 4])
def test_with_the_exact_reverse_the_bound_is_tight(K):
    """HVI (K = 1) and IWHVI (K = 4) with the exact reverse: each estimate is log p(mu, y) - log q(mu), so
    their mean is the ELBO of the exact marginal, above HVI from the prior."""
    program, leaves, g, phi = bound(ppl.marginal(hierarchical, over="u", K=K, reverse=exact_reverse))
    keys = jax.random.split(jax.random.key(K), 4000)
    values = jax.jit(jax.vmap(lambda k: ppl.ELBO(1)(Context(g, phi, program, leaves), k)[0]))(keys)
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert abs(values.mean() - elbo_of_the_marginal(A0, B0, S0)) < 4 * se


Z = 5.0


@ppl.model
def cone(z):
    x = ppl.sample("x", ppl.dist.Normal(0.0, 10.0))
    y = ppl.sample("y", ppl.dist.Normal(0.0, 10.0))
    r2 = x**2 + y**2
    ppl.observe("z", ppl.dist.Normal(r2, 0.1 + r2 / 100), z)


@ppl.model
def half_ring(z):
    """The cone's hierarchical guide (examples/cone.py) on the left half of the ring (angles 2 pi u for u in
    (1/4, 3/4)), with its spreads fixed at 0.1: only the reverse model learns. (Half the ring, so that the
    angle does not wrap round inside u's range: a reverse model centred on the angle covers every u.)"""
    u = ppl.sample("u", ppl.dist.Uniform(0.25, 0.75))
    ppl.sample("x", ppl.dist.Normal(jnp.sqrt(z) * jnp.cos(2 * jnp.pi * u), 0.1))
    ppl.sample("y", ppl.dist.Normal(jnp.sqrt(z) * jnp.sin(2 * jnp.pi * u), 0.1))


@ppl.model
def angle_reverse(z):
    """r(u | x, y): a normal around the draw's angle (as a fraction of a turn), truncated to u's range."""
    r = ppl.param("r", 0.3, constraint=ppl.constraints.positive)
    c = jnp.mod(jnp.arctan2(z["y"], z["x"]) / (2 * jnp.pi), 1.0)
    ppl.sample("u", ppl.dist.Truncated(ppl.dist.Normal(c, r), 0.25, 0.75))


def cone_bounds(reverse, phi, n=2000):
    """n IWHVI (SIR(5), ELBO) estimates on the cone at the guide parameters ``phi`` (fixed keys: estimates
    at different parameters are paired, the same joint draws)."""
    program, leaves = cone.program(Z)
    g = bind_guide(ppl.marginal(half_ring, over="u", K=5, args=(Z,), reverse=reverse), program, leaves)
    phi = g.init(jax.random.key(0)) if phi is None else phi
    keys = jax.random.split(jax.random.key(7), n)
    return np.asarray(jax.jit(jax.vmap(lambda k: ppl.ELBO(1)(Context(g, phi, program, leaves), k)[0]))(keys),
                      np.float64)


def above(a, b):
    """The mean of the paired differences a - b is more than 4 of its standard errors above 0."""
    d = a - b
    return d.mean() > 4 * d.std(ddof=1) / math.sqrt(d.size)


@pytest.mark.slow
def test_training_the_reverse_raises_the_bound_on_the_cone():
    """With the guide fixed, SIR from the prior q(u) rarely proposes an angle near the draw's, so
    log qhat pays up to log K; a reverse model centred on the angle, trained, pays far less: its
    bound rises above its own start and above the prior's, and stays below log p(z = 5) = -5.323."""
    method = ppl.VI(guide=ppl.marginal(half_ring, over="u", K=5, args=(Z,), reverse=angle_reverse),
                    objective=ppl.ELBO(8), optimizer=optax.adam(5e-2), num_steps=300, num_samples=10,
                    num_final=10, progress=False)
    post = ppl.infer(cone, Z, method=method, seed=0)
    r = float(post.params["r"])
    assert r < 0.05  # from 0.3 towards q(u | x, y), whose spread is about 0.1 / (2 pi sqrt(5)) = 0.007
    trained = cone_bounds(angle_reverse, {"r": jnp.log(jnp.asarray(r))})
    start, prior = cone_bounds(angle_reverse, None), cone_bounds(None, {})
    assert trained.mean() < -5.323 + 4 * trained.std(ddof=1) / math.sqrt(trained.size)
    assert above(trained, start) and above(trained, prior)


def test_a_bad_reverse_model_is_refused():
    @ppl.model
    def wrong_site(z):
        ppl.sample("v", ppl.dist.Normal(0.0, 1.0))

    with pytest.raises(ModelError, match="draws \\['v'\\], but marginal\\(over=...\\) marginalises \\['u'\\]"):
        bound(ppl.marginal(hierarchical, over="u", K=2, reverse=wrong_site))

    @ppl.model
    def wrong_shape(z):
        ppl.sample("u", ppl.dist.Normal(jnp.zeros(2), 1.0))

    with pytest.raises(ModelError, match="draws 'u' with shape \\(2,\\)"):
        bound(ppl.marginal(hierarchical, over="u", K=2, reverse=wrong_shape))

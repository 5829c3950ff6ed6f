"""Exact marginalisation of discrete sites: densities against hand-written sums (1e-5, in
float64), the law against brute-force enumeration, and exact conditional draws (z-scores,
fixed seeds)."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

import ppl
from ppl import dist
from ppl.inference import marginalize as M
from ppl.semantics import compile as C

from shared_models import sprinkler


@ppl.model
def mixture(y):
    w = ppl.sample("w", dist.Beta(2.0, 2.0))
    mu = ppl.sample("mu", dist.Normal(jnp.zeros(2), 3.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(2.0))
    with ppl.plate("data", y.shape[0]):
        z = ppl.sample("z", dist.Categorical(probs=jnp.stack([1 - w, w])))
        ppl.observe("y", dist.Normal(mu[z], sigma), y)


def hand_mixture(u, y):
    """The mixture's marginal density in unconstrained coordinates, written out."""
    w = jax.nn.sigmoid(u["w"])
    sigma = jnp.exp(u["sigma"])
    mu = u["mu"]
    log_jac = jnp.log(w) + jnp.log1p(-w) + u["sigma"]
    prior = (jax.scipy.stats.beta.logpdf(w, 2.0, 2.0) + jnp.sum(jax.scipy.stats.norm.logpdf(mu, 0.0, 3.0))
             + jnp.log(2.0) + jax.scipy.stats.norm.logpdf(sigma, 0.0, 2.0))
    comp = jnp.stack([jnp.log1p(-w) + jax.scipy.stats.norm.logpdf(y, mu[0], sigma),
                      jnp.log(w) + jax.scipy.stats.norm.logpdf(y, mu[1], sigma)])
    return prior + log_jac + jnp.sum(logsumexp(comp, axis=0))


POINTS = [
    {"w": 0.0, "mu": [-1.0, 1.0], "sigma": 0.0},
    {"w": -0.7, "mu": [0.5, 2.5], "sigma": -0.4},
    {"w": 1.3, "mu": [-2.0, -0.3], "sigma": 0.8},
]


def test_mixture_marginal_density_and_gradient_match_the_hand_written_sum():
    with jax.enable_x64(True):
        y = np.random.default_rng(0).normal(size=50) * 2.0
        program, leaves = mixture.program(y)
        assert program.sites["y"].shape == (50,)
        f = jax.jit(jax.value_and_grad(lambda u: M.marginal_log_density_unconstrained(program, u, leaves)))
        hand = jax.jit(jax.value_and_grad(hand_mixture))
        for point in POINTS:
            u = {k: jnp.asarray(v, jnp.float64) for k, v in point.items()}
            (got, g1), (want, g2) = f(u), hand(u, jnp.asarray(y))
            assert got.dtype == jnp.float64
            assert abs(float(got) - float(want)) < 1e-5
            for k in u:
                np.testing.assert_allclose(g1[k], g2[k], rtol=1e-6, atol=1e-5)


def test_per_datum_sites_cost_one_evaluation_per_value():
    """z[n] is summed element by element: the grid of a group is K, not K^N."""
    program, leaves = mixture.program(np.zeros(50, np.float32))
    plan = M._plan(program, leaves)
    assert plan.vars["z"].size == 2 and plan.vars["z"].labels == ("data",)
    assert max(int(np.prod([plan.vars[v].size for v in reads])) for reads in plan.groups) == 2


# --- the law against brute-force enumeration --------------------------------------------------


@ppl.model
def layered(ys, xs):
    """A global discrete site, plated discrete sites under it, and a hidden Markov chain."""
    c = ppl.sample("c", dist.Bernoulli(probs=0.35))
    m = ppl.sample("m", dist.Normal(0.0, 1.0))
    s = ppl.sample("s", dist.HalfNormal(1.0))
    with ppl.plate("data", ys.shape[0]):
        z = ppl.sample("z", dist.Bernoulli(probs=jnp.where(c == 1, 0.8, 0.3)))
        ppl.observe("y", dist.Normal(m + 2.0 * z - c, s), ys)

    def step(prev, x):
        h = ppl.sample("h", dist.Categorical(probs=jnp.where(prev == 1, jnp.array([0.2, 0.5, 0.3]),
                                                               jnp.array([0.6, 0.3, 0.1]))))
        ppl.observe("x", dist.Normal(h * 1.0 + c, 1.0), x)
        return jnp.minimum(h, 1), None

    ppl.scan(step, jnp.asarray(0, jnp.int32), xs)


def brute_force(program, leaves, u):
    """log sum over every joint value of the discrete sites of the unconstrained joint density."""
    latent = program.latent_sites()
    supports = {"c": [0, 1], "z": [0, 1], "h": [0, 1, 2]}
    names = [a for a in latent if latent[a].is_discrete]
    grids = [list(itertools.product(supports[a], repeat=int(np.prod(latent[a].stacked_shape)))) for a in names]
    combos = list(itertools.product(*grids))
    table = {a: jnp.asarray([c[j] for c in combos], jnp.int32).reshape((len(combos),) + latent[a].stacked_shape)
             for j, a in enumerate(names)}

    def one(discrete):
        choices = {"m": u["m"], "s": jnp.exp(u["s"]), **discrete}
        return C.log_density(program, choices, leaves) + u["s"]  # the log-Jacobian of s = exp(u)

    return float(logsumexp(jax.jit(jax.vmap(one))(table)))


def test_law_marginal_equals_enumeration_of_the_discrete_sites():
    with jax.enable_x64(True):
        ys = np.array([0.3, 2.1, -0.5])
        xs = np.array([0.1, 1.9, 2.4])
        program, leaves = layered.program(ys, xs)
        plan = M._plan(program, leaves)
        assert set(plan.vars) == {"c", "z"} and list(plan.chains) != []
        f = jax.jit(lambda u: M.marginal_log_density_unconstrained(program, u, leaves))
        for m, s in [(0.2, -0.3), (-1.0, 0.5)]:
            u = {"m": jnp.asarray(m), "s": jnp.asarray(s)}
            got = float(f(u))
            assert abs(got - brute_force(program, leaves, u)) < 1e-6


@ppl.model
def mixture_by_scan(y):
    w = ppl.sample("w", dist.Beta(2.0, 2.0))
    mu = ppl.sample("mu", dist.Normal(jnp.zeros(2), 3.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(2.0))

    def step(carry, yn):
        z = ppl.sample("z", dist.Categorical(probs=jnp.stack([1 - w, w])))
        ppl.observe("y", dist.Normal(mu[z], sigma), yn)
        return carry, z

    ppl.scan(step, 0.0, y)


def test_loop_steps_that_carry_nothing_are_summed_like_a_plate():
    with jax.enable_x64(True):
        y = np.random.default_rng(1).normal(size=20)
        p1, l1 = mixture.program(y)
        p2, l2 = mixture_by_scan.program(y)
        assert M._plan(p2, l2).vars["z"].size == 2  # the loop axis is not enumerated jointly
        f1 = jax.jit(lambda u: M.marginal_log_density_unconstrained(p1, u, l1))
        f2 = jax.jit(lambda u: M.marginal_log_density_unconstrained(p2, u, l2))
        for point in POINTS:
            u = {k: jnp.asarray(v, jnp.float64) for k, v in point.items()}
            assert abs(float(f1(u)) - float(f2(u))) < 1e-8


def test_a_fully_discrete_model_marginalises_to_its_evidence():
    program, leaves = sprinkler.program()
    z = 0.3 * 0.2 * 0.1 * 0.1 + 0.3 * 0.2 * 0.9 + 0.7 * 0.4 * 0.1 + 0.7 * 0.6
    got = jax.jit(lambda: M.marginal_log_density_unconstrained(program, {}, leaves))()
    assert abs(float(got) - math.log(z)) < 1e-6


def test_no_discrete_site_is_the_unconstrained_density():
    @ppl.model
    def plain(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        ppl.observe("y", dist.Normal(mu, 1.0), y)

    program, leaves = plain.program(0.5)
    u = {"mu": jnp.asarray(0.3)}
    assert not M.has_discrete_latents(program)
    a = M.marginal_log_density_unconstrained(program, u, leaves)
    assert abs(float(a) - float(C.log_density_unconstrained(program, u, leaves))) < 1e-6


# --- exact conditional draws ------------------------------------------------------------------


def test_recovered_assignments_follow_their_exact_conditional():
    y = np.array([-2.0, -0.2, 0.4, 3.0], np.float32)
    program, leaves = mixture.program(y)
    u = {"w": jnp.asarray(0.4), "mu": jnp.asarray([-1.0, 1.5]), "sigma": jnp.asarray(0.1)}
    n = 4000
    draws = {k: jnp.broadcast_to(v, (2, n // 2) + jnp.shape(v)) for k, v in u.items()}
    out = M.recover_discrete(program, jax.random.key(3), draws, leaves)
    assert out["z"].shape == (2, n // 2, 4)
    w, mu, sigma = jax.nn.sigmoid(0.4), np.array([-1.0, 1.5]), math.exp(0.1)
    comp = np.stack([np.log(1 - w) + jax.scipy.stats.norm.logpdf(y, mu[0], sigma),
                     np.log(w) + jax.scipy.stats.norm.logpdf(y, mu[1], sigma)])
    p1 = np.exp(comp[1] - np.logaddexp(comp[0], comp[1]))
    freq = out["z"].reshape(n, 4).mean(0)
    se = np.sqrt(p1 * (1 - p1) / n) + 1e-12
    assert np.all(np.abs(freq - p1) / se < 4), (freq, p1)


@ppl.model
def hmm(ys, s):
    def step(z, y):
        z = ppl.sample("z", dist.Bernoulli(probs=jnp.where(z == 1, 0.8, 0.3)))
        ppl.observe("y", dist.Normal(jnp.where(z == 1, 1.0, -1.0), s), y)
        return z, z

    _, zs = ppl.scan(step, jnp.asarray(0, jnp.int32), ys)
    return zs


@ppl.model
def hmm_scaled(ys):
    s = ppl.sample("s", dist.HalfNormal(1.0))
    return hmm.body(ys, s)


def test_chain_states_are_drawn_by_forward_filtering_backward_sampling():
    ys = jnp.array([0.5, -1.2, 1.4, 0.1])
    program, leaves = hmm_scaled.program(ys)
    n = 4000
    out = M.recover_discrete(program, jax.random.key(5), {"s": jnp.zeros((n,))}, leaves)
    exact = ppl.infer(hmm, ys, 1.0, method=ppl.Enumerate())  # exp(0) = 1
    states = out["z"]
    for cell in [(0, 0, 1, 1), (1, 0, 1, 1), (0, 0, 1, 0)]:
        p = float(np.sum(exact.weights[np.all(exact.samples["z"] == cell, axis=1)]))
        f = np.mean(np.all(states == cell, axis=1))
        assert abs(f - p) / math.sqrt(p * (1 - p) / n) < 4, (cell, f, p)


def test_constrain_maps_back_with_the_discrete_values():
    y = np.array([0.1, 0.2], np.float32)
    program, leaves = mixture.program(y)
    u = {"w": jnp.asarray(0.0), "mu": jnp.asarray([1.0, 2.0]), "sigma": jnp.asarray(0.0)}
    values = jax.jit(lambda u, d: M.constrain(program, u, d, leaves))(u, {"z": jnp.array([1, 0], jnp.int32)})
    assert abs(float(values["w"]) - 0.5) < 1e-6 and abs(float(values["sigma"]) - 1.0) < 1e-6
    assert list(np.asarray(values["z"])) == [1, 0]
    assert M.continuous_shapes(program, leaves) == {"w": (), "mu": (2,), "sigma": ()}


# --- what cannot be summed out says so ----------------------------------------------------------


def test_a_discrete_site_used_outside_its_plate_is_an_error():
    @ppl.model
    def leaky(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        with ppl.plate("data", 3):
            z = ppl.sample("z", dist.Bernoulli(probs=0.5))
        ppl.observe("y", dist.Normal(mu + jnp.sum(z), 1.0), y)

    program, leaves = leaky.program(1.0)
    with pytest.raises(ppl.ModelError, match="'z' sits inside \\['data'\\] but 'y' reads it outside"):
        M.marginal_log_density_unconstrained(program, {"mu": jnp.asarray(0.0)}, leaves)


def test_infinite_support_is_an_error():
    @ppl.model
    def counts(y):
        n = ppl.sample("n", dist.Poisson(3.0))
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        ppl.observe("y", dist.Normal(mu + n, 1.0), y)

    program, leaves = counts.program(1.0)
    with pytest.raises(ppl.ModelError, match="infinitely many values"):
        M.marginal_log_density_unconstrained(program, {"mu": jnp.asarray(0.0)}, leaves)


@ppl.model
def counted(n, y):
    p = ppl.sample("p", dist.Beta(2.0, 2.0))
    z = ppl.sample("z", dist.Binomial(n, probs=p))
    ppl.observe("y", dist.Normal(z, 1.0), y)


def test_a_count_known_only_at_run_time_is_an_error_that_says_which_counts_are_known():
    method = ppl.NUTS(num_warmup=5, num_samples=5, num_chains=1, progress=False)
    with pytest.raises(ppl.ModelError, match="not known before the program runs") as err:
        ppl.infer(counted, np.array(5), 2.0, method=method, seed=0)  # an array argument is traced
    assert "Python or NumPy scalar" in err.value.hint and "array argument" in err.value.hint
    program, leaves = counted.program(5, 2.0)  # a Python number is a constant of the program: summed out
    assert np.isfinite(float(M.marginal_log_density_unconstrained(program, {"p": jnp.asarray(0.0)}, leaves)))


def test_a_chain_that_accumulates_its_states_is_an_error():
    @ppl.model
    def counting(xs):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))

        def step(total, x):
            z = ppl.sample("z", dist.Bernoulli(probs=0.5))
            total = total + z
            ppl.observe("x", dist.Normal(mu + total, 1.0), x)
            return total, None

        ppl.scan(step, jnp.asarray(0, jnp.int32), xs)

    program, leaves = counting.program(jnp.zeros(3))
    with pytest.raises(ppl.ModelError, match="first-order"):
        M.marginal_log_density_unconstrained(program, {"mu": jnp.asarray(0.0)}, leaves)

"""Objectives written as plain ppl programs: ``ppl.sim`` and ``ppl.density`` as statements of a
``ppl.expectation`` program (``semantics/scored_call.py``), checked against closed forms.

Gaussian conjugate case: y_i ~ Normal(mu, 1), mu ~ Normal(0, 1), guide mu ~ Normal(m, s), so
``ELBO(m, s) = E[log p(mu, y)] + log(s sqrt(2 pi e))`` in closed form. Tolerances: 4 standard errors
of the mean of the estimates (fixed seeds).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ppl
from ppl.semantics import params as P
from ppl.stdlib.errors import ModelError

YS = np.array([0.3, 1.2, -0.4, 2.0, 0.9], np.float32)
N = YS.size
POST_MEAN, POST_SD = float(YS.sum() / (N + 1)), 1 / math.sqrt(N + 1)


@ppl.model
def normal_mean(y):
    mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", ppl.dist.Normal(mu, 1.0), y)


@ppl.model
def q_of(m, s):
    ppl.sample("mu", ppl.dist.Normal(m, s))


def elbo_exact(m, s):
    e_log_p = (-0.5 * (N + 1) * math.log(2 * math.pi) - 0.5 * (m**2 + s**2) - 0.5 * jnp.sum((YS - m) ** 2)
               - 0.5 * N * s**2)
    return e_log_p + jnp.log(s * math.sqrt(2 * math.pi)) + 0.5


def assert_unbiased(samples, exact, z=4.0):
    samples = np.asarray(samples, np.float64)
    mean, se = samples.mean(), samples.std(ddof=1) / math.sqrt(samples.size)
    assert abs(mean - float(exact)) <= z * se + 1e-7, (mean, float(exact), se)


def elbo_program(m, s, y):
    z, log_q = ppl.sim(q_of, m, s)
    return ppl.density(normal_mean, z, y) - log_q


def test_an_elbo_program_is_unbiased_for_the_value_and_the_gradient():
    E = ppl.expectation(elbo_program)
    keys = jax.random.split(jax.random.key(0), 8000)
    values, (gm, gs, _) = jax.jit(jax.vmap(lambda k: E.value_and_grad(k, 0.1, 0.5, YS)))(keys)
    assert_unbiased(values, elbo_exact(0.1, 0.5))
    dm, ds = jax.grad(elbo_exact, (0, 1))(0.1, 0.5)
    assert_unbiased(gm, dm)
    assert_unbiased(gs, ds)


def test_sim_returns_the_log_density_of_its_draw_and_density_the_joint():
    @ppl.model
    def two(m, s, y):
        z, log_q = ppl.sim(q_of, m, s)
        ppl.deterministic("z", z["mu"])
        ppl.deterministic("log_q", log_q)
        ppl.deterministic("log_p", ppl.density(normal_mean, z, y))
        return 0.0

    trace = two.simulate(jax.random.key(3), 0.2, 0.7, YS)
    mu = float(trace.choices["q_of/mu"])
    assert float(trace.choices["z"]) == mu
    np.testing.assert_allclose(float(trace.choices["log_q"]), -0.5 * ((mu - 0.2) / 0.7) ** 2
                               - math.log(0.7 * math.sqrt(2 * math.pi)), rtol=1e-5)
    log_p = -0.5 * mu**2 - 0.5 * np.sum((YS - mu) ** 2) - 0.5 * (N + 1) * math.log(2 * math.pi)
    np.testing.assert_allclose(float(trace.choices["log_p"]), log_p, rtol=1e-5)


@ppl.model
def guide():
    m = ppl.param("m", 0.0)
    s = ppl.param("s", 1.0, constraint=ppl.constraints.positive)
    ppl.sample("mu", ppl.dist.Normal(m, s))


def renyi(alpha, K):
    """The Renyi bound ``1/(1-alpha) log (1/K) sum_k w_k^(1-alpha)`` as a program over K guide draws."""
    def renyi_bound(y):
        log_w = []
        for _ in range(K):
            z, log_q = ppl.sim(guide)
            log_w.append(ppl.density(normal_mean, z, y) - log_q)
        return (jax.nn.logsumexp((1 - alpha) * jnp.stack(log_w)) - math.log(K)) / (1 - alpha)
    return ppl.expectation(renyi_bound)


def test_repeated_sims_share_the_guides_parameters():
    program = ppl.model(renyi(0.5, 3).model.fn).ir(YS)
    assert set(P.params_of(program)) == {"m", "s"}
    assert set(program.latent_sites()) == {"guide/mu", "guide_1/mu", "guide_2/mu"}


@pytest.mark.slow
def test_a_renyi_program_fits_the_conjugate_posterior():
    method = ppl.VI(guide=guide, objective=renyi(0.5, 4), optimizer=optax.adam(3e-2), num_steps=1500,
                    num_samples=4000, progress=False)
    post = ppl.infer(normal_mean, YS, method=method, seed=0)
    # the family holds the posterior, which maximises every Renyi bound: the guide is the posterior
    assert abs(float(post.params["m"]) - POST_MEAN) < 0.05
    assert abs(float(post.params["s"]) - POST_SD) < 0.05
    # at q = posterior every weight is p(y): the bound is log p(y), off by second order in the fit's error
    log_evidence = float(elbo_exact(POST_MEAN, POST_SD))  # the ELBO at the posterior is log p(y)
    assert abs(post.log_evidence - log_evidence) < 0.02


def test_model_parameters_are_bound_in_density():
    @ppl.model
    def shifted(y):
        c = ppl.param("c", 0.0)
        mu = ppl.sample("mu", ppl.dist.Normal(c, 1.0))
        with ppl.plate("data", y.shape[0]):
            ppl.observe("y", ppl.dist.Normal(mu, 1.0), y)

    def elbo(y):
        z, log_q = ppl.sim(guide)
        return ppl.density(shifted, z, y) - log_q

    method = ppl.VI(guide=guide, objective=ppl.expectation(elbo), optimizer=optax.adam(5e-2), num_steps=300,
                    num_samples=10, progress=False)
    post = ppl.infer(shifted, YS, method=method, seed=0)
    assert float(post.params["model"]["c"]) > 0.2  # the prior's mean moves towards the data's


def test_bad_programs_name_the_site():
    @ppl.model
    def observes():
        ppl.observe("x", ppl.dist.Normal(0.0, 1.0), 1.0)

    def uses(y):
        z, log_q = ppl.sim(observes)
        return log_q

    with pytest.raises(ModelError, match="has an observe \\('x'\\)"):
        ppl.model(uses).ir(YS)

    def missing(y):
        return ppl.density(normal_mean, {}, y)

    with pytest.raises(ModelError, match="z has no value for the latent site 'mu'"):
        ppl.model(missing).ir(YS)

    def extra(y):
        return ppl.density(normal_mean, {"mu": 0.0, "nu": 1.0}, y)

    with pytest.raises(ModelError, match="'nu', which is not a latent site"):
        ppl.model(extra).ir(YS)

    @ppl.model
    def looped():
        ppl.scan(lambda c, _: (c + ppl.sample("x", ppl.dist.Normal(c, 1.0)), None), 0.0, length=3)

    def loops():
        return ppl.sim(looped)[1]

    with pytest.raises(ModelError, match="has a ppl.scan"):
        ppl.model(loops).ir()

    def auto_guide(y):
        z, log_q = ppl.sim(guide)
        return ppl.density(normal_mean, z, y) - log_q

    method = ppl.VI(guide=ppl.AutoNormal(), objective=ppl.expectation(auto_guide), num_steps=2, progress=False)
    with pytest.raises(ModelError, match="needs a guide whose parameters are ppl.param sites"):
        ppl.infer(normal_mean, YS, method=method)

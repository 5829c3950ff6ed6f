"""The default method keeps gradient samplers off models with hard walls: a ``condition(...)`` (a
factor that can be -inf) on a continuous value. NUTS diverges at such walls and keeps to the side it
started on (on examples/tug_of_war.ppl: hundreds of divergences, E[strength(alice)] about 1.30 where
the answer is about 1.17); importance sampling (or SMC, with a loop) gets it right."""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.api import default_method
from ppl.inference.registry import WALL_PARTICLES, hard_walls

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def pick(model, *args):
    program, leaves = model.program(*args)
    return default_method(program, leaves)


@ppl.model
def positive_normal():
    x = ppl.sample("x", dist.Normal(0.0, 1.0))
    ppl.factor("positive", jnp.where(x > 0, 0.0, -jnp.inf))
    return x


@ppl.model
def soft_penalty():
    x = ppl.sample("x", dist.Normal(0.0, 1.0))
    ppl.factor("soft", -0.5 * x**2)
    return x


@ppl.model
def wall_on_a_discrete_site(y):
    z = ppl.sample("z", dist.Bernoulli(probs=0.5))
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    ppl.factor("z_is_one", jnp.where(z == 1, 0.0, -jnp.inf))
    ppl.observe("y", dist.Normal(mu, 1.0), y)


@ppl.model
def walled_walk(ys):
    def step(x, y):
        x = ppl.sample("x", dist.Normal(x, 1.0))
        ppl.factor("above", jnp.where(x > -3.0, 0.0, -jnp.inf))
        ppl.observe("y", dist.Normal(x, 1.0), y)
        return x, x

    return ppl.scan(step, 0.0, ys)


def test_tug_of_war_is_not_given_to_nuts():
    model = ppl.load(EXAMPLES / "tug_of_war.ppl").tug_of_war
    method = pick(model)
    assert type(method).__name__ == "Importance" and method.num_particles == WALL_PARTICLES
    assert len(hard_walls(model.program()[0])) == 3  # its three condition(...) lines


def test_a_python_condition_on_a_continuous_site_is_a_wall():
    assert hard_walls(positive_normal.program()[0]) == ["positive"]
    assert type(pick(positive_normal)).__name__ == "Importance"


def test_a_soft_factor_is_not_a_wall():
    assert hard_walls(soft_penalty.program()[0]) == []
    assert type(pick(soft_penalty)).__name__ == "NUTS"


def test_a_wall_on_a_discrete_site_only_keeps_nuts():
    y = jnp.array([0.5, 1.0])
    assert hard_walls(wall_on_a_discrete_site.program(y)[0]) == []
    assert type(pick(wall_on_a_discrete_site, y)).__name__ == "NUTS"


def test_a_wall_inside_a_loop_that_observes_gets_smc():
    ys = jnp.array([0.1, 0.4, -0.2])
    assert hard_walls(walled_walk.program(ys)[0]) == ["above"]
    assert type(pick(walled_walk, ys)).__name__ == "SMC"


def test_a_ppl_condition_on_data_only_is_not_a_wall():
    module = ppl.loads(
        "model m(y) {\n  mu ~ normal(0, 1)\n  condition(y > 0)\n  observe y ~ normal(mu, 1)\n}\n", "m.ppl")
    assert hard_walls(module.m.program(1.5)[0]) == []
    assert type(pick(module.m, 1.5)).__name__ == "NUTS"


def test_a_ppl_condition_on_a_latent_is_a_wall():
    module = ppl.loads("model m() {\n  x ~ normal(0, 1)\n  condition(x * x < 0.25)\n  return x\n}\n", "m.ppl")
    (wall,) = hard_walls(module.m.program()[0])
    assert wall == "_condition"  # the (first) condition(...) of the model
    assert type(pick(module.m)).__name__ == "Importance"


def test_the_default_on_a_truncated_normal_is_right():
    """N(0, 1) conditioned on x > 0: E[x] = sqrt(2 / pi) exactly."""
    post = ppl.infer(positive_normal, seed=3)
    exact, sd = np.sqrt(2 / np.pi), np.sqrt(1 - 2 / np.pi)
    assert post.method == "Importance"
    z = (float(post.mean()) - exact) / (sd / np.sqrt(post.ess))
    assert abs(z) < 4, z


@pytest.mark.slow
def test_tug_of_war_default_agrees_with_a_long_importance_run():
    model = ppl.load(EXAMPLES / "tug_of_war.ppl").tug_of_war
    reference = ppl.infer(model, method=ppl.Importance(num_particles=200_000), seed=11)
    post = ppl.infer(model, seed=0)
    assert post.method == "Importance"
    se = np.hypot(post.std() / np.sqrt(post.ess), reference.std() / np.sqrt(reference.ess))
    z = (float(post.mean()) - float(reference.mean())) / se
    assert abs(z) < 4, (post.mean(), reference.mean(), se)
    assert 1.05 < float(reference.mean()) < 1.3


# --------------------------------------------------------------------------- support walls


@ppl.model
def uniform_scale(y):
    """theta ~ Exponential(1), y_i ~ Uniform(0, theta): the density is zero for theta < max(y)."""
    theta = ppl.sample("theta", dist.Exponential(1.0))
    with ppl.plate("n", y.shape[0]):
        ppl.observe("y", dist.Uniform(0.0, theta), y)
    return theta


@ppl.model
def uniform_on_data_bounds(y, top):
    """The support's bound is data, not a latent: no wall."""
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("n", y.shape[0]):
        ppl.observe("y", dist.Uniform(mu - top, mu + top), y)
    return mu


@ppl.model
def normal_scale(y):
    sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
    with ppl.plate("n", y.shape[0]):
        ppl.observe("y", dist.Normal(0.0, sigma), y)


@ppl.model
def latent_uniform_child():
    """A latent x ~ Uniform(0, theta) is no wall: its bijector follows theta."""
    theta = ppl.sample("theta", dist.Exponential(1.0))
    x = ppl.sample("x", dist.Uniform(0.0, theta))
    ppl.observe("z", dist.Normal(x, 1.0), 0.3)


Y_UNIFORM = jnp.array([0.4, 1.3, 0.9])


def test_an_observation_whose_support_moves_with_a_latent_is_a_wall():
    assert hard_walls(uniform_scale.program(Y_UNIFORM)[0]) == ["y"]
    method = pick(uniform_scale, Y_UNIFORM)
    assert type(method).__name__ == "Importance" and method.num_particles == WALL_PARTICLES


def test_supports_that_do_not_move_with_a_continuous_latent_are_not_walls():
    assert hard_walls(normal_scale.program(Y_UNIFORM)[0]) == []
    assert hard_walls(latent_uniform_child.program()[0]) == []
    assert type(pick(latent_uniform_child)).__name__ == "NUTS"
    # mu - top and mu + top move with mu: a wall, whichever way the bound is written
    assert hard_walls(uniform_on_data_bounds.program(Y_UNIFORM, 3.0)[0]) == ["y"]


def test_a_ppl_support_wall():
    module = ppl.loads("model m(y: real[]) {\n  theta ~ exponential(1)\n  for i in 0..len(y) {\n"
                       "    y[i] ~ uniform(0, theta)\n  }\n}\n", "m.ppl")
    program = module.m.program([0.4, 1.3, 0.9])[0]
    assert len(hard_walls(program)) == 1
    assert type(pick(module.m, [0.4, 1.3, 0.9])).__name__ in ("Importance", "SMC")


def test_the_default_on_a_support_wall_gets_the_exact_posterior_mean():
    """p(theta | y) ∝ e^{-theta} theta^{-n} on theta > max(y): its mean by quadrature."""
    from scipy import integrate

    n, top = Y_UNIFORM.shape[0], float(Y_UNIFORM.max())

    def dens(t):
        return np.exp(-t) * t ** (-n)

    z = integrate.quad(dens, top, np.inf)[0]
    mean = integrate.quad(lambda t: t * dens(t), top, np.inf)[0] / z
    sd = np.sqrt(integrate.quad(lambda t: t * t * dens(t), top, np.inf)[0] / z - mean**2)
    post = ppl.infer(uniform_scale, Y_UNIFORM, seed=5)
    assert post.method == "Importance"
    assert float(np.min(post.samples["theta"][np.asarray(post.weights) > 0])) >= top
    zscore = (float(post.mean()) - mean) / (sd / np.sqrt(post.ess))
    assert abs(zscore) < 4, (float(post.mean()), mean, post.ess)

"""``ppl.param``: its law in the IR (``semantics/params.py``) and its value outside VI."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl.semantics import compile as C
from ppl.semantics import params as P


@ppl.model
def scaled():
    s = ppl.param("s", 2.0, constraint=ppl.constraints.positive)
    m = ppl.param("m", jnp.array([0.5, -0.5]))
    return ppl.sample("x", ppl.dist.Normal(m, s))


def test_params_are_found_with_their_constraints():
    infos = P.params_of(scaled.ir())
    assert set(infos) == {"s", "m"}
    assert infos["s"].constraint == ppl.constraints.positive and infos["m"].constraint is None
    assert infos["m"].shape == (2,) and not infos["s"].in_loop


def test_bound_values_replace_the_init_and_only_inside():
    program = scaled.ir()
    key = jax.random.key(3)
    free = C.simulate(program, key, [])
    with P.bound({"s": jnp.asarray(1e-6), "m": jnp.array([3.0, 4.0])}):
        fixed = C.simulate(program, key, [])
    np.testing.assert_allclose(fixed.retval, [3.0, 4.0], atol=1e-4)
    again = C.simulate(program, key, [])
    np.testing.assert_array_equal(free.retval, again.retval)
    # outside VI the init is used: x = m + s * eps with the initial values
    eps = (np.asarray(free.retval) - np.array([0.5, -0.5])) / 2.0
    with P.bound({"s": jnp.asarray(4.0)}):  # one bound, the other at its init
        half = C.simulate(program, key, [])
    np.testing.assert_allclose(half.retval, np.array([0.5, -0.5]) + 4.0 * eps, rtol=1e-5)


def test_recording_inits():
    with P.recording_inits() as inits:
        C.simulate(scaled.ir(), jax.random.key(0), [])
    assert float(inits["s"]) == 2.0 and inits["m"].shape == (2,)


def test_param_in_a_dynamic_model_is_its_init():
    @ppl.model
    def dyn():
        s = ppl.param("s", 0.25, constraint=ppl.constraints.unit_interval)
        if ppl.sample("c", ppl.dist.Bernoulli(probs=s)) == 1:  # Python control flow on a draw: eager
            return 1.0
        return 0.0

    post = ppl.infer(dyn, method=ppl.Importance(num_particles=1000))
    assert post.engine == "eager"
    assert abs(post.mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 1000)


def test_param_addresses_are_claimed():
    @ppl.model
    def twice():
        ppl.param("a", 1.0)
        ppl.param("a", 2.0)
        return ppl.sample("x", ppl.dist.Normal(0.0, 1.0))

    with pytest.raises(ppl.AddressError, match="'a' is used twice"):
        twice.ir()


# ---------------------------------------------------------------------------
# Posterior draws push the guide's draws through the model with its FITTED parameters


YS = np.array([1.3, 2.2, 0.6, 3.0, 1.9], np.float32)


@ppl.model
def learned_shift(y):
    mu = ppl.param("mu", 0.0)
    z = ppl.sample("z", ppl.dist.Normal(mu, 1.0))
    ppl.deterministic("shifted", z + mu)
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", ppl.dist.Normal(z, 1.0), y)
    return mu


@ppl.model
def z_guide():
    m = ppl.param("m", 0.0)
    s = ppl.param("s", 1.0, constraint=ppl.constraints.positive)
    ppl.sample("z", ppl.dist.Normal(m, s))


def z_encoder(net, y):
    ppl.sample("z", ppl.dist.Normal(net["w"][0] + 0.0 * jnp.sum(y), jnp.exp(net["w"][1])))


@pytest.mark.parametrize("guide", [z_guide, ppl.Amortized(z_encoder, {"w": jnp.zeros(2)})], ids=["program", "amortised"])
def test_posterior_draws_use_the_fitted_model_parameters(guide):
    import optax

    method = ppl.VI(guide=guide, objective=ppl.ELBO(4), optimizer=optax.adam(5e-2), num_steps=300, num_samples=200)
    post = ppl.infer(learned_shift, YS, method=method, seed=0)
    mu = float(post.params["model"]["mu"])
    assert mu > 0.5  # it moved from its init 0 towards the data (the maximum-likelihood mu is mean(y) = 1.8)
    np.testing.assert_allclose(np.asarray(post.samples["shifted"]), np.asarray(post.samples["z"]) + mu, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(post.returns), mu, rtol=1e-6)

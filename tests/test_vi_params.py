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

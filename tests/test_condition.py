"""``condition`` as an IR -> IR transformation (semantics/condition.py), checked against its law
and against exact enumeration; and the layered path that sub-model calls and dynamic models take."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics.condition import condition_program
from shared_models import hmm, sprinkler


def _observes(program):
    return {s.address for s in ir.walk(program.block.stmts) if isinstance(s, ir.Observe)}


def test_conditioned_program_is_an_ir_rewrite_with_the_law():
    """log p_cond(x, y, D = d) = log p(x, x_D = d, y), and D is no longer latent."""
    plain = sprinkler.ir()
    got = condition_program(plain, {"sprinkler": 1})
    assert "sprinkler" not in got.latent_sites() and "sprinkler" in _observes(got)
    assert sprinkler.condition({"sprinkler": 1}).ir().latent_sites().keys() == {"rain"}
    for rain in (0, 1):
        lhs = C.log_density(got, {"rain": jnp.asarray(rain)}, [])
        rhs = C.log_density(plain, {"rain": jnp.asarray(rain), "sprinkler": jnp.asarray(1)}, [])
        assert float(lhs) == pytest.approx(float(rhs), abs=1e-6)


def test_condition_posterior_and_evidence_equal_enumeration_by_hand():
    post = ppl.infer(sprinkler.condition({"sprinkler": 1}), method=ppl.Enumerate())
    # by hand: p(rain, sprinkler=1) with the two soft-evidence factors
    joint = {r: (0.3 if r else 0.7) * (0.2 if r else 1.0) * (0.1 if r else 0.4) * 0.1 for r in (0, 1)}
    z = sum(joint.values())
    assert float(post.mean()) == pytest.approx(joint[1] / z, abs=1e-6)
    assert float(post.log_evidence) == pytest.approx(np.log(z), abs=1e-6)


def test_condition_on_a_loop_site_threads_one_value_per_step():
    ys = jnp.asarray([0.5, -1.2, 2.0])
    zs = np.asarray([1, 0, 1], np.int32)
    plain = hmm.ir(ys)
    got = condition_program(plain, {"z": zs})
    assert got is not None and not got.latent_sites()
    lhs = C.log_density(got, {}, [ys])
    rhs = C.log_density(plain, {"z": jnp.asarray(zs)}, [ys])
    assert float(lhs) == pytest.approx(float(rhs), abs=1e-5)
    # conditioning on the whole path leaves the exact evidence p(z, y)
    post = ppl.infer(hmm.condition({"z": zs}), ys, method=ppl.Enumerate())
    assert float(post.log_evidence) == pytest.approx(float(rhs), abs=1e-5)


@pytest.mark.parametrize("seen", list(itertools.product((0, 1), repeat=2)))
def test_condition_on_part_of_an_hmm_path_matches_enumeration_of_the_joint(seen):
    """Condition the first two states; the third's posterior equals the joint enumeration's ratio."""
    ys = jnp.asarray([0.3, -0.4, 1.1])

    @ppl.model
    def three(ys):
        a = ppl.sample("a", dist.Bernoulli(probs=0.5))
        b = ppl.sample("b", dist.Bernoulli(probs=jnp.where(a == 1, 0.8, 0.3)))
        c = ppl.sample("c", dist.Bernoulli(probs=jnp.where(b == 1, 0.8, 0.3)))
        for name, z, y in (("ya", a, ys[0]), ("yb", b, ys[1]), ("yc", c, ys[2])):
            ppl.observe(name, dist.Normal(jnp.where(z == 1, 1.0, -1.0), 1.0), y)
        return c

    full = ppl.infer(three, ys, method=ppl.Enumerate())
    choices = full.samples
    weights = full.weights
    keep = (np.asarray(choices["a"]) == seen[0]) & (np.asarray(choices["b"]) == seen[1])
    want = np.sum(weights * keep * np.asarray(choices["c"])) / np.sum(weights * keep)
    post = ppl.infer(three.condition({"a": seen[0], "b": seen[1]}), ys, method=ppl.Enumerate())
    assert float(post.mean()) == pytest.approx(float(want), abs=1e-6)


def test_a_conditioned_sub_model_applies_its_conditions_inside_another_model():
    inner = sprinkler.condition({"sprinkler": 1})

    @ppl.model
    def outer():
        return inner()

    program = outer.ir()
    assert "sprinkler/sprinkler" in _observes(program)
    direct = ppl.infer(inner, method=ppl.Enumerate())
    nested = ppl.infer(outer, method=ppl.Enumerate())
    assert float(nested.mean()) == pytest.approx(float(direct.mean()), abs=1e-6)


def test_condition_on_an_unknown_site_names_it():
    with pytest.raises(ppl.AddressError, match="sprinkle"):
        ppl.infer(sprinkler.condition({"sprinkle": 1}), method=ppl.Enumerate())


def test_a_lossy_integer_value_is_not_truncated():
    """0.5 for an integer site is kept as 0.5 (no density there), never read as 0."""
    plain = sprinkler.ir()
    got = condition_program(plain, {"sprinkler": 0.5})
    value = [s.value for s in ir.walk(got.block.stmts) if isinstance(s, ir.Observe)][0]
    assert float(np.asarray(value.value)) == 0.5


def test_a_value_that_would_be_broadcast_is_a_shape_error():
    """A column for a vector site: the rewritten program would score the column against the vector's
    five normals as a (5, 5) array (each value five times); the IR checker refuses it instead."""
    @ppl.model
    def vector():
        theta = ppl.sample("theta", dist.Normal(jnp.zeros(5), 10.0))
        ppl.observe("y", dist.Normal(theta, 1.0), jnp.zeros(5))

    with pytest.raises(ppl.ShapeError, match=r"broadcast to \(5, 5\), which would score each observation 5 times"):
        vector.condition({"theta": np.zeros((5, 1))}).simulate(jax.random.key(0))
    trace = vector.condition({"theta": np.zeros(5)}).simulate(jax.random.key(0))  # the right shape is fine
    assert trace.log_likelihood.shape == ()


def test_condition_of_a_dynamic_model_takes_the_layered_path():
    @ppl.model
    def geometric():
        n = 0
        while ppl.sample(("flip", n), dist.Bernoulli(probs=0.5)) == 1:
            n += 1
        return n

    conditioned = geometric.condition({"flip[0]": 1, "flip[1]": 0})
    post = ppl.infer(conditioned, method=ppl.Importance(num_particles=50), key=jax.random.key(0))
    assert post.engine == "eager"
    assert post.probs() == pytest.approx({1: 1.0})
    # the evidence of the two conditioned flips is exactly 1/4
    assert float(post.log_evidence) == pytest.approx(np.log(0.25), abs=1e-6)


def test_conditioning_an_observed_site_says_it_is_data():
    """It said the model "makes no random choice there" and asked "Did you mean 'y'?" about 'y' itself."""
    @ppl.model
    def located(y):
        mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
        ppl.observe("y", ppl.dist.Normal(mu, 1.0), y)

    with pytest.raises(ppl.AddressError) as err:
        ppl.infer(located.condition({"y": 0.0}), 1.0, method=ppl.Importance(num_particles=10))
    assert "which the model 'located' observes as data" in str(err.value)
    assert "pass them as the model's argument" in str(err.value)

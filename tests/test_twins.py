"""A .ppl model and the equivalent decorated Python function lower to the same IR
(the same random choices, distributions, shapes, loops and plates, in the same
structure) and give the same answers (the same log density at the same values)."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.semantics import ir

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def signature(program: ir.Program):
    """The random structure of a program: its sites and the loops/plates/branches around them."""

    def block(stmts):
        out = []
        for s in stmts:
            if isinstance(s, ir.Sample):
                out.append(("sample", s.address, s.dist_type.__name__, s.out.shape))
            elif isinstance(s, ir.Observe):
                out.append(("observe", s.address, s.dist_type.__name__, s.value.shape))
            elif isinstance(s, ir.Factor):
                out.append(("factor",))
            elif isinstance(s, ir.Plate):
                out.append(("plate", s.size, tuple(block(s.stmts))))
            elif isinstance(s, ir.Call):
                out.append(("call", s.name, tuple(block(s.stmts))))
            elif isinstance(s, ir.For):
                out.append(("for", s.length, tuple(block(s.body.stmts))))
            elif isinstance(s, ir.If):
                out.append(("if", tuple(tuple(block(b.stmts)) for b in s.branches)))
        return out

    return block(program.block.stmts)


@ppl.model
def coin(flips):
    p = ppl.sample("p", dist.Beta(1.0, 1.0))
    with ppl.plate("i", flips.shape[0]):
        ppl.observe("flips", dist.Bernoulli(probs=p), flips)
    return p


@ppl.model
def ssm(ys):
    def step(x, y):
        x = ppl.sample("x", dist.Normal(0.9 * x, 1.0))
        ppl.observe("ys", dist.Normal(x, 0.5), y)
        return x, None

    ppl.scan(step, 0.0, ys)


@ppl.model
def schools(y, sigma):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    tau = ppl.sample("tau", dist.HalfCauchy(5.0))
    with ppl.plate("j", y.shape[0]):
        tt = ppl.sample("theta_trans", dist.Normal(0.0, 1.0))
        ppl.observe("y", dist.Normal(mu + tau * tt, sigma), y)
    return mu


@ppl.model
def regression(x, y):
    alpha = ppl.sample("alpha", dist.Normal(0.0, 10.0))
    beta = ppl.sample("beta", dist.Normal(0.0, 10.0))
    sigma = ppl.sample("sigma", dist.HalfNormal(5.0))
    ppl.observe("y", dist.Normal(alpha + beta * x, sigma), y)


@ppl.model
def weather(readings):
    def step(z, r):
        z = ppl.sample("z", dist.Bernoulli(probs=jnp.where(z == 1, 0.8, 0.3)))
        ppl.observe("readings", dist.Normal(jnp.where(z == 1, 1.0, -1.0), 1.0), r)
        return z, None

    z, _ = ppl.scan(step, jnp.asarray(0, jnp.int32), readings)
    return z


TWINS = [
    ("coin", "coin", coin, lambda m: (jnp.asarray(m.flips, jnp.int32),)),
    ("kalman", "ssm", ssm, lambda m: (jnp.asarray(m.ys, jnp.float32),)),
    ("eight_schools", "schools", schools, lambda m: (jnp.asarray(m.y, jnp.float32), jnp.asarray(m.sigma, jnp.float32))),
    ("linear_regression", "regression", regression, lambda m: (jnp.asarray(m.x), jnp.asarray(m.y))),
    ("hmm", "weather", weather, lambda m: (jnp.asarray(m.readings, jnp.float32),)),
]


@pytest.mark.parametrize("file,name,twin,data", TWINS, ids=[t[0] for t in TWINS])
def test_ppl_and_python_lower_to_the_same_ir(file, name, twin, data):
    module = ppl.load(EXAMPLES / f"{file}.ppl")
    model = getattr(module, name)
    args = data(module)
    a, b = model.ir(*args), twin.ir(*args)
    assert signature(a) == signature(b)
    assert set(a.sites) == set(b.sites)
    # the same answers: the same joint density at the same values of the random choices
    trace = twin.simulate(jax.random.key(3), *args)
    choices = {k: v for k, v in trace.choices.items() if k in b.latent_sites()}
    np.testing.assert_allclose(float(model.log_density(choices, *args)), float(twin.log_density(choices, *args)),
                               rtol=1e-5)

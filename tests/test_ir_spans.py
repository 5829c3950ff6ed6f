"""Every statement of a traced program carries a source span (issue 7): sites, loops, branches,
plates, sub-model calls and deterministic operations, in both front ends."""

import pathlib

import jax.numpy as jnp

import ppl
from ppl import dist
from ppl.semantics import ir

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def spanless(program: ir.Program) -> list:
    return [type(s).__name__ for s in ir.walk(program.block.stmts) if s.span is None]


@ppl.model
def school(y, sigma):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    tau = ppl.sample("tau", dist.HalfCauchy(5.0))
    with ppl.plate("schools", len(y)):
        theta = ppl.sample("theta", dist.Normal(mu, tau))
        ppl.observe("y", dist.Normal(theta, sigma), y)
    return mu


@ppl.model
def outer(y, sigma):
    shift = jnp.exp(ppl.sample("shift", dist.Normal(0.0, 1.0)))
    return school(y, sigma) + shift


Y = jnp.asarray([28.0, 8.0, -3.0, 7.0])
SIGMA = jnp.asarray([15.0, 10.0, 16.0, 11.0])


def test_python_models_have_a_span_on_every_statement():
    program = outer.ir(Y, SIGMA)
    kinds = {type(s).__name__ for s in ir.walk(program.block.stmts)}
    assert {"Prim", "Plate", "Call", "Sample", "Observe"} <= kinds
    assert spanless(program) == []
    plate = next(s for s in ir.walk(program.block.stmts) if isinstance(s, ir.Plate))
    assert plate.span.file == __file__ and plate.span.line == school.fn.__code__.co_firstlineno + 4
    call = next(s for s in ir.walk(program.block.stmts) if isinstance(s, ir.Call))
    assert call.span.file == __file__ and call.span.line == outer.fn.__code__.co_firstlineno + 3


def test_ppl_models_have_a_span_on_every_statement():
    module = ppl.load(EXAMPLES / "eight_schools.ppl")
    program = module.schools.ir([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
                                [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    assert {"Plate", "Prim", "Sample"} <= {type(s).__name__ for s in ir.walk(program.block.stmts)}
    assert spanless(program) == []

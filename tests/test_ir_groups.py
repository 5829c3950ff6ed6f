"""Plates and sub-model calls reach the IR as explicit structure (issue 7): the tracer marks where
each one opens and closes, with its name, size, options and span, and the Plate/Call nodes are built
from those marks. A ``jax.named_scope`` of the user's, whatever its name, makes no group."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import norm

import ppl
from ppl import dist
from ppl.semantics import ir



def line_of(fn, tag):
    import inspect

    lines, first = inspect.getsourcelines(fn)
    return first + next(k for k, text in enumerate(lines) if f"# {tag}" in text)


def groups(program):
    return [s for s in ir.walk(program.block.stmts) if isinstance(s, (ir.Plate, ir.Call))]


@ppl.model
def scoped(y):
    with jax.named_scope("ppl.plate.fake.3"):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with jax.named_scope("ppl.call.fake"):
        ppl.observe("y", dist.Normal(mu, 1.0), y)
    return mu


def test_a_users_named_scope_makes_no_plate_or_call():
    y = jnp.asarray([0.5, -1.0, 2.0])
    program = scoped.ir(y)
    assert groups(program) == []
    assert [s.address for s in ir.walk(program.block.stmts) if hasattr(s, "address")] == ["mu", "y"]
    lp = scoped.log_density({"mu": jnp.asarray(0.3)}, y)
    exact = norm.logpdf(0.3, 0.0, 1.0) + norm.logpdf(np.asarray(y), 0.3, 1.0).sum()
    assert abs(float(lp) - exact) < 1e-5


@ppl.model
def rows(x):
    scale = ppl.sample("scale", dist.HalfNormal(1.0))
    with ppl.plate("cols", x.shape[1]):  # cols
        with ppl.plate("rows", x.shape[0]):  # rows
            ppl.observe("x", dist.Normal(0.0, scale), x)
    return scale


@ppl.model
def caller(x):
    shift = ppl.sample("shift", dist.Normal(0.0, 1.0))
    return rows(x) + shift  # call


def test_a_plate_inside_a_sub_model_call_keeps_its_size_and_span():
    x = jnp.zeros((4, 3))
    program = caller.ir(x)
    call, cols, rows_ = groups(program)
    assert isinstance(call, ir.Call) and call.name == "rows"
    assert (call.span.file, call.span.line) == (__file__, line_of(caller.fn, "call"))
    assert isinstance(cols, ir.Plate) and (cols.name, cols.size) == ("cols", 3)
    assert (cols.span.file, cols.span.line) == (__file__, line_of(rows.fn, "cols"))
    assert (rows_.name, rows_.size) == ("rows", 4)
    assert rows_.span.line == line_of(rows.fn, "rows")
    # nesting: the call holds the outer plate, which holds the inner one, which holds the observation
    assert cols in call.stmts and rows_ in cols.stmts
    assert [s.address for s in rows_.stmts if isinstance(s, ir.Observe)] == ["rows/x"]
    assert program.sites["rows/x"].plates == (("cols", 3, -1), ("rows", 4, -2))


@ppl.model
def options(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0], subsample_size=2, shard=True) as idx:  # data
        ppl.observe("y", dist.Normal(mu, 1.0), y[idx])
    with ppl.plate("extra", 3):
        ppl.sample("z", dist.Normal(mu, 1.0))
    return mu


def test_plate_options_are_carried_on_the_node():
    y = jnp.arange(5.0)
    program = options.ir(y)
    data, extra = groups(program)
    assert (data.name, data.size, data.subsampled_from, data.shard) == ("data", 2, 5, True)
    assert (extra.name, extra.size, extra.subsampled_from, extra.shard) == ("extra", 3, None, None)
    assert program.sharded_plates == (("data", 5, True, data.span),)
    assert data.span.line == line_of(options.fn, "data")
    assert "plate 'data' (2 of 5) shard=True:" in str(program)


@ppl.model
def looped(ys):
    def step(carry, y):
        with ppl.plate("k", 2):  # in scan
            z = ppl.sample("z", dist.Normal(carry, 1.0))
        ppl.observe("y", dist.Normal(jnp.sum(z), 1.0), y)
        return carry + 1.0, None

    ppl.scan(step, 0.0, ys)
    return 0.0


def test_a_plate_inside_a_loop_is_a_group_of_the_loop_body():
    program = looped.ir(jnp.zeros(3))
    (loop,) = [s for s in program.block.stmts if isinstance(s, ir.For)]
    (plate,) = [s for s in loop.body.stmts if isinstance(s, ir.Plate)]
    assert (plate.name, plate.size) == ("k", 2)
    assert [s.address for s in plate.stmts if isinstance(s, ir.Sample)] == ["z"]
    assert program.sites["z"].stacked_shape == (3, 2)


@ppl.model
def halving(x):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))

    def body(c):
        with ppl.plate("inside", 2):  # no random choice: the loop stays one opaque operation
            return c * 0.5

    big = jax.lax.while_loop(lambda c: c > 1.0, body, x)
    ppl.observe("y", dist.Normal(mu, 1.0), big)
    return mu


def test_the_marks_are_no_ops_in_code_ppl_keeps_opaque():
    # the while loop's body holds a plate's marks; it is compiled, vectorised and differentiated as is
    lp = halving.log_density({"mu": jnp.asarray(0.25)}, 5.0)  # 5 -> 2.5 -> 1.25 -> 0.625
    exact = norm.logpdf(0.25, 0, 1) + norm.logpdf(0.625, 0.25, 1)
    assert abs(float(lp) - exact) < 1e-5
    density = halving.log_density_function(5.0)
    mus = jnp.asarray([0.0, 0.25, 1.0])
    grads = jax.vmap(jax.grad(lambda m: density({"mu": m})))(mus)
    exact_grads = -np.asarray(mus) + (0.625 - np.asarray(mus))
    np.testing.assert_allclose(np.asarray(grads), exact_grads, atol=1e-5)


CALLS_PPL = """model coin(p: real) {
  x ~ bernoulli(p)
  return x
}

model two() {
  a = coin(0.3)
  for i in 0..2 {
    b = coin(0.6)
  }
}
"""


def test_a_ppl_sub_model_call_points_at_the_calling_statement():
    """In a .ppl file the call's span is the statement that calls (not a line of ppl's own code)."""
    program = ppl.loads(CALLS_PPL, "calls.ppl").two.ir()
    calls = [s for s in groups(program) if isinstance(s, ir.Call)]
    assert [(c.name, c.span.file, c.span.line) for c in calls][:2] == [("coin", "calls.ppl", 7),
                                                                       ("coin_1", "calls.ppl", 9)]
    inner = [s for c in calls for s in c.stmts if isinstance(s, ir.Sample)]
    assert {(s.span.file, s.span.line) for s in inner} == {("calls.ppl", 2)}

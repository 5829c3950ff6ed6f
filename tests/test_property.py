"""Validity by property tests: random finite discrete programs (branches on random
values, factors, nested model calls, loops), run three ways — the eager reference
semantics, the compiled engine, and importance sampling — must agree: exactly for
enumeration, within Monte Carlo error (fixed seed) for importance sampling."""

import math

import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppl
from ppl import dist

probs = st.sampled_from([0.1, 0.25, 0.5, 0.7, 0.9])
weights = st.sampled_from([-1.0, -0.5, 0.0, 0.3, 1.0])


def steps(depth):
    flip = st.tuples(st.just("flip"), probs, probs, st.integers(0, 5))
    fac = st.tuples(st.just("factor"), st.integers(0, 5), weights, weights)
    loop = st.tuples(st.just("loop"), st.integers(1, 3), probs)
    leaf = st.one_of(flip, flip, fac, loop)
    if depth == 0:
        return st.lists(leaf, min_size=1, max_size=3)
    sub = steps(depth - 1)
    branch = st.tuples(st.just("branch"), st.integers(0, 5), sub, sub)
    call = st.tuples(st.just("call"), sub)
    return st.lists(st.one_of(leaf, leaf, branch, call), min_size=1, max_size=4)


def make_model(program, static: bool):
    """A model that interprets ``program``; branches use ppl.cond (static) or Python if (dynamic)."""

    def run_steps(prog, env, prefix):
        acc = jnp.asarray(0, jnp.int32)
        for i, step in enumerate(prog):
            name, kind = f"{prefix}{i}", step[0]
            if kind == "flip":
                _, p0, p1, dep = step
                p = jnp.where(env[dep % len(env)] == 1, p1, p0) if env else p0
                x = ppl.sample(name, dist.Bernoulli(probs=p))
                env = env + [x]
                acc = acc + x
            elif kind == "factor":
                _, dep, w0, w1 = step
                v = env[dep % len(env)] if env else 0
                ppl.factor(name, jnp.where(v == 1, w1, w0))
            elif kind == "loop":
                _, n, stay = step

                def body(z, _):
                    z2 = ppl.sample(name, dist.Bernoulli(probs=jnp.where(z == 1, stay, 1 - stay)))
                    ppl.factor(name + "w", jnp.where(z2 == 1, 0.4, -0.2))
                    return z2, z2

                z, _ = ppl.scan(body, jnp.asarray(0, jnp.int32), None, length=n)
                acc = acc + z
            elif kind == "branch":
                _, dep, a, b = step
                if not env:
                    continue
                c = env[dep % len(env)]
                then = lambda: run_steps(a, list(env), name + "t")  # noqa: E731
                other = lambda: run_steps(b, list(env), name + "f")  # noqa: E731
                acc = acc + (ppl.cond(c == 1, then, other) if static else (then() if c == 1 else other()))
            elif kind == "call":
                inner = step[1]
                sub = ppl.Model(lambda inner=inner: run_steps(inner, [], "s"), name=name)
                acc = acc + sub()
        return acc

    return ppl.Model(lambda: run_steps(program, [], "x"), name="random_program")


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps(2))
def test_engines_agree_on_random_programs(program):
    static = make_model(program, static=True)
    dynamic = make_model(program, static=False)
    assert static.is_static()

    eager = ppl.infer(static, method=ppl.Enumerate(engine="eager"))
    compiled = ppl.infer(static, method=ppl.Enumerate(engine="compiled"))
    python = ppl.infer(dynamic, method=ppl.Enumerate())
    assert eager.engine == "eager" and compiled.engine == "compiled"

    reference = eager.probs()
    for other in (compiled, python):
        assert other.probs() == _approx(reference)
        assert abs(other.log_evidence - eager.log_evidence) < 1e-5

    # the compiled log density of each enumerated trace is its exact weight
    if not _has_branches(program):
        for i in range(len(eager.log_weights)):
            choices = {a: np.asarray(v)[i] for a, v in eager.samples.items()}
            lp = static.log_density(choices)
            assert abs(float(lp) - eager.log_weights[i]) < 1e-5

    n = 4000
    imp = ppl.infer(static, method=ppl.Importance(num_particles=n), seed=7)
    w = imp.weights
    ret = np.asarray(imp.returns, dtype=np.float64)
    se = math.sqrt(np.sum(w**2 * (ret - np.sum(w * ret)) ** 2)) + 1e-12
    exact = sum(v * p for v, p in reference.items())
    assert abs(np.sum(w * ret) - exact) / se < 4.5 or abs(np.sum(w * ret) - exact) < 1e-6


def _has_branches(program):
    return any(s[0] in ("branch", "call") and (s[0] == "call" and _has_branches(s[1]) or s[0] == "branch")
               for s in program)


def _approx(table):
    import pytest

    return pytest.approx(table, abs=1e-6)

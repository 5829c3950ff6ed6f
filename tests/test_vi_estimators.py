"""Unbiasedness of every gradient estimator of ``ppl.expectation``.

Each program's expectation and its gradient are known in closed form; the mean
of many ``E.grad`` estimates must equal the exact gradient within 4 standard
errors (fixed seeds), and the ``"enum"`` estimator must equal it exactly.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppl
from ppl.stdlib.errors import ModelError

N = 20000  # estimates averaged per check


def grads(E, *args, n=N, seed=1, baseline=0.0):
    keys = jax.random.split(jax.random.key(seed), n)
    fn = jax.jit(jax.vmap(lambda k: E.grad(k, *args, baseline=baseline)))
    return np.asarray(fn(keys), dtype=np.float64)


def assert_unbiased(samples, exact, z=4.0):
    samples = samples.reshape(samples.shape[0], -1)
    exact = np.ravel(np.asarray(exact, dtype=np.float64))
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - exact) <= z * se + 1e-6), (mean, exact, se)
    return se


# ---------------------------------------------------------------------------
# Bernoulli: E[(x + p)^2] = p + 3 p^2, d/dp = 1 + 6p (p enters the distribution and the integrand)


def bernoulli_program(estimator):
    def prog(p):
        x = ppl.sample("x", ppl.dist.Bernoulli(probs=p), estimator=estimator)
        return (x + p) ** 2

    return prog


P = 0.3
EXACT_BERNOULLI = 1 + 6 * P


def test_bernoulli_enum_is_exact():
    E = ppl.expectation(bernoulli_program("enum"))
    assert float(E.estimate(jax.random.key(0), P)) == pytest.approx(P + 3 * P**2, rel=1e-6)
    assert float(E.grad(jax.random.key(0), P)) == pytest.approx(EXACT_BERNOULLI, rel=1e-6)


@pytest.mark.parametrize("estimator,baseline", [("reinforce", 0.0), ("reinforce", 0.5), ("mvd", 0.0)])
def test_bernoulli_unbiased(estimator, baseline):
    E = ppl.expectation(bernoulli_program(estimator))
    assert_unbiased(grads(E, P, baseline=baseline), EXACT_BERNOULLI)


def test_bernoulli_default_is_reinforce_and_unbiased():
    E = ppl.expectation(bernoulli_program(None))
    assert_unbiased(grads(E, P), EXACT_BERNOULLI)


def test_naive_gradient_through_the_sample_is_wrong():
    """Differentiating the simulated program through its draw (what plain autodiff does) misses
    the dependence of the Bernoulli's law on p: its mean is E[2(x + p)] = 4p, not 1 + 6p."""
    model = ppl.model(bernoulli_program(None))

    def naive(key, p):
        return jax.grad(lambda q: model.simulate(key, q).retval)(p)

    g = np.asarray(jax.vmap(naive, in_axes=(0, None))(jax.random.split(jax.random.key(2), 4000), P))
    se = g.std(ddof=1) / np.sqrt(g.size)
    assert abs(g.mean() - 4 * P) <= 4 * se + 1e-6  # what it estimates
    assert abs(g.mean() - EXACT_BERNOULLI) > 20 * max(se, 1e-3)  # and that it is not the gradient


def test_baseline_reduces_reinforce_variance():
    E = ppl.expectation(bernoulli_program("reinforce"))
    plain = grads(E, P).std()
    with_b = grads(E, P, baseline=P + 3 * P**2).std()
    assert with_b < 0.8 * plain


# ---------------------------------------------------------------------------
# Categorical: x ~ Cat(softmax(t)), f = v[x] + t[x]^2


V = jnp.array([1.0, -2.0, 0.5])
T = np.array([0.2, -0.4, 0.9], dtype=np.float32)


def categorical_program(estimator):
    def prog(t):
        x = ppl.sample("x", ppl.dist.Categorical(logits=t), estimator=estimator)
        return V[x] + t[x] ** 2

    return prog


def categorical_exact(t):
    return jax.grad(lambda t: jnp.sum(jax.nn.softmax(t) * (V + t**2)))(jnp.asarray(t))


def test_categorical_enum_is_exact():
    E = ppl.expectation(categorical_program("enum"))
    np.testing.assert_allclose(E.grad(jax.random.key(0), T), categorical_exact(T), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("estimator,baseline", [("reinforce", 0.0), ("reinforce", 1.0), ("mvd", 0.0)])
def test_categorical_unbiased(estimator, baseline):
    E = ppl.expectation(categorical_program(estimator))
    assert_unbiased(grads(E, T, baseline=baseline), categorical_exact(T))


# ---------------------------------------------------------------------------
# Normal: x ~ N(mu, s), f = x^2 + mu x: E = 2 mu^2 + s^2, grad = (4 mu, 2 s)

MU, S = 0.7, 1.3


def normal_program(estimator):
    def prog(mu, s):
        x = ppl.sample("x", ppl.dist.Normal(mu, s), estimator=estimator)
        return x**2 + mu * x

    return prog


@pytest.mark.parametrize("estimator,baseline", [("reparam", 0.0), ("reinforce", 0.0), ("reinforce", 2.5),
                                                ("mvd", 0.0), (None, 0.0)])
def test_normal_unbiased(estimator, baseline):
    E = ppl.expectation(normal_program(estimator))
    keys = jax.random.split(jax.random.key(3), N)
    g = jax.jit(jax.vmap(lambda k: E.grad(k, MU, S, baseline=baseline)))(keys)
    samples = np.stack([np.asarray(g[0]), np.asarray(g[1])], axis=1)
    assert_unbiased(samples, [4 * MU, 2 * S])


def test_normal_estimate_unbiased():
    E = ppl.expectation(normal_program("reparam"))
    v = np.asarray(jax.vmap(lambda k: E.estimate(k, MU, S))(jax.random.split(jax.random.key(4), N)))
    assert abs(v.mean() - (2 * MU**2 + S**2)) <= 4 * v.std() / np.sqrt(N)


# ---------------------------------------------------------------------------
# Gamma: x ~ Gamma(a, b), f = x^2: E = a (a + 1) / b^2


A, B = 2.5, 1.5
EXACT_GAMMA = [(2 * A + 1) / B**2, -2 * A * (A + 1) / B**3]


@pytest.mark.parametrize("estimator", ["implicit", None, "reinforce"])
def test_gamma_unbiased(estimator):
    def prog(a, b):
        return ppl.sample("x", ppl.dist.Gamma(a, b), estimator=estimator) ** 2

    E = ppl.expectation(prog)
    g = jax.jit(jax.vmap(lambda k: E.grad(k, A, B)))(jax.random.split(jax.random.key(5), N))
    assert_unbiased(np.stack([np.asarray(g[0]), np.asarray(g[1])], axis=1), EXACT_GAMMA)


# Poisson with MVD: x ~ Poisson(r), f = x^2: E = r + r^2, d/dr = 1 + 2r


@pytest.mark.parametrize("estimator", ["mvd", "reinforce"])
def test_poisson_unbiased(estimator):
    def prog(r):
        return 1.0 * ppl.sample("x", ppl.dist.Poisson(r), estimator=estimator) ** 2

    assert_unbiased(grads(ppl.expectation(prog), 1.7), 1 + 2 * 1.7)


# ---------------------------------------------------------------------------
# Composition: enum, reinforce and reparam in one program, and enum inside a loop


def test_mixed_program_unbiased():
    def prog(p, mu):
        b = ppl.sample("b", ppl.dist.Bernoulli(probs=p), estimator="enum")
        x = ppl.sample("x", ppl.dist.Normal(mu * (1 + b), 1.0))
        c = ppl.sample("c", ppl.dist.Bernoulli(probs=jax.nn.sigmoid(mu)), estimator="reinforce")
        return x**2 + c * p

    def exact(p, mu):
        s = jax.nn.sigmoid(mu)
        return (1 - p) * (mu**2 + 1) + p * (4 * mu**2 + 1) + s * p

    g = jax.jit(jax.vmap(lambda k: ppl.expectation(prog).grad(k, 0.4, 0.6)))(jax.random.split(jax.random.key(6), N))
    want = jax.grad(exact, argnums=(0, 1))(0.4, 0.6)
    assert_unbiased(np.stack([np.asarray(g[0]), np.asarray(g[1])], axis=1), np.asarray(want))


def test_enum_inside_a_loop_is_exact():
    def prog(p):
        def step(total, _):
            x = ppl.sample("x", ppl.dist.Bernoulli(probs=p), estimator="enum")
            return total + x, None

        total, _ = ppl.scan(step, 0.0, length=3)
        return total**2

    # total ~ Binomial(3, p): E[total^2] = 3p(1-p) + 9p^2
    E = ppl.expectation(prog)
    p = 0.35
    assert float(E.estimate(jax.random.key(0), p)) == pytest.approx(3 * p * (1 - p) + 9 * p**2, rel=1e-5)
    assert float(E.grad(jax.random.key(0), p)) == pytest.approx(3 - 6 * p + 18 * p, rel=1e-5)


# ---------------------------------------------------------------------------
# Property: on random small finite programs, enum equals the exact gradient by enumeration


@st.composite
def finite_programs(draw):
    n = draw(st.integers(1, 3))
    sizes = [draw(st.sampled_from([2, 3])) for _ in range(n)]
    floats = st.floats(-1.5, 1.5, allow_nan=False, width=32)
    # site i's logits: w_i * theta + u_i[previous value]
    w = [np.array(draw(st.lists(floats, min_size=k, max_size=k)), np.float32) for k in sizes]
    u = [np.array(draw(st.lists(floats, min_size=3 * k, max_size=3 * k)), np.float32).reshape(3, k) for k in sizes]
    table = np.array(draw(st.lists(floats, min_size=int(np.prod(sizes)), max_size=int(np.prod(sizes)))),
                     np.float32).reshape(sizes)
    theta = draw(floats)
    return sizes, w, u, table, theta


def _site(i, k, logits, estimator):
    if k == 2:
        return ppl.sample(f"x{i}", ppl.dist.Bernoulli(logits=logits[1] - logits[0]), estimator=estimator)
    return ppl.sample(f"x{i}", ppl.dist.Categorical(logits=logits), estimator=estimator)


@settings(max_examples=6, deadline=None)
@given(finite_programs())
def test_enum_equals_exact_enumeration(case):
    _check_enum_against_enumeration(case)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(finite_programs())
def test_enum_equals_exact_enumeration_many(case):
    _check_enum_against_enumeration(case)


def _check_enum_against_enumeration(case):
    sizes, w, u, table, theta = case

    def prog(t):
        prev, xs = 0, []
        for i, k in enumerate(sizes):
            x = _site(i, k, w[i] * t + jnp.asarray(u[i])[prev], "enum")
            xs.append(x)
            prev = x
        return jnp.asarray(table)[tuple(xs)] * t

    model = ppl.model(prog)
    E = ppl.expectation(model)
    t0 = jnp.float32(theta)
    value, grad = jax.jit(E.value_and_grad)(jax.random.key(0), t0)
    reference, exact = exact_by_reference_enumeration(model, t0)
    assert float(value) == pytest.approx(reference, rel=1e-4, abs=1e-5)
    assert float(grad) == pytest.approx(float(jax.jit(jax.grad(exact))(t0)), rel=1e-4, abs=1e-4)


def exact_by_reference_enumeration(model, theta):
    """The exact expectation of ``model(theta)``'s return value by the reference engine's enumeration
    (``semantics/interpret``: every trace with its probability), and that expectation as a
    differentiable function of theta: the same finite sum over the traces the reference engine lists,
    each weighted by its probability at theta (``sum_x p_theta(x) f_theta(x)``)."""
    from ppl.semantics import compile as C
    from ppl.semantics.interpret.enumeration import Enumeration
    from ppl.semantics.interpret.free import reify_ir, run

    program, leaves = model.program(theta)
    table = run(reify_ir(program, leaves), Enumeration())
    reference = sum(math.exp(lw) * float(v) for v, _, lw in table)
    assert sum(math.exp(lw) for _, _, lw in table) == pytest.approx(1.0, rel=1e-5)

    def exact(t):
        program_t, leaves_t = model.program(t)
        total = 0.0
        for _, trace, _ in table:
            run_t = C.run(program_t, C.Given(), leaves_t, inputs=trace)
            total = total + jnp.exp(run_t.log_prior) * run_t.retval
        return total

    return reference, exact


# ---------------------------------------------------------------------------
# Bad input: estimators that do not apply name the site and the line


def test_enum_on_continuous_site_is_an_error():
    def prog(mu):
        return ppl.sample("x", ppl.dist.Normal(mu, 1.0), estimator="enum")

    with pytest.raises(ModelError, match=r"'x' \(Normal\).*continuous.*'enum'") as info:
        ppl.expectation(prog).grad(jax.random.key(0), 0.0)
    assert info.value.span is not None and info.value.span.file == __file__


def test_reparam_on_discrete_site_is_an_error():
    def prog(p):
        return 1.0 * ppl.sample("coin", ppl.dist.Bernoulli(probs=p), estimator="reparam")

    with pytest.raises(ModelError, match=r"'coin' is discrete.*'reparam' does not apply") as info:
        ppl.expectation(prog).grad(jax.random.key(0), 0.5)
    assert info.value.span is not None and info.value.span.file == __file__


def test_unknown_estimator_is_an_error():
    def prog(p):
        return ppl.sample("x", ppl.dist.Normal(p, 1.0), estimator="pathwise")

    with pytest.raises(ModelError, match=r"estimator='pathwise'.*not a gradient estimator") as info:
        ppl.expectation(prog).grad(jax.random.key(0), 0.5)
    assert info.value.span.file == __file__


def test_expectation_rejects_observations():
    def prog(mu):
        ppl.observe("y", ppl.dist.Normal(mu, 1.0), 0.3)
        return mu

    with pytest.raises(ModelError, match="takes no observations"):
        ppl.expectation(prog).estimate(jax.random.key(0), 0.0)


def test_enum_estimate_equals_the_enumerate_method():
    """The "enum" estimate of E[f] is the expectation of the return value under ppl's exact
    enumeration (the reference meaning), on a program with a dependent pair of choices."""

    @ppl.model
    def prog():
        a = ppl.sample("a", ppl.dist.Categorical(probs=jnp.array([0.2, 0.5, 0.3])), estimator="enum")
        b = ppl.sample("b", ppl.dist.Bernoulli(probs=jnp.array([0.1, 0.6, 0.9])[a]), estimator="enum")
        return 1.0 * a * a - 2.0 * b + a * b

    exact = ppl.infer(prog, method=ppl.Enumerate()).mean()
    assert float(ppl.expectation(prog).estimate(jax.random.key(0))) == pytest.approx(float(exact), rel=1e-5)


def test_grad_has_the_structure_of_the_arguments_and_vmaps_over_them():
    def prog(theta):
        x = ppl.sample("x", ppl.dist.Normal(theta["mu"], theta["s"]))
        return x**2  # E = mu^2 + s^2

    E = ppl.expectation(prog)
    key = jax.random.key(7)
    g = E.grad(key, {"mu": 0.5, "s": 1.0})
    assert set(g) == {"mu", "s"}
    eps = (float(jnp.sqrt(E.estimate(key, {"mu": 0.0, "s": 1.0}))))  # |eps| of this key's draw
    # one reparameterised draw x = mu + s eps: d/dmu x^2 = 2x, d/ds x^2 = 2x eps
    x = float(jax.vmap(E.estimate, in_axes=(None, 0))(key, {"mu": jnp.array([0.5]), "s": jnp.array([1.0])})[0])
    assert abs(float(g["mu"])) == pytest.approx(2 * np.sqrt(x), rel=1e-5)
    assert abs(float(g["s"])) == pytest.approx(2 * np.sqrt(x) * eps, rel=1e-5)
    vals = jax.vmap(E.estimate, in_axes=(None, 0))(key, {"mu": jnp.arange(3.0), "s": jnp.ones(3)})
    assert vals.shape == (3,)


def test_mvd_inside_a_plate_is_an_error():
    def prog(p):
        with ppl.plate("n", 3):
            x = ppl.sample("x", ppl.dist.Bernoulli(probs=p), estimator="mvd")
        return 1.0 * x.sum()

    with pytest.raises(ModelError, match=r"'mvd' needs a single scalar choice.*'x' is not one"):
        ppl.expectation(prog).grad(jax.random.key(0), 0.5)


def test_too_many_enumerated_values_is_an_error():
    def prog(p):
        with ppl.plate("n", 20):
            x = ppl.sample("x", ppl.dist.Bernoulli(probs=p), estimator="enum")
        return 1.0 * x.sum()

    with pytest.raises(ModelError, match=r"1048576 joint values, more than 4096") as info:
        ppl.expectation(prog).grad(jax.random.key(0), 0.5)
    assert "reinforce" in info.value.hint


def test_enum_in_a_plate_is_exact():
    def prog(p):
        with ppl.plate("n", 4):
            x = ppl.sample("x", ppl.dist.Bernoulli(probs=p), estimator="enum")
        return 1.0 * x.sum() ** 2  # Binomial(4, p): E = 4p(1-p) + 16p^2

    p = 0.2
    E = ppl.expectation(prog)
    assert float(E.estimate(jax.random.key(0), p)) == pytest.approx(4 * p * (1 - p) + 16 * p**2, rel=1e-5)
    assert float(E.grad(jax.random.key(0), p)) == pytest.approx(4 - 8 * p + 32 * p, rel=1e-5)

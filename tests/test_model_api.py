"""The public Python surface: Model methods, sub-model addresses, plates, scans,
conds, mem, the IR, and the Posterior."""

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist


@ppl.model
def inner(scale):
    return ppl.sample("z", dist.Normal(0.0, scale))


@ppl.model
def outer(ys):
    mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
    a = inner(1.0)
    b = inner(2.0)
    with ppl.plate("data", ys.shape[0]):
        ppl.observe("y", dist.Normal(mu + a + b, 1.0), ys)
    return mu


def test_sub_model_addresses_nest_under_the_call():
    trace = outer.simulate(jax.random.key(0), jnp.zeros(3))
    assert set(trace.choices) == {"mu", "inner/z", "inner_1/z"}
    text = str(outer.ir(jnp.zeros(3)))
    assert "call 'inner'" in text and "sample 'inner/z'" in text and "plate 'data' (3)" in text


def test_simulate_log_density_and_generate_agree():
    ys = jnp.array([0.3, -0.2, 1.0])
    trace = outer.simulate(jax.random.key(1), ys)
    lp = outer.log_density(trace.choices, ys)
    assert abs(float(lp) - float(trace.log_joint)) < 1e-4
    # hand computation of the joint density
    c = {k: float(v) for k, v in trace.choices.items()}
    from scipy.stats import norm

    exact = (norm.logpdf(c["mu"], 0, 5) + norm.logpdf(c["inner/z"], 0, 1) + norm.logpdf(c["inner_1/z"], 0, 2)
             + norm.logpdf(np.asarray(ys), c["mu"] + c["inner/z"] + c["inner_1/z"], 1).sum())
    assert abs(float(lp) - exact) < 1e-4
    # generate with every latent constrained: the weight is the joint density
    tr, w = outer.generate(jax.random.key(2), ys, constraints=trace.choices)
    assert abs(float(w) - exact) < 1e-4
    # generate with nothing constrained: the weight is the likelihood
    tr, w = outer.generate(jax.random.key(2), ys, constraints={})
    assert abs(float(w) - float(tr.log_likelihood)) < 1e-6


def test_condition_turns_a_sample_into_an_observation():
    @ppl.model
    def two():
        x = ppl.sample("x", dist.Bernoulli(probs=0.5))
        y = ppl.sample("y", dist.Bernoulli(probs=jnp.where(x == 1, 0.9, 0.2)))
        return x

    post = ppl.infer(two.condition({"y": 1}), method=ppl.Enumerate())
    assert abs(post.mean() - 0.45 / 0.55) < 1e-6
    assert "y" not in post.samples
    with pytest.raises(ppl.AddressError, match="'w'"):
        ppl.infer(two.condition({"w": 1}), method=ppl.Enumerate())


def test_scan_sites_are_stacked_by_step():
    @ppl.model
    def walk(n):
        def step(x, _):
            x = ppl.sample("x", dist.Normal(x, 1.0))
            return x, x

        _, xs = ppl.scan(step, 0.0, None, length=n)
        return xs

    trace = walk.simulate(jax.random.key(0), 6)
    assert trace.choices["x"].shape == (6,)
    np.testing.assert_allclose(trace.retval, trace.choices["x"])
    # the eager engine gives the same addresses, stacked
    post = ppl.infer(walk, 6, method=ppl.Importance(num_particles=3))
    assert post.samples["x"].shape == (3, 6)


def test_cond_on_a_random_value_keeps_the_model_static():
    @ppl.model
    def branchy():
        c = ppl.sample("c", dist.Bernoulli(probs=0.25))
        return ppl.cond(c == 1, lambda: ppl.sample("a", dist.Categorical(probs=jnp.array([0.5, 0.5]))),
                        lambda: jnp.asarray(5, jnp.int32))

    assert branchy.is_static()
    post = ppl.infer(branchy, method=ppl.Enumerate())
    assert post.engine == "compiled"
    assert post.probs() == pytest.approx({0: 0.125, 1: 0.125, 5: 0.75}, abs=1e-6)


def test_mem_draws_once_per_argument():
    @ppl.model
    def tug():
        strength = ppl.mem(lambda person: ppl.sample("s", dist.Normal(0.0, 1.0)))
        a = strength("alice") + strength("alice")
        b = strength("bob")
        return a - 2 * strength("alice") + 0 * b

    trace = tug.simulate(jax.random.key(0))
    assert abs(float(trace.retval)) < 1e-6
    assert set(trace.choices) == {"mem[alice]/s", "mem[bob]/s"}


def test_higher_order_random_function_in_the_eager_engine():
    @ppl.model
    def random_function():
        kind = ppl.sample("kind", dist.Categorical(probs=jnp.array([0.5, 0.5])))
        f = (lambda x: x + 1) if kind == 0 else (lambda x: 2 * x)  # a random choice of function
        return f(3)

    post = ppl.infer(random_function, method=ppl.Enumerate())
    assert post.engine == "eager"
    assert post.probs() == pytest.approx({4: 0.5, 6: 0.5}, abs=1e-9)


def test_posterior_statistics_summary_and_arviz():
    post = ppl.infer(outer, jnp.array([0.5, 1.5, 1.0]), method=ppl.Importance(num_particles=500), seed=3)
    text = post.summary()
    assert "mu" in text and "inner/z" in text and "log evidence" in text and "compiled" in text
    q = post.quantile("mu", [0.05, 0.95])
    assert q[0] < post.mean("mu") < q[1]
    assert post.std("mu") > 0
    idata = post.to_arviz()
    assert set(idata.posterior.data_vars) >= {"mu", "inner.z"}
    assert idata.posterior["mu"].shape == (1, 4000)  # resampled to at least ARVIZ_DRAWS equal-weight draws


def test_float32_by_default_and_x64_switch():
    trace = outer.simulate(jax.random.key(0), jnp.zeros(2))
    assert trace.choices["mu"].dtype == jnp.float32
    code = ("import ppl, jax, jax.numpy as jnp\n"
            "ppl.config(x64=True)\n"
            "m = ppl.model(lambda: ppl.sample('x', ppl.dist.Normal(0.0, 1.0)))\n"
            "print(m.simulate(jax.random.key(0)).choices['x'].dtype)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "float64"


def test_dynamic_model_reason_names_the_line_and_the_fix():
    @ppl.model
    def geometric_loop():
        n = 0
        while ppl.sample(("flip", n), dist.Bernoulli(probs=0.5)) == 0:
            n += 1
        return n

    program, _ = geometric_loop.program()
    assert not geometric_loop.is_static()
    text = program.describe()
    assert "while ppl.sample" in text and "ppl.cond" in text and "line" in text
    post = ppl.infer(geometric_loop, method=ppl.Enumerate(max_depth=12))
    assert abs(post.probs()[0] - 0.5 / (1 - 0.5**12)) < 1e-9
    assert post.engine == "eager"
    assert "dynamic" in post.summary()


def test_arviz_data_of_an_exact_posterior_have_its_weights():
    """An Enumerate posterior of three outcomes was resampled to three draws: [[2, 2, 2]]."""
    @ppl.model
    def three():
        z = ppl.sample("z", dist.Categorical(probs=jnp.array([0.2, 0.3, 0.5])))
        ppl.factor("f", jnp.where(z == 2, 1.0, 0.0))
        return z

    post = ppl.infer(three)
    draws = np.asarray(post.to_arviz().posterior["z"]).reshape(-1)
    weights = np.array([0.2, 0.3, 0.5 * np.e]) / (0.5 + 0.5 * np.e)
    assert draws.size >= 4000
    for k in range(3):  # systematic resampling: each count within one of its expectation
        assert abs(np.sum(draws == k) - weights[k] * draws.size) <= 1
    assert np.mean(draws) == pytest.approx(post.mean("z"), abs=1e-3)
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 0.1  # mixed, not in the resampler's order


P_X = jnp.array([0.0, 0.0, 0.2, 0.8])  # x is 2 or 3, never 0


@ppl.model
def branch_only_static():
    n = ppl.sample("n", dist.Bernoulli(probs=0.5))
    return ppl.cond(n == 1, lambda: ppl.sample("x", dist.Categorical(probs=P_X)), lambda: 0)


@ppl.model
def branch_only_dynamic():
    n = ppl.sample("n", dist.Bernoulli(probs=0.5))
    if n == 1:
        return ppl.sample("x", dist.Categorical(probs=P_X))
    return 0


@pytest.mark.parametrize("model", [branch_only_static, branch_only_dynamic])
def test_a_site_made_in_some_runs_reads_the_same_whichever_engine(model):
    """The compiled engine counted runs without 'x' as x = 0 (mean 1.4, P(x = 0) = 0.5, a value the
    distribution cannot take); the eager engine gave each absent run its own NaN key in probs."""
    post = ppl.infer(model, method=ppl.Enumerate())
    assert post.engine == ("compiled" if model is branch_only_static else "eager")
    assert float(post.mean("x")) == pytest.approx(2.8, abs=1e-6)  # given that x is made
    assert float(post.std("x")) == pytest.approx(0.4, abs=1e-5)
    assert post.probs("x") == pytest.approx({2: 0.1, 3: 0.4, None: 0.5}, abs=1e-6)
    assert post.prob(lambda v: v >= 3, "x") == pytest.approx(0.4, abs=1e-6)


def test_mh_records_a_site_made_in_some_draws_as_absent_there():
    """MH's chains recorded the placeholder 0 where 'x' was not made (mean 1.36 for a site that is 2 or 3)."""
    post = ppl.infer(branch_only_static, method=ppl.MH(num_samples=2000, num_warmup=200, num_chains=2), seed=0)
    x = np.asarray(post.samples["x"])
    assert np.all(np.isnan(x) | (x == 2) | (x == 3)) and 0.3 < np.mean(np.isnan(x)) < 0.7
    assert set(post.probs("x")) == {2, 3, None}
    assert 2.6 < float(post.mean("x")) < 3.0  # given that x is made: exactly 2.8


def test_diagnostics_leave_the_draws_of_a_site_made_in_some_draws_as_they_are():
    """The diagnostics zeroed a NaN coordinate in place, and for a scalar site that was the Posterior's own
    array: after post.summary(), eager MH's 'x' read 0 wherever it was absent (mean 0.0 for 2.8)."""
    post = ppl.infer(branch_only_dynamic, method=ppl.MH(num_samples=1000, num_warmup=100, num_chains=2), seed=0)
    x = np.asarray(post.samples["x"])
    absent, mean = np.isnan(x).copy(), float(post.mean("x"))
    assert 0.3 < absent.mean() < 0.7
    table = post.summary()
    assert np.array_equal(np.isnan(np.asarray(post.samples["x"])), absent)
    assert float(post.mean("x")) == mean
    row = next(line for line in table.splitlines() if line.startswith("│ x "))
    assert row.split("│")[-2].strip() == "nan"  # R-hat of a coordinate with absent draws: not defined

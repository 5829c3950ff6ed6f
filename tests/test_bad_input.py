"""Bad input gets a clear exception naming the site and the user's line — never a
silent wrong answer and never a raw JAX tracer error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from test_stan_habits import with_observe  # a normal mean observed under a plate


def line_of(fn, text):
    import inspect

    lines, start = inspect.getsourcelines(fn.fn if isinstance(fn, ppl.Model) else fn)
    for i, line in enumerate(lines):
        if text in line:
            return start + i
    raise AssertionError(text)


@ppl.model
def negative_scale():
    return ppl.sample("x", dist.Bernoulli(probs=1.5))


@ppl.model
def traced_negative_scale(y):
    s = ppl.sample("s", dist.Normal(-5.0, 0.1))
    ppl.observe("y", dist.Normal(0.0, s), y)  # the scale is negative for every prior draw
    return s


@pytest.mark.parametrize("method", [ppl.Importance(num_particles=10), ppl.Enumerate()])
def test_parameter_outside_its_domain_names_site_and_line(method):
    with pytest.raises(ppl.ParameterError) as info:
        ppl.infer(negative_scale, method=method)
    err = info.value
    assert "'x'" in str(err) and "probs" in str(err) and "1.5" in str(err)
    assert err.span is not None and err.span.line == line_of(negative_scale, 'dist.Bernoulli(probs=1.5)')


def test_negative_scale_of_a_continuous_site():
    @ppl.model
    def m():
        return ppl.sample("x", dist.Normal(0.0, -1.0))

    with pytest.raises(ppl.ParameterError, match="'x'.*scale"):
        ppl.infer(m, method=ppl.Importance(num_particles=10))


def test_parameter_outside_its_domain_at_run_time_is_diagnosed():
    with pytest.raises(ppl.ParameterError) as info:
        ppl.infer(traced_negative_scale, 1.0, method=ppl.Importance(num_particles=50))
    assert "'y'" in str(info.value) and "scale" in str(info.value)
    assert info.value.span.line == line_of(traced_negative_scale, 'ppl.observe("y"')


@ppl.model
def unnormalised(y):
    p = ppl.sample("p", dist.Beta(1.0, 1.0))
    ppl.observe("y", dist.Categorical(probs=jnp.stack([p, jnp.asarray(0.5)])), y)  # sums to 1 at p = 0.5 only


def test_a_density_where_a_parameter_leaves_its_domain_is_nan():
    """Categorical probs [p, 0.5] sum to 1 at p = 0.5 only. The compiled density was log(probs[y]) elsewhere,
    finite, and NUTS and VI fitted it silently (p came out near 0.66); now the density is NaN there and
    the methods name the site, as Importance already did."""
    y = jnp.array([0, 1, 1])
    assert np.isclose(float(unnormalised.log_density({"p": 0.5}, y)), 3 * np.log(0.5), rtol=1e-6)
    assert np.isnan(float(unnormalised.log_density({"p": 0.9}, y)))
    density = unnormalised.log_density_function(y, unconstrained=True)
    value, grad = jax.value_and_grad(density)({"p": jnp.asarray(2.0)})
    assert np.isnan(float(value))
    for method in (ppl.NUTS(num_warmup=20, num_samples=20, progress=False), ppl.VI(num_steps=20, progress=False),
                   ppl.Importance(num_particles=20)):
        with pytest.raises(ppl.ParameterError, match="'y'.*probs must be a probability vector") as info:
            ppl.infer(unnormalised, y, method=method)
        assert info.value.span.line == line_of(unnormalised, 'ppl.observe("y"')


@ppl.model
def unnormalised_mixture(y):
    p = ppl.sample("p", dist.Beta(1.0, 1.0))
    z = ppl.sample("z", dist.Categorical(probs=jnp.stack([p, jnp.asarray(0.5)])))  # summed out by NUTS
    ppl.observe("y", dist.Normal(z * 1.0, 1.0), y)


def test_a_marginal_density_where_a_parameter_leaves_its_domain_is_nan():
    """The same with the discrete site summed out: NUTS fitted p near 0.58, silently."""
    from ppl.inference.marginalize import marginal_log_density_unconstrained

    program, leaves = unnormalised_mixture.program(jnp.array([0.3, 1.2]))
    at = lambda p: float(marginal_log_density_unconstrained(program, {"p": jnp.log(p / (1 - p))}, leaves))  # noqa: E731
    assert np.isfinite(at(0.5)) and np.isnan(at(0.9))
    with pytest.raises(ppl.ParameterError, match="'z'.*probs must be a probability vector") as info:
        ppl.infer(unnormalised_mixture, jnp.array([0.3, 1.2]), method=ppl.NUTS(num_warmup=20, num_samples=20,
                                                                               progress=False))
    assert info.value.span.line == line_of(unnormalised_mixture, 'ppl.sample("z"')


@ppl.model
def coin(flips):
    p = ppl.sample("p", dist.Beta(1.0, 1.0))
    with ppl.plate("flips", flips.shape[0]):
        ppl.observe("flips", dist.Bernoulli(probs=p), flips)
    return p


def test_observed_value_outside_support():
    with pytest.raises(ppl.SupportError) as info:
        ppl.infer(coin, jnp.array([0, 1, 2, 1]), method=ppl.Importance(num_particles=20))
    msg = str(info.value)
    assert "'flips'" in msg and "Bernoulli" in msg and "2" in msg
    assert info.value.span.line == line_of(coin, 'ppl.observe("flips"')


def test_observed_value_outside_support_dynamic_model():
    @ppl.model
    def dyn(k):
        n = ppl.sample("n", dist.Poisson(3.0))
        if n > 2:  # dynamic
            ppl.factor("more", 1.0)
        ppl.observe("k", dist.Binomial(n, probs=0.5), k)
        return n

    with pytest.raises(ppl.SupportError) as info:
        ppl.infer(dyn, -1, method=ppl.Importance(num_particles=5))
    assert "'k'" in str(info.value)


@ppl.model
def duplicate():
    a = ppl.sample("z", dist.Normal(0.0, 1.0))
    b = ppl.sample("z", dist.Normal(a, 1.0))
    return b


@ppl.model
def duplicate_in_loop():
    total = 0.0
    for i in range(3):
        total += ppl.sample("z", dist.Normal(0.0, 1.0))
    return total


@pytest.mark.parametrize("model", [duplicate, duplicate_in_loop])
def test_duplicate_addresses(model):
    with pytest.raises(ppl.AddressError) as info:
        ppl.infer(model, method=ppl.Importance(num_particles=5))
    msg = str(info.value)
    assert "'z'" in msg and "twice" in msg and "first used at" in msg
    assert info.value.span is not None


@ppl.model
def regression(x, y):
    a = ppl.sample("a", dist.Normal(0.0, 1.0))
    b = ppl.sample("b", dist.Normal(0.0, 1.0))
    ppl.observe("y", dist.Normal(a + b * x, 1.0), y)


def test_data_of_the_wrong_shape():
    with pytest.raises(ppl.ShapeError) as info:
        ppl.infer(regression, jnp.arange(5.0), jnp.arange(4.0), method=ppl.Importance(num_particles=5))
    msg = str(info.value)
    assert "'y'" in msg and "(4,)" in msg and "(5,)" in msg
    assert info.value.span.line == line_of(regression, 'ppl.observe("y"')


def test_plate_size_that_does_not_match_the_data():
    @ppl.model
    def m(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        with ppl.plate("data", 3):
            ppl.observe("y", dist.Normal(mu, 1.0), y)

    with pytest.raises(ppl.ShapeError, match="'y'"):
        ppl.infer(m, jnp.arange(5.0), method=ppl.Importance(num_particles=5))


@ppl.model
def nan_factor(y):
    x = ppl.sample("x", dist.Normal(0.0, 1.0))
    ppl.factor("bad", jnp.log(-jnp.abs(x) - 1.0))  # log of a negative number: NaN
    ppl.observe("y", dist.Normal(x, 1.0), y)


def test_nan_in_a_log_density_names_the_site():
    with pytest.raises(ppl.DensityError) as info:
        ppl.infer(nan_factor, 0.5, method=ppl.Importance(num_particles=20))
    assert "'bad'" in str(info.value) and "NaN" in str(info.value)
    assert info.value.span.line == line_of(nan_factor, 'ppl.factor("bad"')


def test_errors_render_with_file_line_and_caret():
    with pytest.raises(ppl.ShapeError) as info:
        ppl.infer(regression, jnp.arange(5.0), jnp.arange(4.0), method=ppl.Importance(num_particles=5))
    text = str(info.value)
    assert "test_bad_input.py" in text and "line" in text
    assert "^" in text and 'ppl.observe("y"' in text


def test_not_a_distribution():
    @ppl.model
    def m():
        return ppl.sample("x", 3.0)

    with pytest.raises(ppl.ModelError, match="needs a distribution"):
        ppl.infer(m, method=ppl.Importance(num_particles=5))


def test_calling_a_model_directly_says_what_to_do():
    with pytest.raises(ppl.ModelError, match="simulate"):
        coin(jnp.array([1, 0]))


def test_infer_on_a_plain_function():
    def f():
        return ppl.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(ppl.ModelError, match="@ppl.model"):
        ppl.infer(f)


def test_log_density_with_a_missing_or_unknown_site():
    with pytest.raises(ppl.AddressError, match="'b'"):
        regression.log_density({"a": 0.0}, jnp.arange(3.0), jnp.arange(3.0))
    with pytest.raises(ppl.AddressError, match="'c'"):
        regression.log_density({"a": 0.0, "b": 1.0, "c": 2.0}, jnp.arange(3.0), jnp.arange(3.0))


def test_random_choices_inside_while_loop_are_rejected_clearly():
    @ppl.model
    def m():
        def body(c):
            return c + ppl.sample("x", dist.Normal(0.0, 1.0))

        return jax.lax.while_loop(lambda c: c < 3.0, body, 0.0)

    with pytest.raises(ppl.ModelError, match="while"):
        ppl.infer(m, method=ppl.Importance(num_particles=5))


def test_parameter_error_in_a_dynamic_model_names_the_site():
    @ppl.model
    def dyn():
        c = ppl.sample("c", dist.Bernoulli(probs=0.5))
        if c:
            ppl.sample("x", dist.Normal(0.0, -2.0))
        return c

    with pytest.raises(ppl.ParameterError) as info:
        ppl.infer(dyn, method=ppl.Importance(num_particles=20))
    assert "'x'" in str(info.value) and "scale" in str(info.value)
    assert info.value.span.line == line_of(dyn, 'dist.Normal(0.0, -2.0)')


def test_distributions_outside_models_are_checked_when_built():
    with pytest.raises(ppl.ParameterError, match="Normal's scale"):
        dist.Normal(0.0, -1.0)


@ppl.model
def float_index(y, g):
    th = ppl.sample("th", dist.Normal(jnp.zeros(3), 1.0))
    ppl.observe("y", dist.Normal(th[g], 1.0), y)


@ppl.model
def mismatched(y):
    a = ppl.sample("a", dist.Normal(jnp.zeros(3), 1.0))
    ppl.observe("y", dist.Normal(a + jnp.zeros(4), 1.0), y)


def test_a_jax_error_in_the_models_code_is_a_model_error_at_its_line():
    """JAX's own errors from the model's code (a float index, shapes that do not broadcast) were raw
    TypeErrors from inside jax.numpy; now a ModelError at the model's line that quotes them."""
    with pytest.raises(ppl.ModelError, match="Indexer must have integer") as info:
        ppl.infer(float_index, jnp.array([1.0, 2.0]), jnp.array([0.0, 1.7]), method=ppl.Importance(num_particles=5))
    assert info.value.span.line == line_of(float_index, "th[g]")
    assert "index data as integers" in str(info.value)
    with pytest.raises(ppl.ModelError, match=r"incompatible shapes") as info:
        ppl.infer(mismatched, jnp.zeros(4), method=ppl.Importance(num_particles=5))
    assert info.value.span.line == line_of(mismatched, "jnp.zeros(4)")


# --------------------------------------------------------------------------- integers JAX would wrap

BIG = np.array([2**32 + 5, 2**32 + 7])  # int64; without x64 JAX would read them as 5 and 7


@ppl.model
def poisson_counts(y):
    rate = ppl.sample("rate", dist.Gamma(1.0, 1e-9))
    with ppl.plate("n", y.shape[0]):
        ppl.observe("y", dist.Poisson(rate), y)


@pytest.mark.parametrize("as_given", [lambda y: y, lambda y: y.tolist()], ids=["array", "list"])
def test_integer_data_too_large_for_32_bits_is_refused_not_wrapped(as_given):
    with pytest.raises(ppl.ModelError, match=r"argument 'y' holds integers too large for 32 bits: element 0 is "
                                             r"4294967301; JAX would wrap it to 5") as err:
        ppl.infer(poisson_counts, as_given(BIG), method=ppl.Importance(num_particles=10), seed=0)
    assert "ppl.config(x64=True)" in err.value.hint


def test_an_observed_constant_too_large_for_32_bits_is_refused_at_its_line():
    @ppl.model
    def closes_over_counts():
        rate = ppl.sample("rate", dist.Gamma(1.0, 1e-9))
        ppl.observe("y", dist.Poisson(rate), [4, 2**33])

    with pytest.raises(ppl.ModelError, match=r"observed value at 'y' holds integers too large.*element 1 is "
                                             r"8589934592; JAX would wrap it to 0") as err:
        ppl.infer(closes_over_counts, method=ppl.Importance(num_particles=10), seed=0)
    assert err.value.span is not None and err.value.span.line > 0


def test_integer_data_that_fits_or_runs_with_x64_is_taken_as_it_is():
    from scipy import stats

    small = poisson_counts.log_density({"rate": 4.0}, np.array([3, 5], np.int64))  # int64 that fits int32
    expected = stats.gamma(1.0, scale=1e9).logpdf(4.0) + stats.poisson(4.0).logpmf([3, 5]).sum()
    assert abs(float(small) - expected) < 1e-4
    with jax.enable_x64(True):  # 64-bit integers: the large counts are read exactly
        rate = 4.0e9
        big = poisson_counts.log_density({"rate": rate}, BIG)
        expected = stats.gamma(1.0, scale=1e9).logpdf(rate) + stats.poisson(rate).logpmf(BIG).sum()
        assert abs(float(big) - expected) < 1e-6 * abs(expected)


def test_a_boolean_index_in_ppl_is_refused_not_read_as_a_mask():
    """NumPy reads x[true] as all of x (a new axis) and x[false] as none of it: y was scored under both
    means, or not at all. An untyped parameter given a boolean is caught when the model runs."""
    m = ppl.loads("model m(y, g) {\n  mu ~ normal(0, 10)\n  y ~ normal(mu + [0.0, 100.0][g], 1)\n}").m
    with pytest.raises(ppl.ModelError) as err:
        ppl.infer(m, 3.0, True, method=ppl.Importance(num_particles=10))
    assert "'g' is a boolean" in str(err.value) and "to_int(b)" in str(err.value)
    assert err.value.span is not None and err.value.span.line == 3
    fixed = ppl.loads("model m(y, g) {\n  mu ~ normal(0, 10)\n  y ~ normal(mu + [0.0, 100.0][to_int(g)], 1)\n}").m
    want = -0.5 * (0.5 / 10) ** 2 - np.log(10) - 0.5 * (3.0 - 100.5) ** 2 - np.log(2 * np.pi)
    assert float(fixed.log_density({"mu": 0.5}, 3.0, True)) == pytest.approx(want, rel=1e-5)


@ppl.model
def plate_of(n):
    with ppl.plate("p", n):
        ppl.sample("x", dist.Normal(0.0, 1.0))


@pytest.mark.parametrize("call, error, words", [
    (lambda: ppl.infer(with_observe, np.ma.masked_invalid([1.0, np.nan]), method=ppl.Importance(num_particles=10)),
     ppl.ModelError, "a masked array was given as data"),
    (lambda: ppl.infer(with_observe, [[1.0, 2.0], [3.0]], method=ppl.Importance(num_particles=10)),
     ppl.ShapeError, "rows have different lengths"),
    (lambda: ppl.infer(with_observe, [1.0, 2.0], method=ppl.Importance),
     ppl.ModelError, r"method=ppl.Importance is the method itself"),
    (lambda: ppl.infer(plate_of, -1, method=ppl.Importance(num_particles=10)),
     ppl.ShapeError, "whole, non-negative number as its size, but got -1"),
], ids=["masked array", "ragged list", "method class", "negative plate"])
def test_data_and_options_jax_would_answer_in_its_own_words(call, error, words):
    """Were: JAX's 'masked arrays are not supported', NumPy's 'inhomogeneous shape', 'run() missing 1
    required positional argument', and JAX's 'Only non-negative indices' inside a ModelError."""
    with pytest.raises(error, match=words):
        call()


def test_map_over_a_function_that_returns_a_distribution_says_so():
    """Was JAX's "Value 'Categorical(...)' with dtype object is not a valid JAX array type"."""
    model = ppl.loads("model m() {\n  f = mem(fn(i) => categorical([0.2, 0.3, 0.5]))\n  xs = map(f, [0, 1])\n"
                      "  return sum(xs)\n}").m
    with pytest.raises(ppl.ModelError, match="map's function returned a distribution") as err:
        ppl.infer(model, method=ppl.Enumerate())
    assert err.value.span.line == 3 and "sample(d)" in err.value.hint

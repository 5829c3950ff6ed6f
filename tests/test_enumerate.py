"""Exact enumeration against hand-derived answers (tolerance 1e-6)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist

from shared_models import hmm
from shared_models import sprinkler as sprinkler_static

# --- the soft-evidence sprinkler -------------------------------------------------
# rain ~ Bernoulli(0.3); factor log 0.2 when it rains;
# sprinkler ~ Bernoulli(0.1 if rain else 0.4); factor log 0.1 when the sprinkler is on.
JOINT = {(1, 1): 0.3 * 0.2 * 0.1 * 0.1, (1, 0): 0.3 * 0.2 * 0.9, (0, 1): 0.7 * 0.4 * 0.1, (0, 0): 0.7 * 0.6}
Z = sum(JOINT.values())


@ppl.model
def sprinkler_dynamic():
    rain = ppl.sample("rain", dist.Bernoulli(probs=0.3))
    if rain:  # Python control flow on a random value: the model is dynamic
        ppl.factor("rain_evidence", math.log(0.2))
    on = ppl.sample("sprinkler", dist.Bernoulli(probs=0.1 if rain else 0.4))
    if on:
        ppl.factor("sprinkler_evidence", math.log(0.1))
    return rain


@pytest.mark.parametrize("model", [sprinkler_static, sprinkler_dynamic])
def test_sprinkler_exact(model):
    post = ppl.infer(model, method=ppl.Enumerate())
    p_rain = (JOINT[(1, 1)] + JOINT[(1, 0)]) / Z
    p_spr = (JOINT[(1, 1)] + JOINT[(0, 1)]) / Z
    assert abs(post.mean() - p_rain) < 1e-6
    assert abs(post.mean("rain") - p_rain) < 1e-6
    assert abs(post.mean("sprinkler") - p_spr) < 1e-6
    assert abs(post.log_evidence - math.log(Z)) < 1e-6


def test_static_and_dynamic_engines_are_reported():
    assert sprinkler_static.is_static()
    assert not sprinkler_dynamic.is_static()
    post = ppl.infer(sprinkler_dynamic, method=ppl.Enumerate())
    assert post.engine == "eager"
    assert "if rain:" in post.dynamic_reason and "ppl.cond" in post.dynamic_reason
    assert ppl.infer(sprinkler_static, method=ppl.Enumerate()).engine == "compiled"


def test_compiled_and_eager_enumeration_agree():
    a = ppl.infer(sprinkler_static, method=ppl.Enumerate(engine="compiled"))
    b = ppl.infer(sprinkler_static, method=ppl.Enumerate(engine="eager"))
    assert a.engine == "compiled" and b.engine == "eager"
    assert a.probs("rain") == pytest.approx(b.probs("rain"), abs=1e-6)
    assert a.log_evidence == pytest.approx(b.log_evidence, abs=1e-6)


@ppl.model
def certain_branch(y):
    # when w = 1, z is certain: the outcome (w=1, z=0) has probability 0 (log 0 = -inf)
    w = ppl.sample("w", dist.Bernoulli(probs=0.3))
    z = ppl.sample("z", dist.Bernoulli(probs=jnp.where(w == 1, 1.0, 0.5)))
    ppl.sample("n", dist.Binomial(3, probs=jnp.where(w == 1, 1.0, 0.2)))
    ppl.observe("y", dist.Normal(z * 1.0, 1.0), y)
    return z


def test_probability_one_outcomes_are_exact_in_both_engines():
    # Bernoulli(probs=1.0) / Binomial(probs=1.0): the impossible outcomes get weight 0 (the compiled
    # engine once took the logits derived from probs = 1, +inf, for an invalid parameter)
    y = 0.8
    lik = {z: math.exp(-((y - z) ** 2) / 2) / math.sqrt(2 * math.pi) for z in (0, 1)}
    joint = {(1, 1): 0.3 * lik[1], (0, 1): 0.35 * lik[1], (0, 0): 0.35 * lik[0]}
    z_total = sum(joint.values())
    for engine in ("compiled", "eager"):
        post = ppl.infer(certain_branch, y, method=ppl.Enumerate(engine=engine))
        assert post.engine == engine
        assert post.log_evidence == pytest.approx(math.log(z_total), abs=1e-6)
        assert post.probs()[1] == pytest.approx((joint[(1, 1)] + joint[(0, 1)]) / z_total, abs=1e-6)
        assert post.mean("w") == pytest.approx(joint[(1, 1)] / z_total, abs=1e-6)
        # n is 3 whenever w = 1; else Binomial(3, 0.2)
        p_n3 = joint[(1, 1)] / z_total + (1 - joint[(1, 1)] / z_total) * 0.2**3
        assert post.probs("n")[3] == pytest.approx(p_n3, abs=1e-6)


# --- a geometric distribution defined by recursion -----------------------------------


def geometric(p, depth=0):
    if ppl.sample(("flip", depth), dist.Bernoulli(probs=p)):
        return 0
    return 1 + geometric(p, depth + 1)


@ppl.model
def geom_model(p):
    return geometric(p)


def test_geometric_by_recursion_truncated():
    p, bound = 0.3, 25
    post = ppl.infer(geom_model, p, method=ppl.Enumerate(max_depth=bound))
    kept = 1 - (1 - p) ** bound
    table = post.probs()
    assert set(table) == set(range(bound))
    for n, prob in table.items():
        assert abs(prob - p * (1 - p) ** n / kept) < 1e-6
    assert abs(post.log_evidence - math.log(kept)) < 1e-6
    assert abs(post.result.truncated_mass - (1 - p) ** bound) < 1e-6
    assert any("truncated" in n for n in post.notes)


# --- the sum of two dice -------------------------------------------------------------------


@ppl.model
def two_dice():
    a = ppl.sample("a", dist.Categorical(probs=jnp.ones(6) / 6))
    b = ppl.sample("b", dist.Categorical(probs=jnp.ones(6) / 6))
    return a + b + 2


def test_sum_of_two_dice():
    post = ppl.infer(two_dice)  # the default for a finite discrete model is exact enumeration
    assert post.method == "Enumerate"
    table = post.probs()
    for s in range(2, 13):
        assert abs(table[s] - (6 - abs(s - 7)) / 36) < 1e-6
    assert abs(post.mean() - 7.0) < 1e-6


@ppl.model
def dice_given_sum(total):
    a = ppl.sample("a", dist.Categorical(probs=jnp.ones(6) / 6))
    b = ppl.sample("b", dist.Categorical(probs=jnp.ones(6) / 6))
    ppl.factor("sum", jnp.where(a + b + 2 == total, 0.0, -jnp.inf))
    return a + 1


def test_dice_conditioned_on_their_sum():
    post = ppl.infer(dice_given_sum, 4, method=ppl.Enumerate())
    assert post.probs() == pytest.approx({1: 1 / 3, 2: 1 / 3, 3: 1 / 3}, abs=1e-6)
    assert abs(post.log_evidence - math.log(3 / 36)) < 1e-6


# --- plates and scans are enumerated too -----------------------------------------------------


def forward_algorithm(ys):
    from scipy.stats import norm

    trans = np.array([[0.7, 0.3], [0.2, 0.8]])
    alpha = np.array([1.0, 0.0])
    for y in ys:
        alpha = (alpha @ trans) * norm.pdf(y, loc=[-1.0, 1.0], scale=1.0)
    return np.log(alpha.sum())


def test_hmm_scan_enumeration_matches_forward_algorithm():
    ys = jnp.array([0.5, -1.2, 1.4, 0.1, 2.0])
    for engine in ("compiled", "eager"):
        post = ppl.infer(hmm, ys, method=ppl.Enumerate(engine=engine))
        assert post.engine == engine
        assert abs(post.log_evidence - forward_algorithm(np.asarray(ys))) < 1e-5
        assert post.samples["z"].shape[1:] == (5,)


# --- a discrete support that depends on another random choice --------------------
# y ~ Binomial(2 + 2x) after x ~ Bernoulli(1/2): y takes 0..4. The supports must not be read at
# one stand-in value of x (that gave 0..2 only, renormalised, without a word).

def _binomial_mixture(weights: dict[int, float], p: float) -> dict[int, float]:
    out: dict[int, float] = {}
    for n, w in weights.items():
        for k in range(n + 1):
            out[k] = out.get(k, 0.0) + w * math.comb(n, k) * p**k * (1 - p) ** (n - k)
    return out


@ppl.model
def binomial_of_a_choice():
    x = ppl.sample("x", dist.Bernoulli(probs=0.5))
    return ppl.sample("y", dist.Binomial(2 + 2 * x, probs=0.5))


def test_a_support_that_depends_on_a_choice_is_enumerated_whole():
    post = ppl.infer(binomial_of_a_choice)  # the default method for a finite discrete model
    assert post.method == "Enumerate"
    exact = _binomial_mixture({2: 0.5, 4: 0.5}, 0.5)
    got = post.probs()
    assert set(got) == set(exact)
    for k, p in exact.items():
        assert got[k] == pytest.approx(p, abs=1e-6)
    assert post.log_evidence == pytest.approx(0.0, abs=1e-6)  # nothing observed: no mass lost


def test_a_truncation_bound_that_depends_on_a_choice_is_enumerated_whole():
    @ppl.model
    def truncated_by_a_choice():
        hi = ppl.sample("hi", dist.Bernoulli(probs=0.5))
        return ppl.sample("k", dist.Truncated(dist.Poisson(3.0), low=0, high=hi + 2))

    pmf = np.array([math.exp(-3.0) * 3.0**k / math.factorial(k) for k in range(4)])
    exact = 0.5 * np.append(pmf[:3] / pmf[:3].sum(), 0.0) + 0.5 * pmf / pmf.sum()
    got = ppl.infer(truncated_by_a_choice, method=ppl.Enumerate()).probs()
    np.testing.assert_allclose([got.get(k, 0.0) for k in range(4)], exact, atol=1e-6)


def test_a_ppl_size_that_depends_on_a_choice():
    model = ppl.loads("""
model m() {
  a ~ categorical([0.2, 0.5, 0.3])
  b ~ binomial(a + 1, 0.4)
  return b
}
""").m
    exact = _binomial_mixture({1: 0.2, 2: 0.5, 3: 0.3}, 0.4)
    got = ppl.infer(model).probs()
    for k, p in exact.items():
        assert got[k] == pytest.approx(p, abs=1e-6)
    with pytest.raises(ppl.ModelError, match="depend on other random choices"):
        ppl.infer(model, method=ppl.Enumerate(engine="compiled"))


def test_summing_out_a_support_that_depends_on_a_choice_is_refused_not_truncated():
    from ppl.inference.marginalize import site_supports

    @ppl.model
    def mixed(y):
        mu = ppl.sample("mu", dist.Normal(0.0, 3.0))
        x = ppl.sample("x", dist.Bernoulli(probs=0.5))
        b = ppl.sample("b", dist.Binomial(2 + 2 * x, probs=0.5))
        ppl.observe("y", dist.Normal(mu + 2.0 * b, 0.5), y)

    with pytest.raises(ppl.ModelError, match="support of the discrete random choice 'b' is not known"):
        ppl.infer(mixed, 6.0, method=ppl.NUTS(num_warmup=10, num_samples=10, num_chains=1, progress=False))
    # Gibbs draws 'b' by a Metropolis walk over its values, not from a full conditional on 0..2
    program, leaves = binomial_of_a_choice.program()
    assert set(site_supports(program, leaves, raise_errors=False)) == {"x"}


@ppl.model
def switched_steps(ys):
    """Each step draws z; only when z = 1 does it draw a and add it to the running total."""
    def step(total, y):
        z = ppl.sample("z", dist.Bernoulli(probs=0.5))
        total = ppl.cond(z == 1, lambda: total + ppl.sample("a", dist.Bernoulli(probs=0.9)), lambda: total)
        ppl.observe("y", dist.Normal(total * 1.0, 1.0), y)
        return total, total
    total, _ = ppl.scan(step, 0, ys)
    return total


def test_a_branch_only_site_inside_a_loop_is_enumerated_per_step():
    """Before: a step whose branch did not run kept the other steps' a at its canonical value too,
    so P(total) was {0: .17, 1: .02, 2: .35, 3: .46} against the exact {.02, .39, .52, .06}."""
    import itertools

    from scipy.stats import norm

    ys = np.array([0.5, 1.2, 1.9])
    table, evidence = {}, 0.0
    for zs in itertools.product([0, 1], repeat=3):
        for draws in itertools.product([0, 1], repeat=sum(zs)):
            w, total, a = 0.125, 0, iter(draws)
            for z, y in zip(zs, ys):
                if z:
                    got = next(a)
                    w *= 0.9 if got else 0.1
                    total += got
                w *= norm.pdf(y, total, 1.0)
            table[total] = table.get(total, 0.0) + w
            evidence += w
    post = ppl.infer(switched_steps, jnp.asarray(ys, jnp.float32))
    assert post.method == "Enumerate" and post.engine == "compiled"
    assert post.probs() == pytest.approx({k: v / evidence for k, v in table.items()}, abs=1e-5)
    assert post.log_evidence == pytest.approx(math.log(evidence), abs=1e-5)


def test_a_scan_whose_carry_turns_real_is_one_loop_not_a_repeated_address():
    """An int start (0) and a real step result (c + 0.5 x): JAX traces the body twice, and the second
    trace was taken for a second use of the address 'x' (an AddressError telling the user to use ppl.scan)."""
    @ppl.model
    def halves():
        def step(c, _):
            x = ppl.sample("x", dist.Bernoulli(probs=0.5))
            return c + 0.5 * x, x
        total, _ = ppl.scan(step, 0, None, length=2)
        return total

    post = ppl.infer(halves, method=ppl.Enumerate())
    assert post.engine == "compiled"
    assert post.probs() == pytest.approx({0.0: 0.25, 0.5: 0.5, 1.0: 0.25}, abs=1e-6)

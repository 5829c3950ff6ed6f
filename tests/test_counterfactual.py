"""ppl.counterfactual: twin worlds sharing exogenous noise, against closed forms and brute force."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from causal_models import make_model, random_cpts, random_dag

import ppl
from ppl import dist


def weighted(post, site):
    """Mean and Monte Carlo standard error of ``site`` under a weighted posterior."""
    x = np.asarray(post.samples[site], dtype=float)
    w = np.asarray(post.weights, dtype=float)
    w = w / w.sum()
    mean = float(w @ x)
    ess = 1.0 / float(np.sum(w**2))
    return mean, float(np.sqrt(w @ (x - mean) ** 2 / ess))


# -- linear-Gaussian SCMs: closed forms ------------------------------------------------------------


@ppl.model
def linear():
    z = ppl.sample("z", dist.Normal(0.0, 1.0))
    x = ppl.sample("x", dist.Normal(z, 1.0))
    return ppl.sample("y", dist.Normal(2.0 * x + 3.0 * z, 1.0))


def test_fully_observed_linear_scm_is_certain():
    # x, y and z seen: every noise is known, so y' = y + 2 (x' - x) exactly
    cf = ppl.counterfactual(linear, observed={"z": 0.5, "x": 1.0, "y": 2.0}, do={"x": -1.0})
    post = ppl.infer(cf, method=ppl.Importance(num_particles=16))
    np.testing.assert_allclose(np.asarray(post.samples["y"]), 2.0 + 2.0 * (-1.0 - 1.0), atol=1e-5)
    assert set(cf.ir().latent_sites()) == set()  # nothing left to infer


def test_linear_scm_with_a_latent_confounder_matches_gaussian_conditioning():
    # (x, y) jointly normal: Var x = 2, Cov(x, y) = 7, Var y = 30; y' = y + 2 (x' - x), x | y = 3 normal
    y_seen, x_new = 3.0, 0.0
    mean_x = 7.0 / 30.0 * y_seen
    want_mean = y_seen + 2.0 * (x_new - mean_x)
    want_sd = 2.0 * np.sqrt(2.0 - 49.0 / 30.0)
    cf = ppl.counterfactual(linear, observed={"y": y_seen}, do={"x": x_new})
    post = ppl.infer(cf, method=ppl.Importance(num_particles=20000), key=ppl_key(3))
    mean, se = weighted(post, "y")
    assert abs(mean - want_mean) < 4 * se, (mean, want_mean, se)
    w = np.asarray(post.weights) / np.sum(post.weights)
    sd = float(np.sqrt(w @ (np.asarray(post.samples["y"]) - mean) ** 2))
    assert abs(sd - want_sd) < 0.05 * want_sd
    # the interventional answer on the same model forgets what was seen: E[y | do(x = 0)] = 3 E[z] = 0,
    # far from the counterfactual 1.6 (the firing-squad test computes such a contrast with ppl itself)
    assert abs(want_mean - 0.0) > 10 * se


def ppl_key(i):
    import jax

    return jax.random.key(i)


def test_continuous_sites_share_their_reparameterised_noise():
    cf = ppl.counterfactual(linear, observed={"y": 3.0}, do={"x": 0.0})
    program = cf.ir()
    sites = program.sites
    # z is upstream of the intervention: shared, one site; x and y are split into factual/... and their own
    assert sites["z"].kind == "sample" and "factual/z" not in sites
    assert sites["factual/x"].kind == "sample" and "x" not in sites
    assert sites["factual/y"].kind == "observe" and sites["y"].kind == "deterministic"
    assert set(program.latent_sites()) == {"z", "factual/x"}


# -- deterministic SCMs: the firing squad --------------------------------------------------------------

P_ORDER, P_NERVES = 0.6, 0.3


@ppl.model
def firing_squad():
    order = ppl.sample("order", dist.Bernoulli(probs=P_ORDER))  # the court orders the execution
    nerves = ppl.sample("nerves", dist.Bernoulli(probs=P_NERVES))  # rifleman A is nervous
    captain = ppl.deterministic("captain", order)
    a = ppl.deterministic("a", jnp.maximum(captain, nerves))
    b = ppl.deterministic("b", captain)
    return ppl.deterministic("dead", jnp.maximum(a, b))


def test_firing_squad_counterfactual():
    cf = ppl.counterfactual(firing_squad, observed={"dead": 1}, do={"a": 0})
    post = ppl.infer(cf, method=ppl.Enumerate())
    alive = 1.0 - post.mean("dead")
    assert alive == pytest.approx((1 - P_ORDER) * P_NERVES / (P_ORDER + (1 - P_ORDER) * P_NERVES), abs=1e-6)
    # the interventional answer: P(dead | do(a = 0)) = P(order), knowing nothing of this execution
    assert ppl.infer(firing_squad.do({"a": 0}), method=ppl.Enumerate()).mean("dead") == pytest.approx(P_ORDER,
                                                                                                     abs=1e-6)
    # and with the order seen, the counterfactual is certain: B shoots anyway
    sure = ppl.infer(ppl.counterfactual(firing_squad, observed={"order": 1}, do={"a": 0}), method=ppl.Enumerate())
    assert sure.mean("dead") == pytest.approx(1.0, abs=1e-9)
    assert sure.mean() == pytest.approx(1.0, abs=1e-9)  # the return value is the counterfactual world's


def test_a_conditioned_model_is_factual_evidence():
    cf = ppl.counterfactual(firing_squad.condition({"order": 1}), observed={"dead": 1}, do={"a": 0})
    assert ppl.infer(cf, method=ppl.Enumerate()).mean("dead") == pytest.approx(1.0, abs=1e-9)


# -- discrete sites: inverse-CDF noise, against brute force over the noise ----------------------------------

A = np.array([0.2, 0.5, 0.3])
B = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.7, 0.2]])  # P(b | a)
C = np.array([[0.9, 0.1], [0.5, 0.5], [0.15, 0.85]])  # P(c | b)


@ppl.model
def chain():
    a = ppl.sample("a", dist.Categorical(probs=jnp.asarray(A)))
    b = ppl.sample("b", dist.Categorical(probs=jnp.asarray(B)[a]))
    return ppl.sample("c", dist.Categorical(probs=jnp.asarray(C)[b]))


def inverse_cdf(table_rows, u):
    cdf = np.cumsum(table_rows, axis=-1)
    return np.minimum((u[:, None] >= cdf).sum(axis=-1), table_rows.shape[-1] - 1)


def test_discrete_coupling_matches_brute_force_over_the_noise():
    # the SCM written out: every site is the inverse CDF of its own uniform noise; 400,000 noise draws
    rng = np.random.default_rng(0)
    n = 400_000
    ua, ub, uc = rng.uniform(size=(3, n))
    a = inverse_cdf(np.broadcast_to(A, (n, 3)), ua)
    b = inverse_cdf(B[a], ub)
    c = inverse_cdf(C[b], uc)
    seen = (c == 1)  # the factual world: c = 1
    a2 = np.zeros(n, int)  # do(a = 0) in the twin, same noise
    b2 = inverse_cdf(B[a2], ub)
    c2 = inverse_cdf(C[b2], uc)
    cf = ppl.counterfactual(chain, observed={"c": 1}, do={"a": 0})
    post = ppl.infer(cf, method=ppl.Enumerate())
    for site, values in (("b", b2), ("c", c2)):
        for k in range(3 if site == "b" else 2):
            brute = values[seen] == k
            p = float(np.asarray(post.weights) @ (np.asarray(post.samples[site]) == k))
            se = brute.std() / np.sqrt(brute.size)
            assert abs(p - brute.mean()) < 4 * se + 1e-9, (site, k, p, brute.mean(), se)


@pytest.mark.slow
def test_any_method_runs_the_counterfactual():
    from ppl.inference.diagnostics import ess_bulk

    cf = ppl.counterfactual(chain, observed={"c": 1}, do={"a": 0})
    exact = ppl.infer(cf, method=ppl.Enumerate()).mean("c")
    post = ppl.infer(cf, method=ppl.Importance(num_particles=4000), key=ppl_key(1))
    mean, se = weighted(post, "c")
    assert abs(mean - exact) < 4 * se
    draws = np.asarray(ppl.infer(cf, method=ppl.Gibbs(num_samples=4000), seed=1).samples["c"], dtype=float)
    assert abs(draws.mean() - exact) < 4 * draws.std() / np.sqrt(float(np.min(ess_bulk(draws))))
    # continuous: NUTS and SMC on the linear-Gaussian counterfactual (closed form as above)
    cf = ppl.counterfactual(linear, observed={"y": 3.0}, do={"x": 0.0})
    want = 3.0 + 2.0 * (0.0 - 7.0 / 30.0 * 3.0)
    y = np.asarray(ppl.infer(cf, method=ppl.NUTS(num_warmup=500, num_samples=2000, num_chains=2)).samples["y"])
    assert abs(y.mean() - want) < 4 * y.std() / np.sqrt(float(np.min(ess_bulk(y))))
    mean, se = weighted(ppl.infer(cf, method=ppl.SMC(num_particles=4000), seed=2), "y")
    assert abs(mean - want) < 4 * se


@ppl.model
def visits():
    x = ppl.sample("x", dist.Bernoulli(probs=0.5))
    return ppl.sample("y", dist.Poisson(jnp.where(x == 1, 4.0, 1.5)))


def test_unbounded_discrete_sites_keep_their_noise_as_a_latent():
    cf = ppl.counterfactual(visits, observed={"x": 1, "y": 5}, do={"x": 0})
    sites = cf.ir().sites
    assert sites["y.noise"].kind == "sample" and sites["y.noise"].dist_type is dist.Uniform
    assert sites["y"].kind == "deterministic" and sites["factual/y"].kind == "observe"


@pytest.mark.slow
def test_unbounded_discrete_counterfactual_matches_the_interval_law():
    cf = ppl.counterfactual(visits, observed={"x": 1, "y": 5}, do={"x": 0})
    # exact law: u ~ U(F_4(4), F_4(5)), y' = F_1.5^{-1}(u): overlap of the CDF intervals
    lo, hi = stats.poisson.cdf(4, 4.0), stats.poisson.cdf(5, 4.0)
    ks = np.arange(30)
    f = stats.poisson.cdf(ks, 1.5)
    probs = np.clip(np.minimum(hi, f) - np.maximum(lo, f - stats.poisson.pmf(ks, 1.5)), 0, None) / (hi - lo)
    post = ppl.infer(cf, method=ppl.Importance(num_particles=4000), key=ppl_key(2))
    mean, se = weighted(post, "y")
    assert abs(mean - float(probs @ ks)) < 4 * se + 1e-6


@ppl.model
def units():
    with ppl.plate("n", 3):
        x = ppl.sample("x", dist.Bernoulli(probs=0.5))
        return ppl.sample("y", dist.Bernoulli(probs=jnp.where(x == 1, 0.8, 0.3)))


def test_plate_sites_are_coupled_element_by_element():
    cf = ppl.counterfactual(units, observed={"x": [1, 1, 0], "y": [1, 0, 0]}, do={"x": 0})
    post = ppl.infer(cf, method=ppl.Enumerate())
    # unit 0: y = 1 puts u in [0.2, 1); y' = 1 needs u >= 0.7: 0.3 / 0.8. unit 1: u < 0.2, y' = 0. unit 2: unchanged
    np.testing.assert_allclose(post.mean("y"), [0.3 / 0.8, 0.0, 0.0], atol=1e-6)


# -- probabilities of causation --------------------------------------------------------------------------------


@ppl.model
def drug():
    x = ppl.sample("x", dist.Bernoulli(probs=0.5))
    return ppl.sample("y", dist.Bernoulli(probs=jnp.where(x == 1, 0.8, 0.3)))


def test_probabilities_of_necessity_and_sufficiency():
    got = ppl.probabilities_of_causation(drug, treatment="x", outcome="y")
    # inverse-CDF noise is monotone: PN = (P(y|x) - P(y|x')) / P(y|x), PS = (P(y|x) - P(y|x')) / (1 - P(y|x'))
    assert got.pn == pytest.approx(0.5 / 0.8, abs=1e-6)
    assert got.ps == pytest.approx(0.5 / 0.7, abs=1e-6)
    assert got.pns == pytest.approx(0.8 - 0.3, abs=1e-6)


# -- bad input -------------------------------------------------------------------------------------------------


def test_unknown_sites_are_named():
    with pytest.raises(ppl.AddressError, match=r"names \['xx'\]") as info:
        ppl.counterfactual(chain, observed={"xx": 1}, do={"a": 0}).ir()
    with pytest.raises(ppl.AddressError, match=r"names \['aa'\]") as info:
        ppl.counterfactual(chain, observed={"c": 1}, do={"aa": 0}).ir()
    assert "Did you mean 'a'?" in str(info.value)


def test_values_outside_the_support_are_named():
    with pytest.raises(ppl.SupportError, match="sets 'x' to 7, which is outside the support"):
        ppl.counterfactual(drug, observed={"y": 1}, do={"x": 7}).ir()
    with pytest.raises(ppl.SupportError, match="observes 'y' to 2, which is outside the support"):
        ppl.counterfactual(drug, observed={"y": 2}, do={"x": 0}).ir()


def test_loops_and_dynamic_models_are_refused_clearly():
    @ppl.model
    def looped():
        def step(c, _):
            z = ppl.sample("z", dist.Bernoulli(probs=jnp.where(c == 1, 0.9, 0.2)))
            return z, z

        x = ppl.sample("x", dist.Bernoulli(probs=0.5))
        ppl.scan(step, x, None, length=2)

    with pytest.raises(ppl.ModelError, match="inside a loop or branch"):
        ppl.counterfactual(looped, observed={}, do={"x": 1}).ir()

    @ppl.model
    def dynamic():
        n = ppl.sample("n", dist.Bernoulli(probs=0.5))
        if int(n) == 1:
            ppl.sample("x", dist.Bernoulli(probs=0.5))

    with pytest.raises(ppl.ModelError, match="counterfactual\\(\\) on the model 'dynamic', which is dynamic"):
        ppl.infer(ppl.counterfactual(dynamic, do={"n": 1}), method=ppl.Enumerate())


def test_every_finite_site_enumerates():
    cf = ppl.counterfactual(chain, observed={"c": 0}, do={"b": 2})
    post = ppl.infer(cf, method=ppl.Enumerate())
    # b := 2, and c' shares its noise with the factual c = 0
    total = 0.0
    for a, b in itertools.product(range(3), range(3)):
        total += A[a] * B[a, b] * C[b, 0]
    # P(c' = 1 | c = 0) = Σ_b P(b | c = 0) |[0, C[b,0]) ∩ [C[2,0], 1)| / C[b,0]
    want = sum(A[a] * B[a, b] * max(0.0, C[b, 0] - C[2, 0]) for a, b in itertools.product(range(3), range(3)))
    assert post.mean("c") == pytest.approx(want / total, abs=1e-6)


# -- laws on random finite SCMs ----------------------------------------------------------------------------------


@st.composite
def scm_and_intervention(draw):
    names, parents, cards = draw(random_dag(max_nodes=4))
    x = draw(st.sampled_from(names[:-1]))
    return names, parents, cards, x, draw(st.integers(0, cards[x] - 1)), draw(st.integers(0, 2**31 - 1))


def marginals(post, sites):
    w = np.asarray(post.weights)
    return {s: np.bincount(np.asarray(post.samples[s]).astype(int), weights=w, minlength=3) for s in sites}


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scm_and_intervention())
def test_counterfactual_laws_on_random_scms(problem):
    names, parents, cards, x, a, seed = problem
    model = make_model(names, parents, cards, random_cpts(names, parents, cards, seed))
    y = names[-1]
    # with no evidence, the counterfactual world is the intervened one
    free = [v for v in names if v != x]
    exact = ppl.Enumerate(engine="eager")  # tiny models: faster than compiling each
    cf = marginals(ppl.infer(ppl.counterfactual(model, do={x: a}), method=exact), free)
    done = marginals(ppl.infer(model.do({x: a}), method=exact), free)
    for v in free:
        np.testing.assert_allclose(cf[v], done[v], atol=1e-6)
    # consistency: doing what was seen changes nothing, whatever else was seen
    b = seed % cards[y]
    twin = ppl.counterfactual(model, observed={x: a, y: b}, do={x: a})
    if y not in twin.ir().latent_sites() and twin.ir().sites[y].kind != "deterministic":
        assert twin.ir().sites[y].kind == "observe"  # not downstream of x: shared, and seen
        return
    post = ppl.infer(twin, method=exact)
    assert np.all(np.asarray(post.samples[y])[np.asarray(post.weights) > 1e-12] == b)


@ppl.model
def trials_set_by_x():
    x = ppl.sample("x", dist.Bernoulli(probs=0.5))
    return ppl.sample("y", dist.Binomial(2 + 2 * x, probs=0.5))  # its support's size depends on x


def test_a_discrete_site_whose_size_depends_on_the_intervention_follows_the_interval_law():
    # factual x = 0, y = 1: u ~ U(F_Bin(2)(0), F_Bin(2)(1)) = U(0.25, 0.75); do(x = 1): y' = F_Bin(4)^{-1}(u)
    cf = ppl.counterfactual(trials_set_by_x, observed={"x": 0, "y": 1}, do={"x": 1})
    lo, hi = stats.binom.cdf(0, 2, 0.5), stats.binom.cdf(1, 2, 0.5)
    ks = np.arange(5)
    f = stats.binom.cdf(ks, 4, 0.5)
    probs = np.clip(np.minimum(hi, f) - np.maximum(lo, f - stats.binom.pmf(ks, 4, 0.5)), 0, None) / (hi - lo)
    np.testing.assert_allclose(probs, [0, 0.125, 0.75, 0.125, 0], atol=1e-12)
    post = ppl.infer(cf, method=ppl.Importance(num_particles=4000), key=ppl_key(3))
    mean, se = weighted(post, "y")
    assert abs(mean - float(probs @ ks)) < 4 * se + 1e-6
    assert set(np.unique(np.asarray(post.samples["y"]))) <= {1, 2, 3}


@ppl.model
def ten_trials(n=None):
    t = ppl.sample("t", dist.Bernoulli(probs=0.5))
    count = 10 if n is None else n  # written in the model, or given as data
    return ppl.sample("y", dist.Binomial(count, probs=0.2 + 0.6 * t))


def _ten_trials_exact():
    # factual y = 7: t = 1 with P ∝ Bin(7; 10, 0.8); do(t = 0): y' = F_{Bin(10, 0.2)}^{-1}(u), u in the
    # factual interval of 7: [F(6), F(7)) under p = 0.8 (inside [F(0), F(1)) at 0.2: y' = 1) or under
    # p = 0.2 (y' = 7 again)
    one, zero = stats.binom.pmf(7, 10, 0.8), stats.binom.pmf(7, 10, 0.2)
    lo, hi = stats.binom.cdf(6, 10, 0.8), stats.binom.cdf(7, 10, 0.8)
    assert stats.binom.cdf(0, 10, 0.2) <= lo and hi <= stats.binom.cdf(1, 10, 0.2)
    return (one * 1 + zero * 7) / (one + zero)


def test_a_binomial_site_with_a_count_in_the_model_is_coupled_exactly():
    # the count a literal of the program: its support is enumerated and the noise summed out
    cf = ppl.counterfactual(ten_trials, observed={"y": 7}, do={"t": 0})
    assert cf.ir().sites["y"].dist_type is dist.Categorical
    # exact up to float32 rounding of the CDFs the coupling differences
    assert ppl.infer(cf, method=ppl.Enumerate()).mean("y") == pytest.approx(_ten_trials_exact(), abs=1e-5)


def test_a_binomial_site_with_a_count_given_as_data_follows_the_interval_law():
    cf = ppl.counterfactual(ten_trials, observed={"y": 7}, do={"t": 0})
    post = ppl.infer(cf, 10, method=ppl.Importance(num_particles=4000), key=ppl_key(4))
    mean, se = weighted(post, "y")
    assert abs(mean - _ten_trials_exact()) < 4 * se + 1e-6


@ppl.model
def two_children():
    u = ppl.sample("u", dist.Normal(0.0, 1.0))
    z = ppl.sample("z", dist.Normal(jnp.zeros(2) + u, 1.0))
    return ppl.sample("y", dist.Normal(z.sum(), 0.5))


def test_one_element_of_a_site_is_intervened_on_in_the_twin_world():
    # y' = z0 + 3 + (y - z0 - z1) (shared noise): E[y' | y = 1] = 4 - E[z1 | y = 1] = 4 - Cov(z1, y) / Var(y)
    cf = ppl.counterfactual(two_children, observed={"y": 1.0}, do={"z[1]": 3.0})
    post = ppl.infer(cf, method=ppl.Importance(num_particles=4000), key=ppl_key(5))
    mean, se = weighted(post, "y")
    assert abs(mean - (4.0 - 3.0 / 6.25)) < 4 * se
    z, factual = np.asarray(post.samples["z"]), np.asarray(post.samples["factual/z"])
    np.testing.assert_array_equal(z[:, 1], 3.0)
    # the other element: its own mechanism on its own noise, unchanged (up to float32 rounding of the coupling)
    np.testing.assert_allclose(z[:, 0], factual[:, 0], rtol=1e-5, atol=1e-6)


def test_one_element_of_a_plate_site_is_intervened_on_exactly():
    cf = ppl.counterfactual(units, observed={"x": [1, 1, 0], "y": [1, 0, 0]}, do={"x[0]": 0})
    post = ppl.infer(cf, method=ppl.Enumerate())
    np.testing.assert_allclose(post.mean("x"), [0.0, 1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(post.mean("y"), [0.3 / 0.8, 0.0, 0.0], atol=1e-6)  # unit 0 as under do(x = 0)
    with pytest.raises(ppl.ModelError, match="both 'x' and its element"):
        ppl.counterfactual(units, observed={"y": [1, 0, 0]}, do={"x": 1, "x[0]": 0}).ir()

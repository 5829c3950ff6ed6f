"""The eager engine's representations obey their own laws (``semantics.interpret``).

The eager algorithms are compositions of representations (importance sampling
is spawn-then-weigh over the weighted sampler, SMC is ``sequentially(resample)
. spawn(n)`` over the sequential representation, resample-move adds the traced
representation's MH step), so their laws are checked here, on the
representations themselves, against exact enumeration of finite programs with
random structure (as MonadBayes's ``TestPopulation`` and ``TestSequential``
do): exactly where the law is exact, otherwise within Monte Carlo error
(|z| < 4, fixed seeds).
"""

import math
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference.smc.eager import run_eager
from ppl.semantics import resampling
from ppl.semantics.interpret import population, sampler, sequential, traced
from ppl.semantics.interpret.enumeration import Enumeration
from ppl.semantics.interpret.free import Pure, SampleF, ScoreF, reify_ir, reify_python, run


# --- finite programs -------------------------------------------------------------------------------------------


def coins():
    """Random structure: which choices exist ('b', or 'c' and maybe 'd'), how many there are and how many
    scores a run meets depend on the values drawn."""
    a = int(ppl.sample("a", dist.Bernoulli(probs=0.3)))
    if a:
        b = int(ppl.sample("b", dist.Bernoulli(probs=0.6)))
        ppl.observe("y1", dist.Bernoulli(probs=0.9 if b else 0.2), 1.0)
    else:
        b = int(ppl.sample("c", dist.Categorical(probs=np.array([0.2, 0.5, 0.3]))))
        if b == 2:
            d = int(ppl.sample("d", dist.Bernoulli(probs=0.4)))
            ppl.factor("fd", 0.5 if d else -0.5)
    ppl.observe("y2", dist.Bernoulli(probs=0.7 if a else 0.4), 1.0)
    ppl.deterministic("s", a + b)  # a record after the last score
    return a + 2 * b


@ppl.model
def coins_model():
    return coins()


@ppl.model
def coins_static():
    """The same program written statically (ppl.cond), so that it has IR."""
    a = ppl.sample("a", dist.Bernoulli(probs=0.3))

    def yes(a):
        b = ppl.sample("b", dist.Bernoulli(probs=0.6))
        ppl.observe("y1", dist.Bernoulli(probs=jnp.where(b == 1, 0.9, 0.2)), 1.0)
        return b

    def no(a):
        return ppl.sample("c", dist.Categorical(probs=jnp.array([0.2, 0.5, 0.3])))

    b = ppl.cond(a == 1, yes, no, a)
    ppl.observe("y2", dist.Bernoulli(probs=jnp.where(a == 1, 0.7, 0.4)), 1.0)
    return a + 2 * b


def pairs():
    """A posterior with dyadic probabilities: (0,0) and (1,1) have 3/8 each, (0,1) and (1,0) 1/8."""
    a = int(ppl.sample("a", dist.Bernoulli(probs=0.5)))
    b = int(ppl.sample("b", dist.Bernoulli(probs=0.5)))
    ppl.observe("y", dist.Bernoulli(probs=0.75 if a == b else 0.25), 1.0)
    return 2 * a + b


def truncate(free, t):
    """The program stopped after its ``t``-th score (the target of SMC at suspension point ``t``)."""
    if isinstance(free, Pure):
        return free
    if isinstance(free, SampleF):
        return SampleF(free.site, lambda x: truncate(free.k(x), t))
    rest = (lambda: Pure(None, {})) if t == 1 else (lambda: truncate(free.k(), t - 1))
    return ScoreF(free.site, free.log_weight, rest)


CHOICES = ("a", "b", "c", "d")


def signature(trace):
    """A run's random choices, hashable."""
    return tuple(sorted((a, int(trace[a])) for a in trace if a in CHOICES))


def exact(free):
    """{signature of the choices: (return value, probability)} and the evidence, by enumeration."""
    table = run(free, Enumeration())
    z = sum(math.exp(w) for _, _, w in table)
    return {signature(t): (v, math.exp(w) / z) for v, t, w in table}, z


COINS, Z_COINS = exact(reify_python(coins))
VALUES = sorted({v for v, _ in COINS.values()})


def z_of_mean(values, target):
    values = np.asarray(values, dtype=np.float64)
    se = values.std(ddof=1) / math.sqrt(len(values))
    return (values.mean() - target) / se


def keys(seed, n):
    return [jax.random.fold_in(jax.random.key(seed), i) for i in range(n)]


def same_run(p, q):
    assert p.value == q.value
    assert p.log_weight == q.log_weight
    assert {a: int(v) for a, v in p.trace.items()} == {a: int(v) for a, v in q.trace.items()}


# --- the weighted sampler --------------------------------------------------------------------------------------


def test_the_drivers_of_the_weighted_sampler_agree_exactly():
    """The fold of the tree by the representation, the same fold as a loop and effectful Python run
    directly draw the same values with the same keys and give the same weight."""
    for k in keys(0, 4):
        state = sampler.WeightedState(k)
        value = run(reify_python(coins), sampler.Weighted())(state)
        by_loop = sampler.weighted(reify_python(coins), k)
        direct = sampler.weighted_python(coins, k)
        same_run(by_loop, direct)
        assert int(direct.trace["s"]) == int(direct.trace["a"]) + int(direct.trace.get("b", direct.trace.get("c")))
        assert value == direct.value and state.log_weight == direct.log_weight
        assert signature(state.trace) == signature(direct.trace)
        prior = sampler.WeightedState(k)
        run(reify_python(coins), sampler.Sampler())(prior)  # the sampler: the same draws, no weight
        assert prior.log_weight == 0.0 and signature(prior.trace) == signature(direct.trace)
    program, leaves = coins_static.program()
    for k in keys(1, 3):  # static IR: the same law
        state = sampler.WeightedState(k)
        value = run(reify_ir(program, leaves), sampler.Weighted())(state)
        by_loop = sampler.weighted(reify_ir(program, leaves), k)
        assert int(value) == int(by_loop.value) and state.log_weight == by_loop.log_weight
        assert signature(state.trace) == signature(by_loop.trace)


# --- the sequential representation -----------------------------------------------------------------------------


def test_the_sequential_representation_run_to_completion_is_the_weighted_sampler():
    for k in keys(2, 4):
        p = sampler.start(reify_python(coins), k)
        suspensions = 0
        while not p.finished:
            sequential.advance(p)
            suspensions += 1
        same_run(p, sampler.weighted(reify_python(coins), k))  # the record after the last score included
        assert suspensions == (2 if int(p.trace["a"]) or int(p.trace["c"]) == 2 else 1)
    # sequentially(identity) . spawn(n) is spawn(n) of the weighted sampler, particle by particle,
    # and applies the function once per suspension point (at most two scores in a run)
    seen = []

    def identity(particles, t, key):
        seen.append((t, sum(not p.finished for p in particles)))
        return particles, t

    root = reify_python(coins)
    particles, reports = sequential.sequentially(
        identity, population.spawn(8, lambda k: sampler.start(root, k), jax.random.key(3)), jax.random.key(4))
    assert reports == [t for t, _ in seen] and reports[0] == 1 and len(reports) <= 2
    for p, q in zip(particles, population.spawn(8, lambda k: sampler.weighted_python(coins, k), jax.random.key(3))):
        same_run(p, q)


def test_smc_without_resampling_is_importance_sampling_key_for_key():
    """sequentially(identity) . spawn(n) over the program's tree is spawn-then-weigh: the public SMC
    (eager, never resampling) and Importance give the same particles."""
    smc = ppl.infer(coins_model, method=ppl.SMC(num_particles=8, ess_threshold=0.0), seed=5)
    imp = ppl.infer(coins_model, method=ppl.Importance(num_particles=8), seed=5)
    assert smc.engine == imp.engine == "eager"
    assert np.array_equal(smc.log_weights, imp.log_weights)
    assert smc.returns == imp.returns
    assert not smc.sample_stats["resampled"].any()


# --- the population: spawn and resample ------------------------------------------------------------------------


def test_spawn_multiplies_the_run_and_its_measure_is_unbiased():
    """spawn(n) is n runs, run i with key fold_in(key, i); the population's measure is unbiased for the
    program's: E[mean_i w_i f(x_i)] = sum_x p(x, y) f(x) for f = 1 (the evidence) and f = 1[value = v]
    (so the normalised measure is the posterior)."""
    n, runs = 5, 30
    estimates = []
    for k in keys(6, runs):
        pop = population.spawn(n, lambda kk: sampler.weighted_python(coins, kk), k)
        assert len(pop) == n
        w = np.exp(population.log_weights(pop))
        values = np.array([p.value for p in pop])
        estimates.append([w.mean()] + [np.mean(w * (values == v)) for v in VALUES])
    estimates = np.array(estimates)
    targets = [Z_COINS] + [Z_COINS * sum(p for v, p in COINS.values() if v == u) for u in VALUES]
    for column, target in zip(estimates.T, targets):
        assert abs(z_of_mean(column, target)) < 4
    first = population.spawn(n, lambda kk: sampler.weighted_python(coins, kk), jax.random.key(7))
    same_run(first[3], sampler.weighted_python(coins, jax.random.fold_in(jax.random.key(7), 3)))


def table_population(program, copies: int = 1):
    """The enumerated table of a finite program as a population: one finished particle per outcome (each
    ``copies`` times, copies adjacent), carrying its exact weight."""
    table = run(reify_python(program), Enumeration())
    return [sampler.Particle(Pure(v, {}), sampler.WeightedState(None, trace=dict(t), log_weight=w))
            for v, t, w in table for _ in range(copies)]


@pytest.mark.parametrize("scheme", sorted(resampling.SCHEMES))
def test_resampling_keeps_the_total_mass_exactly_and_copies_members(scheme):
    pop = table_population(coins)
    before = population.log_evidence(pop)
    for k in keys(8, 2):
        out = population.resample(pop, k, scheme)
        assert len(out) == len(pop)
        assert population.log_evidence(out) == before  # every offspring carries the mean weight
        members = {signature(p.trace) for p in pop}
        assert all(signature(p.trace) in members for p in out)
        # offspring draw with fresh keys: no two share one
        assert len({tuple(np.asarray(jax.random.key_data(p.state.key)).ravel()) for p in out}) == len(out)


@pytest.mark.parametrize("scheme", ["systematic", "stratified"])
def test_resampling_preserves_the_enumerated_distribution_exactly(scheme):
    """When n * p(x) is an integer for every outcome, systematic and stratified resampling give every
    outcome exactly n * p(x) offspring, whatever the key: the expectation of any function under the
    resampled population *is* the enumerated one."""
    pop = table_population(pairs, copies=2)  # 8 particles, outcome probabilities 3/8, 3/8, 1/8, 1/8
    enumerated, _ = exact(reify_python(pairs))
    for k in keys(9, 3):
        out = population.resample(pop, k, scheme)
        counts = Counter(signature(p.trace) for p in out)
        assert {s: c / len(out) for s, c in counts.items()} == pytest.approx(
            {s: p for s, (_, p) in enumerated.items()}, abs=1e-6)
        for f in (lambda v, t: v, lambda v, t: v ** 2, lambda v, t: float(int(t["a"]) == int(t["b"]))):
            got = np.mean([f(p.value, p.trace) for p in out])  # offspring weigh the same
            assert got == pytest.approx(sum(p * f(v, dict(s)) for s, (v, p) in enumerated.items()), abs=1e-6)


@pytest.mark.parametrize("scheme", sorted(resampling.SCHEMES))
def test_resampling_preserves_the_enumerated_distribution_in_expectation(scheme):
    """The population is the program's enumerated table; averaged over the resampling, the expectation of
    f under the resampled population is the enumerated expectation (MonadBayes's TestPopulation)."""
    pop = table_population(coins, copies=2)
    log_w = population.log_weights(pop)
    values = np.array([p.value for p in pop], dtype=np.float64)
    draws = np.array([population.ancestors(k, log_w, scheme) for k in keys(10, 160)])
    for f, target in [(values, sum(v * p for v, p in COINS.values())),
                      (values == 3, sum(p for v, p in COINS.values() if v == 3)),
                      (values == 0, sum(p for v, p in COINS.values() if v == 0))]:
        assert abs(z_of_mean(f[draws].mean(axis=1), target)) < 4
    # the weights' summaries are one definition for both engines: NumPy (float64) and JAX agree
    log_mean, ess = resampling.summarise(log_w)
    log_mean32, ess32 = resampling.summarise(jnp.asarray(log_w, jnp.float32))
    assert float(log_mean) == pytest.approx(float(log_mean32), abs=1e-5)
    assert float(ess) == pytest.approx(float(ess32), rel=1e-5)
    assert float(log_mean) == pytest.approx(math.log(Z_COINS / len(COINS)), abs=1e-9)  # 2 Z over 2 copies


# --- SMC over the sequential representation: unbiased evidence -----------------------------------------------


def test_eager_smc_evidence_and_posterior_are_unbiased():
    """SMC resampling at every suspension point: mean of Z_hat over runs is Z, and the unnormalised
    estimate of P(value = v) Z is unbiased too (the last point is never followed by resampling)."""
    runs = [ppl.infer(coins_model, method=ppl.SMC(num_particles=5, ess_threshold=1.0), seed=s) for s in range(24)]
    assert all(r.engine == "eager" for r in runs)
    # resampled at every point that another follows (none may: every particle can finish at point 1)
    assert all(r.sample_stats["resampled"][:-1].all() for r in runs)
    assert sum(r.sample_stats["resampled"][0] for r in runs) > 12
    z_hat = [math.exp(r.log_evidence) for r in runs]
    assert abs(z_of_mean(z_hat, Z_COINS)) < 4
    for u in (0, 3):
        est = [np.mean(np.exp(r.log_weights) * (np.asarray(r.returns) == u)) for r in runs]
        assert abs(z_of_mean(est, Z_COINS * sum(p for v, p in COINS.values() if v == u))) < 4


# --- the traced representation: MH leaves the partial posterior invariant ---------------------------------------


def proposal_program(free, t, values, chosen):
    """A single-site move's proposal as a program: choices kept from ``values`` are fixed, the chosen one
    and new ones are drawn from their priors; scores are dropped; it stops at point ``t``."""
    if isinstance(free, Pure):
        return Pure(None, {})
    if isinstance(free, SampleF):
        a = free.site.address
        if a != chosen and a in values:
            return proposal_program(free.k(jnp.asarray(values[a])), t, values, chosen)
        return SampleF(free.site, lambda x: proposal_program(free.k(x), t, values, chosen))
    if t == 1:
        return Pure(None, {})
    return proposal_program(free.k(), t - 1, values, chosen)


def mh_kernel(root, t, states):
    """The exact transition probabilities of ``traced.mh_step`` at point ``t``: uniform choice of the
    address, prior proposals enumerated, acceptance by ``traced.log_acceptance``."""
    kernel = {}
    key = jax.random.key(0)  # no draws happen: every value is given
    for x in states:
        values = dict(x)
        current = traced.replay(root, t, values, None, key)
        chosen_from = list(current.log_densities)
        row = kernel.setdefault(x, Counter())
        for c in chosen_from:
            for _, drawn, log_q in run(proposal_program(root, t, values, c), Enumeration()):
                proposed = traced.replay(root, t, {**values, **drawn}, None, key)
                accept = min(1.0, math.exp(traced.log_acceptance(current, proposed, c)))
                q = math.exp(log_q) / len(chosen_from)
                row[signature(proposed.particle.trace)] += q * accept
                row[x] += q * (1 - accept)
    return kernel


@pytest.mark.parametrize("t", [1, 2])
def test_the_mh_step_leaves_the_partial_posterior_invariant_exactly(t):
    """pi_t K = pi_t for the partial posterior at point t (t = 2: the posterior), computed exactly."""
    root = reify_python(coins)
    target, _ = exact(truncate(root, t))
    kernel = mh_kernel(root, t, list(target))
    after = Counter()
    for x, (_, p) in target.items():
        assert sum(kernel[x].values()) == pytest.approx(1.0, abs=1e-6)  # float32 densities
        for y, k in kernel[x].items():
            after[y] += p * k
    assert set(after) <= set(target)
    for x, (_, p) in target.items():
        assert after[x] == pytest.approx(p, abs=1e-6)
    assert sum(p * (1 - kernel[x][x]) for x, (_, p) in target.items()) > 0.2  # it moves


def test_the_mh_step_draws_from_its_kernel():
    """mh_step from one state: the frequencies of the next states match the exact kernel's row."""
    root = reify_python(coins)
    target, _ = exact(root)
    x0 = (("a", 1), ("b", 0))
    row = mh_kernel(root, 2, [x0])[x0]
    start = traced.replay(root, 2, dict(x0), None, jax.random.key(0)).particle
    n = 30
    seen = Counter()
    for k in keys(11, n):
        moved, _ = traced.mh_step(root, start, 2, k)
        seen[signature(moved.trace)] += 1
        assert moved.log_weight == start.log_weight  # the move keeps the population's weight
    assert set(seen) <= {y for y, p in row.items() if p > 0}
    for y, p in row.items():
        if 0 < p < 1:
            assert abs(seen[y] - n * p) / math.sqrt(n * p * (1 - p)) < 4


@pytest.mark.parametrize("runs, particles", [(8, 3), pytest.param(40, 8, marks=pytest.mark.slow)])
def test_resample_move_keeps_the_evidence_and_the_posterior(runs, particles):
    """sequentially(move . resample) . spawn(n): the evidence estimate stays unbiased and the population
    still estimates the enumerated posterior."""
    program, args = coins_model.program()
    runs = [run_eager(program, args, jax.random.key(s), num_particles=particles, resampling="systematic",
                      ess_threshold=1.0, mh_steps=1) for s in range(runs)]
    assert np.mean([r.sample_stats["moved"][0] for r in runs]) > 0.1
    z_hat = [math.exp(r.log_evidence) for r in runs]
    assert abs(z_of_mean(z_hat, Z_COINS)) < 4
    est = [np.mean(np.exp(r.log_weights) * (np.asarray(r.returns) == 3)) for r in runs]
    assert abs(z_of_mean(est, Z_COINS * sum(p for v, p in COINS.values() if v == 3))) < 4

"""Sequential Monte Carlo: the sequential cut, resampling, the compiled filter, proposals,
rejuvenation and the eager engine, checked against exact answers (Kalman filter, forward
algorithm, enumeration) within Monte Carlo error. Seeds are fixed; a z-score uses the spread
over independent replicates (different seeds) as its standard error."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import ppl
from ppl import dist
from ppl.inference.smc import SMC, RandomWalk, compiled, resampling, sequential_cut
from ppl.semantics import ir

from shared_models import hmm

# --- reference answers ---------------------------------------------------------------------

A, Q, R = 0.9, 1.0, 0.5


def kalman(ys, a=A, q=Q, r=R, m0=0.0, p0=0.0):
    """log p(y_{1:T}) and the filtering mean/variance at the last step (float64)."""
    m, p, ll = m0, p0, 0.0
    for y in np.asarray(ys, dtype=np.float64):
        m, p = a * m, a * a * p + q * q
        s = p + r * r
        ll += -0.5 * math.log(2 * math.pi * s) - 0.5 * (y - m) ** 2 / s
        k = p / s
        m, p = m + k * (y - m), (1 - k) * p
    return ll, m, p


TRANS = np.array([[0.7, 0.3], [0.2, 0.8]])  # P(z_t = j | z_{t-1} = i)
MEANS = np.array([-1.0, 1.0])


def forward(ys):
    """log p(y) and P(z_T = 1 | y) of the two-state HMM started in state 0."""
    alpha, log_z = np.array([1.0, 0.0]), 0.0
    for y in np.asarray(ys, dtype=np.float64):
        alpha = (alpha @ TRANS) * norm.pdf(y, loc=MEANS, scale=1.0)
        c = alpha.sum()
        log_z += math.log(c)
        alpha /= c
    return log_z, alpha[1]


def simulate_lg(T, seed):
    rng = np.random.default_rng(seed)
    x, ys = 0.0, []
    for _ in range(T):
        x = A * x + Q * rng.normal()
        ys.append(x + R * rng.normal())
    return np.asarray(ys, dtype=np.float32)


def z_of_mean(values, target):
    values = np.asarray(values, dtype=np.float64)
    se = values.std(ddof=1) / math.sqrt(len(values))
    return (values.mean() - target) / se


# --- models ---------------------------------------------------------------------------------


@ppl.model
def linear_gaussian(ys, a, q, r):
    def step(x, y):
        x = ppl.sample("x", dist.Normal(a * x, q))
        ppl.observe("y", dist.Normal(x, r), y)
        return x, x

    _, xs = ppl.scan(step, 0.0, ys)
    return xs


@ppl.model
def hmm_dynamic(ys):
    """The HMM with Python control flow on the random state: the eager engine runs it."""
    ys = np.asarray(ys).tolist()
    z = 0
    for t, y in enumerate(ys):
        z = int(ppl.sample(("z", t), dist.Bernoulli(probs=0.8 if z == 1 else 0.3)))
        if z == 1:
            ppl.observe(("y", t), dist.Normal(1.0, 1.0), y)
        else:
            ppl.observe(("y", t), dist.Normal(-1.0, 1.0), y)
    return z


HMM_YS = np.array([0.5, -1.2, 1.4, 0.1, 2.0, 1.1, -0.3, -1.5, 0.7, 1.9, 0.2, -0.8], dtype=np.float32)
LG_YS = simulate_lg(50, seed=0)


def evidence_runs(model, args, method, seeds):
    return [ppl.infer(model, *args, method=method, seed=s) for s in seeds]


# --- the sequential cut ------------------------------------------------------------------------


@ppl.model
def with_parameters(ys):
    q = ppl.sample("q", dist.HalfNormal(1.0))
    x0 = ppl.sample("x0", dist.Normal(0.0, 1.0))

    def step(x, y):
        x = ppl.sample("x", dist.Normal(0.9 * x, q))
        ppl.observe("y", dist.Normal(x, 0.5), y)
        return x, x

    x_last, xs = ppl.scan(step, x0, ys)
    ppl.observe("end", dist.Normal(x_last, 1.0), 0.0)
    return xs


def test_cut_splits_at_the_loop_of_observations():
    program = with_parameters.ir(np.zeros(6, np.float32))
    cut = sequential_cut(program)
    assert isinstance(cut.loop, ir.For) and cut.num_steps == 6
    assert set(cut.init_sites()) == {"q", "x0"}
    assert set(cut.step_sites()) == {"x", "y"}
    assert set(cut.final_sites()) == {"end"}
    assert not cut.init_weighted and cut.final_weighted
    # the data are shared by all particles; q and x0 are per particle
    random = {v for v in cut.live if cut.is_random(v)}
    assert len(random) == 2 and program.block.params[0] in cut.live
    assert not cut.is_random(program.block.params[0])
    assert cut.final.params[: len(cut.live)] == cut.live


def test_cut_law_the_pieces_compose_to_the_program():
    """init ; step^T ; final at the values of a simulated trace: the same weight and return value."""
    from ppl.semantics import compile as C

    ys = np.linspace(-1, 1, 6).astype(np.float32)
    program, leaves = with_parameters.program(ys)
    trace = C.simulate(program, jax.random.key(1), leaves)
    cut = sequential_cut(program)

    def run(block, args, given):
        out, acc = C.Interpreter(C.Given(), given, None).run_block(block, list(args))
        return out, acc.log_prior + acc.log_likelihood

    live, total = run(cut.init, leaves, trace.choices)
    env = dict(zip(cut.live, live))
    args = [a.value if isinstance(a, ir.Lit) else env[a] for a in cut.loop.args]
    c, k = cut.loop.num_consts, cut.loop.num_carry
    consts, carry, xs = args[:c], args[c:c + k], args[c + k:]
    outputs = []
    for t in range(cut.num_steps):
        given = {a: trace.choices[a][t] for a in cut.step_sites() if a in trace.choices}
        out, lw = run(cut.loop.body, consts + carry + [x[t] for x in xs], given)
        carry, total = out[:k], total + lw
        outputs.append(out[k:])
    stacked = [jnp.stack([o[j] for o in outputs]) for j in range(len(outputs[0]))]
    returns, lw = run(cut.final, live + carry + stacked, {})
    assert float(total + lw) == pytest.approx(float(trace.log_joint), abs=1e-4)
    assert np.allclose(returns[0], trace.retval, atol=1e-6)


def test_docstring_examples():
    import doctest

    result = doctest.testmod(resampling)
    assert result.attempted > 0 and result.failed == 0


def test_cut_without_loop_is_one_step():
    @ppl.model
    def coin(flips):
        p = ppl.sample("p", dist.Beta(2.0, 2.0))
        with ppl.plate("flips", len(flips)):
            ppl.observe("y", dist.Bernoulli(probs=p), flips)
        return p

    cut = sequential_cut(coin.ir([1, 0, 1]))
    assert cut.loop is None and cut.num_steps == 0
    assert "importance sampling" in cut.describe()


def test_cut_opens_the_sub_model_that_holds_the_loop():
    @ppl.model
    def chain(ys):
        def step(x, y):
            x = ppl.sample("x", dist.Normal(x, 1.0))
            ppl.observe("y", dist.Normal(x, 1.0), y)
            return x, None

        ppl.scan(step, 0.0, ys)

    @ppl.model
    def outer(ys):
        s = ppl.sample("s", dist.Normal(0.0, 1.0))
        chain(ys + s)
        return s

    cut = sequential_cut(outer.ir(np.zeros(4, np.float32)))
    assert cut.loop is not None and set(cut.step_sites()) == {"chain/x", "chain/y"}


# --- resampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", sorted(resampling.SCHEMES))
def test_resampling_is_unbiased(scheme):
    """E[offspring of j] = N w_j, checked over 4000 keys (z < 4 on each particle's count)."""
    w = np.array([0.1, 0.0, 0.35, 0.05, 0.2, 0.3, 1e-3], dtype=np.float64)
    w /= w.sum()
    n, draws = len(w), 4000
    keys = jax.random.split(jax.random.key(7), draws)
    anc = jax.jit(jax.vmap(resampling.SCHEMES[scheme], (0, None)))(keys, jnp.log(jnp.asarray(w, jnp.float32)))
    anc = np.asarray(anc)
    assert anc.shape == (draws, n) and anc.min() >= 0 and anc.max() < n
    assert np.all(np.diff(anc, axis=1) >= 0)  # ancestors come sorted
    counts = np.stack([np.bincount(a, minlength=n) for a in anc])
    assert counts[:, 1].max() == 0  # weight zero: never an ancestor
    mean, se = counts.mean(0), counts.std(0, ddof=1) / math.sqrt(draws)
    for j in range(n):
        if se[j] == 0:
            assert mean[j] == pytest.approx(n * w[j], abs=1e-6)
        else:
            assert abs(mean[j] - n * w[j]) / se[j] < 4, (scheme, j, mean[j], n * w[j])
    if scheme in ("systematic", "stratified"):  # low-variance schemes: floor(N w) guaranteed for systematic
        assert counts.var(0).sum() < n * np.sum(w * (1 - w))


def test_resampling_with_all_weights_zero_stays_defined():
    anc, ess = jax.jit(lambda k, w: (resampling.systematic(k, w), resampling.ess(w)))(
        jax.random.key(0), jnp.full((5,), -jnp.inf))
    assert np.asarray(anc).tolist() == [0, 1, 2, 3, 4]
    assert float(ess) == 0.0


# --- linear-Gaussian: against the Kalman filter ----------------------------------------------------------


def test_linear_gaussian_evidence_is_unbiased_and_filtering_means_match_kalman():
    log_z, m_T, _ = kalman(LG_YS)
    posts = evidence_runs(linear_gaussian, (LG_YS, A, Q, R), SMC(num_particles=1000), range(20))
    lz = np.array([p.log_evidence for p in posts])
    z = z_of_mean(np.exp(lz - log_z), 1.0)
    assert abs(z) < 4, f"mean of Z_hat / Z: z = {z:.2f}"
    means = [p.mean("x")[-1] for p in posts]
    z = z_of_mean(means, m_T)
    assert abs(z) < 4, f"filtering mean at T: z = {z:.2f}"
    post = posts[0]
    assert post.engine == "compiled" and post.method == "SMC"
    assert post.samples["x"].shape == (1000, 50) and post.returns.shape == (1000, 50)
    assert post.log_weights.shape == (1000,)
    assert post.sample_stats["ess"].shape == (50,) and post.sample_stats["resampled"].shape == (50,)
    # resampling is adaptive (ESS < N/2), and never after the last step (nothing follows it)
    assert 0 < post.sample_stats["resampled"].sum() < 50 and not post.sample_stats["resampled"][-1]
    # the return value is the ancestral path: the same numbers as the path of sample 'x'
    assert np.array_equal(post.returns, post.samples["x"])

    # the spread of log Z_hat shrinks like 1/sqrt(N): 10x the particles, ~3.2x smaller std
    small = evidence_runs(linear_gaussian, (LG_YS, A, Q, R), SMC(num_particles=100), range(20))
    ratio = np.std([p.log_evidence for p in small], ddof=1) / lz.std(ddof=1)
    assert ratio > 1.6, f"std(log Z_hat) at N=100 / at N=1000 = {ratio:.2f} (expected about 3.2)"


def test_second_run_with_the_same_shapes_does_not_trace_again():
    method = SMC(num_particles=64, resampling="stratified")
    ys2 = simulate_lg(50, seed=5)
    first = ppl.infer(linear_gaussian, LG_YS, A, Q, R, method=method, seed=1)
    second = ppl.infer(linear_gaussian, ys2, A, Q, R, method=method, seed=2)
    program, _ = linear_gaussian.program(LG_YS, A, Q, R)
    assert compiled.get_filter(program, method.options).num_traces == 1
    assert first.log_evidence != second.log_evidence
    again = ppl.infer(linear_gaussian, LG_YS, A, Q, R, method=method, seed=1)
    assert again.log_evidence == first.log_evidence  # a pure function of the key


@pytest.mark.parametrize("threshold, expected", [(0.0, 0), (1.0, 19)])
def test_ess_threshold_never_and_always(threshold, expected):
    ys = LG_YS[:20]
    post = ppl.infer(linear_gaussian, ys, A, Q, R, method=SMC(num_particles=200, ess_threshold=threshold), seed=0)
    assert post.sample_stats["resampled"].sum() == expected
    if threshold == 0.0:  # sequential importance sampling: the final weights are the products
        assert post.sample_stats["ess"][-1] < 200


def test_reversed_loop():
    @ppl.model
    def backwards(ys):
        def step(x, y):
            x = ppl.sample("x", dist.Normal(A * x, Q))
            ppl.observe("y", dist.Normal(x, R), y)
            return x, x

        _, xs = ppl.scan(step, 0.0, ys, reverse=True)
        return xs

    ys = LG_YS[:20]
    log_z, m_first, _ = kalman(ys[::-1])  # the filter runs from the last observation to the first
    posts = evidence_runs(backwards, (ys,), SMC(num_particles=500), range(10))
    assert abs(z_of_mean([np.exp(p.log_evidence - log_z) for p in posts], 1.0)) < 4
    assert abs(z_of_mean([p.mean("x")[0] for p in posts], m_first)) < 4


# --- two-state HMM: against the forward algorithm ----------------------------------------------------------


def test_hmm_evidence_and_filtering_marginal_match_forward_algorithm():
    log_z, p_last = forward(HMM_YS)
    posts = evidence_runs(hmm, (HMM_YS,), SMC(num_particles=500, resampling="multinomial"), range(20))
    z = z_of_mean([np.exp(p.log_evidence - log_z) for p in posts], 1.0)
    assert abs(z) < 4, f"evidence: z = {z:.2f}"
    marginals = [np.sum(p.weights * p.samples["z"][:, -1]) for p in posts]
    z = z_of_mean(marginals, p_last)
    assert abs(z) < 4, f"P(z_T = 1): z = {z:.2f}"


# --- custom proposals -----------------------------------------------------------------------------------------

_S2 = 1.0 / (1.0 / Q**2 + 1.0 / R**2)


@ppl.model
def locally_optimal(x_prev, y):
    """p(x_t | x_{t-1}, y_t) of the linear-Gaussian model."""
    ppl.sample("x", dist.Normal(_S2 * (A * x_prev / Q**2 + y / R**2), math.sqrt(_S2)))


def test_locally_optimal_proposal_lowers_the_variance_of_the_evidence():
    """Same target, lower variance. N = 1000 keeps the O(1/N) bias of the self-normalised
    filtering mean well below its Monte Carlo error over 20 replicates."""
    ys = LG_YS
    log_z, m_T, _ = kalman(ys)
    boot = evidence_runs(linear_gaussian, (ys, A, Q, R), SMC(num_particles=1000), range(20))
    opt = evidence_runs(linear_gaussian, (ys, A, Q, R), SMC(num_particles=1000, proposal=locally_optimal), range(20))
    lz_boot = np.array([p.log_evidence for p in boot])
    lz_opt = np.array([p.log_evidence for p in opt])
    for lz in (lz_boot, lz_opt):  # both unbiased for Z
        assert abs(z_of_mean(np.exp(lz - log_z), 1.0)) < 4
    assert lz_opt.std(ddof=1) < 0.5 * lz_boot.std(ddof=1), (lz_opt.std(), lz_boot.std())
    assert abs(z_of_mean([p.mean("x")[-1] for p in opt], m_T)) < 4


def test_proposal_errors():
    @ppl.model
    def wrong_name(x_prev, y):
        ppl.sample("w", dist.Normal(x_prev, 1.0))

    with pytest.raises(ppl.AddressError, match="has no random choice of that name"):
        ppl.infer(linear_gaussian, LG_YS[:5], A, Q, R, method=SMC(num_particles=10, proposal=wrong_name))

    @ppl.model
    def coin(flips):
        p = ppl.sample("p", dist.Beta(2.0, 2.0))
        with ppl.plate("flips", len(flips)):
            ppl.observe("y", dist.Bernoulli(probs=p), flips)

    with pytest.raises(ppl.ModelError, match="proposes the steps of a loop"):
        ppl.infer(coin, [1, 0], method=SMC(num_particles=10, proposal=locally_optimal))


# --- rejuvenation ----------------------------------------------------------------------------------------------


@ppl.model
def unknown_noise(ys):
    q = ppl.sample("q", dist.HalfNormal(1.0))

    def step(x, y):
        x = ppl.sample("x", dist.Normal(A * x, q))
        ppl.observe("y", dist.Normal(x, R), y)
        return x, x

    ppl.scan(step, 0.0, ys)
    return q


def posterior_of_q(ys):
    """log Z and E[q | y] by quadrature over q, with the Kalman likelihood."""
    grid = np.linspace(1e-3, 5.0, 2000)
    log_post = np.array([kalman(ys, q=g)[0] for g in grid]) + norm.logpdf(grid, scale=1.0) + math.log(2)
    dq = grid[1] - grid[0]
    m = log_post.max()
    mass = np.exp(log_post - m)
    return m + math.log(mass.sum() * dq), float(np.sum(grid * mass) / mass.sum())


def test_random_walk_kernel_leaves_its_target_invariant():
    """Started at its target (a standard normal), the chain stays there: mean 0, variance 1."""
    m = 20000
    kernel = RandomWalk(step_size=1.0, num_steps=3)
    keys = jax.random.split(jax.random.key(3), m)
    x0 = jax.random.normal(jax.random.key(4), (m, 2))
    f = lambda p: -0.5 * jnp.sum(p["v"] ** 2)
    x = np.asarray(jax.jit(jax.vmap(lambda k, v: kernel(k, {"v": v}, f)["v"]))(keys, x0))
    # x is a Markov step from x0, so its draws are correlated with x0's: compare the moments directly
    # with the standard errors of independent draws, times 1.5 for that correlation
    assert np.all(np.abs(x.mean(0)) < 4 * 1.5 / math.sqrt(m))
    assert np.all(np.abs(x.var(0) - 1) < 4 * 1.5 * math.sqrt(2 / m))
    assert np.mean(np.any(x != np.asarray(x0), axis=1)) > 0.3  # it moves


def test_resample_move_targets_the_posterior_of_the_static_parameter():
    ys = LG_YS[:20]
    log_z, q_mean = posterior_of_q(ys)
    method = SMC(num_particles=300, rejuvenation=RandomWalk(step_size=0.5, num_steps=2))
    posts = evidence_runs(unknown_noise, (ys,), method, range(10))
    assert abs(z_of_mean([np.exp(p.log_evidence - log_z) for p in posts], 1.0)) < 4
    assert abs(z_of_mean([p.mean("q") for p in posts], q_mean)) < 4
    moved = posts[0].sample_stats["moved"]
    resampled = posts[0].sample_stats["resampled"]
    assert np.all(moved[~resampled] == 0) and np.mean(moved[resampled]) > 0.2
    # without moves, resampling leaves few distinct values of q; with them, many
    plain = ppl.infer(unknown_noise, ys, method=SMC(num_particles=300), seed=0)
    assert len(np.unique(posts[0].samples["q"])) > 2 * len(np.unique(plain.samples["q"]))
    assert np.allclose(posts[0].returns, posts[0].samples["q"])


def test_rejuvenation_needs_static_parameters():
    with pytest.raises(ppl.ModelError, match="static parameters"):
        ppl.infer(linear_gaussian, LG_YS[:5], A, Q, R, method=SMC(num_particles=10, rejuvenation=RandomWalk()))


# --- no loop: importance sampling ------------------------------------------------------------------------------


def test_model_without_loop_runs_as_importance_sampling():
    @ppl.model
    def normal_normal(ys):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        with ppl.plate("data", ys.shape[0]):
            ppl.observe("y", dist.Normal(mu, 0.5), ys)
        return mu

    ys = jnp.array([0.8, 1.3, 0.2])
    smc = ppl.infer(normal_normal, ys, method=SMC(num_particles=2000), seed=4)
    imp = ppl.infer(normal_normal, ys, method=ppl.Importance(num_particles=2000), seed=4)
    assert smc.log_evidence == pytest.approx(imp.log_evidence, abs=1e-6)
    assert np.allclose(smc.log_weights, imp.log_weights, atol=1e-5)
    assert np.array_equal(smc.samples["mu"], imp.samples["mu"])
    assert any("importance sampling" in n for n in smc.notes)


# --- the eager engine: dynamic programs ------------------------------------------------------------------------


def test_eager_smc_matches_enumeration_and_the_compiled_engine():
    ys = HMM_YS[:4]
    exact = ppl.infer(hmm_dynamic, ys, method=ppl.Enumerate())
    log_z, p_last = forward(ys)
    assert exact.log_evidence == pytest.approx(log_z, abs=1e-5)
    eager = evidence_runs(hmm_dynamic, (ys,), SMC(num_particles=60), range(6))
    assert all(p.engine == "eager" for p in eager)
    assert eager[0].sample_stats["ess"].shape == (4,)  # one step per observation
    ratios_eager = [np.exp(p.log_evidence - log_z) for p in eager]
    assert abs(z_of_mean(ratios_eager, 1.0)) < 4
    assert abs(z_of_mean([np.sum(p.weights * (np.asarray(p.returns) == 1)) for p in eager], p_last)) < 4
    # the same model written statically, run compiled
    static = evidence_runs(hmm, (ys,), SMC(num_particles=60), range(6))
    ratios_static = [np.exp(p.log_evidence - log_z) for p in static]
    assert abs(z_of_mean(ratios_static, 1.0)) < 4
    diff = np.mean(ratios_eager) - np.mean(ratios_static)
    se = math.sqrt(np.var(ratios_eager, ddof=1) / 6 + np.var(ratios_static, ddof=1) / 6)
    assert abs(diff / se) < 4


def test_eager_engine_on_a_static_program_and_its_errors():
    ys = HMM_YS[:4]
    post = ppl.infer(hmm, ys, method=SMC(num_particles=100, engine="eager"), seed=0)
    assert post.engine == "eager" and post.samples["z"].shape == (100, 4)
    with pytest.raises(ppl.ModelError, match="needs the compiled engine"):
        ppl.infer(hmm_dynamic, ys, method=SMC(num_particles=10, rejuvenation=RandomWalk()))
    with pytest.raises(ppl.ModelError, match="cannot run this model"):
        ppl.infer(hmm_dynamic, ys, method=SMC(num_particles=10, engine="compiled"))


def test_trace_mh_resample_move_runs_through_the_public_api():
    """SMC(rejuvenation=TraceMH(k)) on a dynamic model: the eager engine, particles moved, and its errors
    (the distribution it gives is checked by the slow test below)."""
    from ppl.inference.smc import TraceMH

    ys = HMM_YS[:3]
    post = ppl.infer(hmm_dynamic, ys, method=SMC(num_particles=12, ess_threshold=1.0,
                                                 rejuvenation=TraceMH(num_moves=1)), seed=0)
    assert post.engine == "eager" and np.mean(post.sample_stats["moved"]) > 0
    with pytest.raises(ppl.ModelError, match="eager engine"):
        ppl.infer(hmm, ys, method=SMC(num_particles=10, rejuvenation=TraceMH(), engine="compiled"))
    with pytest.raises(ppl.ModelError, match="positive whole number"):
        TraceMH(num_moves=0)


@pytest.mark.slow
def test_trace_mh_resample_move_on_a_dynamic_model_keeps_evidence_and_posterior():
    """SMC(rejuvenation=TraceMH(k)): unbiased evidence and the exact filtering posterior."""
    from ppl.inference.smc import TraceMH

    ys = HMM_YS[:4]
    log_z, p_last = forward(ys)
    method = SMC(num_particles=40, ess_threshold=1.0, rejuvenation=TraceMH(num_moves=2))
    runs = evidence_runs(hmm_dynamic, (ys,), method, range(6))
    assert all(p.engine == "eager" for p in runs)
    assert all(np.mean(p.sample_stats["moved"]) > 0 for p in runs)  # the moves did move particles
    assert abs(z_of_mean([np.exp(p.log_evidence - log_z) for p in runs], 1.0)) < 4
    assert abs(z_of_mean([np.sum(p.weights * (np.asarray(p.returns) == 1)) for p in runs], p_last)) < 4


# --- options ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"num_particles": 0}, "num_particles"),
    ({"num_particles": 2.5}, "num_particles"),
    ({"num_particles": True}, "num_particles"),
    ({"resampling": "residual"}, "resampling"),
    ({"ess_threshold": 1.5}, "ess_threshold"),
    ({"ess_threshold": -0.1}, "ess_threshold"),
    ({"ess_threshold": "half"}, "ess_threshold"),
    ({"proposal": 3}, "proposal"),
    ({"rejuvenation": "mh"}, "rejuvenation"),
    ({"engine": "gpu"}, "engine"),
])
def test_bad_options_raise_clear_errors(options, message):
    with pytest.raises(ppl.ModelError, match=message):
        SMC(**options)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        SMC(100)


def test_impossible_observations_are_reported():
    @ppl.model
    def impossible(ys):
        def step(x, y):
            x = ppl.sample("x", dist.Uniform(0.0, 1.0))
            ppl.observe("y", dist.Uniform(x, x + 1.0), y)
            return x, None

        ppl.scan(step, 0.0, ys)

    with pytest.raises(ppl.SupportError, match=r"'y\[1\]' is outside the support"):
        ppl.infer(impossible, np.array([0.5, 5.0, 0.5], np.float32), method=SMC(num_particles=20))


# --- longer statistical checks (pytest -m slow) ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("scheme", sorted(resampling.SCHEMES))
@pytest.mark.parametrize("threshold", [0.3, 1.0])
def test_every_scheme_and_threshold_gives_an_unbiased_evidence(scheme, threshold):
    log_z, m_T, _ = kalman(LG_YS)
    method = SMC(num_particles=1000, resampling=scheme, ess_threshold=threshold)
    posts = evidence_runs(linear_gaussian, (LG_YS, A, Q, R), method, range(100, 140))
    assert abs(z_of_mean([np.exp(p.log_evidence - log_z) for p in posts], 1.0)) < 4
    assert abs(z_of_mean([p.mean("x")[-1] for p in posts], m_T)) < 4


@pytest.mark.slow
def test_eager_smc_matches_enumeration_on_a_longer_dynamic_hmm():
    ys = HMM_YS[:8]
    exact = ppl.infer(hmm_dynamic, ys, method=ppl.Enumerate())
    posts = evidence_runs(hmm_dynamic, (ys,), SMC(num_particles=300, ess_threshold=0.7), range(10))
    assert abs(z_of_mean([np.exp(p.log_evidence - exact.log_evidence) for p in posts], 1.0)) < 4
    p_last = forward(ys)[1]
    assert abs(z_of_mean([np.sum(p.weights * (np.asarray(p.returns) == 1)) for p in posts], p_last)) < 4


def test_spread_of_the_log_evidence_shrinks_like_one_over_sqrt_n():
    """Var(log Z_hat) ~ c / N (the SMC central limit theorem): at N = 100, 1000, 10000 particles,
    50 seeds each, the least-squares slope of log Var(log Z_hat) against log N is -1 within its
    standard error (delta method: Var(log s^2) = 2 / (R - 1) + excess kurtosis / R, estimated from
    the draws), rejected at p < 0.001 (|z| > 3.29). A 1/sqrt(N) spread (slope -0.5) is 8 standard
    errors away. Where the spread is small enough for the ratio Z_hat / Z to be nearly normal
    (N >= 1000: Var(log Z_hat) < 0.3), its mean over seeds is 1 within Monte Carlo error."""
    from scipy import stats

    log_z = kalman(LG_YS)[0]
    sizes, seeds = np.array([100, 1000, 10000]), range(1000, 1050)
    r = len(seeds)
    log_var, var_of_log_var = [], []
    for n in sizes:
        lz = np.array([p.log_evidence for p in evidence_runs(linear_gaussian, (LG_YS, A, Q, R),
                                                               SMC(num_particles=int(n)), seeds)])
        log_var.append(math.log(lz.var(ddof=1)))
        var_of_log_var.append(2 / (r - 1) + max(stats.kurtosis(lz), 0.0) / r)
        if n >= 1000:
            assert lz.var(ddof=1) < 0.3
            z = z_of_mean(np.exp(lz - log_z), 1.0)
            assert abs(z) < 4, f"N = {n}: mean of Z_hat / Z, z = {z:.2f}"
    x = np.log(sizes)
    w = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    slope, se = float(w @ np.array(log_var)), math.sqrt(float(w**2 @ np.array(var_of_log_var)))
    assert abs(slope + 1) / se < 3.29, f"slope of log Var(log Z_hat) on log N: {slope:.3f} +- {se:.3f}"
    assert np.all(np.diff(log_var) < 0)


def test_compiled_smc_joint_posterior_matches_enumeration():
    """Every joint value of z_{0:3} of the 4-step HMM: its weighted frequency in the final particles
    (the ancestral paths), averaged over 20 seeds, within 4 standard errors (the spread over seeds)
    of ppl.Enumerate's probability; and the evidence likewise."""
    ys = HMM_YS[:4]
    exact = ppl.infer(hmm, ys, method=ppl.Enumerate())
    cells = {}
    for i, w in enumerate(exact.weights):
        key = tuple(np.asarray(exact.samples["z"][i]).tolist())
        cells[key] = cells.get(key, 0.0) + float(w)
    assert len(cells) == 16 and sum(cells.values()) == pytest.approx(1.0, abs=1e-6)
    posts = evidence_runs(hmm, (ys,), SMC(num_particles=1000), range(300, 320))
    assert all(p.engine == "compiled" for p in posts)
    for cell, p_exact in cells.items():
        if p_exact < 0.01:
            continue
        freq = [np.sum(p.weights * np.all(p.samples["z"] == np.array(cell), axis=1)) for p in posts]
        z = z_of_mean(freq, p_exact)
        assert abs(z) < 4, f"cell {cell}: mean frequency {np.mean(freq):.4f}, exact {p_exact:.4f}, z {z:.2f}"
    z = z_of_mean([np.exp(p.log_evidence - exact.log_evidence) for p in posts], 1.0)
    assert abs(z) < 4, f"evidence: z = {z:.2f}"

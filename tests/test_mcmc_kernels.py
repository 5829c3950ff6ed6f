"""HMC and NUTS kernels, warm-up and the chain driver (``ppl.inference.mcmc``).

Statistical checks use fixed seeds and Monte Carlo error bounds: a posterior
mean is within 4 MCSE (``sd / sqrt(ESS)``) of the truth, and so is a variance
(the mean of ``(x - mu)^2``). The invariance tests draw exact samples, apply
one kernel transition to each (independently, vectorised) and compare
moments with standard errors that are exact because the draws are
independent.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from ppl.inference import diagnostics
from ppl.inference.mcmc import adaptation, base, counter_rng, hmc, init, nuts, progress
from ppl.inference.mcmc.adaptation import Adaptation
from ppl.inference.mcmc.base import SamplingWarning, run_chains
from ppl.stdlib.errors import DensityError, ModelError

Z = 4.0  # z-score bound for Monte Carlo checks


# --------------------------------------------------------------------------- targets


def gaussian_logdensity(position, mean, precision):
    z = position["x"] - mean
    return -0.5 * z @ precision @ z


def correlated_2d():
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    return np.array([1.0, -2.0]), cov


def scaled_10d():
    scales = np.logspace(-1, 1, 10)  # 0.1 .. 10
    return np.linspace(-3.0, 3.0, 10), np.diag(scales**2)


def dense_3d():
    # Strong correlations and scales a hundred apart: a diagonal metric fixes the scales, not the
    # correlations. (The smallest variance, 0.01, dwarfs Stan's regularisation of the estimate,
    # 1e-3 * 5 / (n + 5), so the adapted matrix should match the covariance itself.)
    scales = np.array([0.1, 1.0, 10.0])
    corr = np.array([[1.0, 0.98, -0.9], [0.98, 1.0, -0.92], [-0.9, -0.92, 1.0]])
    return np.array([0.5, 0.0, -5.0]), corr * np.outer(scales, scales)


def sample(target, builder, seed, *, num_warmup=500, num_samples=500, adapt=None, **kw):
    mean, cov = target()
    d = mean.shape[0]
    args = (jnp.asarray(mean, jnp.float32), jnp.asarray(np.linalg.inv(cov), jnp.float32))
    return run_chains(
        jax.random.PRNGKey(seed),
        gaussian_logdensity,
        init.uniform({"x": jnp.zeros(d)}),
        builder,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=4,
        adapt=adapt,
        args=args,
        **kw,
    )


def assert_moments(draws, mean, cov):
    """Means and variances within Z Monte Carlo standard errors; R-hat below 1.01."""
    draws = np.asarray(draws, np.float64)
    z_mean = (draws.mean(axis=(0, 1)) - mean) / diagnostics.mcse_mean(draws)
    squares = (draws - mean) ** 2
    z_var = (squares.mean(axis=(0, 1)) - np.diag(cov)) / diagnostics.mcse_mean(squares)
    assert np.all(np.abs(z_mean) < Z), z_mean
    assert np.all(np.abs(z_var) < Z), z_var
    assert np.all(diagnostics.split_rhat(draws) < 1.01)


# --------------------------------------------------------------------------- posterior moments

NUTS = nuts.Builder()
HMC = hmc.Builder(num_integration_steps=16, step_size_jitter=0.5)


@pytest.mark.parametrize("builder", [NUTS, HMC], ids=["nuts", "hmc"])
def test_correlated_gaussian(builder):
    # NUTS with a diagonal metric reaches a bulk ESS of only ~0.2 per draw here (BlackJAX's NUTS
    # too), and split R-hat's noise shrinks like 1 / ESS: 1500 draws a chain keep it below 1.01.
    result = sample(correlated_2d, builder, seed=1, num_samples=1500)
    assert_moments(result.positions["x"], *correlated_2d())


@pytest.mark.parametrize("builder", [NUTS, HMC], ids=["nuts", "hmc"])
def test_diagonal_adaptation_fixes_scales(builder):
    mean, cov = scaled_10d()
    result = sample(scaled_10d, builder, seed=2, num_samples=1000)
    assert_moments(result.positions["x"], mean, cov)
    # The adapted inverse mass matrix estimates the variances (factor 2 covers estimation error).
    ratio = np.asarray(result.adaptation["inverse_mass_matrix"]) / np.diag(cov)
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio


@pytest.mark.parametrize("builder", [NUTS, HMC], ids=["nuts", "hmc"])
def test_dense_adaptation(builder):
    mean, cov = dense_3d()
    result = sample(dense_3d, builder, seed=3, adapt=Adaptation(metric="dense"))
    assert_moments(result.positions["x"], mean, cov)
    imm = np.asarray(result.adaptation["inverse_mass_matrix"])
    assert imm.shape == (4, 3, 3)
    # The estimate's correlations match the target's, within Monte Carlo error: the last window's
    # draws estimate them, and a sample correlation has standard error (1 - rho^2) / sqrt(n_eff).
    # n_eff is taken as a quarter of the window (warm-up draws of HMC/NUTS are autocorrelated).
    corr = imm / np.sqrt(np.einsum("cii,cjj->cij", imm, imm))
    target = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    ends = np.flatnonzero(adaptation.schedule(500, Adaptation(metric="dense"))[1])
    n_eff = (ends[-1] - ends[-2]) / 4
    z = np.abs(corr - target) / ((1 - target**2 + 1e-12) / np.sqrt(n_eff))
    assert np.max(z[:, ~np.eye(3, dtype=bool)]) < 4, z


def test_nuts_needs_fewer_steps_with_dense_metric():
    diag = sample(dense_3d, NUTS, seed=4, warn=False)
    dense = sample(dense_3d, NUTS, seed=4, adapt=Adaptation(metric="dense"), warn=False)
    steps = lambda r: float(np.mean(r.sample_stats["num_steps"]))
    assert steps(dense) * 3 < steps(diag)


# --------------------------------------------------------------------------- step size


@pytest.mark.parametrize("target_accept", [0.8, 0.95])
def test_step_size_adaptation_reaches_target(target_accept):
    result = sample(scaled_10d, NUTS, seed=5, adapt=Adaptation(target_accept=target_accept))
    accept = float(np.mean(result.sample_stats["accept_prob"]))
    assert abs(accept - target_accept) < 0.1
    step_size = np.asarray(result.sample_stats["step_size"])
    assert np.all(step_size == step_size[:, :1])  # fixed after warm-up


def test_dual_averaging_finds_the_step_size_of_a_known_acceptance_curve():
    # Acceptance exp(-eps): the target 0.8 is reached at eps = -log(0.8).
    config = Adaptation(target_accept=0.8)

    def step(state, _):
        accept = jnp.exp(-jnp.exp(state.log_step_size))
        return adaptation.dual_averaging_update(state, accept, config), None

    state, _ = jax.lax.scan(step, adaptation.dual_averaging_init(jnp.float32(1.0)), None, length=2000)
    assert float(jnp.exp(state.log_step_size_avg)) == pytest.approx(-np.log(0.8), rel=0.05)


def test_stan_window_schedule():
    collect, window_end = adaptation.schedule(1000)
    assert np.flatnonzero(window_end).tolist() == [99, 149, 249, 449, 949]
    assert not collect[:75].any() and collect[75:950].all() and not collect[950:].any()
    # Too short for 75 + 25 + 50: 15% / 75% / 10%.
    collect, window_end = adaptation.schedule(100)
    assert np.flatnonzero(window_end).tolist() == [89]
    assert np.flatnonzero(collect).tolist() == list(range(15, 90))
    collect, window_end = adaptation.schedule(10)
    assert not collect.any() and not window_end.any()


def test_welford_regularisation_matches_stan():
    x = np.random.default_rng(0).normal(size=(50, 3)) * np.array([1.0, 2.0, 3.0])
    state = adaptation.welford_init(3, dense=True, dtype=jnp.float64 if jax.config.x64_enabled else jnp.float32)
    for row in x:
        state = adaptation.welford_update(state, jnp.asarray(row, state.mean.dtype))
    n = len(x)
    expected = (n / (n + 5.0)) * np.cov(x.T) + 1e-3 * (5.0 / (n + 5.0)) * np.eye(3)
    np.testing.assert_allclose(adaptation.welford_covariance(state), expected, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- kernel laws


def _invariance(kernel, num=20000, seed=0, step_size=0.5):
    """Exact draws of a correlated Gaussian, one kernel transition each: still that Gaussian.

    The narrowest direction of the target has standard deviation sqrt(0.1) = 0.32, so leapfrog
    is stable only for step sizes below 2 * 0.32 = 0.63; 0.5 keeps the kernel moving.
    """
    mean, cov = correlated_2d()
    prec = np.linalg.inv(cov)
    logdensity = lambda p: -0.5 * (p["x"] - mean) @ prec @ (p["x"] - mean)
    key_draw, key_step = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.multivariate_normal(key_draw, mean, cov, (num,), dtype=jnp.float32)

    @jax.jit
    def step(keys, x):
        def one(key, x):
            state = nuts.init({"x": x}, logdensity)
            state, info = kernel(key, state, logdensity, step_size, jnp.ones(2))
            return state.position["x"], info.accept_prob

        return jax.vmap(one)(keys, x)

    y, accept = step(jax.random.split(key_step, num), x)
    y = np.asarray(y, np.float64)
    se_mean = np.sqrt(np.diag(cov) / num)
    assert np.all(np.abs(y.mean(0) - mean) / se_mean < Z)
    centred = (y - mean) ** 2
    se_var = centred.std(0) / np.sqrt(num)
    assert np.all(np.abs(centred.mean(0) - np.diag(cov)) / se_var < Z)
    cross = (y[:, 0] - mean[0]) * (y[:, 1] - mean[1])
    assert abs(cross.mean() - cov[0, 1]) / (cross.std() / np.sqrt(num)) < Z
    # The transition moved the draws (it is not the identity).
    assert np.mean(np.all(y == np.asarray(x), axis=1)) < 0.5
    return accept


def test_nuts_transition_leaves_the_target_invariant():
    _invariance(nuts.build_kernel())


def test_hmc_transition_leaves_the_target_invariant():
    accept = _invariance(hmc.build_kernel(num_integration_steps=5), step_size=0.6)
    assert 0.2 < float(jnp.mean(accept)) < 1.0


def test_nuts_kernel_is_traced_once():
    calls = []

    def logdensity(p):
        calls.append(1)
        return -0.5 * jnp.sum(p**2)

    kernel = jax.jit(nuts.build_kernel(), static_argnums=(2,))
    state = nuts.init(jnp.zeros(3), logdensity)
    state, _ = kernel(jax.random.PRNGKey(0), state, logdensity, 0.5, jnp.ones(3))
    traced = len(calls)
    state, _ = kernel(jax.random.PRNGKey(1), state, logdensity, 0.4, jnp.ones(3))
    assert len(calls) == traced


# --------------------------------------------------------------------------- the driver


def test_run_chains_compiles_once_for_the_same_shapes():
    calls = []

    def logdensity(position, mu):
        calls.append(1)
        return -0.5 * jnp.sum((position - mu) ** 2)

    kw = dict(num_warmup=50, num_samples=50, args=(jnp.zeros(2),), warn=False)
    first = run_chains(jax.random.PRNGKey(0), logdensity, jnp.zeros((2, 2)), NUTS, **kw)
    traced = len(calls)
    assert traced > 0
    kw["args"] = (jnp.ones(2),)  # new data, same shapes
    second = run_chains(jax.random.PRNGKey(1), logdensity, jnp.full((2, 2), 0.5), NUTS, **kw)
    assert len(calls) == traced
    assert first.positions.shape == second.positions.shape == (2, 50, 2)
    # A different target acceptance is a run-time number too.
    run_chains(jax.random.PRNGKey(2), logdensity, jnp.zeros((2, 2)), NUTS, adapt=Adaptation(target_accept=0.9), **kw)
    assert len(calls) == traced


def test_statistics_keep_their_names_in_alphabetical_order():
    # the order they had as a dict output of the program; `ppl run --out` writes columns in it
    result = run_chains(jax.random.PRNGKey(0), lambda x: -0.5 * jnp.sum(x**2), jnp.zeros((2, 2)), NUTS,
                        num_warmup=10, num_samples=5, warn=False)
    assert list(result.sample_stats) == sorted(result.sample_stats)
    assert {"diverging", "accept_prob", "num_steps", "tree_depth", "energy", "step_size"} <= set(result.sample_stats)


def test_result_layout_and_statistics():
    template = {"a": jnp.zeros(()), "b": jnp.zeros((2, 3))}
    logdensity = lambda p: -0.5 * (p["a"] ** 2 + jnp.sum(p["b"] ** 2))
    result = run_chains(
        jax.random.PRNGKey(0), logdensity, init.uniform(template), NUTS,
        num_warmup=100, num_samples=100, num_chains=3, warn=False,
    )
    assert result.positions["a"].shape == (3, 100)
    assert result.positions["b"].shape == (3, 100, 2, 3)
    stats = result.sample_stats
    assert set(stats) == {"diverging", "accept_prob", "num_steps", "tree_depth", "energy", "step_size", "log_density",
                          "nonfinite"}
    assert all(v.shape == (3, 100) for v in stats.values())
    assert stats["diverging"].dtype == jnp.bool_
    assert result.adaptation["step_size"].shape == (3,)
    assert result.adaptation["inverse_mass_matrix"].shape == (3, 7)
    # Recorded log densities are those of the recorded positions.
    recomputed = jax.vmap(jax.vmap(logdensity))(result.positions)
    np.testing.assert_allclose(stats["log_density"], recomputed, rtol=1e-5, atol=1e-5)
    # Tree depth and steps agree: a depth-k trajectory has between 2^(k-1) and 2^k - 1 steps.
    depth, steps = np.asarray(stats["tree_depth"]), np.asarray(stats["num_steps"])
    assert np.all(steps <= 2**depth - 1) and np.all(steps >= 2 ** (depth - 1))


def test_funnel_divergences_are_counted_and_reported():
    # Neal's funnel, centred: v ~ N(0, 3), x_i | v ~ N(0, exp(v / 2)).
    def funnel(p):
        v, x = p[0], p[1:]
        return -0.5 * (v / 3.0) ** 2 - 0.5 * jnp.sum(x**2) * jnp.exp(-v) - 0.5 * x.shape[0] * v

    # The funnel may also saturate the tree depth or leave R-hat high; only the divergences are asserted.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = run_chains(
            jax.random.PRNGKey(0), funnel, init.uniform(jnp.zeros(10)), NUTS,
            num_warmup=50, num_samples=500, num_chains=4,
        )
    assert all(issubclass(w.category, SamplingWarning) for w in record), [str(w.message) for w in record]
    diverging = np.asarray(result.sample_stats["diverging"])
    assert diverging.sum() > 0
    message = next(str(w.message) for w in record if "divergent" in str(w.message))
    assert f"{int(diverging.sum())} of 2000" in message
    assert "target_accept" in message and "non-centred" in message


# --------------------------------------------------------------------------- initialisation


def test_uniform_initialisation_retries_until_the_density_is_finite():
    # Positive density only where x > 1.8: a uniform (-2, 2) draw lands there 5% of the time.
    logdensity = lambda x: jnp.where(jnp.all(x > 1.8), -0.5 * jnp.sum(x**2), -jnp.inf)
    start = init.initialize(
        jax.random.PRNGKey(0), init.uniform(jnp.zeros(1)), jax.value_and_grad(logdensity), 8, lambda t: t
    )
    assert np.all(np.asarray(start.status) == init.OK)
    assert np.all(np.asarray(start.position) > 1.8)
    assert 1 < int(start.tries) <= init.MAX_TRIES


def test_zero_density_everywhere_is_a_model_error():
    logdensity = lambda x: jnp.sum(x) + jnp.log(0.0)
    with pytest.raises(ModelError, match="zero") as error:
        run_chains(jax.random.PRNGKey(0), logdensity, init.uniform(jnp.zeros(2)), NUTS, num_warmup=10, num_samples=10)
    assert "100 initial points" in str(error.value)
    assert "support" in str(error.value)  # says what to do


def test_nan_density_at_given_values_is_a_model_error():
    logdensity = lambda x: jnp.sum(jnp.log(x))  # NaN for negative x
    with pytest.raises(ModelError, match="NaN"):
        run_chains(jax.random.PRNGKey(0), logdensity, -jnp.ones((2, 2)), NUTS, num_warmup=10, num_samples=10)


def test_nan_gradient_at_the_start_is_a_density_error():
    logdensity = lambda x: -jnp.sum(jnp.sqrt(x))  # finite at 0, gradient infinite there
    with pytest.raises(DensityError, match="gradient"):
        run_chains(jax.random.PRNGKey(0), logdensity, init.at_point(jnp.zeros(2)), NUTS, num_warmup=10, num_samples=10)


def test_while_running_sees_the_positions_before_the_run_is_waited_for():
    """``run_chains(while_running=f)`` calls ``f`` once with the kept positions while they are still
    being computed; what it dispatches on them equals the same computation after the run."""
    logdensity = lambda x: -0.5 * jnp.sum(x**2)
    seen = []

    def f(positions):
        seen.append(jax.jit(lambda p: jnp.tanh(p) * 2.0)(positions))

    result = run_chains(jax.random.PRNGKey(3), logdensity, jnp.zeros((2, 3)), NUTS, num_warmup=20,
                        num_samples=15, warn=False, while_running=f)
    assert len(seen) == 1
    np.testing.assert_array_equal(np.asarray(seen[0]), np.asarray(jnp.tanh(result.positions) * 2.0))


def test_a_run_with_no_usable_start_raises_its_own_error_even_if_while_running_ran():
    logdensity = lambda x: jnp.sum(x) + jnp.log(0.0)
    calls = []
    with pytest.raises(ModelError, match="zero"):
        run_chains(jax.random.PRNGKey(0), logdensity, init.uniform(jnp.zeros(2)), NUTS, num_warmup=10,
                   num_samples=10, while_running=calls.append)
    assert len(calls) == 1


def test_the_start_and_the_step_size_search_in_one_loop_equal_them_one_after_the_other():
    """``init.initialize(..., then=search)`` (one loop, one gradient) gives the initial points of
    ``initialize`` and the step sizes of Stan's search run after it, with the same keys."""
    from jax.flatten_util import ravel_pytree

    from ppl.inference.mcmc import warmup
    from ppl.inference.mcmc.hmc import FlatState

    scales = jnp.asarray([1.0, 4.0, 100.0])

    def logdensity(x):  # finite only where x[0] > 1.2: most uniform starts in (-2, 2) are redrawn
        return jnp.where(x[0] > 1.2, -0.5 * jnp.sum(scales * x**2), -jnp.inf)

    vg = jax.value_and_grad(logdensity)
    strategy = init.uniform(jnp.zeros(3))
    C, key, key_adapt = 6, jax.random.PRNGKey(4), jax.random.PRNGKey(5)
    ravel = lambda t: ravel_pytree(t)[0]  # noqa: E731
    config = Adaptation()
    windowed = warmup.Windowed(config, config.numbers(), 100, 3, jnp.float32, vg, jnp.bool_(True))

    @jax.jit
    def separate():
        start = init.initialize(key, strategy, vg, C, ravel)
        states = FlatState(start.position, start.log_density, start.log_density_grad)
        return start, windowed.init(key_adapt, states).step_size

    @jax.jit
    def joint():
        start, found = init.initialize(key, strategy, vg, C, ravel, then=windowed.search(key_adapt, C))
        states = FlatState(start.position, start.log_density, start.log_density_grad)
        return start, windowed.init(key_adapt, states, found=found).step_size

    (a, eps_a), (b, eps_b) = separate(), joint()
    assert int(a.tries) > 1 and int(a.tries) == int(b.tries)
    np.testing.assert_array_equal(np.asarray(a.status), np.asarray(b.status))
    np.testing.assert_array_equal(np.asarray(a.position), np.asarray(b.position))
    np.testing.assert_allclose(np.asarray(eps_b), np.asarray(eps_a), rtol=1e-6)
    assert np.all(np.asarray(eps_a) < config.initial_step_size / 4)  # the search ran (halving from 1)


def test_statistics_come_back_as_one_buffer_read_on_the_host_and_survive_export():
    from ppl.inference.mcmc import driver

    table = driver.StatTable(("diverging", "accept_prob", "num_steps"), (jnp.bool_, jnp.float32, jnp.int32))

    def program(x):
        buffer = jnp.stack([x > 0.5, x, 3.0 * x + 1.0], axis=-1).astype(jnp.float32)  # (chains, rows + 1, 3)
        return table.split(buffer, rows=2)

    x = jnp.asarray([[0.25, 0.75, 9.0], [1.0, 0.0, 9.0]], jnp.float32)
    exported = jax.export.deserialize(jax.export.export(jax.jit(program))(x).serialize())
    for stats in (jax.jit(program)(x), exported.call(x)):
        cols = stats.columns()
        assert list(cols) == ["accept_prob", "diverging", "num_steps"] == list(stats)  # by name, as a dict output
        np.testing.assert_array_equal(cols["diverging"], [[False, True], [True, False]])
        assert cols["diverging"].dtype == bool and cols["num_steps"].dtype == np.int32
        np.testing.assert_array_equal(cols["num_steps"], [[1, 3], [4, 1]])  # float 1.75 -> int 1, as JAX converts
        np.testing.assert_array_equal(stats["accept_prob"], np.asarray(x)[:, :2])


# --------------------------------------------------------------------------- randomness


def test_threefry_matches_the_random123_known_answers():
    cases = [
        ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    for key, counter, expected in cases:
        out = counter_rng.threefry2x32(jnp.asarray(key, jnp.uint32), jnp.uint32(counter[0]), jnp.uint32(counter[1]))
        assert tuple(int(v) for v in out) == expected


def test_in_loop_normals_are_standard_normal():
    keys = jax.vmap(counter_rng.derive_key, (None, 0))(jnp.asarray([1, 2], jnp.uint32), jnp.arange(4000))
    z = np.asarray(jax.vmap(lambda k: counter_rng.standard_normal(k, (5,), jnp.float32))(keys), np.float64).ravel()
    n = z.size
    assert abs(z.mean()) < Z / np.sqrt(n)
    assert abs(z.var() - 1.0) < Z * np.sqrt(2.0 / n)
    assert abs(np.mean(z**3)) < Z * np.sqrt(15.0 / n)
    # Neighbouring coordinates of one draw are uncorrelated.
    z = z.reshape(-1, 5)
    assert abs(np.mean(z[:, 0] * z[:, 1])) < Z / np.sqrt(len(z))


# --------------------------------------------------------------------------- diagnostics


def _autocorrelated(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).cumsum(axis=1) * 0.1 + rng.normal(size=shape)


def _diagnostics_cases():
    rng = np.random.default_rng(5)
    constant = _autocorrelated((4, 100, 4), 6)
    constant[..., 0] = 3.0
    constant[..., 1] = 0.0
    constant[..., 2] = np.where(rng.random((4, 100)) < 0.5, -1.0, 1.0)  # constant once folded
    stuck = np.repeat(_autocorrelated((4, 20, 2), 7), 5, axis=1)  # long runs of repeats
    with_nan = _autocorrelated((4, 50, 3), 8)
    with_nan[1, 3, 0] = np.nan
    cases = {
        "ar_event_2x3": _autocorrelated((4, 300, 2, 3), 1),
        "scalar": _autocorrelated((4, 200), 2),
        "one_chain": _autocorrelated((1, 200, 3), 3),
        "odd_draws_5_chains": _autocorrelated((5, 333, 2), 4),
        "many_chains": _autocorrelated((16, 64, 3), 9),
        "random_walk": rng.normal(size=(4, 400, 3)).cumsum(axis=1),
        "poisson_ties": rng.poisson(2.0, size=(4, 100, 3)).astype(float),
        "binary": rng.integers(0, 2, size=(4, 50, 3)).astype(float),
        "rounded": np.round(_autocorrelated((3, 101, 4), 10), 1),
        "constant": constant,
        "stuck": stuck,
        "chain_constants": np.broadcast_to(np.arange(4.0)[:, None, None], (4, 50, 2)).copy(),
        "nan": with_nan,
        "tiny_scale": _autocorrelated((4, 100, 2), 11) * 1e-17,
        "event_2x3_two_chains": _autocorrelated((2, 40, 2, 3), 12),
    }
    for n in range(1, 11):  # fewer than 4 draws give NaN
        cases[f"{n}_draws"] = _autocorrelated((4, n, 3), 20 + n)
        cases[f"{n}_draws_one_chain"] = _autocorrelated((1, n, 2), 40 + n)
    return cases


_DIAGNOSTICS_CASES = _diagnostics_cases()


@pytest.mark.parametrize("case", list(_DIAGNOSTICS_CASES))
def test_diagnostics_agree_with_arviz(case):
    x = _DIAGNOSTICS_CASES[case]
    az = diagnostics._arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns about fewer draws than chains
        dataset = az.convert_to_dataset({"x": x})
        expected = {
            diagnostics.split_rhat: az.rhat(dataset, method="rank"),
            diagnostics.ess_bulk: az.ess(dataset, method="bulk"),
            # ArviZ 1.x's default tail probabilities follow rcParams["stats.ci_prob"] (0.89); ours are 0.x's.
            diagnostics.ess_tail: az.ess(dataset, method="tail", prob=(0.05, 0.95)),
            diagnostics.mcse_mean: az.mcse(dataset, method="mean"),
        }
    for function, reference in expected.items():
        got = function(x)
        want = np.asarray(reference["x"].values, dtype=float)
        assert np.shape(got) == x.shape[2:] == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=0, equal_nan=True, err_msg=function.__name__)
        if x.ndim == 2:
            assert isinstance(got, float)


def test_diagnostics_edge_values():
    x = _DIAGNOSTICS_CASES["constant"]
    n_split = 4 * 100
    assert np.isnan(diagnostics.split_rhat(x)[:2]).all()
    np.testing.assert_array_equal(diagnostics.ess_bulk(x)[:2], n_split)
    np.testing.assert_array_equal(diagnostics.ess_tail(x)[:2], n_split)
    np.testing.assert_array_equal(diagnostics.mcse_mean(x)[:2], 0.0)
    one_chain = _DIAGNOSTICS_CASES["one_chain"]
    assert np.isnan(diagnostics.split_rhat(one_chain)).all()
    assert np.isfinite(diagnostics.ess_bulk(one_chain)).all()
    nan = _DIAGNOSTICS_CASES["nan"]
    assert np.isnan(diagnostics.ess_bulk(nan)[0]) and np.isfinite(diagnostics.ess_bulk(nan)[1:]).all()
    assert np.isnan(diagnostics.ess_tail(_DIAGNOSTICS_CASES["3_draws"])).all()
    assert np.shape(diagnostics.ess_bulk(np.zeros((4, 10, 0)))) == (0,)
    for bad in (np.zeros(10), np.float64(1.0)):
        with pytest.raises(ValueError, match="chains, draws"):
            diagnostics.ess_bulk(bad)


@pytest.mark.parametrize("case", sorted(_DIAGNOSTICS_CASES))
def test_convergence_is_the_three_diagnostics_at_once(case):
    x = _DIAGNOSTICS_CASES[case]
    together = diagnostics.convergence(x)
    alone = (diagnostics.split_rhat(x), diagnostics.ess_bulk(x), diagnostics.ess_tail(x))
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_diagnostics_tail_ess_quantile_follows_arviz_0x():
    # Half the draws tie at the maximum. ArviZ 0.x's 95% quantile (mquantiles' arithmetic) lands
    # one ulp below it, so the indicator varies; ArviZ 1.x's (np.quantile) is the maximum itself,
    # the indicator is constant and its tail ESS is the draw count, 48. We follow 0.x.
    i = (np.arange(48) * 7) % 48
    x = np.where(i % 2 == 0, 0.9, -1.0 + i / 100).reshape(4, 12)
    assert diagnostics.ess_tail(x) == pytest.approx(5760 / 73, rel=1e-10)
    az = diagnostics._arviz()
    if int(az.__version__.split(".")[0]) < 1:
        reference = az.ess(az.convert_to_dataset({"x": x}), method="tail", prob=(0.05, 0.95))["x"].values
        assert diagnostics.ess_tail(x) == pytest.approx(float(reference), rel=1e-10)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ess_of_an_ar1_chain_is_near_theory(phi):
    rng = np.random.default_rng(3)
    chains, n = 4, 5000
    noise = rng.normal(size=(chains, n))
    x = np.empty_like(noise)
    x[:, 0] = noise[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    theory = chains * n * (1 - phi) / (1 + phi)
    assert diagnostics.ess_bulk(x) == pytest.approx(theory, rel=0.15)
    assert diagnostics.mcse_mean(x) == pytest.approx(np.sqrt(1 / (1 - phi**2) / theory), rel=0.1)
    assert diagnostics.split_rhat(x) < 1.01


def test_rhat_flags_chains_that_disagree():
    x = np.random.default_rng(4).normal(size=(4, 500))
    x[0] += 1.0
    assert diagnostics.split_rhat(x) > 1.05


# --------------------------------------------------------------------------- progress


def test_progress_is_silent_under_pytest_and_on_request():
    assert progress.enabled(None) is False
    assert progress.enabled(True) is True
    assert progress.interval(4, 2000) == 40


def test_progress_callbacks_report_transitions(monkeypatch):
    seen = []
    monkeypatch.setattr(progress.ChainProgress, "update", lambda self, t, d: seen.append((t.copy(), d.copy())))
    logdensity = lambda x: -0.5 * jnp.sum(x**2)
    run_chains(
        jax.random.PRNGKey(0), logdensity, jnp.zeros((2, 1)), NUTS,
        num_warmup=100, num_samples=100, progress=True, warn=False,
    )
    assert 10 <= len(seen) <= progress.REPORTS_PER_RUN + 1
    transitions = np.array([t for t, _ in seen])
    assert np.all(np.diff(transitions.sum(axis=1)) >= 0)
    assert transitions[-1].sum() >= 0.9 * 400

"""``ode_rk45`` (ppl/ode.py): accuracy, derivatives, and termination on systems that explode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl.ode import ode_rk45


def lotka_volterra(t, z, theta):
    u, v = z[0], z[1]
    return jnp.stack([(theta[0] - theta[1] * v) * u, (-theta[2] + theta[3] * u) * v])


def decay(t, y, k):
    return -k * y


TS = np.arange(1.0, 21.0)
THETA = np.array([0.55, 0.028, 0.80, 0.024])
Z0 = np.array([34.0, 5.9])


def scipy_solution(theta, z0, ts, t0=0.0):
    from scipy.integrate import solve_ivp

    def rates(t, z):  # in float64 NumPy: a float32 right-hand side could not meet these tolerances
        return [(theta[0] - theta[1] * z[1]) * z[0], (-theta[2] + theta[3] * z[0]) * z[1]]

    sol = solve_ivp(rates, (t0, ts[-1]), z0, t_eval=ts, method="DOP853", rtol=1e-12, atol=1e-12)
    return sol.y.T


def test_solution_matches_scipy_within_the_tolerances():
    ours = np.asarray(ode_rk45(lotka_volterra, Z0, 0.0, TS, THETA, 1e-6, 1e-5))
    exact = scipy_solution(THETA, Z0, TS)
    assert ours.shape == (len(TS), 2)
    assert np.max(np.abs(ours - exact) / exact) < 1e-4


def test_derivatives_are_exact_on_a_linear_system():
    y0, k, t0 = jnp.array([2.0, 3.0]), jnp.array([0.5, 1.5]), 0.25
    ts = jnp.array([0.5, 1.0, 2.0])

    def f(y0, t0, ts, k):
        return ode_rk45(decay, y0, t0, ts, k, 1e-7, 1e-7)

    exact = y0 * jnp.exp(-k * (ts[:, None] - t0))
    np.testing.assert_allclose(f(y0, t0, ts, k), exact, rtol=1e-5)
    d_y0, d_t0, d_ts, d_k = jax.jacrev(f, argnums=(0, 1, 2, 3))(y0, t0, ts, k)
    n = len(ts)
    np.testing.assert_allclose(d_y0, jnp.exp(-k * (ts[:, None] - t0))[:, :, None] * jnp.eye(2), rtol=1e-4)
    np.testing.assert_allclose(d_t0, k * exact, rtol=1e-4)
    np.testing.assert_allclose(d_ts, (-k * exact)[:, :, None] * jnp.eye(n)[:, None, :], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d_k, (-(ts[:, None] - t0) * exact)[:, :, None] * jnp.eye(2), rtol=1e-4)
    # forward mode agrees with reverse mode
    np.testing.assert_allclose(jax.jacfwd(f, argnums=3)(y0, t0, ts, k), d_k, rtol=1e-5)


def test_gradient_matches_finite_differences_of_scipy():
    def last_prey(theta):
        return ode_rk45(lotka_volterra, Z0, 0.0, TS, theta, 1e-6, 1e-5)[-1, 0]

    grad = np.asarray(jax.grad(last_prey)(jnp.asarray(THETA, jnp.float32)))
    steps = np.eye(4) * THETA * 1e-5
    numeric = [(scipy_solution(THETA + h, Z0, TS)[-1, 0] - scipy_solution(THETA - h, Z0, TS)[-1, 0]) / (2 * h[i])
               for i, h in enumerate(steps)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-3)


@pytest.mark.parametrize("theta", [[200.0, 1e-9, 1.0, 1e-9], [1e4, 1e-9, 1.0, 1e-9]])
def test_an_exploding_system_gives_nan_promptly(theta):
    """Prey growing like exp(200 t) overflow float32: the solve must stop (jax's odeint loops for ever;
    here it returns, so reaching the assertions is the test of termination)."""
    ys = np.asarray(ode_rk45(lotka_volterra, [5.0, 5.0], 0.0, TS, jnp.asarray(theta), 1e-6, 1e-5))
    grad = jax.grad(lambda p: ode_rk45(lotka_volterra, jnp.array([5.0, 5.0]), 0.0, TS, p, 1e-6, 1e-5).sum())(
        jnp.asarray(theta))
    assert np.isnan(ys[-1]).all() and np.isnan(np.asarray(grad)).all()
    assert np.isfinite(ys[0]).all()  # the outputs before the failure are kept


def test_too_many_steps_is_a_failure_not_a_wrong_answer():
    ys = np.asarray(ode_rk45(lotka_volterra, Z0, 0.0, TS, THETA, 1e-6, 1e-5, max_steps=20))
    assert np.isnan(ys[-1]).all()
    full = np.asarray(ode_rk45(lotka_volterra, Z0, 0.0, TS, THETA, 1e-6, 1e-5))
    done = ~np.isnan(ys[:, 0])
    np.testing.assert_allclose(ys[done], full[done], rtol=1e-6)


def test_output_times_before_t0_are_a_failure():
    # known while tracing: an error at once; known only at run time (data): a failed solve, NaN
    with pytest.raises(ValueError, match="none before t0 = 1"):
        ode_rk45(decay, [1.0], 1.0, [0.5, 2.0], 1.0)
    ys = np.asarray(jax.jit(lambda ts: ode_rk45(decay, [1.0], 1.0, ts, 1.0))(jnp.array([0.5, 2.0])))
    assert np.isnan(ys).all()


def test_the_language_builtin_uses_it():
    src = """
def rates(t, z, theta) {
  u = z[0]
  v = z[1]
  return [(theta[0] - theta[1] * v) * u, (-theta[2] + theta[3] * u) * v]
}
model solve(z0: real[2], ts: real[N], theta: real[4], N: int) {
  return ode_rk45(rates, z0, 0.0, ts, theta, 1e-6, 1e-5)
}
"""
    m = ppl.loads(src).solve
    ys = np.asarray(m.simulate(jax.random.key(0), Z0, TS, THETA, len(TS)).retval)
    np.testing.assert_allclose(ys, np.asarray(ode_rk45(lotka_volterra, Z0, 0.0, TS, THETA, 1e-6, 1e-5)), rtol=1e-6)


def test_custom_jvp_functions_run_in_compiled_models():
    """The solver is a jax.custom_jvp; so are jnp.logaddexp and jax.nn.relu: models may call them."""
    from ppl import dist

    @ppl.model
    def m():
        x = ppl.sample("x", dist.Normal(0.0, 1.0))
        ppl.factor("f", -jnp.logaddexp(x, 0.0) - jax.nn.relu(x))

    x = 0.3
    want = -0.5 * x**2 - 0.5 * np.log(2 * np.pi) - np.logaddexp(x, 0.0) - x
    np.testing.assert_allclose(float(m.log_density({"x": x})), want, rtol=1e-6)
    grad = jax.grad(m.log_density_function())({"x": jnp.float32(x)})["x"]
    np.testing.assert_allclose(float(grad), -x - 1 / (1 + np.exp(-x)) - 1.0, rtol=1e-5)


@pytest.mark.parametrize("solver", ["ode_rk45", "ode_bdf"])
def test_output_times_out_of_order_are_an_error_not_rows_of_nan(solver):
    import ppl.ode as ode_mod

    solve = getattr(ode_mod, solver)

    @ppl.model
    def decay(y):
        k = ppl.sample("k", ppl.dist.LogNormal(0.0, 1.0))
        sol = solve(lambda t, u, p: -p * u, jnp.array([1.0]), 0.0, [2.0, 1.0, 3.0], k)
        ppl.observe("y", ppl.dist.Normal(sol[:, 0], 0.1), y)

    with pytest.raises(ppl.ModelError, match=r"output times in increasing order.*ts\[1\] = 1"):
        ppl.infer(decay, np.array([0.4, 0.6, 0.2]), method=ppl.Importance(num_particles=10))
    with pytest.raises(ValueError, match="none before t0 = 1"):
        solve(lambda t, u, p: -p * u, jnp.array([1.0]), 1.0, [0.5, 2.0], 0.3)

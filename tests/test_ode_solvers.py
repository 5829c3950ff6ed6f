"""The stiff solver ``ode_bdf`` (diffrax's Kvaerno5, ppl/ode_stiff.py) in both front ends, and an
``if`` inside an ODE right-hand side (a .ppl function run outside the model: plain ``lax.cond``).

References: scipy's ``solve_ivp(method="Radau")`` at tight tolerances in float64; closed forms.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import ppl
from ppl.ode import ode_bdf, ode_rk45


def float64():
    enable = getattr(jax, "enable_x64", None)
    if enable is not None:
        return enable(True)
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()  # pragma: no cover


def robertson(t, y, k):
    """Robertson's chemical kinetics: rate constants 0.04, 3e7, 1e4 (stiffness ratio ~1e11)."""
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack([-k[0] * y1 + k[2] * y2 * y3, k[0] * y1 - k[2] * y2 * y3 - k[1] * y2**2, k[1] * y2**2])


K = np.array([0.04, 3e7, 1e4])
TS = np.array([1e-2, 1.0, 10.0, 100.0, 1e3, 1e4])


def radau(rhs, y0, ts, params, t0=0.0):
    def f(t, y):
        return np.asarray(rhs(t, y, params), dtype=float)

    sol = solve_ivp(f, (t0, ts[-1]), y0, method="Radau", t_eval=ts, rtol=1e-11, atol=1e-15)
    assert sol.success
    return sol.y.T


def test_ode_bdf_solves_robertson_like_scipy_radau():
    with float64():
        ys = np.asarray(jax.jit(lambda k: ode_bdf(robertson, jnp.array([1.0, 0.0, 0.0]), 0.0, TS, k, 1e-8, 1e-12))(K))
        ref = radau(lambda t, y, k: robertson(t, np.asarray(y), k), [1.0, 0.0, 0.0], TS, K)
        # y2 is ~1e-5..1e-9: compare each component relative to its own scale
        np.testing.assert_allclose(ys, ref, rtol=1e-5, atol=1e-13)
        np.testing.assert_allclose(ys.sum(axis=1), 1.0, rtol=1e-9)  # mass is conserved
        # the explicit solver cannot get through this in 2000 steps (and says so with NaN)
        explicit = np.asarray(ode_rk45(robertson, jnp.array([1.0, 0.0, 0.0]), 0.0, TS, K, 1e-6, 1e-10,
                                       max_steps=2000))
        assert np.isnan(explicit[-1]).all()


def test_ode_bdf_unfinished_solve_is_nan():
    with float64():
        ys = np.asarray(ode_bdf(robertson, jnp.array([1.0, 0.0, 0.0]), 0.0, TS, K, 1e-8, 1e-12, max_steps=5))
        assert np.isnan(ys).all()
        # an output time before t0 is a failed solve too (when the times are data; known while
        # tracing, it is an error at once)
        ys = np.asarray(jax.jit(lambda ts: ode_bdf(robertson, jnp.array([1.0, 0.0, 0.0]), 1.0, ts, K))(TS))
        assert np.isnan(ys).all()
        with pytest.raises(ValueError, match="none before t0 = 1"):
            ode_bdf(robertson, jnp.array([1.0, 0.0, 0.0]), 1.0, TS, K)


VDP_SRC = """
def van_der_pol(t, y, mu) {
  return [y[1], mu * ((1 - y[0] * y[0]) * y[1]) - y[0]]
}

model vdp(mu: real, ts: real[N], N: int) {
  return ode_bdf(van_der_pol, [2.0, 0.0], 0.0, ts, mu, 1e-6, 1e-8)
}
"""


def test_ode_bdf_in_ppl_van_der_pol_against_radau():
    mod = ppl.loads(VDP_SRC)
    ts = np.array([0.5, 1.0, 5.0, 20.0, 50.0])
    mu = 100.0
    with float64():
        tr = mod.vdp.simulate(jax.random.key(0), mu, ts, len(ts))
        ys = np.asarray(tr.retval)
    ref = radau(lambda t, y, m: [y[1], m * (1 - y[0] ** 2) * y[1] - y[0]], [2.0, 0.0], ts, mu)
    np.testing.assert_allclose(ys[:, 0], ref[:, 0], rtol=1e-4, atol=1e-6)


IF_SRC = """
# the decay rate doubles at t = 1: y(t) = exp(-k t) before, exp(-k - 2 k (t - 1)) after
def rates(t, y, k) {
  if t < 1.0 {
    r = -k * y[0]
  } else {
    r = -2.0 * k * y[0]
  }
  return [r]
}

model decay(ys: real[3]) {
  k ~ lognormal(0, 1)
  z = ode_rk45(rates, [1.0], 0.0, [0.5, 1.5, 2.0], k, 1e-7, 1e-7)
  ys ~ normal(z[:, 0], 0.05)
}

model solve(k: real) {
  return ode_rk45(rates, [1.0], 0.0, [0.5, 1.5, 2.0], k, 1e-7, 1e-7)
}
"""


def _piecewise(k, ts):
    return np.where(ts < 1.0, np.exp(-k * ts), np.exp(-k - 2 * k * (ts - 1.0)))


def test_if_in_ode_right_hand_side_solves_and_differentiates():
    mod = ppl.loads(IF_SRC)
    ts = np.array([0.5, 1.5, 2.0])
    ys = np.asarray(mod.solve.simulate(jax.random.key(0), 0.7).retval)[:, 0]
    np.testing.assert_allclose(ys, _piecewise(0.7, ts), rtol=1e-4)
    # the compiled log density and its gradient (what NUTS evaluates) run the `if` as lax.cond
    data = _piecewise(0.7, ts)
    log_joint = mod.decay.log_density_function(data)
    lp, g = jax.value_and_grad(lambda k: log_joint({"k": k}))(jnp.asarray(0.7))
    # at the true rate the likelihood is at its maximum: d/dk log p = d/dk log prior = -(1 + log k) / k
    assert np.isfinite(float(lp))
    assert float(g) == pytest.approx(-(1 + math.log(0.7)) / 0.7, rel=1e-2)


def test_if_in_ode_right_hand_side_under_importance():
    mod = ppl.loads(IF_SRC)
    data = _piecewise(0.7, np.array([0.5, 1.5, 2.0]))
    post = ppl.infer(mod.decay, data, method=ppl.Importance(num_particles=4000), seed=0)
    assert abs(float(post.mean("k")) - 0.7) < 0.05


@pytest.mark.slow
def test_if_in_ode_right_hand_side_under_nuts():
    mod = ppl.loads(IF_SRC)
    k_true = 0.7
    data = _piecewise(k_true, np.array([0.5, 1.5, 2.0]))
    post = ppl.infer(mod.decay, data, method=ppl.NUTS(num_samples=500, num_warmup=500, num_chains=4), seed=1)
    # noise-free data with sigma 0.05: the posterior is tight around the true rate
    assert abs(float(post.mean("k")) - k_true) < 0.05
    assert float(post.std("k")) < 0.1


def test_python_front_end_ode_bdf_with_a_branch():
    """The Python twin: a right-hand side with lax.cond, solved stiffly inside a model."""

    def rhs(t, y, k):
        return jax.lax.cond(t < 1.0, lambda: -k * y, lambda: -2.0 * k * y)

    @ppl.model
    def m():
        k = ppl.sample("k", ppl.dist.LogNormal(0.0, 0.1))
        return ode_bdf(rhs, jnp.array([1.0]), 0.0, jnp.array([0.5, 1.5, 2.0]), k, 1e-6, 1e-8)

    tr = m.simulate(jax.random.key(3))
    k = float(tr.choices["k"])
    np.testing.assert_allclose(np.asarray(tr.retval)[:, 0], _piecewise(k, np.array([0.5, 1.5, 2.0])), rtol=1e-4)


@pytest.mark.slow
def test_ode_bdf_gradient_matches_finite_differences():
    with float64():
        def final(k0):
            return ode_bdf(robertson, jnp.array([1.0, 0.0, 0.0]), 0.0, TS[:4], jnp.array([k0, 3e7, 1e4]),
                           1e-10, 1e-14)[-1, 0]

        g = float(jax.grad(final)(0.04))
        h = 1e-6
        fd = (float(final(0.04 + h)) - float(final(0.04 - h))) / (2 * h)
        assert g == pytest.approx(fd, rel=1e-4)
        assert math.isfinite(g)


LOOP_SRC = """
# a chain of n compartments, each draining into the next: the loop builds the derivative
def chain(t, y, k) {
  d = zeros(3)
  for i in 0..3 {
    inflow = if i == 0 then 0.0 else k * y[i - 1]
    d[i] = inflow - k * y[i]
  }
  return d
}

model compartments(k: real) {
  return ode_rk45(chain, [1.0, 0.0, 0.0], 0.0, [1.0, 2.0], k)
}
"""


def test_loop_in_ode_right_hand_side():
    mod = ppl.loads(LOOP_SRC)
    ys = np.asarray(mod.compartments.simulate(jax.random.key(0), 0.8).retval)
    ts = np.array([1.0, 2.0])
    kt = 0.8 * ts
    exact = np.stack([np.exp(-kt), kt * np.exp(-kt), kt**2 / 2 * np.exp(-kt)], axis=1)
    np.testing.assert_allclose(ys, exact, rtol=1e-4, atol=1e-6)


def test_a_def_with_an_if_called_from_python_under_jit():
    """Outside any model run a .ppl function is a plain JAX function: its `if` on a traced value
    is a lax.cond, so it jits and differentiates (before, ppl.cond said 'outside a model run')."""
    mod = ppl.loads(IF_SRC)
    f = jax.jit(lambda t, k: mod.rates(t, jnp.array([1.0]), k)[0])
    assert float(f(0.5, 0.7)) == pytest.approx(-0.7)
    assert float(f(1.5, 0.7)) == pytest.approx(-1.4)
    assert float(jax.grad(lambda k: mod.rates(1.5, jnp.array([2.0]), k)[0])(0.7)) == pytest.approx(-4.0)


def test_a_random_choice_in_an_ode_right_hand_side_is_an_error():
    src = """
def noisy(t, y, k) {
  e ~ normal(0, 1)
  return [-k * y[0] + e]
}

model m() {
  return ode_rk45(noisy, [1.0], 0.0, [1.0], 0.5)
}
"""
    with pytest.raises(ppl.PPLError) as e:
        mod = ppl.loads(src)
        mod.m.simulate(jax.random.key(0))
    assert "line 3" in str(e.value)


def test_jacfwd_through_ode_bdf_is_the_exact_derivative():
    """Forward mode (what raised a raw TypeError through diffrax's checkpointed adjoint): on
    y' = -k y, dy(t)/dk = -t y0 e^{-k t}, and dy(t)/dy0 = e^{-k t}."""
    ts = jnp.array([0.5, 2.0])

    def solve(k, y0):
        return ode_bdf(lambda t, y, k: -k * y, jnp.stack([y0]), 0.0, ts, k, 1e-8, 1e-10)[:, 0]

    dk, dy0 = jax.jit(jax.jacfwd(solve, argnums=(0, 1)))(0.7, 1.5)
    np.testing.assert_allclose(dk, -ts * 1.5 * np.exp(-0.7 * ts), rtol=1e-5)
    np.testing.assert_allclose(dy0, np.exp(-0.7 * ts), rtol=1e-5)


@pytest.mark.slow
def test_ode_bdf_forward_and_reverse_mode_match_finite_differences():
    """jax.jacfwd and jax.jacrev through ode_bdf (forward sensitivities under a custom_jvp) agree
    with each other, with the closed form and with central differences, for the parameters, y0,
    t0 and the output times; a stiff linear system (rates 1 and 1000)."""
    with float64():
        def rhs(t, y, k):
            return jnp.stack([-k[0] * y[0] + y[1], -k[1] * y[1]])

        def solve(k, y0, t0, ts):
            return ode_bdf(rhs, y0, t0, ts, k, 1e-10, 1e-12)

        def exact(k, y0, t0, ts):  # y2 = b e^{-k2 s}; y1 = a e^{-k1 s} + b (e^{-k2 s} - e^{-k1 s}) / (k1 - k2)
            s = ts - t0
            b = y0[1] * jnp.exp(-k[1] * s)
            a = y0[0] * jnp.exp(-k[0] * s) + y0[1] * (jnp.exp(-k[1] * s) - jnp.exp(-k[0] * s)) / (k[0] - k[1])
            return jnp.stack([a, b], axis=1)

        point = (jnp.array([1.0, 1000.0]), jnp.array([1.0, 2.0]), jnp.asarray(0.0),
                 jnp.array([0.001, 0.01, 0.5, 2.0]))
        every = (0, 1, 2, 3)
        primal = jax.jit(solve)
        np.testing.assert_allclose(primal(*point), exact(*point), rtol=1e-7, atol=1e-10)
        fwd = jax.jit(jax.jacfwd(solve, argnums=every))(*point)
        rev = jax.jit(jax.jacrev(solve, argnums=every))(*point)
        want = jax.jacfwd(exact, argnums=every)(*point)
        for f, r, w in zip(fwd, rev, want):
            np.testing.assert_allclose(f, w, rtol=1e-5, atol=1e-8)
            np.testing.assert_allclose(r, f, rtol=1e-9, atol=1e-12)
        # and against central differences of the solver itself, in the stiff rate
        h = 1e-4
        k = point[0]
        fd = (primal(k + jnp.array([0.0, h]), *point[1:]) - primal(k - jnp.array([0.0, h]), *point[1:])) / (2 * h)
        np.testing.assert_allclose(fwd[0][..., 1], fd, rtol=1e-4, atol=1e-9)

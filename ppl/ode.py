"""``ode_rk45``: an adaptive Dormand-Prince 5(4) solver that always terminates.

The solver steps from ``t0`` to each output time in turn (the last step of an
interval is shortened to land on it exactly), with the usual error control:
a step is accepted when the RMS over the state's components of
``error / (atol + rtol * |y|)`` is at most 1, and the next step size is
``0.9 * ratio^(-1/5)`` times the last, limited to [0.2, 10] times.

A solve *fails* (and every output from there on is NaN, so a log density
built on it is NaN and a sampler rejects the point) when it takes more than
``max_steps`` steps in all, when the step size underflows (``t + dt == t``),
when the state stops being finite, or when an output time lies before the
current time. Without these stops, parameters that make the system explode
or become very stiff (which a sampler's warm-up does visit) can make an
adaptive solver loop for ever.

Derivatives are forward sensitivities, as in Stan: a ``custom_jvp`` whose rule
solves the system coupled with ``dS/dt = J_y S + J_p`` for the sensitivities
``S`` of the state to ``y0`` and the parameters, under the same error
control, and maps the input tangents linearly through ``S``. Because the rule
is linear in the tangents, reverse mode (``jax.grad``) works as well; the
output times and ``t0`` get their exact derivatives too
(``dy(t)/dt = f(t, y)``, ``dy(t)/dt0 = -S_y0 f(t0, y0)``).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ppl.stdlib.jax_compat import is_tracer

__all__ = ["ode_rk45", "ode_bdf", "DEFAULT_MAX_STEPS"]

DEFAULT_MAX_STEPS = 100_000

# Dormand-Prince 5(4): nodes, stage coefficients, 5th-order weights, and the
# difference between the 5th- and 4th-order weights (the error estimate)
_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_B = np.array([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0])
_E = _B - np.array([5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])


def _step(f, t, y, k1, dt):
    """One Dormand-Prince step: (5th-order y at t + dt, f there (FSAL), error estimate)."""
    ks = [k1]
    for i in range(1, 7):
        yi = y + dt * sum(a * k for a, k in zip(_A[i], ks) if a != 0.0)
        ks.append(f(t + _C[i] * dt, yi))
    y_new = y + dt * sum(b * k for b, k in zip(_B, ks) if b != 0.0)
    err = dt * sum(e * k for e, k in zip(_E, ks) if e != 0.0)
    return y_new, ks[6], err


def _initial_step(f, t0, y0, f0, rtol, atol):
    """A first step size from the scales of y0 and f(t0, y0) (Hairer, Norsett & Wanner, II.4)."""
    scale = atol + rtol * jnp.abs(y0)
    d0 = jnp.sqrt(jnp.mean((y0 / scale) ** 2))
    d1 = jnp.sqrt(jnp.mean((f0 / scale) ** 2))
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
    f1 = f(t0 + h0, y0 + h0 * f0)
    d2 = jnp.sqrt(jnp.mean(((f1 - f0) / scale) ** 2)) / h0
    h1 = jnp.where(jnp.maximum(d1, d2) <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                   (0.01 / jnp.maximum(d1, d2)) ** (1 / 5))
    h = jnp.minimum(100 * h0, h1)
    return jnp.where(jnp.isfinite(h) & (h > 0), h, 1e-6)


def _integrate(f, y0, t0, ts, rtol, atol, max_steps):
    """The solution at each of ``ts`` (NaN from the first failure on) of dy/dt = f(t, y), y(t0) = y0."""
    dtype = y0.dtype
    f0 = f(t0, y0)
    dt0 = _initial_step(f, t0, y0, f0, rtol, atol)

    def interval(carry, target):
        t, y, fy, dt, steps, failed = carry

        def go_on(state):
            t, _, _, _, steps, failed = state
            return (t < target) & ~failed

        def attempt(state):
            t, y, fy, dt, steps, failed = state
            last = t + dt >= target
            h = jnp.where(last, target - t, dt)
            y_new, f_new, err = _step(f, t, y, fy, h)
            scale = atol + rtol * jnp.maximum(jnp.abs(y), jnp.abs(y_new))
            ratio = jnp.sqrt(jnp.mean((err / scale) ** 2))
            ok = ratio <= 1.0  # False for NaN
            factor = jnp.clip(0.9 * jnp.where(ratio > 0, ratio, 1e-10) ** -0.2, 0.2, 10.0)
            factor = jnp.where(jnp.isnan(ratio), 0.2, factor)
            t_new = jnp.where(last, target, t + h)
            steps = steps + 1
            failed = (steps > max_steps) | (t + h == t) | ~jnp.isfinite(h)
            failed = failed | (ok & ~jnp.all(jnp.isfinite(y_new)))
            # after a step shortened to land on the output time, keep the longer step size
            dt_new = jnp.where(last & ok, jnp.maximum(dt, h * factor), h * factor)
            return (jnp.where(ok, t_new, t), jnp.where(ok, y_new, y), jnp.where(ok, f_new, fy),
                    dt_new, steps, failed)

        failed = failed | (target < t)
        t, y, fy, dt, steps, failed = jax.lax.while_loop(go_on, attempt, (t, y, fy, dt, steps, failed))
        out = jnp.where(failed, jnp.full_like(y, jnp.nan), y)
        return (t, y, fy, dt, steps, failed), out

    init = (jnp.asarray(t0, dtype), y0, f0, dt0.astype(dtype), jnp.asarray(0, jnp.int32), jnp.asarray(False))
    _, ys = jax.lax.scan(interval, init, ts)
    return ys


def check_times(t0, ts, name: str) -> None:
    """The output times must not decrease nor come before ``t0``: the solvers integrate forward
    and would give rows of NaN. Checked where the times are known while the model is traced
    (literals, constants); times given as data are checked by the NaN they produce."""
    if is_tracer(t0) or is_tracer(ts):
        return
    times, start = np.atleast_1d(np.asarray(ts, float)), float(np.asarray(t0))
    if times.size and (np.any(np.diff(times) < 0) or times.min() < start):
        where = int(np.argmax(np.diff(times) < 0)) + 1 if np.any(np.diff(times) < 0) else int(np.argmin(times))
        raise ValueError(f"{name} needs output times in increasing order, none before t0 = {start:g}, but "
                         f"ts[{where}] = {times[where]:g} (ts = {times.tolist()}); sort them (np.sort) and "
                         "reorder the observations with them")


def ode_rk45(f: Callable, y0, t0, ts, params, rtol=1e-6, atol=1e-6, max_steps: int = DEFAULT_MAX_STEPS):
    """Solve dy/dt = f(t, y, params) from y(t0) = y0; the solution at ``ts`` (one row per time)."""
    dtype = jnp.result_type(float)
    y0 = jnp.asarray(y0, dtype)
    if y0.ndim != 1:
        raise ValueError(f"ode_rk45 needs a vector initial state, not shape {y0.shape}")
    check_times(t0, ts, "ode_rk45")
    t0 = jnp.asarray(t0, dtype)
    ts = jnp.asarray(ts, dtype)
    p_flat, unravel = ravel_pytree(jax.tree.map(lambda a: jnp.asarray(a, dtype), params))
    n, m = y0.shape[0], p_flat.shape[0]
    rtol, atol, max_steps = float(rtol), float(atol), int(max_steps)

    def rhs(t, y, p):
        return jnp.asarray(f(t, y, unravel(p)), dtype).reshape(n)

    @jax.custom_jvp
    def solve(y0, t0, ts, p):
        return _integrate(lambda t, y: rhs(t, y, p), y0, t0, ts, rtol, atol, max_steps)

    @solve.defjvp
    def solve_jvp(primals, tangents):
        y0, t0, ts, p = primals
        dy0, dt0, dts, dp = tangents
        jac = jax.jacfwd(rhs, argnums=(1, 2))

        def coupled(t, z):  # z = [y, S] with S = dy / d(y0, p), n x (n + m), flattened
            y, s = z[:n], z[n:].reshape(n, n + m)
            jy, jp = jac(t, y, p)
            ds = jy @ s + jnp.concatenate([jnp.zeros((n, n), dtype), jp.reshape(n, m)], axis=1)
            return jnp.concatenate([rhs(t, y, p), ds.reshape(-1)])

        z0 = jnp.concatenate([y0, jnp.eye(n, n + m, dtype=dtype).reshape(-1)])
        zs = _integrate(coupled, z0, t0, ts, rtol, atol, max_steps)
        ys, s = zs[:, :n], zs[:, n:].reshape(-1, n, n + m)
        s_y0, s_p = s[:, :, :n], s[:, :, n:]
        f_t0 = rhs(t0, y0, p)
        f_ts = jax.vmap(lambda t, y: rhs(t, y, p))(ts, ys)
        dys = (s_y0 @ dy0 + s_p @ dp - (s_y0 @ f_t0) * dt0 + f_ts * dts[:, None])
        return ys, dys

    return solve(y0, t0, ts, p_flat)


# the stiff solver (diffrax's Kvaerno5), with the same signature
from ppl.ode_stiff import ode_bdf  # noqa: E402

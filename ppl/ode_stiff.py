"""ODE solvers from diffrax behind ppl's calling convention: ``ode_bdf`` (stiff) and
``ode_dopri5`` (diffrax's Dormand-Prince, the counterpart of ``ppl.ode.ode_rk45``, kept for the
side-by-side benchmark in benchmarks/ode.py).

``ode_bdf(f, y0, t0, ts, params, rtol, atol)`` solves ``dy/dt = f(t, y, params)`` with an
L-stable implicit Runge-Kutta method (diffrax's ``Kvaerno5``, ESDIRK 5(4), Newton iterations
on the stage equations) and a PID step-size controller. It takes Stan's name for its stiff
solver; like Stan's it is the one to use when ``ode_rk45`` needs very many steps (chemical
kinetics, van der Pol with a large mu). The contract is that of ``ode_rk45``: the solution at
each of ``ts`` (one row per time); a solve that does not finish (more than ``max_steps``
steps, Newton failing at ever smaller steps, a state that stops being finite, an output time
before ``t0``) gives NaN rows, so a log density built on it is NaN and a sampler rejects the
point instead of looping for ever. Derivatives are forward sensitivities, as for ``ode_rk45``
(and Stan's stiff solver): a ``custom_jvp`` whose rule solves the system coupled with
``dS/dt = J_y S + J_p`` by the same stiff method and maps the tangents linearly through ``S``,
so forward mode (``jax.jvp``, ``jax.jacfwd``) and reverse mode (``jax.grad``, what NUTS uses)
both work. (diffrax's default checkpointed adjoint has no forward mode.) ``ode_dopri5``
differentiates through diffrax's own adjoint, as the benchmark compares.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ppl.ode import DEFAULT_MAX_STEPS, check_times

__all__ = ["ode_bdf", "ode_dopri5"]


def _prepare(f: Callable, y0, t0, ts, params, name):
    dtype = jnp.result_type(float)
    y0 = jnp.asarray(y0, dtype)
    if y0.ndim != 1:
        raise ValueError(f"{name} needs a vector initial state, not shape {y0.shape}")
    check_times(t0, ts, name)
    t0 = jnp.asarray(t0, dtype)
    ts = jnp.atleast_1d(jnp.asarray(ts, dtype))
    if ts.ndim != 1:
        raise ValueError(f"{name} needs a vector of output times, not shape {ts.shape}")
    p_flat, unravel = ravel_pytree(jax.tree.map(lambda a: jnp.asarray(a, dtype), params))
    n = y0.shape[0]

    def rhs(t, y, p):
        return jnp.asarray(f(t, y, unravel(p)), dtype).reshape(n)

    return rhs, y0, t0, ts, p_flat


def _diffeq(solver, rhs: Callable, y0, t0, ts, p, rtol, atol, max_steps):
    """``y`` at ``ts`` for dy/dt = rhs(t, y, p) by diffrax; NaN rows for a solve that does not finish."""
    import diffrax

    # times before t0, or out of order, fail the solve (NaN), as in ode_rk45
    ordered = jnp.all(ts[1:] >= ts[:-1]) & (ts[0] >= t0)
    t1 = jnp.where(ordered, ts[-1], t0 + 1.0)
    safe_ts = jnp.where(ordered, ts, jnp.linspace(t0, t1, ts.shape[0]))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, a: rhs(t, y, a)),
        solver,
        t0=t0,
        t1=t1,
        dt0=None,
        y0=y0,
        args=p,
        saveat=diffrax.SaveAt(ts=safe_ts),
        stepsize_controller=diffrax.PIDController(rtol=float(rtol), atol=float(atol)),
        max_steps=int(max_steps),
        throw=False,
    )
    ok = ordered & (sol.result == diffrax.RESULTS.successful) & jnp.all(jnp.isfinite(sol.ys))
    return jnp.where(ok, sol.ys, jnp.nan)


def _with_sensitivities(solver, rhs: Callable, y0, t0, ts, p, rtol, atol, max_steps):
    """The solve as a ``custom_jvp`` whose rule integrates the forward sensitivities (as ode_rk45
    does, and Stan with CVODES): linear in the tangents, so forward and reverse mode both work."""
    n, m = y0.shape[0], p.shape[0]
    dtype = y0.dtype

    @jax.custom_jvp
    def solve(y0, t0, ts, p):
        return _diffeq(solver, rhs, y0, t0, ts, p, rtol, atol, max_steps)

    @solve.defjvp
    def solve_jvp(primals, tangents):
        y0, t0, ts, p = primals
        dy0, dt0, dts, dp = tangents
        jac = jax.jacfwd(rhs, argnums=(1, 2))

        def coupled(t, z, p):  # z = [y, S] with S = dy / d(y0, p), n x (n + m), flattened
            y, s = z[:n], z[n:].reshape(n, n + m)
            jy, jp = jac(t, y, p)
            ds = jy @ s + jnp.concatenate([jnp.zeros((n, n), dtype), jp.reshape(n, m)], axis=1)
            return jnp.concatenate([rhs(t, y, p), ds.reshape(-1)])

        z0 = jnp.concatenate([y0, jnp.eye(n, n + m, dtype=dtype).reshape(-1)])
        zs = _diffeq(solver, coupled, z0, t0, ts, p, rtol, atol, max_steps)
        ys, s = zs[:, :n], zs[:, n:].reshape(-1, n, n + m)
        s_y0, s_p = s[:, :, :n], s[:, :, n:]
        f_t0 = rhs(t0, y0, p)
        f_ts = jax.vmap(lambda t, y: rhs(t, y, p))(ts, ys)
        dys = s_y0 @ dy0 + s_p @ dp - (s_y0 @ f_t0) * dt0 + f_ts * dts[:, None]
        return ys, dys

    return solve(y0, t0, ts, p)


def ode_bdf(f: Callable, y0, t0, ts, params, rtol=1e-6, atol=1e-6, max_steps: int = DEFAULT_MAX_STEPS):
    """Solve the stiff system dy/dt = f(t, y, params) from y(t0) = y0; the solution at ``ts``."""
    import diffrax

    rhs, y0, t0, ts, p = _prepare(f, y0, t0, ts, params, "ode_bdf")
    return _with_sensitivities(diffrax.Kvaerno5(), rhs, y0, t0, ts, p, rtol, atol, max_steps)


def ode_dopri5(f: Callable, y0, t0, ts, params, rtol=1e-6, atol=1e-6, max_steps: int = DEFAULT_MAX_STEPS):
    """diffrax's Dopri5 with ``ode_rk45``'s contract (used by benchmarks/ode.py)."""
    import diffrax

    rhs, y0, t0, ts, p = _prepare(f, y0, t0, ts, params, "ode_dopri5")
    return _diffeq(diffrax.Dopri5(), rhs, y0, t0, ts, p, rtol, atol, max_steps)

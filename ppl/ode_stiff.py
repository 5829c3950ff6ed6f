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
point instead of looping for ever. Derivatives by reverse mode (``jax.grad``, what NUTS
uses) through diffrax's default checkpointed adjoint; forward mode (``jax.jvp``) is not
available through that adjoint.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ppl.ode import DEFAULT_MAX_STEPS

__all__ = ["ode_bdf", "ode_dopri5"]


def _solve(solver, f: Callable, y0, t0, ts, params, rtol, atol, max_steps, name):
    import diffrax

    dtype = jnp.result_type(float)
    y0 = jnp.asarray(y0, dtype)
    if y0.ndim != 1:
        raise ValueError(f"{name} needs a vector initial state, not shape {y0.shape}")
    t0 = jnp.asarray(t0, dtype)
    ts = jnp.atleast_1d(jnp.asarray(ts, dtype))
    if ts.ndim != 1:
        raise ValueError(f"{name} needs a vector of output times, not shape {ts.shape}")
    p_flat, unravel = ravel_pytree(jax.tree.map(lambda a: jnp.asarray(a, dtype), params))
    n = y0.shape[0]

    def rhs(t, y, p):
        return jnp.asarray(f(t, y, unravel(p)), dtype).reshape(n)

    # times before t0, or out of order, fail the solve (NaN), as in ode_rk45
    ordered = jnp.all(ts[1:] >= ts[:-1]) & (ts[0] >= t0)
    t1 = jnp.where(ordered, ts[-1], t0 + 1.0)
    safe_ts = jnp.where(ordered, ts, jnp.linspace(t0, t1, ts.shape[0]))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, p: rhs(t, y, p)),
        solver,
        t0=t0,
        t1=t1,
        dt0=None,
        y0=y0,
        args=p_flat,
        saveat=diffrax.SaveAt(ts=safe_ts),
        stepsize_controller=diffrax.PIDController(rtol=float(rtol), atol=float(atol)),
        max_steps=int(max_steps),
        throw=False,
    )
    ok = ordered & (sol.result == diffrax.RESULTS.successful) & jnp.all(jnp.isfinite(sol.ys))
    return jnp.where(ok, sol.ys, jnp.nan)


def ode_bdf(f: Callable, y0, t0, ts, params, rtol=1e-6, atol=1e-6, max_steps: int = DEFAULT_MAX_STEPS):
    """Solve the stiff system dy/dt = f(t, y, params) from y(t0) = y0; the solution at ``ts``."""
    import diffrax

    return _solve(diffrax.Kvaerno5(), f, y0, t0, ts, params, rtol, atol, max_steps, "ode_bdf")


def ode_dopri5(f: Callable, y0, t0, ts, params, rtol=1e-6, atol=1e-6, max_steps: int = DEFAULT_MAX_STEPS):
    """diffrax's Dopri5 with ``ode_rk45``'s contract (used by benchmarks/ode.py)."""
    import diffrax

    return _solve(diffrax.Dopri5(), f, y0, t0, ts, params, rtol, atol, max_steps, "ode_dopri5")

"""Builtin ODE solvers: ``ode_rk45`` (adaptive Runge-Kutta 4(5)) and ``ode_bdf`` (stiff).

The right-hand side ``f`` is a function of the program; the solvers call it as a plain
JAX function, outside the model run (``ppl.evaluate``'s ``run_deterministic``), so its
``if``s become ``lax.cond`` and its loops ``lax.scan``, and a random choice in it is an
error.
"""

from __future__ import annotations

from .registry import Builtin, table
from .types import Ty, TypeProblem, describe

__all__ = ["ODE_FUNCTIONS"]


def _ode_rule(name):
    def rule(args):
        y0, ts = args[1], args[3]
        for what, a in (("y0", y0), ("ts", ts)):
            if a.rank not in (None, 1):
                raise TypeProblem(f"{name}'s {what} must be a vector, found {describe(a)}")
        n = ts.shape[0] if ts.shape else None
        k = y0.shape[0] if y0.shape else None
        return Ty("real", 2, (n, k))

    return rule


def _deterministic_fn(f):
    """``f`` called as a plain JAX function (an ODE right-hand side runs inside the solver's loops)."""
    from ppl.evaluate.handlers import run_deterministic

    def pure(*args):
        return run_deterministic(f, *args)

    return pure


def _ode_rk45(f, y0, t0, ts, params, rtol=1e-6, atol=1e-6):
    from ppl.ode import ode_rk45

    return ode_rk45(_deterministic_fn(f), y0, t0, ts, params, rtol, atol)


def _ode_bdf(f, y0, t0, ts, params, rtol=1e-6, atol=1e-6):
    from ppl.ode_stiff import ode_bdf

    return ode_bdf(_deterministic_fn(f), y0, t0, ts, params, rtol, atol)


_ARGS = ("fun", "num", "num", "num", "any", "num", "num")

ODE_FUNCTIONS: dict[str, Builtin] = table([
    Builtin("ode_rk45", _ARGS, _ode_rule("ode_rk45"),
            "ode_rk45(f, y0, t0, ts, params [, rtol, atol]): the solution of dy/dt = f(t, y, params), "
            "y(t0) = y0, at the times ts (a matrix, one row per time; adaptive Runge-Kutta 4(5), "
            "default rtol 1e-6, atol 1e-6)",
            _ode_rk45, optional=2, pure=False, fun_arity=3, elementwise=False),
    Builtin("ode_bdf", _ARGS, _ode_rule("ode_bdf"),
            "ode_bdf(f, y0, t0, ts, params [, rtol, atol]): like ode_rk45, by an implicit solver for stiff "
            "systems (diffrax's Kvaerno5, L-stable, with a PID step-size controller; default rtol 1e-6, atol 1e-6)",
            _ode_bdf, optional=2, pure=False, fun_arity=3, elementwise=False),
])

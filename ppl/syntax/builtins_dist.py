"""Builtins about distributions and ODEs, as names and types (no implementation):

- Stan's distribution functions, generated from ``DISTRIBUTIONS``: for every univariate
  family with distribution functions, ``<name>_cdf(x | params)``, ``<name>_lcdf(x | params)``
  (log P(X <= x)) and ``<name>_lccdf(x | params)`` (log P(X > x)); the ``|`` may also be a comma;
- ``truncated(d, low, high)``: what Stan's ``d T[low, high]`` means (the parser writes a
  missing bound as an infinite one);
- ``ode_bdf``: the stiff ODE solver, with the arguments of ``ode_rk45``.

``builtins`` registers these into ``FUNCTIONS`` with one call (``register``). The
evaluator (``ppl.evaluate``) maps each generated name through ``DIST_FUNCTIONS`` to the
distribution's ``cdf``/``log_cdf``/``log_ccdf`` method.
"""

from __future__ import annotations

from . import builtins as B

__all__ = ["DIST_FUNCTIONS", "HAS_CDF", "SUFFIXES", "register", "truncation_problem"]

#: the classes of ppl.stdlib.distributions.cdf.FAMILIES (a test keeps the two in sync)
HAS_CDF = frozenset({
    "Normal", "HalfNormal", "Cauchy", "HalfCauchy", "StudentT", "LogNormal", "Exponential", "Gamma",
    "InverseGamma", "Beta", "Uniform", "Bernoulli", "Binomial", "Poisson", "NegativeBinomial", "Geometric",
})

#: Stan suffix -> (Distribution method, what it computes)
SUFFIXES = {
    "cdf": ("cdf", "P(X <= x)"),
    "lcdf": ("log_cdf", "log P(X <= x), stable in the lower tail"),
    "lccdf": ("log_ccdf", "log P(X > x), stable in the upper tail"),
}

#: generated name -> (distribution name in DISTRIBUTIONS, Distribution method)
DIST_FUNCTIONS: dict[str, tuple[str, str]] = {
    f"{name}_{suffix}": (name, method)
    for name, spec in B.DISTRIBUTIONS.items()
    if spec.cls in HAS_CDF and spec.event_rank == 0
    for suffix, (method, _) in SUFFIXES.items()
}


def _dist_function_rule(args):
    for a in args:
        if not a.is_numeric:
            raise B.TypeProblem(f"expected numbers or arrays, found {B.describe(a)}")
    return B.broadcast(args, "real" if all(a.base != "unknown" for a in args) else "unknown")


def _dist_function(name: str, dist: str, suffix: str) -> B.Builtin:
    spec = B.DISTRIBUTIONS[dist]
    params = ", ".join(spec.params)
    doc = f"{SUFFIXES[suffix][1]}, for X ~ {dist}({params}): {name}(x | {params}), elementwise"
    return B.Builtin(name, ("num",) * (1 + len(spec.params)), _dist_function_rule, doc)


def _truncated_rule(args):
    d = args[0]
    if d.base == "dist" and d.improper:
        raise B.TypeProblem("flat(...) is improper and cannot be truncated",
                            "Truncate a proper distribution: normal(0, 1) T[0, ].")
    return d if d.base == "dist" else B.dist_ty(B.UNKNOWN)


def _ode_rule(name):
    def rule(args):
        y0, ts = args[1], args[3]
        for what, a in (("y0", y0), ("ts", ts)):
            if a.rank not in (None, 1):
                raise B.TypeProblem(f"{name}'s {what} must be a vector, found {B.describe(a)}")
        n = ts.shape[0] if ts.shape else None
        k = y0.shape[0] if y0.shape else None
        return B.Ty("real", 2, (n, k))

    return rule


EXTRA_FUNCTIONS: dict[str, B.Builtin] = {
    "truncated": B.Builtin(
        "truncated", ("dist", "num", "num"), _truncated_rule,
        "truncated(d, low, high): d restricted to [low, high] and renormalised (Stan's d T[low, high]; "
        "-inf or inf for no bound)",
    ),
    "ode_bdf": B.Builtin(
        "ode_bdf", ("fun", "num", "num", "num", "any", "num", "num"), _ode_rule("ode_bdf"),
        "ode_bdf(f, y0, t0, ts, params [, rtol, atol]): like ode_rk45, by an implicit solver for stiff "
        "systems (diffrax's Kvaerno5, L-stable, with a PID step-size controller; default rtol 1e-6, atol 1e-6)",
        optional=2, pure=False, fun_arity=3,
    ),
}


def register(functions: dict) -> None:
    """Add these names to ``functions`` (``builtins.FUNCTIONS``); an existing name is never replaced."""
    new = {name: _dist_function(name, dist, name.rsplit("_", 1)[1]) for name, (dist, _) in DIST_FUNCTIONS.items()}
    new.update(EXTRA_FUNCTIONS)
    clash = sorted(set(new) & set(functions))
    if clash:
        raise RuntimeError(f"distribution builtins defined twice: {clash}")
    functions.update(new)


# ------------------------------------------------------------ static truncation checks


def truncation_problem(dist_name: str | None, low, high) -> tuple[str, str] | None:
    """(message, hint) when ``truncated(<dist_name>(...), low, high)`` is wrong on its face:
    the family has no cdf, or both bounds are numbers with low >= high. ``dist_name`` is the
    called distribution's name when the first argument is written as a call, ``low``/``high``
    the bounds when they are number literals (None otherwise)."""
    if dist_name is not None:
        spec = B.DISTRIBUTIONS.get(dist_name)
        if spec is not None and spec.cls not in HAS_CDF:
            return (f"{dist_name} cannot be truncated: it has no cdf",
                    "Truncation needs the distribution's cdf; normal, student_t, gamma, beta, poisson, "
                    "binomial, ... have one.")
    if low is not None and high is not None and not low < high:
        return (f"the truncation's lower bound {_num(low)} is not below its upper bound {_num(high)}",
                "Write T[low, high] with low < high; leave a side empty for no bound: T[0, ].")
    return None


def _num(x) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x)) if abs(x) < 1e15 else str(x)
    return str(x)

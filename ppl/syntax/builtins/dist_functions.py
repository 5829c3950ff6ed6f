"""Builtin functions of distributions: ``iid``, ``truncated``, ``log_density`` and Stan's
distribution functions.

- Stan's distribution functions are generated from ``DISTRIBUTIONS``: for every univariate
  family with distribution functions, ``<name>_cdf(x | params)``, ``<name>_lcdf(x | params)``
  (log P(X <= x)) and ``<name>_lccdf(x | params)`` (log P(X > x)); the ``|`` may also be a
  comma. Each evaluates the distribution's ``cdf``/``log_cdf``/``log_ccdf`` method;
- ``truncated(d, low, high)``: what Stan's ``d T[low, high]`` means (the parser writes a
  missing bound as an infinite one);
- ``iid(d, n)``: n independent draws of d as one random choice.
"""

from __future__ import annotations

import jax.numpy as jnp

from ppl.stdlib import distributions as D
from ppl.stdlib.constraint_base import nan_unless
from ppl.stdlib.distributions.base import params_ok
from ppl.stdlib.errors import PPLError

from .arrays import sizes
from .distributions import DISTRIBUTIONS
from .registry import Builtin, table
from .types import UNKNOWN, Ty, TypeProblem, broadcast, describe, dist_ty

__all__ = ["DIST_FUNCTIONS", "DIST_FUNCTION_BUILTINS", "HAS_CDF", "SUFFIXES", "truncation_problem"]

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
    for name, spec in DISTRIBUTIONS.items()
    if spec.cls in HAS_CDF and spec.event_rank == 0
    for suffix, (method, _) in SUFFIXES.items()
}


# ----------------------------------------------------------------- type rules


def _dist_function_rule(args):
    for a in args:
        if not a.is_numeric:
            raise TypeProblem(f"expected numbers or arrays, found {describe(a)}")
    return broadcast(args, "real" if all(a.base != "unknown" for a in args) else "unknown")


def _truncated_rule(args):
    d = args[0]
    if d.base == "dist" and d.improper:
        raise TypeProblem("flat(...) is improper and cannot be truncated",
                          "Truncate a proper distribution: normal(0, 1) T[0, ].")
    return d if d.base == "dist" else dist_ty(UNKNOWN)


def _log_density_rule(args):
    d, x = args
    return Ty("real", 0 if x.rank == 0 else None)


def _iid_rule(args):
    d = args[0]
    shape_of = tuple(a.value for a in args[1:])
    elem = d.elem if d.base == "dist" and d.elem is not None else UNKNOWN
    if elem.rank is None:
        return dist_ty(Ty(elem.base, None), d.improper)
    shape = shape_of + (elem.shape if elem.shape is not None else (None,) * elem.rank)
    return dist_ty(Ty(elem.base, len(shape_of) + elem.rank, shape), d.improper)


# ------------------------------------------------------------ implementations


def _iid(ev, e, env):
    d = ev.distribution(e.args[0], env, e)
    n = sizes(*[ev.expr(a, env) for a in e.args[1:]])
    out = d.expand(n + tuple(d.batch_shape))
    # one random choice: log_density sums over these axes, as `~` does (the batch of d is kept)
    out.__dict__[IID_AXES] = (len(n), len(d.batch_shape))
    return out


def _truncated(ev, e, env):
    """``truncated(d, low, high)``, which is what ``d T[low, high]`` parses to."""
    d = ev.distribution(e.args[0], env, e)
    low, high = ev.expr(e.args[1], env), ev.expr(e.args[2], env)
    try:
        return D.Truncated(d, low, high)
    except PPLError as err:
        raise err.with_span(e.span) from None


IID_AXES = "_iid_axes"  # on a distribution iid(d, n...) built: (how many axes of draws, d's batch rank)


def _log_density(d, x):
    """``log_density(d, x)``, with d's parameters checked as ``~`` checks them: known now, a
    ParameterError; known only when the model runs, NaN where they leave their domain (the
    methods then replay the run with values, which names this call)."""
    d.validate_params()
    value = d.log_density(x)
    if IID_AXES in getattr(d, "__dict__", {}):  # iid(d, n): the density of the n draws together
        k, b = d.__dict__[IID_AXES]
        value = jnp.sum(value, axis=tuple(range(jnp.ndim(value) - b - k, jnp.ndim(value) - b)))
    return nan_unless(params_ok(d), value)


def _dist_function_impl(name: str):
    """Stan's ``normal_lcdf(x | mu, sigma)``: the distribution's cdf, log_cdf or log_ccdf at x."""
    dist_name, method = DIST_FUNCTIONS[name]

    def impl(ev, e, env):
        args = [ev.expr(a, env) for a in e.args]
        d = DISTRIBUTIONS[dist_name].construct(args[1:], e.span)
        try:
            d.validate_params()
        except PPLError as err:
            raise err.with_span(e.span) from None
        return getattr(d, method)(args[0])

    return impl


def _dist_function(name: str, dist: str, suffix: str) -> Builtin:
    spec = DISTRIBUTIONS[dist]
    params = ", ".join(spec.params)
    doc = f"{SUFFIXES[suffix][1]}, for X ~ {dist}({params}): {name}(x | {params}), elementwise"
    return Builtin(name, ("num",) * (1 + len(spec.params)), _dist_function_rule, doc, _dist_function_impl(name),
                   form=True)


# ---------------------------------------------------------------- the entries

DIST_FUNCTION_BUILTINS: dict[str, Builtin] = table([
    Builtin("log_density", ("dist", "num"), _log_density_rule,
            "log_density(d, x): the log density (or log mass) of d at x, elementwise over a batch "
            "(iid(d, n) is one random choice: its n draws' log densities summed)",
            _log_density),
    Builtin("iid", ("dist", "int"), _iid_rule,
            "iid(d, n): n independent draws of d as one random choice (iid(d, n, m) for a matrix)", _iid,
            rest="int", form=True, elementwise=False),
    *[_dist_function(name, dist, name.rsplit("_", 1)[1]) for name, (dist, _) in DIST_FUNCTIONS.items()],
    Builtin("truncated", ("dist", "num", "num"), _truncated_rule,
            "truncated(d, low, high): d restricted to [low, high] and renormalised (Stan's d T[low, high]; "
            "-inf or inf for no bound)", _truncated, form=True),
])


# ------------------------------------------------------------ static truncation checks


def truncation_problem(dist_name: str | None, low, high) -> tuple[str, str] | None:
    """(message, hint) when ``truncated(<dist_name>(...), low, high)`` is wrong on its face:
    the family has no cdf, or both bounds are numbers with low >= high. ``dist_name`` is the
    called distribution's name when the first argument is written as a call, ``low``/``high``
    the bounds when they are number literals (None otherwise)."""
    if dist_name is not None:
        spec = DISTRIBUTIONS.get(dist_name)
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

"""Builtin numeric functions: elementwise math, reductions, conversions, and the constants.

Each entry is declared once with its implementation (a JAX function of the argument
values), its type rule and its doc; ``elementwise=False`` marks the reductions, whose
value is not taken element by element (a loop using one runs as a scan, not a plate).
"""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np

from ppl.stdlib import jax_compat as jc
from ppl.stdlib.distributions.base import as_float
from ppl.stdlib.errors import ModelError

from .registry import Builtin, Constant, table
from .types import BOOL, REAL, Ty, TypeProblem, broadcast, describe

__all__ = ["MATH_FUNCTIONS", "CONSTANTS", "elementwise", "keep", "reduce", "reduce_real", "vector_op", "to"]


def _float():
    return jnp.result_type(float)


# ----------------------------------------------------------------- type rules


def elementwise(args):
    return broadcast(args, "real" if all(a.base != "unknown" for a in args) else "unknown")


def keep(args):
    a = args[0]
    return Ty(a.base if a.base != "bool" else "int", a.rank, a.shape)


def keep_real(args):
    a = args[0]
    return Ty("real" if a.base != "unknown" else "unknown", a.rank, a.shape)


def vector_op(args):
    a = args[0]
    if a.rank == 0:
        raise TypeProblem(f"expected an array, found {describe(a)}")
    return keep_real(args)


def reduce(args):
    a = args[0]
    base = "real" if a.base == "real" else ("int" if a.base in ("int", "bool") else "unknown")
    if len(args) > 1:
        if a.rank is None:
            return Ty(base, None)
        if a.rank == 0:
            raise TypeProblem("an axis was given, but the value is a scalar")
        return Ty(base, a.rank - 1)
    return Ty(base, 0)


def reduce_real(args):
    t = reduce(args)
    return replace(t, base="real" if t.base != "unknown" else "unknown")


def _min_max(args):
    if len(args) == 2:
        return broadcast(args)
    return reduce([args[0]])


def to(base):
    def rule(args):
        a = args[0]
        return Ty(base, a.rank, a.shape)

    return rule


def _where(args):
    return broadcast(args[1:])


# ------------------------------------------------------------ implementations


def _reduction(fn):
    def f(x, axis=None):
        return fn(jnp.asarray(x), axis=None if axis is None else int(axis))

    return f


def _minmax(fn_all, fn_pair):
    def f(x, y=None):
        return fn_all(x) if y is None else fn_pair(x, y)

    return f


def _sd(x):
    return jnp.std(x, ddof=1)


def _var(x):
    return jnp.var(x, ddof=1)


def _to_int(x):
    """``x`` rounded toward zero as JAX's integers; a known value they cannot hold is an error (the
    conversion would give -2147483648 for 3e9, or 0 for NaN, without a word)."""
    target = np.dtype(jnp.result_type(int))
    if not jc.is_tracer(x):
        a = np.asarray(x)
        if a.dtype.kind == "f":
            info = np.iinfo(target)
            whole = np.trunc(np.where(np.isfinite(a), a, 0.0))
            bad = ~np.isfinite(a) | (whole > info.max) | (whole < info.min)
            if np.any(bad):
                first = a.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
                raise ModelError(f"to_int of {first:.6g}: it is not a {target.itemsize * 8}-bit integer "
                                 f"(they run from {info.min} to {info.max})",
                                 hint="Keep the value a real, or enable 64-bit integers "
                                      "(jax.config.update('jax_enable_x64', True)).")
    return jnp.asarray(x).astype(target)


def _logsumexp(x, axis=None):
    return jax.scipy.special.logsumexp(x, axis=None if axis is None else int(axis))


# ---------------------------------------------------------------- the entries

_special = jax.scipy.special

#: name -> (implementation, what it computes elementwise)
_UNARY = {
    "exp": (jnp.exp, "e to the power x"), "log": (jnp.log, "natural logarithm"),
    "sqrt": (jnp.sqrt, "square root"), "log1p": (jnp.log1p, "log(1 + x), accurate near 0"),
    "expm1": (jnp.expm1, "exp(x) - 1, accurate near 0"),
    "sin": (jnp.sin, "sine"), "cos": (jnp.cos, "cosine"), "tan": (jnp.tan, "tangent"),
    "asin": (jnp.arcsin, "inverse sine"), "acos": (jnp.arccos, "inverse cosine"),
    "atan": (jnp.arctan, "inverse tangent"), "sinh": (jnp.sinh, "hyperbolic sine"),
    "cosh": (jnp.cosh, "hyperbolic cosine"), "tanh": (jnp.tanh, "hyperbolic tangent"),
    "logistic": (jax.nn.sigmoid, "1 / (1 + exp(-x)) (the inverse logit)"),
    "logit": (_special.logit, "log(x / (1 - x))"),
    "log_logistic": (jax.nn.log_sigmoid, "log(logistic(x)), accurate for large |x|"),
    "lgamma": (_special.gammaln, "log |Gamma(x)|"), "digamma": (_special.digamma, "derivative of lgamma"),
    "erf": (_special.erf, "error function"), "square": (jnp.square, "x * x"),
    "floor": (jnp.floor, "largest integer value <= x (as a real)"),
    "ceil": (jnp.ceil, "smallest integer value >= x (as a real)"),
    "round": (jnp.round, "nearest integer value (as a real)"),
}

def on_reals(fn):
    """``fn`` on its argument as reals: integers and booleans (``logistic(2)``, ``round(x > 0)``)
    are converted first, as the type rule (a real result) says, instead of JAX refusing their dtype."""
    return lambda x: fn(as_float(x))


_B = Builtin
MATH_FUNCTIONS: dict[str, Builtin] = table(
    [_B(n, ("num",), elementwise, f"elementwise {d}", on_reals(fn)) for n, (fn, d) in _UNARY.items()]
    + [
        _B("abs", ("num",), keep, "elementwise absolute value (keeps integers integer)", jnp.abs),
        _B("pow", ("num", "num"), elementwise, "elementwise x to the power y (same as x ^ y)", jnp.power),
        _B("atan2", ("num", "num"), elementwise, "elementwise angle of the point (x, y): atan2(y, x)", jnp.arctan2),
        _B("sum", ("num", "int"), reduce, "sum of all elements, or along axis a: sum(x, a)", _reduction(jnp.sum),
           optional=1, elementwise=False),
        _B("prod", ("num", "int"), reduce, "product of all elements, or along an axis", _reduction(jnp.prod),
           optional=1, elementwise=False),
        _B("mean", ("num", "int"), reduce_real, "mean of all elements, or along an axis", _reduction(jnp.mean),
           optional=1, elementwise=False),
        _B("sd", ("num",), reduce_real, "standard deviation of all elements (divides by n - 1)", _sd,
           elementwise=False),
        _B("variance", ("num",), reduce_real, "variance of all elements (divides by n - 1)", _var,
           elementwise=False),
        _B("min", ("num", "num"), _min_max, "min(x): the smallest element; min(x, y): elementwise",
           _minmax(jnp.min, jnp.minimum), optional=1, elementwise=False),
        _B("max", ("num", "num"), _min_max, "max(x): the largest element; max(x, y): elementwise",
           _minmax(jnp.max, jnp.maximum), optional=1, elementwise=False),
        _B("logsumexp", ("num", "int"), reduce_real,
           "log(sum(exp(x))) computed stably; logsumexp(x, a) along axis a", _logsumexp, optional=1,
           elementwise=False),
        _B("any", ("num",), lambda a: BOOL, "true if any element is true", jnp.any, elementwise=False),
        _B("all", ("num",), lambda a: BOOL, "true if every element is true", jnp.all, elementwise=False),
        _B("softmax", ("num",), vector_op, "exp(x) / sum(exp(x)) over the last axis",
           lambda x: jax.nn.softmax(x, axis=-1), elementwise=False),
        _B("log_softmax", ("num",), vector_op, "x - logsumexp(x) over the last axis",
           lambda x: jax.nn.log_softmax(x, axis=-1), elementwise=False),
        _B("to_int", ("num",), to("int"), "elementwise conversion to integer (rounds toward zero)",
           _to_int),
        _B("to_real", ("num",), to("real"), "elementwise conversion to real (true -> 1.0)",
           lambda x: jnp.asarray(x).astype(_float())),
        _B("where", ("num", "num", "num"), _where, "where(c, a, b): elementwise a where c is true, else b",
           jnp.where),
        _B("clip", ("num", "num", "num"), lambda a: keep(a[:1]), "clip(x, lo, hi): x limited to [lo, hi]",
           jnp.clip),
    ]
)

#: builtin constants
CONSTANTS: dict[str, Constant] = table([
    Constant("pi", REAL, float(np.pi), "the ratio of a circle's circumference to its diameter"),
    Constant("inf", REAL, float("inf"), "positive infinity (a bound that is not there: T[0, inf])"),
])

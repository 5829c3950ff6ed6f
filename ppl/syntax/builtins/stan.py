"""The functions of Stan's math library that users reach for, by their Stan names, as
builtins of the .ppl language: each declared once with its JAX implementation, its type
rule and its doc.

Each implementation is a pure, elementwise (unless ``elementwise=False``),
differentiable function of JAX arrays. Names that ``math`` and ``arrays`` already
define with the same meaning (``log1p``, ``logit``, ``lgamma``, ``mean``, ``sd``, ...)
are not repeated here.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy import special as sp

from ppl.stdlib.distributions.base import as_float

from .arrays import dot_rule, product, sizes
from .math import elementwise, on_reals, reduce_real, vector_op
from .registry import Builtin, table
from .types import REAL, Ty, TypeProblem, broadcast, describe

__all__ = ["STAN_FUNCTIONS"]


# ------------------------------------------------------------ implementations


_real = as_float  # integers and booleans as reals


def log1m(x):
    return jnp.log1p(-_real(x))


def log1m_exp(x):
    """log(1 - exp(x)), accurate for x near 0 and for x very negative (Mächler's rule)."""
    x = _real(x)
    near_zero = x > -math.log(2.0)
    safe_small = jnp.where(near_zero, x, -1.0)
    safe_large = jnp.where(near_zero, -1.0, x)
    return jnp.where(near_zero, jnp.log(-jnp.expm1(safe_small)), jnp.log1p(-jnp.exp(safe_large)))


def log_diff_exp(x, y):
    """log(exp(x) - exp(y)); -inf when x == y, NaN when x < y (as in Stan)."""
    x, y = _real(x), _real(y)
    d = y - x
    safe = jnp.where(d < 0, d, -1.0)
    out = x + log1m_exp(safe)
    return jnp.where(d < 0, out, jnp.where(d == 0, -jnp.inf, jnp.nan))


def log_sum_exp(x, y=None):
    if y is None:
        return sp.logsumexp(_real(x))
    return jnp.logaddexp(_real(x), _real(y))


def lchoose(n, k):
    n, k = _real(n), _real(k)
    return sp.gammaln(n + 1) - sp.gammaln(k + 1) - sp.gammaln(n - k + 1)


def phi_approx(x):
    x = _real(x)
    return jax.nn.sigmoid(0.07056 * x**3 + 1.5976 * x)


def inv_cloglog(x):
    return -jnp.expm1(-jnp.exp(_real(x)))


def step(x):
    x = _real(x)
    return jnp.where(x < 0, 0.0, 1.0).astype(x.dtype)


def int_step(x):
    return (jnp.asarray(x) > 0).astype(jnp.int32)


def dot_self(x):
    x = _real(x)
    return jnp.dot(x, x)


def _sizes(ns):
    return sizes(*ns)


def rep_vector(x, n):
    return jnp.full(_sizes([n]), _real(x))


def rep_array(x, *ns):
    x = jnp.asarray(x)
    return jnp.broadcast_to(x, _sizes(ns) + x.shape)


# ----------------------------------------------------------------- type rules


def _int_result(args):
    t = broadcast(args)
    return Ty("int", t.rank, t.shape)


def _log_sum_exp(args):
    if len(args) == 2:
        return elementwise(args)
    return reduce_real(args[:1])


def _dot_self(args):
    a = args[0]
    if a.rank not in (None, 1):
        raise TypeProblem(f"dot_self() takes a vector, found {describe(a)}")
    return REAL


def _rep(base: str | None):
    def rule(args):
        x, sizes = args[0], args[1:]
        shape = tuple(s.value for s in sizes)
        elem_base = base or (x.base if x.base != "bool" else "int")
        if base == "real" and x.rank not in (0, None):
            raise TypeProblem(f"rep_vector() repeats a single number, found {describe(x)}",
                              "To repeat an array, use rep_array(x, n).")
        if x.rank is None:
            return Ty(elem_base, None)
        xs = x.shape if x.shape is not None else (None,) * x.rank
        return Ty(elem_base, len(sizes) + x.rank, shape + tuple(xs))

    return rule


# ---------------------------------------------------------------- the entries

#: name -> (implementation, what it computes elementwise), one argument
_UNARY = {
    "log10": (lambda x: jnp.log10(_real(x)), "base-10 logarithm"),
    "log2": (lambda x: jnp.log2(_real(x)), "base-2 logarithm"),
    "exp2": (lambda x: jnp.exp2(_real(x)), "2 to the power x"),
    "log1m": (log1m, "log(1 - x), accurate near 0"),
    "log1p_exp": (lambda x: jnp.logaddexp(0.0, _real(x)), "log(1 + exp(x)) (softplus), computed stably"),
    "log1m_exp": (log1m_exp, "log(1 - exp(x)) for x < 0, computed stably"),
    "inv_logit": (jax.nn.sigmoid, "1 / (1 + exp(-x)) (the same as logistic)"),
    "log_inv_logit": (jax.nn.log_sigmoid, "log(inv_logit(x)), computed stably"),
    "log1m_inv_logit": (lambda x: jax.nn.log_sigmoid(-_real(x)), "log(1 - inv_logit(x)), computed stably"),
    "inv_cloglog": (inv_cloglog, "1 - exp(-exp(x)), the inverse of the complementary log-log link"),
    "Phi": (lambda x: sp.ndtr(_real(x)), "the standard normal cumulative distribution function"),
    "Phi_approx": (phi_approx, "a logistic approximation of Phi: inv_logit(0.07056 x^3 + 1.5976 x)"),
    "inv_Phi": (lambda x: sp.ndtri(_real(x)), "the standard normal quantile function (the inverse of Phi)"),
    "tgamma": (lambda x: sp.gamma(_real(x)), "the Gamma function"),
    "trigamma": (lambda x: sp.polygamma(1, _real(x)), "the second derivative of lgamma"),
    "erfc": (lambda x: sp.erfc(_real(x)), "complementary error function, 1 - erf(x)"),
    "fabs": (lambda x: jnp.abs(_real(x)), "absolute value (as a real)"),
    "cbrt": (lambda x: jnp.cbrt(_real(x)), "cube root"),
    "inv": (lambda x: 1.0 / _real(x), "1 / x"),
    "inv_sqrt": (lambda x: jax.lax.rsqrt(_real(x)), "1 / sqrt(x)"),
    "inv_square": (lambda x: 1.0 / jnp.square(_real(x)), "1 / x^2"),
    "step": (step, "0 if x < 0, else 1 (so step(0) is 1), as a real"),
}

#: name -> (implementation, what it computes elementwise), two arguments
_BINARY = {
    "log_diff_exp": (log_diff_exp, "log(exp(x) - exp(y)) for x >= y, computed stably"),
    "lbeta": (lambda a, b: sp.betaln(_real(a), _real(b)),
              "log of the Beta function, lgamma(a) + lgamma(b) - lgamma(a + b)"),
    "lchoose": (lchoose, "log of the binomial coefficient: log(n choose k) (real n and k allowed)"),
    "binomial_coefficient_log": (lchoose, "the same as lchoose(n, k)"),
    "fmin": (lambda x, y: jnp.fmin(_real(x), _real(y)), "minimum of x and y"),
    "fmax": (lambda x, y: jnp.fmax(_real(x), _real(y)), "maximum of x and y"),
    "hypot": (lambda x, y: jnp.hypot(_real(x), _real(y)), "sqrt(x^2 + y^2), without overflow"),
    "fmod": (lambda x, y: jnp.fmod(_real(x), _real(y)), "the remainder of x / y, with the sign of x"),
}


def _fn(name, args, rule, doc, impl, **kw):
    return Builtin(name, tuple(args), rule, doc, impl, **kw)


STAN_FUNCTIONS: dict[str, Builtin] = table(
    [_fn(n, ["num"], elementwise, f"elementwise {d}", on_reals(fn)) for n, (fn, d) in _UNARY.items()]
    + [_fn(n, ["num", "num"], elementwise, f"elementwise {d}", fn) for n, (fn, d) in _BINARY.items()]
    + [
        _fn("int_step", ["num"], _int_result, "elementwise 1 if x > 0, else 0 (so int_step(0) is 0), as an integer",
            int_step),
        _fn("fma", ["num", "num", "num"], elementwise, "elementwise x * y + z (fused multiply-add)",
            lambda x, y, z: _real(x) * y + z),
        _fn("log_sum_exp", ["num", "num"], _log_sum_exp,
            "log_sum_exp(x): log(sum(exp(x))) over all elements; log_sum_exp(x, y): elementwise "
            "log(exp(x) + exp(y)); computed stably", log_sum_exp, optional=1, elementwise=False),
        _fn("cumulative_sum", ["num"], vector_op, "cumulative sums over the first axis (the same as cumsum)",
            lambda x: jnp.cumsum(x, axis=0), elementwise=False),
        _fn("dot_product", ["num", "num"], dot_rule, "inner product of two vectors (the same as dot)",
            product(jnp.dot), elementwise=False),
        _fn("dot_self", ["num"], _dot_self, "dot_product(x, x), the sum of squares of a vector",
            dot_self, elementwise=False),
        _fn("rep_vector", ["num", "int"], _rep("real"), "rep_vector(x, n): a vector of n copies of the number x",
            rep_vector, elementwise=False),
        _fn("rep_array", ["num", "int"], _rep(None),
            "rep_array(x, n), rep_array(x, n, m): an array of copies of x (x may be an array)",
            rep_array, rest="int", elementwise=False),
    ]
)

"""The functions of Stan's math library that users reach for, by their Stan
names, as builtins of the .ppl language (names, arities, type rules, docs).

Like ``builtins``, this module holds no implementation: ``ppl.stan_math``
maps each name to its JAX function. ``builtins`` registers this table into
``FUNCTIONS`` with one call (``register``), so the checker, the reference
documentation test and the evaluator see these names like any other builtin.
Names that ``builtins`` already defines with the same meaning (``log1p``,
``logit``, ``lgamma``, ``mean``, ``sd``, ...) are not repeated here.
"""

from __future__ import annotations

from . import builtins as B

__all__ = ["STAN_FUNCTIONS", "register", "REDUCTIONS"]


def _elementwise(args):
    return B._elementwise(args)


def _int_result(args):
    t = B.broadcast(args)
    return B.Ty("int", t.rank, t.shape)


def _log_sum_exp(args):
    if len(args) == 2:
        return B._elementwise(args)
    return B._reduce_real(args[:1])


def _dot_self(args):
    a = args[0]
    if a.rank not in (None, 1):
        raise B.TypeProblem(f"dot_self() takes a vector, found {B.describe(a)}")
    return B.REAL


def _rep(base: str | None):
    def rule(args):
        x, sizes = args[0], args[1:]
        shape = tuple(s.value for s in sizes)
        elem_base = base or (x.base if x.base != "bool" else "int")
        if base == "real" and x.rank not in (0, None):
            raise B.TypeProblem(f"rep_vector() repeats a single number, found {B.describe(x)}",
                                "To repeat an array, use rep_array(x, n).")
        if x.rank is None:
            return B.Ty(elem_base, None)
        xs = x.shape if x.shape is not None else (None,) * x.rank
        return B.Ty(elem_base, len(sizes) + x.rank, shape + tuple(xs))

    return rule


_UNARY = {
    "log10": "base-10 logarithm",
    "log2": "base-2 logarithm",
    "exp2": "2 to the power x",
    "log1m": "log(1 - x), accurate near 0",
    "log1p_exp": "log(1 + exp(x)) (softplus), computed stably",
    "log1m_exp": "log(1 - exp(x)) for x < 0, computed stably",
    "inv_logit": "1 / (1 + exp(-x)) (the same as logistic)",
    "log_inv_logit": "log(inv_logit(x)), computed stably",
    "log1m_inv_logit": "log(1 - inv_logit(x)), computed stably",
    "inv_cloglog": "1 - exp(-exp(x)), the inverse of the complementary log-log link",
    "Phi": "the standard normal cumulative distribution function",
    "Phi_approx": "a logistic approximation of Phi: inv_logit(0.07056 x^3 + 1.5976 x)",
    "inv_Phi": "the standard normal quantile function (the inverse of Phi)",
    "tgamma": "the Gamma function",
    "trigamma": "the second derivative of lgamma",
    "erfc": "complementary error function, 1 - erf(x)",
    "fabs": "absolute value (as a real)",
    "cbrt": "cube root",
    "inv": "1 / x",
    "inv_sqrt": "1 / sqrt(x)",
    "inv_square": "1 / x^2",
    "step": "0 if x < 0, else 1 (so step(0) is 1), as a real",
}

_BINARY = {
    "log_diff_exp": "log(exp(x) - exp(y)) for x >= y, computed stably",
    "lbeta": "log of the Beta function, lgamma(a) + lgamma(b) - lgamma(a + b)",
    "lchoose": "log of the binomial coefficient: log(n choose k) (real n and k allowed)",
    "binomial_coefficient_log": "the same as lchoose(n, k)",
    "fmin": "minimum of x and y",
    "fmax": "maximum of x and y",
    "hypot": "sqrt(x^2 + y^2), without overflow",
    "fmod": "the remainder of x / y, with the sign of x",
}


def _fn(name, args, result, doc, **kw):
    return name, B.Builtin(name, tuple(args), result, doc, **kw)


STAN_FUNCTIONS: dict[str, B.Builtin] = dict(
    [_fn(n, ["num"], _elementwise, f"elementwise {d}") for n, d in _UNARY.items()]
    + [_fn(n, ["num", "num"], _elementwise, f"elementwise {d}") for n, d in _BINARY.items()]
    + [
        _fn("int_step", ["num"], _int_result, "elementwise 1 if x > 0, else 0 (so int_step(0) is 0), as an integer"),
        _fn("fma", ["num", "num", "num"], _elementwise, "elementwise x * y + z (fused multiply-add)"),
        _fn("log_sum_exp", ["num", "num"], _log_sum_exp,
            "log_sum_exp(x): log(sum(exp(x))) over all elements; log_sum_exp(x, y): elementwise "
            "log(exp(x) + exp(y)); computed stably", optional=1),
        _fn("cumulative_sum", ["num"], B._vector_op, "cumulative sums over the first axis (the same as cumsum)"),
        _fn("dot_product", ["num", "num"], B._dot, "inner product of two vectors (the same as dot)"),
        _fn("dot_self", ["num"], _dot_self, "dot_product(x, x), the sum of squares of a vector"),
        _fn("rep_vector", ["num", "int"], _rep("real"), "rep_vector(x, n): a vector of n copies of the number x"),
        _fn("rep_array", ["num", "int"], _rep(None),
            "rep_array(x, n), rep_array(x, n, m): an array of copies of x (x may be an array)", rest="int"),
    ]
)

#: names whose value is not elementwise in their arguments (so a loop using them cannot be one vectorised plate)
REDUCTIONS = frozenset({"log_sum_exp", "cumulative_sum", "dot_product", "dot_self", "rep_vector", "rep_array"})


def register(functions: dict) -> None:
    """Add the Stan names to ``functions`` (``builtins.FUNCTIONS``); an existing name is never replaced."""
    clash = sorted(set(STAN_FUNCTIONS) & set(functions))
    if clash:
        raise RuntimeError(f"Stan builtins defined twice: {clash}")
    functions.update(STAN_FUNCTIONS)

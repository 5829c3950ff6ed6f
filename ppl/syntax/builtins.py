"""The names a .ppl program can use without defining them: functions,
distributions, supports (for ``flat``) and constants, with their arities and
result types.

This table is the single source of truth for the checker, for the language
reference (docs/language.md lists exactly these names; a test keeps them in
sync) and for the evaluator that maps each name to its implementation. It
holds names and types only: no implementation, no JAX.

The static types (``Ty``) are deliberately coarse: a base (``int``, ``real``,
``bool``, ``string``, ``dist``, ``fun``, ``model``, ``unknown``), a rank (number of
array dimensions, None when unknown) and, when known from data, the sizes.
A rule that finds a misuse raises ``TypeProblem`` with a message in words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

__all__ = [
    "Ty", "TypeProblem", "UNKNOWN", "INT", "REAL", "BOOL", "STRING",
    "Builtin", "Distribution", "Support",
    "FUNCTIONS", "DISTRIBUTIONS", "SUPPORTS", "CONSTANTS", "TYPE_NAMES", "TYPE_ALIASES",
    "NUMERIC", "describe", "broadcast_shapes", "dist_ty", "fun_ty",
]

NUMERIC = ("int", "real", "bool", "unknown")


class TypeProblem(Exception):
    """Raised by a type rule; the checker turns it into a CheckError at the call."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Ty:
    """A static type: ``base``, ``rank`` (None: unknown) and ``shape`` (sizes, None: unknown).

    Functions carry ``arity`` (min, max; max None for variadic); distributions
    carry ``elem``, the type of one draw; data integers may carry their ``value``.
    """

    base: str
    rank: int | None = 0
    shape: tuple[int | None, ...] | None = None
    arity: tuple[int, int | None] | None = None
    elem: "Ty | None" = None
    value: int | None = None
    improper: bool = False  # a flat distribution

    @property
    def is_numeric(self) -> bool:
        return self.base in NUMERIC

    def with_rank(self, rank: int | None, shape=None) -> "Ty":
        return replace(self, rank=rank, shape=shape, value=None)


UNKNOWN = Ty("unknown", None)
INT = Ty("int")
REAL = Ty("real")
BOOL = Ty("bool")
STRING = Ty("string")


def dist_ty(elem: Ty, improper: bool = False) -> Ty:
    return Ty("dist", 0, elem=elem, improper=improper)


def fun_ty(lo: int, hi: int | None) -> Ty:
    return Ty("fun", 0, arity=(lo, hi))


def describe(ty: Ty) -> str:
    """A type in words: 'a real number', 'an array of integers of shape (8,)', ..."""
    if ty.base == "dist":
        return "a distribution"
    if ty.base in ("fun", "model"):
        return "a function" if ty.base == "fun" else "a model"
    if ty.base == "constraint":
        return "a support"
    if ty.base == "unknown" and ty.rank is None:
        return "a value"
    scalar = {
        "int": "an integer", "real": "a real number", "bool": "a boolean",
        "string": "a string", "unknown": "a value",
    }[ty.base]
    if ty.rank in (0, None):
        return scalar
    plural = {
        "int": "integers", "real": "reals", "bool": "booleans",
        "string": "strings", "unknown": "values",
    }[ty.base]
    kind = "an array" if ty.rank == 1 else ("a matrix" if ty.rank == 2 else f"a rank-{ty.rank} array")
    text = f"{kind} of {plural}"
    if ty.shape is not None and all(s is not None for s in ty.shape):
        text += f" of shape {_fmt_shape(ty.shape)}"
    return text


def _fmt_shape(shape) -> str:
    inner = ", ".join("?" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def broadcast_shapes(a, b):
    """The broadcast of two shapes (entries None when unknown); TypeProblem if they clash."""
    if a is None or b is None:
        return None
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x is not None and y is not None:
            if x != y and 1 not in (x, y):
                raise TypeProblem(f"shapes {_fmt_shape(a)} and {_fmt_shape(b)} do not broadcast together")
            out.append(y if x == 1 else x)
        else:
            known = x if x is not None else y
            out.append(known if known not in (None, 1) else None)
    return tuple(reversed(out))


def _join_base(*bases: str) -> str:
    if "unknown" in bases:
        return "unknown"
    if "real" in bases:
        return "real"
    return "int"


def broadcast(args: list[Ty], base: str | None = None) -> Ty:
    """Elementwise result of ``args``: rank the largest, sizes broadcast."""
    ranks = [a.rank for a in args]
    rank = None if any(r is None for r in ranks) else max(ranks, default=0)
    shape = None
    if rank is not None:
        shape = ()
        for a in args:
            s = a.shape if a.shape is not None else (None,) * (a.rank or 0)
            shape = broadcast_shapes(shape, s)
    if base is None:
        base = _join_base(*[a.base for a in args])
    return Ty(base, rank, shape)


# ----------------------------------------------------------------- type rules


def _elementwise(args):
    return broadcast(args, "real" if all(a.base != "unknown" for a in args) else "unknown")


def _keep(args):
    a = args[0]
    return Ty(a.base if a.base != "bool" else "int", a.rank, a.shape)


def _keep_real(args):
    a = args[0]
    return Ty("real" if a.base != "unknown" else "unknown", a.rank, a.shape)


def _vector_op(args):
    a = args[0]
    if a.rank == 0:
        raise TypeProblem(f"expected an array, found {describe(a)}")
    return _keep_real(args)


def _reduce(args):
    a = args[0]
    base = "real" if a.base == "real" else ("int" if a.base in ("int", "bool") else "unknown")
    if len(args) > 1:
        if a.rank is None:
            return Ty(base, None)
        if a.rank == 0:
            raise TypeProblem("an axis was given, but the value is a scalar")
        return Ty(base, a.rank - 1)
    return Ty(base, 0)


def _reduce_real(args):
    t = _reduce(args)
    return replace(t, base="real" if t.base != "unknown" else "unknown")


def _min_max(args):
    if len(args) == 2:
        return broadcast(args)
    return _reduce([args[0]])


def _len(args):
    a = args[0]
    if a.rank == 0:
        raise TypeProblem(f"len() needs an array, found {describe(a)}")
    return INT


def _sizes(n_skip: int, base: str):
    def rule(args):
        sizes = args[n_skip:]
        shape = tuple(s.value for s in sizes)
        return Ty(base if base != "first" else args[0].base, len(sizes), shape)

    return rule


def _arange(args):
    return Ty("int", 1)


def _linspace(args):
    return Ty("real", 1, (args[2].value,))


def _dot(args):
    a, b = args
    if a.rank not in (None, 1) or b.rank not in (None, 1):
        raise TypeProblem("dot() takes two arrays of rank 1; use matmul (@) for matrices")
    if a.shape and b.shape and None not in (a.shape[0], b.shape[0]) and a.shape != b.shape:
        raise TypeProblem(f"dot() of arrays of lengths {a.shape[0]} and {b.shape[0]}")
    return REAL


def matmul_rule(args):
    a, b = args
    if a.rank == 0 or b.rank == 0:
        raise TypeProblem("'@' multiplies arrays (vectors or matrices); use '*' to multiply by a number")
    if a.rank is None or b.rank is None:
        return Ty("real", None)
    if a.shape is not None and b.shape is not None:
        inner_a = a.shape[-1]
        inner_b = b.shape[0] if b.rank == 1 else b.shape[-2]
        if None not in (inner_a, inner_b) and inner_a != inner_b:
            raise TypeProblem(
                f"matrix product of shapes {_fmt_shape(a.shape)} and {_fmt_shape(b.shape)}: "
                f"the inner sizes {inner_a} and {inner_b} differ"
            )
    rank = {(1, 1): 0, (2, 1): 1, (1, 2): 1}.get((a.rank, b.rank), max(a.rank, b.rank))
    shape = None
    if a.shape is not None and b.shape is not None:
        shape = tuple(a.shape[:-1]) + (tuple(b.shape[-1:]) if b.rank >= 2 else ())
        shape = shape if len(shape) == rank else None
    return Ty("real", rank, shape)


def _matrix_arg(args):
    a = args[0]
    if a.rank not in (None, 2):
        raise TypeProblem(f"expected a matrix, found {describe(a)}")
    return Ty("real", 2, a.shape)


def _transpose(args):
    a = args[0]
    if a.rank not in (None, 2):
        raise TypeProblem(f"transpose() needs a matrix, found {describe(a)}")
    return Ty("real", 2, tuple(reversed(a.shape)) if a.shape else None)


def _diag(args):
    a = args[0]
    if a.rank == 1:
        n = a.shape[0] if a.shape else None
        return Ty("real", 2, (n, n))
    if a.rank == 2:
        return Ty("real", 1)
    if a.rank == 0:
        raise TypeProblem(f"diag() needs a vector or a matrix, found {describe(a)}")
    return Ty("real", None)


def _eye(args):
    n = args[0].value
    return Ty("real", 2, (n, n))


def _sq_dist(args):
    a, b = args
    for x in (a, b):
        if x.rank not in (None, 1):
            raise TypeProblem(f"sq_dist() takes two vectors of points, found {describe(x)}")
    na = a.shape[0] if a.shape else None
    nb = b.shape[0] if b.shape else None
    return Ty("real", 2, (na, nb))


def _concat(args):
    ranks = {a.rank for a in args if a.rank is not None}
    if 0 in ranks:
        raise TypeProblem("concat() joins arrays; wrap single values in brackets, e.g. concat(x, [y])")
    base = _join_base(*[a.base if a.base != "bool" else "int" for a in args])
    return Ty(base, ranks.pop() if len(ranks) == 1 else None)


def _to(base):
    def rule(args):
        a = args[0]
        return Ty(base, a.rank, a.shape)

    return rule


def _where(args):
    return broadcast(args[1:])


def _log_density(args):
    d, x = args
    return Ty("real", 0 if x.rank == 0 else None)


def _sample(args):
    d = args[0]
    if d.base == "dist" and d.improper:
        raise TypeProblem(
            "flat(...) is an improper prior: it has no draws",
            "Use flat only as the prior of a named random choice: x ~ flat(positive).",
        )
    if d.base == "dist" and d.elem is not None:
        return d.elem
    return UNKNOWN


def _flip(args):
    if not args:
        return BOOL
    return Ty("bool", args[0].rank, args[0].shape)


def _same_as_first(args):
    return args[0]


def _map(args):
    xs = args[1]
    return Ty("unknown", xs.rank if xs.rank is not None else None)


def _fold(args):
    return Ty(args[1].base, args[1].rank, args[1].shape) if args[1].base != "bool" else UNKNOWN


def _ode(args):
    y0, ts = args[1], args[3]
    for name, a in (("y0", y0), ("ts", ts)):
        if a.rank not in (None, 1):
            raise TypeProblem(f"ode_rk45's {name} must be a vector, found {describe(a)}")
    n = ts.shape[0] if ts.shape else None
    k = y0.shape[0] if y0.shape else None
    return Ty("real", 2, (n, k))


def _iid(args):
    d = args[0]
    sizes = tuple(a.value for a in args[1:])
    elem = d.elem if d.base == "dist" and d.elem is not None else UNKNOWN
    if elem.rank is None:
        return dist_ty(Ty(elem.base, None), d.improper)
    shape = sizes + (elem.shape if elem.shape is not None else (None,) * elem.rank)
    return dist_ty(Ty(elem.base, len(sizes) + elem.rank, shape), d.improper)


# -------------------------------------------------------------------- functions


@dataclass(frozen=True)
class Builtin:
    """A builtin function: ``args`` are the kinds of the positional arguments
    (``num``: a number or array; ``int``: a single integer (a size); ``dist``;
    ``fun``: a function value; ``any``), ``rest`` the kind of extra arguments.
    ``pure``: calling it for nothing but its value (as a statement) is a mistake.
    ``fun_arity``: for a ``fun`` argument, how many arguments it must take."""

    name: str
    args: tuple[str, ...]
    result: Callable[[list[Ty]], Ty]
    doc: str
    optional: int = 0  # how many of the trailing ``args`` may be left out
    rest: str | None = None
    pure: bool = True
    fun_arity: int | None = None

    @property
    def arity(self) -> tuple[int, int | None]:
        lo = len(self.args) - self.optional
        return lo, None if self.rest else len(self.args)


def _b(name, args, result, doc, **kw):
    return name, Builtin(name, tuple(args), result, doc, **kw)


_UNARY_MATH = {
    "exp": "e to the power x", "log": "natural logarithm", "sqrt": "square root",
    "log1p": "log(1 + x), accurate near 0", "expm1": "exp(x) - 1, accurate near 0",
    "sin": "sine", "cos": "cosine", "tan": "tangent", "asin": "inverse sine",
    "acos": "inverse cosine", "atan": "inverse tangent", "sinh": "hyperbolic sine",
    "cosh": "hyperbolic cosine", "tanh": "hyperbolic tangent",
    "logistic": "1 / (1 + exp(-x)) (the inverse logit)", "logit": "log(x / (1 - x))",
    "log_logistic": "log(logistic(x)), accurate for large |x|",
    "lgamma": "log |Gamma(x)|", "digamma": "derivative of lgamma", "erf": "error function",
    "square": "x * x", "floor": "largest integer value <= x (as a real)",
    "ceil": "smallest integer value >= x (as a real)", "round": "nearest integer value (as a real)",
}

FUNCTIONS: dict[str, Builtin] = dict(
    [_b(n, ["num"], _elementwise, f"elementwise {d}") for n, d in _UNARY_MATH.items()]
    + [
        _b("abs", ["num"], _keep, "elementwise absolute value (keeps integers integer)"),
        _b("pow", ["num", "num"], _elementwise, "elementwise x to the power y (same as x ^ y)"),
        _b("atan2", ["num", "num"], _elementwise, "elementwise angle of the point (x, y): atan2(y, x)"),
        _b("sum", ["num", "int"], _reduce, "sum of all elements, or along axis a: sum(x, a)", optional=1),
        _b("prod", ["num", "int"], _reduce, "product of all elements, or along an axis", optional=1),
        _b("mean", ["num", "int"], _reduce_real, "mean of all elements, or along an axis", optional=1),
        _b("sd", ["num"], _reduce_real, "standard deviation of all elements (divides by n - 1)"),
        _b("variance", ["num"], _reduce_real, "variance of all elements (divides by n - 1)"),
        _b("min", ["num", "num"], _min_max, "min(x): the smallest element; min(x, y): elementwise", optional=1),
        _b("max", ["num", "num"], _min_max, "max(x): the largest element; max(x, y): elementwise", optional=1),
        _b("logsumexp", ["num", "int"], _reduce_real,
           "log(sum(exp(x))) computed stably; logsumexp(x, a) along axis a", optional=1),
        _b("any", ["num"], lambda a: BOOL, "true if any element is true"),
        _b("all", ["num"], lambda a: BOOL, "true if every element is true"),
        _b("softmax", ["num"], _vector_op, "exp(x) / sum(exp(x)) over the last axis"),
        _b("log_softmax", ["num"], _vector_op, "x - logsumexp(x) over the last axis"),
        _b("cumsum", ["num"], _vector_op, "cumulative sums over the first axis"),
        _b("reverse", ["num"], _vector_op, "the elements in reverse order (first axis)"),
        _b("sort", ["num"], _vector_op, "the elements in increasing order"),
        _b("dot", ["num", "num"], _dot, "inner product of two vectors"),
        _b("matmul", ["num", "num"], matmul_rule, "matrix product (same as A @ B)"),
        _b("transpose", ["num"], _transpose, "the transpose of a matrix"),
        _b("cholesky", ["num"], _matrix_arg,
           "lower-triangular Cholesky factor L of a positive-definite matrix (L @ transpose(L) = A)"),
        _b("diag", ["num"], _diag, "diag(v): the diagonal matrix of v; diag(M): the diagonal of M"),
        _b("eye", ["int"], _eye, "the n x n identity matrix"),
        _b("add_diag", ["num", "num"], lambda a: _matrix_arg(a[:1]), "M with v (a number or vector) added to its diagonal"),
        _b("sq_dist", ["num", "num"], _sq_dist,
           "the matrix of squared differences (x[i] - y[j])^2 between two vectors of points"),
        _b("len", ["any"], _len, "the length of an array (its first dimension)"),
        _b("zeros", ["int"], _sizes(0, "real"), "an array of zeros: zeros(n), zeros(n, m)", rest="int"),
        _b("ones", ["int"], _sizes(0, "real"), "an array of ones: ones(n), ones(n, m)", rest="int"),
        _b("fill", ["num", "int"], _sizes(1, "first"), "an array of copies of a value: fill(x, n), fill(x, n, m)",
           rest="int"),
        _b("arange", ["int", "int"], _arange, "arange(n) is [0, 1, ..., n-1]; arange(a, b) is [a, ..., b-1]",
           optional=1),
        _b("linspace", ["num", "num", "int"], _linspace, "linspace(a, b, n): n evenly spaced reals from a to b"),
        _b("concat", ["num", "num"], _concat, "the arrays joined along the first axis", rest="num"),
        _b("to_int", ["num"], _to("int"), "elementwise conversion to integer (rounds toward zero)"),
        _b("to_real", ["num"], _to("real"), "elementwise conversion to real (true -> 1.0)"),
        _b("where", ["num", "num", "num"], _where, "where(c, a, b): elementwise a where c is true, else b"),
        _b("clip", ["num", "num", "num"], lambda a: _keep(a[:1]), "clip(x, lo, hi): x limited to [lo, hi]"),
        _b("log_density", ["dist", "num"], _log_density,
           "log_density(d, x): the log density (or log mass) of d at x, elementwise over a batch"),
        _b("sample", ["dist"], _sample, "an anonymous random draw from a distribution (an expression)",
           pure=False),
        _b("flip", ["num"], _flip, "a random boolean that is true with probability p (default 0.5)",
           optional=1, pure=False),
        _b("mem", ["fun"], _same_as_first,
           "stochastic memoisation: mem(f) returns the same value for the same arguments", pure=False),
        _b("map", ["fun", "any"], _map, "map(f, xs): [f(xs[0]), f(xs[1]), ...]", pure=False, fun_arity=1),
        _b("fold", ["fun", "any", "any"], _fold, "fold(f, init, xs): f(...f(f(init, xs[0]), xs[1])..., xs[n-1])",
           pure=False, fun_arity=2),
        _b("iid", ["dist", "int"], _iid,
           "iid(d, n): n independent draws of d as one random choice (iid(d, n, m) for a matrix)", rest="int"),
        _b("ode_rk45", ["fun", "num", "num", "num", "any", "num", "num"], _ode,
           "ode_rk45(f, y0, t0, ts, params [, rtol, atol]): the solution of dy/dt = f(t, y, params), "
           "y(t0) = y0, at the times ts (a matrix, one row per time; adaptive Runge-Kutta 4(5), "
           "default rtol 1e-6, atol 1e-6)",
           optional=2, pure=False, fun_arity=3),
    ]
)

#: builtin constants
CONSTANTS: dict[str, Ty] = {"pi": REAL, "inf": REAL}


# ---------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Distribution:
    """A distribution constructor: ``name(params...)`` builds ``ppl.stdlib.distributions.<cls>``.

    ``params`` are the class's keyword names, in the order the language takes
    them; ``value`` is the base type of a draw; ``event_rank`` the rank of one
    draw of a single distribution (1 for a vector-valued one)."""

    name: str
    cls: str
    params: tuple[str, ...]
    value: str
    doc: str
    event_rank: int = 0

    @property
    def arity(self) -> tuple[int, int | None]:
        return len(self.params), len(self.params)

    def result(self, args: list[Ty]) -> Ty:
        """The type of this distribution applied to ``args`` (a ``dist`` Ty with ``elem``)."""
        if self.event_rank == 0:
            b = broadcast(args, self.value)
            return dist_ty(Ty(self.value, b.rank, b.shape))
        first = args[0]
        if self.name.startswith("multi_normal"):
            loc, mat = args
            if mat.rank is not None and mat.rank < 2:
                raise TypeProblem(
                    f"{self.name}'s {self.params[1]} must be a matrix, found {describe(mat)}")
            if loc.rank is None or mat.rank is None:
                return dist_ty(Ty("real", None))
            if loc.rank >= 1:
                return dist_ty(Ty("real", loc.rank, loc.shape))
            n = mat.shape[-1] if mat.shape else None
            return dist_ty(Ty("real", mat.rank - 1, (None,) * (mat.rank - 2) + (n,)))
        if first.rank is None:
            return dist_ty(Ty(self.value, None))
        if first.rank == 0:
            raise TypeProblem(f"{self.name}'s {self.params[0]} must be a vector, found {describe(first)}")
        if self.value == "int":  # categorical: one index per vector of probabilities
            return dist_ty(Ty("int", first.rank - 1, first.shape[:-1] if first.shape else None))
        return dist_ty(Ty(self.value, first.rank, first.shape))


def _d(name, cls, params, value, doc, event_rank=0):
    return name, Distribution(name, cls, tuple(params), value, doc, event_rank)


DISTRIBUTIONS: dict[str, Distribution] = dict([
    _d("normal", "Normal", ["loc", "scale"], "real", "normal with mean loc and standard deviation scale"),
    _d("half_normal", "HalfNormal", ["scale"], "real", "|x| for x ~ normal(0, scale); on (0, inf)"),
    _d("cauchy", "Cauchy", ["loc", "scale"], "real", "Cauchy with location loc and scale"),
    _d("half_cauchy", "HalfCauchy", ["scale"], "real", "|x| for x ~ cauchy(0, scale); on (0, inf)"),
    _d("student_t", "StudentT", ["df", "loc", "scale"], "real", "Student's t with df degrees of freedom"),
    _d("lognormal", "LogNormal", ["loc", "scale"], "real", "exp(x) for x ~ normal(loc, scale)"),
    _d("exponential", "Exponential", ["rate"], "real", "exponential with rate (mean 1 / rate)"),
    _d("gamma", "Gamma", ["concentration", "rate"], "real", "gamma with shape and rate (mean shape / rate)"),
    _d("inverse_gamma", "InverseGamma", ["concentration", "rate"], "real",
       "1 / x for x ~ gamma(concentration, rate)"),
    _d("beta", "Beta", ["concentration1", "concentration0"], "real", "beta on (0, 1): beta(a, b)"),
    _d("uniform", "Uniform", ["low", "high"], "real", "uniform on (low, high)"),
    _d("bernoulli", "Bernoulli", ["probs"], "int", "1 with probability probs, else 0"),
    _d("bernoulli_logit", "Bernoulli", ["logits"], "int", "bernoulli(logistic(logits))"),
    _d("binomial", "Binomial", ["total_count", "probs"], "int", "number of successes in total_count trials"),
    _d("binomial_logit", "Binomial", ["total_count", "logits"], "int", "binomial(n, logistic(logits))"),
    _d("categorical", "Categorical", ["probs"], "int",
       "an index 0..K-1 drawn with the probabilities in the vector probs", event_rank=1),
    _d("categorical_logit", "Categorical", ["logits"], "int", "categorical(softmax(logits))",
       event_rank=1),
    _d("poisson", "Poisson", ["rate"], "int", "Poisson counts with mean rate"),
    _d("negative_binomial", "NegativeBinomial", ["total_count", "probs"], "int",
       "number of failures before the total_count-th success, success probability probs"),
    _d("geometric", "Geometric", ["probs"], "int", "number of failures before the first success"),
    _d("dirichlet", "Dirichlet", ["concentration"], "real", "a random simplex (a probability vector)",
       event_rank=1),
    _d("multi_normal", "MultivariateNormal", ["loc", "covariance_matrix"], "real",
       "multivariate normal with mean vector loc and covariance matrix", event_rank=1),
    _d("multi_normal_cholesky", "MultivariateNormal", ["loc", "scale_tril"], "real",
       "multivariate normal with covariance L @ transpose(L), L lower triangular", event_rank=1),
])

#: ``flat(support, sizes...)`` is special: its first argument is a support, not a value.
FLAT_DOC = (
    "flat(support) or flat(support, n, ...): the improper uniform prior over a support "
    "(ppl.stdlib.distributions.Flat); only as the prior of a named random choice"
)


# --------------------------------------------------------------------- supports


@dataclass(frozen=True)
class Support:
    """A support (``ppl.stdlib.constraints`` name) for ``flat``: ``args`` how many
    bounds it takes; ``min_rank`` how many sizes ``flat`` must be given with it."""

    name: str
    args: tuple[str, ...]
    doc: str
    min_rank: int = 0
    value: str = "real"


SUPPORTS: dict[str, Support] = {
    s.name: s
    for s in [
        Support("real", (), "all reals"),
        Support("positive", (), "(0, inf)"),
        Support("nonnegative", (), "[0, inf)"),
        Support("unit_interval", (), "(0, 1)"),
        Support("interval", ("lower", "upper"), "(lower, upper); the bounds may depend on other variables"),
        Support("greater_than", ("lower",), "(lower, inf)"),
        Support("less_than", ("upper",), "(-inf, upper)"),
        Support("simplex", (), "vectors of positive entries summing to 1 (needs a size)", min_rank=1),
        Support("ordered", (), "strictly increasing vectors (needs a size)", min_rank=1),
        Support("positive_ordered", (), "strictly increasing positive vectors (needs a size)", min_rank=1),
        Support("positive_definite", (), "symmetric positive-definite matrices (needs n, n)", min_rank=2),
        Support("lower_cholesky", (), "lower-triangular matrices with a positive diagonal (needs n, n)",
                min_rank=2),
    ]
}

#: the base types of annotations, and common names users write for them
TYPE_NAMES = ("int", "real", "bool")
TYPE_ALIASES = {
    "float": "real", "double": "real", "number": "real", "integer": "int", "long": "int",
    "boolean": "bool", "vector": "real[]", "matrix": "real[,]", "array": "real[]",
}


# the functions of Stan's math library, by their Stan names (one hook; see builtins_stan.py)
from .builtins_stan import register as _register_stan  # noqa: E402

_register_stan(FUNCTIONS)

# distribution functions (normal_lcdf, ...), truncated, ode_bdf (one hook; see builtins_dist.py)
from .builtins_dist import register as _register_dist  # noqa: E402

_register_dist(FUNCTIONS)

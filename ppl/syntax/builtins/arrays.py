"""Builtin functions of whole arrays: linear algebra, orderings, and building arrays.

None of them is elementwise (a loop using one runs as a scan, not a vectorised plate).
Sizes (``zeros(n)``, ``eye(n)``, ...) must be known when the model is built: a size
known only at run time is a ``TypeError`` that the evaluator reports as dynamic.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ppl.stdlib import jax_compat as jc
from ppl.stdlib.constraint_base import format_concrete
from ppl.stdlib.constraints import symmetric_now_or_nan
from ppl.stdlib.errors import ModelError

from .math import vector_op
from .registry import Builtin, table
from .types import INT, REAL, Ty, TypeProblem, describe, fmt_shape, join_base

__all__ = ["ARRAY_FUNCTIONS", "matmul_rule", "dot_rule", "sizes", "length"]


# ----------------------------------------------------------------- type rules


def _len_rule(args):
    a = args[0]
    if a.rank == 0:
        raise TypeProblem(f"len() needs an array, found {describe(a)}")
    return INT


def _sizes_rule(n_skip: int, base: str):
    def rule(args):
        sizes = args[n_skip:]
        shape = tuple(s.value for s in sizes)
        return Ty(base if base != "first" else args[0].base, len(sizes), shape)

    return rule


def dot_rule(args):
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
                f"matrix product of shapes {fmt_shape(a.shape)} and {fmt_shape(b.shape)}: "
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


def _transpose_rule(args):
    a = args[0]
    if a.rank not in (None, 2):
        raise TypeProblem(f"transpose() needs a matrix, found {describe(a)}")
    return Ty("real", 2, tuple(reversed(a.shape)) if a.shape else None)


def _diag_rule(args):
    a = args[0]
    if a.rank == 1:
        n = a.shape[0] if a.shape else None
        return Ty("real", 2, (n, n))
    if a.rank == 2:
        return Ty("real", 1)
    if a.rank == 0:
        raise TypeProblem(f"diag() needs a vector or a matrix, found {describe(a)}")
    return Ty("real", None)


def _eye_rule(args):
    n = args[0].value
    return Ty("real", 2, (n, n))


def _sq_dist_rule(args):
    a, b = args
    for x in (a, b):
        if x.rank not in (None, 1):
            raise TypeProblem(f"sq_dist() takes two vectors of points, found {describe(x)}")
    na = a.shape[0] if a.shape else None
    nb = b.shape[0] if b.shape else None
    return Ty("real", 2, (na, nb))


def _concat_rule(args):
    ranks = {a.rank for a in args if a.rank is not None}
    if 0 in ranks:
        raise TypeProblem("concat() joins arrays; wrap single values in brackets, e.g. concat(x, [y])")
    base = join_base(*[a.base if a.base != "bool" else "int" for a in args])
    return Ty(base, ranks.pop() if len(ranks) == 1 else None)


# ------------------------------------------------------------ implementations


def sizes(*ns):
    """Sizes as Python ints; a size known only when the model runs is a TypeError."""
    out = []
    for n in ns:
        if jc.is_tracer(n):
            raise TypeError("a size must be an integer known when the model is called (an int argument, "
                            "a literal or a length), not a value computed as the model runs")
        if np.ndim(n) != 0 or float(n) != int(n):  # 2.5 would become 2 without a word
            raise ModelError(f"a size must be a whole number, but it is {format_concrete(n, 4)}",
                             hint="Round it yourself (round(n), floor(n)) or pass an integer.")
        out.append(int(n))
    return tuple(out)


def length(x):
    """The length of an array or a list of names (its first dimension)."""
    if isinstance(x, (list, tuple, str)):
        return len(x)
    return int(jnp.shape(x)[0])


def _add_diag(m, v):
    m = jnp.asarray(m)
    return m + jnp.eye(m.shape[-1], dtype=m.dtype) * v


def _sq_dist(x, y):
    x, y = jnp.asarray(x), jnp.asarray(y)
    return (x[:, None] - y[None, :]) ** 2


def _arange(a, b=None):
    return jnp.arange(*sizes(a)) if b is None else jnp.arange(*sizes(a, b))


def _concat(*xs):
    return jnp.concatenate([jnp.atleast_1d(jnp.asarray(x)) for x in xs])


# ---------------------------------------------------------------- the entries


def as_number(x):
    """A boolean as the integer 0 or 1 (arrays elementwise), as .ppl arithmetic reads it; anything
    else unchanged."""
    if isinstance(x, (bool, np.bool_)):
        return int(x)
    dtype = getattr(x, "dtype", None)
    if dtype is not None and np.dtype(dtype) == np.bool_:
        return x.astype(jnp.result_type(int)) if isinstance(x, np.ndarray) else jnp.asarray(x, jnp.result_type(int))
    return x


def product(op):
    """``op`` (an inner or matrix product) on booleans counted as 0 and 1 (``dot(y > 0, y > 0)`` counts)."""
    return lambda a, b: op(as_number(a), as_number(b))


def _a(name, args, rule, doc, impl, **kw):
    return Builtin(name, tuple(args), rule, doc, impl, elementwise=False, **kw)


ARRAY_FUNCTIONS: dict[str, Builtin] = table([
    _a("cumsum", ["num"], vector_op, "cumulative sums over the first axis", lambda x: jnp.cumsum(x, axis=0)),
    _a("reverse", ["num"], vector_op, "the elements in reverse order (first axis)", lambda x: jnp.flip(x, axis=0)),
    _a("sort", ["num"], vector_op, "the elements in increasing order", lambda x: jnp.sort(x, axis=-1)),
    _a("dot", ["num", "num"], dot_rule, "inner product of two vectors", product(jnp.dot)),
    _a("matmul", ["num", "num"], matmul_rule, "matrix product (same as A @ B)", product(jnp.matmul)),
    _a("transpose", ["num"], _transpose_rule, "the transpose of a matrix", lambda m: jnp.swapaxes(m, -1, -2)),
    _a("cholesky", ["num"], _matrix_arg,
       "lower-triangular Cholesky factor L of a positive-definite matrix (L @ transpose(L) = A)",
       lambda m: jnp.linalg.cholesky(symmetric_now_or_nan(m, "cholesky's matrix"))),
    _a("diag", ["num"], _diag_rule, "diag(v): the diagonal matrix of v; diag(M): the diagonal of M",
       lambda x: jnp.diag(x)),
    _a("eye", ["int"], _eye_rule, "the n x n identity matrix", lambda n: jnp.eye(*sizes(n))),
    _a("add_diag", ["num", "num"], lambda a: _matrix_arg(a[:1]), "M with v (a number or vector) added to its diagonal",
       _add_diag),
    _a("sq_dist", ["num", "num"], _sq_dist_rule,
       "the matrix of squared differences (x[i] - y[j])^2 between two vectors of points", _sq_dist),
    _a("len", ["any"], _len_rule, "the length of an array (its first dimension)", length),
    _a("zeros", ["int"], _sizes_rule(0, "real"), "an array of zeros: zeros(n), zeros(n, m)",
       lambda *n: jnp.zeros(sizes(*n)), rest="int"),
    _a("ones", ["int"], _sizes_rule(0, "real"), "an array of ones: ones(n), ones(n, m)",
       lambda *n: jnp.ones(sizes(*n)), rest="int"),
    _a("fill", ["num", "int"], _sizes_rule(1, "first"), "an array of copies of a value: fill(x, n), fill(x, n, m)",
       lambda x, *n: jnp.full(sizes(*n), x), rest="int"),
    _a("arange", ["int", "int"], lambda a: Ty("int", 1),
       "arange(n) is [0, 1, ..., n-1]; arange(a, b) is [a, ..., b-1]", _arange, optional=1),
    _a("linspace", ["num", "num", "int"], lambda a: Ty("real", 1, (a[2].value,)),
       "linspace(a, b, n): n evenly spaced reals from a to b", lambda a, b, n: jnp.linspace(a, b, *sizes(n))),
    _a("concat", ["num", "num"], _concat_rule, "the arrays joined along the first axis", _concat, rest="num"),
])

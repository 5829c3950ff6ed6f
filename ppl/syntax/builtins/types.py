"""The static types of the .ppl language (``Ty``) and the words the checker uses for them.

The types are deliberately coarse: a base (``int``, ``real``, ``bool``, ``string``,
``dist``, ``fun``, ``model``, ``unknown``), a rank (number of array dimensions, None
when unknown) and, when known from data, the sizes. A type rule that finds a misuse
raises ``TypeProblem`` with a message in words; the checker turns it into an error at
the call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "Ty", "TypeProblem", "UNKNOWN", "INT", "REAL", "BOOL", "STRING", "NUMERIC", "BOOL_INDEX_HINT",
    "describe", "broadcast_shapes", "broadcast", "join_base", "dist_ty", "fun_ty", "fmt_shape",
    "TYPE_NAMES", "TYPE_ALIASES",
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

#: what to write instead of a boolean index (NumPy would read one as a mask: ``x[true]`` is all of
#: ``x`` with a new axis, ``x[false]`` none of it), said by the checker and the evaluator alike
BOOL_INDEX_HINT = ("Booleans count as 0/1 in arithmetic, but not as indices: write to_int(b) for element "
                   "0 or 1, or choose with 'if b then x[1] else x[0]'.")


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
        text += f" of shape {fmt_shape(ty.shape)}"
    return text


def fmt_shape(shape) -> str:
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
                raise TypeProblem(f"shapes {fmt_shape(a)} and {fmt_shape(b)} do not broadcast together")
            out.append(y if x == 1 else x)
        else:
            known = x if x is not None else y
            out.append(known if known not in (None, 1) else None)
    return tuple(reversed(out))


def join_base(*bases: str) -> str:
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
        base = join_base(*[a.base for a in args])
    return Ty(base, rank, shape)


#: the base types of annotations, and common names users write for them
TYPE_NAMES = ("int", "real", "bool")
TYPE_ALIASES = {
    "float": "real", "double": "real", "number": "real", "integer": "int", "long": "int",
    "boolean": "bool", "vector": "real[]", "matrix": "real[,]", "array": "real[]",
}

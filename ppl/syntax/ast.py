"""The abstract syntax tree of .ppl programs.

Every node is a frozen dataclass with a ``span`` (where it is in the user's
text). Spans do not take part in ``==``: two trees are equal when they have the
same structure, whatever their layout.

The parser fills in, besides the syntax, the facts an evaluator needs
(see ``ppl/syntax/annotate.py``):

* ``Tilde.observed``: the left side of ``x ~ d`` is data (a parameter of the
  enclosing model or function, or a top-level constant) -- an observation --
  rather than a new random choice;
* ``For.carried``: the variables bound before the loop that the body assigns
  (the loop-carried state: a ``scan``); a loop with none is a ``plate``;
* ``For.collected``: the names first drawn inside the loop (``z ~ d`` or
  ``z[i] ~ d``): after the loop each is the array of its per-iteration values;
* ``FunDef.recursive`` / ``ModelDef.recursive``: the definition can call itself
  (directly, or through other top-level definitions).

Nodes, by kind::

    Module(items)                          a file
      Import(path, stdlib)                 import "f.ppl" / import stdlib.name
      ModelDef(name, params, body)         model m(x: real[]) { ... }
      ModelDo(name, base, items, kind, given) model m_on = m.do(x = 1), m.condition(..), m.counterfactual(..).do(..)
      FunDef(name, params, body)           def f(x) { ... }
      Param(name, annotation)              x: real[N]
      TypeAnn(base, dims)                  int | real | bool, dims None for a scalar
    statements
      Block(stmts)                         { ... }
      Assign(name, value, let)             x = e / let x = e
      IndexAssign(name, indices, value)    x[i] = e (functional update of x)
      Tilde(target, dist, observed)        x ~ d / x[i] ~ d / data ~ d
      Observe(value, dist)                 observe e ~ d
      Factor(log_weight)                   factor(e)
      Condition(pred)                      condition(e)
      Return(value)                        return e / return
      If(cond, then, orelse)               if c { } else { }  (else-if: orelse holds one If)
      For(var, start, stop, body, ...)     for i in a..b { }
      ExprStmt(expr)                       f(x)
    expressions
      Num(value)                           1, 2.5, 1e-3 (int or float)
      Bool(value), Str(value)              true, 'alice'
      Name(id)                             x
      Array(items)                         [1, 2, 3]
      Index(base, indices)                 x[i], X[n, d], x[a:b] (Slice items)
      Slice(start, stop)                   a:b, :b, a:, :
      Call(func, args)                     f(x, y)
      BinOp(op, left, right)               + - * / // % ^ @ == != < <= > >= and or
      UnaryOp(op, operand)                 - + not
      IfExpr(cond, then, orelse)           if c then a else b
      Lambda(params, body)                 fn(x) => e / fn(x) { ... }

``^`` and ``**`` are the same operator; the tree records ``"^"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator, Union

from ppl.stdlib.errors import Span

__all__ = [
    "Node", "Module", "Import", "ModelDef", "ModelDo", "DoItem", "FunDef", "Param", "TypeAnn",
    "Block", "Assign", "IndexAssign", "Tilde", "Observe", "Factor", "Condition",
    "Return", "If", "For", "ExprStmt",
    "Num", "Bool", "Str", "Name", "Array", "Index", "Slice", "Call", "BinOp",
    "UnaryOp", "IfExpr", "Lambda",
    "Stmt", "Expr", "children", "walk", "root_name", "BINARY_OPS", "UNARY_OPS",
]

_NO_SPAN = Span("<none>", 0)

BINARY_OPS = ("or", "and", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "//", "%", "@", "^")
UNARY_OPS = ("-", "+", "not")


def _span():
    return field(default=_NO_SPAN, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Node:
    """Base class of every node; ``span`` is where the node is in the source."""

    span: Span = _span()


# ------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class Num(Node):
    """A number literal; ``value`` is an ``int`` for ``3`` and a ``float`` for ``3.0``."""

    value: int | float


@dataclass(frozen=True)
class Bool(Node):
    """``true`` or ``false``."""

    value: bool


@dataclass(frozen=True)
class Str(Node):
    """A string literal (escapes already decoded)."""

    value: str


@dataclass(frozen=True)
class Name(Node):
    """A variable, function, model or builtin name."""

    id: str


@dataclass(frozen=True)
class Array(Node):
    """``[a, b, c]``: an array literal (nested literals make matrices)."""

    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Slice(Node):
    """``a:b`` inside an index (half-open; either end may be left out)."""

    start: "Expr | None"
    stop: "Expr | None"


@dataclass(frozen=True)
class Index(Node):
    """``base[i, j]``: one index per dimension; an item may be a ``Slice``."""

    base: "Expr"
    indices: tuple["Expr | Slice", ...]


@dataclass(frozen=True)
class Call(Node):
    """``func(args)``: a builtin, a distribution, a ``def``, a model or any function value."""

    func: "Expr"
    args: tuple["Expr", ...]


@dataclass(frozen=True)
class BinOp(Node):
    """``left op right`` with ``op`` one of ``BINARY_OPS`` (broadcasting on arrays)."""

    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class UnaryOp(Node):
    """``op operand`` with ``op`` one of ``-``, ``+``, ``not``."""

    op: str
    operand: "Expr"


@dataclass(frozen=True)
class IfExpr(Node):
    """``if cond then a else b``: only the chosen branch is evaluated."""

    cond: "Expr"
    then: "Expr"
    orelse: "Expr"


@dataclass(frozen=True)
class Lambda(Node):
    """``fn(x, y) => e`` (``body`` an expression) or ``fn(x) { ... }`` (``body`` a Block)."""

    params: tuple["Param", ...]
    body: "Expr | Block"


Expr = Union[Num, Bool, Str, Name, Array, Index, Call, BinOp, UnaryOp, IfExpr, Lambda]


# ------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Block(Node):
    """``{ stmt; stmt }``: statements run in order."""

    stmts: tuple["Stmt", ...]


@dataclass(frozen=True)
class Assign(Node):
    """``name = value`` (``let`` records whether the ``let`` keyword was written)."""

    name: str
    value: Expr
    let: bool = False


@dataclass(frozen=True)
class IndexAssign(Node):
    """``name[indices] = value``: rebinds ``name`` to a copy with those entries replaced."""

    name: str
    indices: tuple["Expr | Slice", ...]
    value: Expr


@dataclass(frozen=True)
class Tilde(Node):
    """``target ~ dist``: a random choice, or an observation when ``observed``.

    ``target`` is what was written (a ``Name`` or an ``Index`` of one when the
    program is well formed; the checker reports anything else).
    """

    target: Expr
    dist: Expr
    observed: bool = False
    estimator: "Str | None" = None  # ``x ~ d estimator = "enum"``: the gradient estimator VI uses here

    @property
    def name(self) -> str | None:
        """The variable named on the left (``theta`` for ``theta[j] ~ ...``)."""
        return root_name(self.target)


@dataclass(frozen=True)
class Observe(Node):
    """``observe value ~ dist``: condition on a computed value."""

    value: Expr
    dist: Expr


@dataclass(frozen=True)
class Factor(Node):
    """``factor(e)``: add ``e`` (summed, if an array) to the log weight."""

    log_weight: Expr


@dataclass(frozen=True)
class Condition(Node):
    """``condition(b)``: keep only the executions where ``b`` is true (hard constraint)."""

    pred: Expr


@dataclass(frozen=True)
class Return(Node):
    """``return e`` (``value`` is None for a bare ``return``)."""

    value: Expr | None


@dataclass(frozen=True)
class If(Node):
    """``if cond { then } else { orelse }``; ``else if`` is an ``orelse`` block holding one ``If``."""

    cond: Expr
    then: Block
    orelse: Block | None


@dataclass(frozen=True)
class For(Node):
    """``for var in start..stop { body }`` over the half-open range ``[start, stop)``.

    ``carried``: outer variables the body rebinds (loop state: compile as a scan).
    ``collected``: names first drawn in the body; after the loop each is the array
    of its values, one per iteration. A loop with no ``carried`` names has
    independent iterations (a plate).
    """

    var: str
    start: Expr
    stop: Expr
    body: Block
    carried: tuple[str, ...] = ()
    collected: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExprStmt(Node):
    """An expression evaluated for its effects (a call to a model or function)."""

    expr: Expr


Stmt = Union[Block, Assign, IndexAssign, Tilde, Observe, Factor, Condition, Return, If, For, ExprStmt]


# ------------------------------------------------------------------ definitions


@dataclass(frozen=True)
class TypeAnn(Node):
    """A type annotation: ``base`` is ``int``, ``real`` or ``bool``, as written.

    ``dims`` is None for a scalar; else one entry per dimension, each a size
    expression or None when not given (``real[]``, ``real[,]``, ``real[N, 2]``).
    """

    base: str
    dims: tuple["Expr | None", ...] | None = None

    @property
    def rank(self) -> int:
        return 0 if self.dims is None else len(self.dims)


@dataclass(frozen=True)
class Param(Node):
    """A parameter of a model, function or lambda, with an optional annotation."""

    name: str
    annotation: TypeAnn | None = None


@dataclass(frozen=True)
class FunDef(Node):
    """``def name(params) { body }``: a (possibly random, possibly recursive) function."""

    name: str
    params: tuple[Param, ...]
    body: Block
    recursive: bool = False


@dataclass(frozen=True)
class ModelDef(Node):
    """``model name(params) { body }``: the parameters are the data of the model."""

    name: str
    params: tuple[Param, ...]
    body: Block
    recursive: bool = False


@dataclass(frozen=True)
class DoItem(Node):
    """One intervention of a :class:`ModelDo`: ``site = value`` (``draw`` False) or ``site ~ dist``."""

    site: str
    value: "Expr"
    draw: bool = False


@dataclass(frozen=True)
class ModelDo(Node):
    """A model derived from ``base``: ``kind`` "do" (``base.do(site = value, site ~ dist, ...)``,
    after the interventions ``items``), "condition" (``base.condition(site = value, ...)``, with the
    random choices ``items`` observed) or "counterfactual"
    (``base.counterfactual(site = value, ...).do(...)``: the world after the interventions
    ``items``, given the factual observations ``given``)."""

    name: str
    base: str
    items: tuple[DoItem, ...]
    kind: str = "do"
    given: tuple[DoItem, ...] = ()


@dataclass(frozen=True)
class Import(Node):
    """``import "path.ppl"`` (``stdlib`` False) or ``import stdlib.a.b`` (``path`` "a/b.ppl").

    ``module`` is the imported file's tree once ``resolve_imports`` has loaded it.
    """

    path: str
    stdlib: bool = False
    module: "Module | None" = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Module(Node):
    """A whole file: imports, definitions, constant bindings (and anything else,
    which the checker reports)."""

    items: tuple[Node, ...]
    file: str = "<string>"

    @property
    def imports(self) -> tuple[Import, ...]:
        return tuple(i for i in self.items if isinstance(i, Import))

    @property
    def models(self) -> dict[str, ModelDef]:
        return {i.name: i for i in self.items if isinstance(i, ModelDef)}

    @property
    def functions(self) -> dict[str, FunDef]:
        return {i.name: i for i in self.items if isinstance(i, FunDef)}

    @property
    def constants(self) -> dict[str, Assign]:
        """Top-level ``let x = ...`` / ``x = ...`` bindings."""
        return {i.name: i for i in self.items if isinstance(i, Assign)}

    def definitions(self) -> dict[str, Node]:
        """Every name this file defines at top level (models, functions, constants)."""
        out: dict[str, Node] = {}
        for item in self.items:
            if isinstance(item, (ModelDef, ModelDo, FunDef, Assign)):
                out.setdefault(item.name, item)
        return out


# -------------------------------------------------------------------- traversal


def children(node: Node) -> Iterator[Node]:
    """The direct child nodes of ``node``, in source order (imported modules excluded)."""
    for f in dataclasses.fields(node):
        if f.name == "span" or f.name == "module":
            continue
        value = getattr(node, f.name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            for v in value:
                if isinstance(v, Node):
                    yield v


def walk(node: Node) -> Iterator[Node]:
    """``node`` and all its descendants, depth first, in source order."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(list(children(n))))


def root_name(expr: Node) -> str | None:
    """``x`` for ``x``, ``x[i]``, ``x[i][j]``; None for anything else."""
    while isinstance(expr, Index):
        expr = expr.base
    return expr.id if isinstance(expr, Name) else None

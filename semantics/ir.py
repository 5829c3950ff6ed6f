"""The intermediate representation every front end lowers to.

A program is a :class:`Block` in administrative normal form: statements bind
variables (:class:`Var`) to the results of operations on atoms (variables or
literals). Every statement carries the source span of the user's text.

Statements:

- :class:`Sample` ``x = sample a D(args)`` — a random choice at address ``a``.
- :class:`Observe` ``observe a D(args) value`` — conditions on data.
- :class:`Factor` ``factor a w`` — multiplies the weight by ``exp(w)``.
- :class:`Deterministic` ``record a v`` — a derived quantity kept in the trace.
- :class:`Prim` ``xs = op(args)`` — a deterministic JAX operation.
- :class:`If` — a branch; random choices may sit in the branches.
- :class:`For` — a loop with carried state (``scan``); sites inside are stacked by step.
- :class:`Plate` — a group of statements whose sites are independent copies along plate dims.
- :class:`Call` — a group of statements from a sub-model; addresses nested under its name.
- :class:`Lambda` — a first-class function value (closures). Tracing inlines
  functions, so traced programs contain none; it exists for programs lowered
  with functions left symbolic.
- A block ends with its returned atoms (the ``Return``).

The meaning of a program is given by ``semantics.interpret`` (eager, any
representation) and implemented fast by ``semantics.compile``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ppl.stdlib.errors import Span

__all__ = [
    "Var",
    "Lit",
    "Stmt",
    "Sample",
    "Observe",
    "Factor",
    "Deterministic",
    "Prim",
    "If",
    "For",
    "Plate",
    "Call",
    "Lambda",
    "Block",
    "SiteInfo",
    "Program",
    "walk",
    "sites_of",
    "format_program",
]

_ids = itertools.count()


@dataclass(frozen=True, eq=False)
class Var:
    """A variable: defined once, with a static shape and dtype."""

    shape: tuple[int, ...]
    dtype: Any
    id: int = field(default_factory=lambda: next(_ids))

    def __repr__(self) -> str:
        return f"v{self.id}"


@dataclass(frozen=True, eq=False)
class Lit:
    """A literal constant."""

    value: Any

    @property
    def shape(self):
        return tuple(np.shape(self.value))

    def __repr__(self) -> str:
        v = np.asarray(self.value)
        if v.size <= 4:
            return np.array2string(v, separator=", ").replace("\n", "")
        return f"const{v.shape}"


Atom = Var | Lit


@dataclass(frozen=True, eq=False)
class Stmt:
    span: Span | None


@dataclass(frozen=True, eq=False)
class Sample(Stmt):
    out: Var
    address: str
    dist_type: type
    treedef: Any  # rebuilds the distribution from the argument values
    args: tuple[Atom, ...]
    plates: tuple = ()
    estimator: str | None = None  # the gradient estimator VI uses here (None: the distribution's default)


@dataclass(frozen=True, eq=False)
class Observe(Stmt):
    address: str
    dist_type: type
    treedef: Any
    args: tuple[Atom, ...]
    value: Atom
    plates: tuple = ()


@dataclass(frozen=True, eq=False)
class Factor(Stmt):
    address: str
    log_weight: Atom
    plates: tuple = ()


@dataclass(frozen=True, eq=False)
class Deterministic(Stmt):
    out: Var
    address: str
    value: Atom


@dataclass(frozen=True, eq=False)
class Prim(Stmt):
    outs: tuple[Var, ...]
    op: Any  # a JAX primitive (or any object with ``bind`` and ``name``)
    params: dict
    args: tuple[Atom, ...]
    #: an index operation whose indices are known only at run time: the engines check them
    #: (``semantics.index_check``) and ``span`` is the user's indexing expression
    check_index: bool = False


@dataclass(frozen=True, eq=False)
class Block:
    params: tuple[Var, ...]
    stmts: tuple[Stmt, ...]
    returns: tuple[Atom, ...]


@dataclass(frozen=True, eq=False)
class If(Stmt):
    """``outs = branches[index](*args)``; ``index`` is an integer atom."""

    outs: tuple[Var, ...]
    index: Atom
    branches: tuple[Block, ...]
    args: tuple[Atom, ...]


@dataclass(frozen=True, eq=False)
class For(Stmt):
    """``lax.scan`` over ``length`` steps.

    ``args`` = consts + initial carry + xs (``num_consts``, ``num_carry``, rest);
    the body block takes (consts, carry, x) and returns (carry, y);
    ``outs`` = final carry + stacked ys.
    """

    outs: tuple[Var, ...]
    body: Block
    length: int
    reverse: bool
    num_consts: int
    num_carry: int
    args: tuple[Atom, ...]


@dataclass(frozen=True, eq=False)
class Plate(Stmt):
    """``ppl.plate(name, size)``: sites inside are ``size`` independent copies; ``span`` is where the
    user opened it. ``shard``: the ``shard=`` option (None, True, False or a mesh axis name);
    ``subsampled_from``: with ``subsample_size=``, the number of rows its ``size`` rows are drawn from."""

    name: str
    size: int
    stmts: tuple[Stmt, ...]
    shard: bool | str | None = None
    subsampled_from: int | None = None


@dataclass(frozen=True, eq=False)
class Call(Stmt):
    """A sub-model call: the statements of the callee, whose addresses are nested under ``name``;
    ``span`` is where the user called it."""

    name: str
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True, eq=False)
class Lambda(Stmt):
    out: Var
    body: Block
    captured: tuple[Atom, ...]


@dataclass(frozen=True)
class SiteInfo:
    """What the IR knows statically about one random choice."""

    kind: str  # "sample" | "observe" | "factor" | "deterministic"
    address: str
    dist_type: type | None
    shape: tuple[int, ...]  # of one value (inside loops: of one step)
    dtype: Any
    loop_lengths: tuple[int, ...]  # enclosing For lengths, outermost first
    in_branch: bool  # inside an If: present in some runs only
    plates: tuple
    span: Span | None

    @property
    def stacked_shape(self) -> tuple[int, ...]:
        return tuple(self.loop_lengths) + tuple(self.shape)

    @property
    def is_discrete(self) -> bool:
        """A discrete site: its values are integers (the tracer gives discrete draws int32)."""
        if self.dtype is not None:
            return bool(np.issubdtype(np.dtype(self.dtype), np.integer))
        return getattr(self.dist_type, "is_discrete", False) is True


@dataclass(frozen=True, eq=False)
class Program:
    """A closed static program: inputs (flattened arguments) to returned values."""

    name: str
    block: Block
    in_tree: Any  # pytree structure of the (args, kwargs) the block's params flatten
    out_tree: Any  # pytree structure of the return value
    consts: tuple = ()  # values of the leading block params that are closed-over constants
    span: Span | None = None
    # plates marked ppl.plate(..., shard=...): (name, size, True or a mesh axis name, span)
    sharded_plates: tuple = ()

    @property
    def sites(self) -> dict[str, SiteInfo]:
        cached = self.__dict__.get("_sites")
        if cached is None:
            cached = {s.address: s for s in sites_of(self.block)}
            object.__setattr__(self, "_sites", cached)
        return cached

    def latent_sites(self) -> dict[str, SiteInfo]:
        return {a: s for a, s in self.sites.items() if s.kind == "sample"}

    def __str__(self) -> str:
        return format_program(self)


# ---------------------------------------------------------------------------
# Traversal


def walk(stmts) -> Iterator[Stmt]:
    """Every statement, depth first, entering groups, branches and loop bodies."""
    for s in stmts:
        yield s
        if isinstance(s, (Plate, Call)):
            yield from walk(s.stmts)
        elif isinstance(s, If):
            for b in s.branches:
                yield from walk(b.stmts)
        elif isinstance(s, For):
            yield from walk(s.body.stmts)
        elif isinstance(s, Lambda):
            yield from walk(s.body.stmts)


def sites_of(block: Block, loops: tuple[int, ...] = (), in_branch: bool = False) -> Iterator[SiteInfo]:
    for s in block.stmts:
        yield from _sites_stmt(s, loops, in_branch)


def _sites_stmt(s, loops, in_branch):
    if isinstance(s, Sample):
        yield SiteInfo("sample", s.address, s.dist_type, s.out.shape, s.out.dtype, loops, in_branch,
                       s.plates, s.span)
    elif isinstance(s, Observe):
        yield SiteInfo("observe", s.address, s.dist_type, s.value.shape, None, loops, in_branch,
                       s.plates, s.span)
    elif isinstance(s, Factor):
        yield SiteInfo("factor", s.address, None, (), None, loops, in_branch, s.plates, s.span)
    elif isinstance(s, Deterministic):
        yield SiteInfo("deterministic", s.address, None, s.out.shape, s.out.dtype, loops, in_branch,
                       (), s.span)
    elif isinstance(s, (Plate, Call)):
        for t in s.stmts:
            yield from _sites_stmt(t, loops, in_branch)
    elif isinstance(s, If):
        seen = set()
        for b in s.branches:
            for info in sites_of(b, loops, True):
                if info.address not in seen:
                    seen.add(info.address)
                    yield info
    elif isinstance(s, For):
        yield from sites_of(s.body, loops + (s.length,), in_branch)


def always_sampled(stmts) -> set[str]:
    """The addresses of the random choices the statements make in every run: a branch (``If``)
    adds only those that every one of its branches makes."""
    made: set[str] = set()
    for s in stmts:
        if isinstance(s, Sample):
            made.add(s.address)
        elif isinstance(s, (Plate, Call)):
            made |= always_sampled(s.stmts)
        elif isinstance(s, If) and s.branches:
            made |= set.intersection(*(always_sampled(b.stmts) for b in s.branches))
        elif isinstance(s, For) and s.length > 0:
            made |= always_sampled(s.body.stmts)
    return made


def partial_sites(program: Program) -> dict[str, SiteInfo]:
    """The latent sites that some runs of ``program`` do not make: inside a branch, and not made
    by every branch of it under the same address."""
    always = always_sampled(program.block.stmts)
    return {a: s for a, s in program.latent_sites().items() if s.in_branch and a not in always}


# ---------------------------------------------------------------------------
# Printing


def _dtype_name(dtype) -> str:
    try:
        return np.dtype(dtype).name.replace("float", "f").replace("int", "i").replace("bool", "bool")
    except TypeError:
        return str(dtype)


def _typed(v: Var) -> str:
    dims = ",".join(str(d) for d in v.shape)
    return f"{v!r}:{_dtype_name(v.dtype)}[{dims}]"


def _args(atoms) -> str:
    return ", ".join(repr(a) for a in atoms)


def _where(span: Span | None) -> str:
    return f"    # line {span.line}" if span is not None else ""


def _format_params(params: dict) -> str:
    shown = []
    for k, v in params.items():
        if hasattr(v, "eqns") or hasattr(v, "jaxpr"):
            continue
        if v is None or k == "sharding":  # placement details, not arithmetic
            continue
        text = repr(v)
        if len(text) > 30:
            continue
        shown.append(f"{k}={text}")
    return f"[{' '.join(shown)}]" if shown else ""


def _format_block(block: Block, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    for s in block.stmts:
        _format_stmt(s, indent, lines)
    lines.append(f"{pad}return {_args(block.returns)}")


def _format_stmt(s: Stmt, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    if isinstance(s, Sample):
        lines.append(f"{pad}{_typed(s.out)} = sample '{s.address}' ~ {s.dist_type.__name__}({_args(s.args)})"
                     f"{_where(s.span)}")
    elif isinstance(s, Observe):
        lines.append(f"{pad}observe '{s.address}' {s.value!r} ~ {s.dist_type.__name__}({_args(s.args)})"
                     f"{_where(s.span)}")
    elif isinstance(s, Factor):
        lines.append(f"{pad}factor '{s.address}' {s.log_weight!r}{_where(s.span)}")
    elif isinstance(s, Deterministic):
        lines.append(f"{pad}{_typed(s.out)} = record '{s.address}' {s.value!r}{_where(s.span)}")
    elif isinstance(s, Prim):
        outs = ", ".join(_typed(v) for v in s.outs) or "_"
        name = getattr(s.op, "name", str(s.op))
        params = _format_params(s.params)
        if "jaxpr" in s.params and isinstance(s.params.get("name"), str):  # a jitted call: shown by its name
            name, params = s.params["name"].lstrip("_") or name, ""
        lines.append(f"{pad}{outs} = {name}{params}({_args(s.args)})")
    elif isinstance(s, If):
        outs = ", ".join(_typed(v) for v in s.outs) or "_"
        lines.append(f"{pad}{outs} = if {s.index!r} ({_args(s.args)}):{_where(s.span)}")
        for i, b in enumerate(s.branches):
            lines.append(f"{pad}  case {i}({', '.join(repr(p) for p in b.params)}):")
            _format_block(b, indent + 2, lines)
    elif isinstance(s, For):
        outs = ", ".join(_typed(v) for v in s.outs) or "_"
        c, k = s.num_consts, s.num_carry
        lines.append(
            f"{pad}{outs} = for {s.length} steps{' reversed' if s.reverse else ''} "
            f"consts({_args(s.args[:c])}) carry({_args(s.args[c:c + k])}) xs({_args(s.args[c + k:])}):"
            f"{_where(s.span)}"
        )
        lines.append(f"{pad}  step({', '.join(repr(p) for p in s.body.params)}):")
        _format_block(s.body, indent + 2, lines)
    elif isinstance(s, Plate):
        size = f"{s.size} of {s.subsampled_from}" if s.subsampled_from is not None else f"{s.size}"
        shard = "" if s.shard is None else f" shard={s.shard!r}"
        lines.append(f"{pad}plate '{s.name}' ({size}){shard}:{_where(s.span)}")
        for t in s.stmts:
            _format_stmt(t, indent + 1, lines)
    elif isinstance(s, Call):
        lines.append(f"{pad}call '{s.name}':{_where(s.span)}")
        for t in s.stmts:
            _format_stmt(t, indent + 1, lines)
    elif isinstance(s, Lambda):
        lines.append(f"{pad}{_typed(s.out)} = fn({', '.join(repr(p) for p in s.body.params)}):")
        _format_block(s.body, indent + 1, lines)
    else:  # pragma: no cover
        lines.append(f"{pad}{s!r}")


def format_program(program: Program) -> str:
    """Readable text of a program, one statement a line."""
    params = ", ".join(_typed(v) for v in program.block.params)
    lines = [f"program {program.name}({params}):"]
    _format_block(program.block, 1, lines)
    return "\n".join(lines)

"""Checks that depend on the data alone, found in the IR, and runs that trust them.

Two checks of a compiled run read only the program's arguments (its data) in common models:

- an observation's *support test* (``y`` in ``{0, 1}`` for a Bernoulli, ``y`` finite for a
  Normal), when the observed value is computed from the arguments alone and the support does
  not depend on latent values;
- a *checked index* (``theta[group]``) whose indices are computed from the arguments alone
  (the indexed array may be latent: only its static shape matters).

Their outcome is the same for every value of the latent choices, so a method that evaluates
the density many times (a gradient step of VI, a leapfrog step of NUTS) checks them once
per run (:mod:`.data_checks`) and compiles the density without them, inside
:func:`trusting`. Checks that depend on latent values (parameter domains, a support whose
bounds are latent) stay in every evaluation.

Laws (``p`` the compiled density of a program on arguments ``y``):

- ``DataOnly.observes``: an ``Observe`` outside every ``If`` whose value is a function of
  ``y`` alone; its support test ``in_support(value)`` is data-only when the distribution's
  arguments are all functions of ``y`` or its support has no parameters (``fixed_support``).
- ``DataOnly.indices``: a checked ``Prim`` outside every ``If`` whose index operands are
  functions of ``y`` alone.
- Inside ``trusting(program)``, runs of ``program`` traced there compute
  ``log_density_in_support`` at those observations and skip those index checks, so
  ``p_trusted(x) == p(x)`` for every ``x`` whenever the data passed the checks.

"A function of ``y`` alone" excludes random choices and learnable parameters
(``ppl.param``, whose value an optimiser changes between runs).

The same data-flow finds the *draw-major products* (``DataOnly.products``): a matrix-vector
product ``A @ v`` (``dot_general`` contracting ``A``'s last axis with ``v``, no batch axes) whose
matrix ``A`` is data and whose vector ``v`` is not. Every run evaluates it as the vector-matrix
product ``v @ A^T``: the same value, but when a method vmaps the density over draws (VI's
particles, MCMC's chains) ``v`` carries the draw axis and JAX's batching puts that axis first in
the product ``(draws, rows)`` instead of last, the layout in which the elementwise likelihood
and its gradient (``ct @ A``) run fastest (``benchmarks/vi.py``: 1.4x slower the other way).
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field

import jax

from ppl.semantics import index_check, ir
from ppl.semantics.cache import cached
from ppl.semantics.params import ParamOp
from ppl.stdlib import jax_compat as jc

__all__ = ["DataObserve", "DataOnly", "data_only_checks", "draw_major", "fixed_support", "trusting", "trusted"]


@dataclass(frozen=True)
class DataObserve:
    """An observation whose value is data: ``args_data`` when every distribution argument is
    data too; ``source`` the position of the argument whose step-``t`` slice the value is (in
    every enclosing loop; the argument itself outside loops), or None; ``elements_of`` the
    position of an argument every element of the value is an element of (``y[g]`` in a loop
    over ``g``, a reshape of ``y``), or None."""

    stmt: ir.Observe
    args_data: bool
    source: int | None
    loops: tuple[int, ...]  # the lengths of the enclosing loops, outermost first
    elements_of: int | None = None


@dataclass
class DataOnly:
    """The statements of a program whose checks depend on its arguments alone (program order)."""

    observes: dict = field(default_factory=dict)  # ir.Observe -> DataObserve
    indices: dict = field(default_factory=dict)  # ir.Prim -> loop lengths
    order: list = field(default_factory=list)  # the statements of both, in program order
    products: set = field(default_factory=set)  # the draw-major products (ir.Prim), not checks

    def __bool__(self):
        return bool(self.order)

    def skips_observe(self, stmt, dist) -> bool:
        """Whether a trusted run may skip the support test of ``stmt`` with distribution ``dist``."""
        found = self.observes.get(stmt)
        return found is not None and (found.args_data or fixed_support(dist))

    def skips_index(self, stmt) -> bool:
        return stmt in self.indices


def fixed_support(dist) -> bool:
    """Whether ``dist``'s support has no parameters (it is the same set for every parameter value)."""
    try:
        return len(jax.tree.leaves(dist.support)) == 0
    except Exception:  # noqa: BLE001 - a support that cannot be built here is treated as parameterised
        return False


def data_only_checks(program: ir.Program) -> DataOnly:
    """The program's data-only checks (computed once per program)."""
    return cached(program, ("data-only",), lambda: _analyse(program))


def _analyse(program: ir.Program) -> DataOnly:
    found = DataOnly()
    source = {p: (i, 0) for i, p in enumerate(program.block.params)}
    elements = {p: i for i, p in enumerate(program.block.params)}
    _walk(program.block.stmts, set(program.block.params), source, (), found, elements)
    return found


# Operations whose every output element is an element of their first operand (a gather only when
# it cannot fill: jnp's default indexing fills out-of-range rows with NaN).
_SELECTING = frozenset({"dynamic_slice", "slice", "squeeze", "reshape", "broadcast_in_dim", "transpose",
                        "rev", "copy", "copy_p"})


def _selects_elements(s: ir.Prim) -> bool:
    name = getattr(s.op, "name", "")
    if name == "gather":
        mode = s.params.get("mode")
        return "FILL" not in str(mode).upper()
    return name in _SELECTING


def _is_data(atom, data: set) -> bool:
    return isinstance(atom, ir.Lit) or atom in data


def _walk(stmts, data: set, source: dict, loops: tuple, found: DataOnly, elements: dict) -> None:
    """Add to ``data`` the variables of ``stmts`` that are functions of the arguments alone, and
    record in ``found`` the data-only checks (``source``: a variable -> ``(argument, depth)``: it is
    that argument sliced at the step index of its ``depth`` innermost enclosing loops;
    ``elements``: a variable -> the argument whose elements all of its elements are)."""
    for s in stmts:
        if isinstance(s, ir.Prim):
            is_data = not isinstance(s.op, ParamOp) and all(_is_data(a, data) for a in s.args)
            if is_data:
                data.update(s.outs)
                if s.args and isinstance(s.args[0], ir.Var) and s.args[0] in elements and _selects_elements(s):
                    elements.update((v, elements[s.args[0]]) for v in s.outs)
            elif _data_matrix_times_vector(s, data):
                found.products.add(s)
            if s.check_index:
                name = getattr(s.op, "name", "")
                positions = (range(len(s.args)) if name == index_check.REPORT
                             else index_check.index_positions(name, len(s.args)))
                if all(_is_data(s.args[i], data) for i in positions if i < len(s.args)):
                    found.indices[s] = loops
                    found.order.append(s)
        elif isinstance(s, ir.Observe):
            if _is_data(s.value, data):
                got = source.get(s.value) if isinstance(s.value, ir.Var) else None
                src = got[0] if got is not None and got[1] == len(loops) else None
                args_data = all(_is_data(a, data) for a in s.args)
                elements_of = elements.get(s.value) if isinstance(s.value, ir.Var) else None
                found.observes[s] = DataObserve(s, args_data, src, loops, elements_of)
                found.order.append(s)
        elif isinstance(s, ir.Deterministic):
            if _is_data(s.value, data):
                data.add(s.out)
        elif isinstance(s, (ir.Plate, ir.Call)):
            _walk(s.stmts, data, source, loops, found, elements)
        elif isinstance(s, ir.For):
            _loop(s, data, source, loops, found, elements)
        # Sample, Factor, If, Lambda: their outputs depend on random choices (an If's checks run in
        # some runs only, so they stay where they are)


_MATVEC = (((1,), (0,)), ((), ()))


def _data_matrix_times_vector(s: ir.Prim, data: set) -> bool:
    if getattr(s.op, "name", "") != "dot_general" or len(s.args) != 2:
        return False
    lhs, rhs = s.args
    return (s.params.get("dimension_numbers") == _MATVEC and len(lhs.shape) == 2 and len(rhs.shape) == 1
            and _is_data(lhs, data) and not _is_data(rhs, data))


def draw_major(s: ir.Prim, args: list) -> list:
    """The outputs of the draw-major product ``s`` (``A @ v``) on ``args = [A, v]``, computed as
    ``v @ A^T`` (the same value; see the module docstring)."""
    params = dict(s.params, dimension_numbers=(((0,), (1,)), ((), ())))
    if params.get("precision") is not None:
        params["precision"] = tuple(reversed(params["precision"]))
    return jc.bind(s.op, [args[1], args[0]], params)


def _loop(s: ir.For, data: set, source: dict, loops: tuple, found: DataOnly, elements: dict) -> None:
    c, k = s.num_consts, s.num_carry
    params = s.body.params
    carry_data = [_is_data(a, data) for a in s.args[c:c + k]]
    while True:  # a carry is data when its start is and every step keeps it so (a fixed point)
        inner = set(data)
        inner_source = dict(source)
        inner_elements = dict(elements)
        for p, a, i in zip(params, s.args, range(len(s.args))):
            is_carry = c <= i < c + k
            if (carry_data[i - c] if is_carry else _is_data(a, data)):
                inner.add(p)
            if not is_carry and isinstance(a, ir.Var) and a in source:
                arg, depth = source[a]  # a const is the array itself; an x, its slice at the step
                inner_source[p] = (arg, depth + (1 if i >= c + k else 0))
            if not is_carry and isinstance(a, ir.Var) and a in elements:  # a const or a step's slice
                inner_elements[p] = elements[a]
        trial = DataOnly()
        _walk(s.body.stmts, inner, inner_source, loops + (s.length,), trial, inner_elements)
        kept = [carry_data[j] and _is_data(s.body.returns[j], inner) for j in range(k)]
        if kept == carry_data:
            break
        carry_data = kept
    found.observes.update(trial.observes)
    found.indices.update(trial.indices)
    found.products.update(trial.products)
    found.order.extend(trial.order)
    for j, v in enumerate(s.outs):
        if (carry_data[j] if j < k else _is_data(s.body.returns[j], inner)):
            data.add(v)


_TRUSTING: ContextVar[tuple] = ContextVar("ppl_trusting_data", default=())


@contextlib.contextmanager
def trusting(program: ir.Program):
    """Within (while JAX traces): runs of ``program`` skip its data-only checks. Use it only where
    the data was checked for the same arguments (:func:`.data_checks.check_data`)."""
    token = _TRUSTING.set(_TRUSTING.get() + (program,))
    try:
        yield
    finally:
        _TRUSTING.reset(token)


def trusted(program: ir.Program) -> DataOnly | None:
    """The checks a run of ``program`` started now may skip (None: every check is made)."""
    if any(p is program for p in _TRUSTING.get()):
        found = data_only_checks(program)
        return found if found else None
    return None

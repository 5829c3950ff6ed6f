"""The sequential cut: a static program split at its loop of observations.

A program whose top level runs a ``For`` (a ``scan``) with observations in its
body is, read as a sequence of weighting steps, the compiled form of the
paper's ``Sequential`` representation: ::

    program  =  init ; for t in steps: step_t ; final

- ``init``: the statements before the loop (drawing the static parameters,
  observing whatever is observed before the loop). It takes the program's
  inputs and returns the *live* values that the loop and the rest need.
- ``step``: the loop body, as it is: ``(consts, carry, x_t) -> (carry, y_t)``.
- ``final``: the statements after the loop; it takes the live values and the
  loop's outputs (final carry, stacked ``y``) and returns what the program returns.

Law: running ``init``, then ``step`` over the loop's steps, then ``final``
(passing values along) is the program: the same random choices, the same
weight, the same return value. SMC adds resampling between the steps.

Groups (``Call``, ``Plate``) that hold the loop are opened up: they only name
their statements. The cut also tells, for each live value, whether it depends
on a random choice (``random``): values that do not (the data, the
arguments) are the same for every particle and are not copied per particle.

A program with no top-level loop of observations has the trivial cut (all of
it in ``init``, no loop): SMC is then importance sampling, one weighting step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from ppl.semantics import ir

__all__ = ["SequentialCut", "sequential_cut", "free_vars", "random_vars"]


@dataclass(frozen=True, eq=False)
class SequentialCut:
    """A program as ``init ; step^T ; final`` (see the module docstring).

    ``init.returns`` are the live values (``live``); ``final.params`` are the live
    values then the loop's outputs. ``random`` holds the variables of ``init``
    whose values depend on a random choice.
    """

    name: str
    init: ir.Block
    loop: ir.For | None
    final: ir.Block
    random: frozenset

    @property
    def live(self) -> tuple[ir.Var, ...]:
        return tuple(self.init.returns)

    @property
    def num_steps(self) -> int:
        return 0 if self.loop is None else self.loop.length

    def is_random(self, atom) -> bool:
        """Whether the value of ``atom`` (of ``init``'s scope) differs between particles."""
        return isinstance(atom, ir.Var) and atom in self.random

    @property
    def init_weighted(self) -> bool:
        """Whether ``init`` observes or factors (a weighting step before the loop)."""
        return _weighted(self.init.stmts)

    @property
    def final_weighted(self) -> bool:
        return _weighted(self.final.stmts)

    def init_sites(self) -> dict[str, ir.SiteInfo]:
        return {s.address: s for s in ir.sites_of(self.init)}

    def step_sites(self) -> dict[str, ir.SiteInfo]:
        return {} if self.loop is None else {s.address: s for s in ir.sites_of(self.loop.body)}

    def final_sites(self) -> dict[str, ir.SiteInfo]:
        return {s.address: s for s in ir.sites_of(self.final)}

    def describe(self) -> str:
        if self.loop is None:
            return f"program '{self.name}' has no loop with observations: SMC is importance sampling (one step)"
        where = f" (line {self.loop.span.line})" if self.loop.span is not None else ""
        return (f"program '{self.name}': {len(self.init.stmts)} statement(s) before the loop, "
                f"a loop of {self.loop.length} steps{where}, {len(self.final.stmts)} after it")


def sequential_cut(program: ir.Program) -> SequentialCut:
    """Cut ``program`` at its first top-level loop whose body observes or factors."""
    stmts = _open_groups(program.block.stmts)
    at = next((i for i, s in enumerate(stmts) if _is_weighted_loop(s)), None)
    params = program.block.params
    if at is None:
        before, loop, after = stmts, None, []
    else:
        before, loop, after = stmts[:at], stmts[at], stmts[at + 1:]
    # the values the loop and the final part need from before the loop
    needed = free_vars(after, program.block.returns)
    if loop is not None:
        needed |= free_vars([loop])
    available = set(params) | _defined(before)
    order = list(params) + [v for v in _defined_in_order(before)]
    live = tuple(v for v in dict.fromkeys(order) if v in needed and v in available)
    init = ir.Block(tuple(params), tuple(before), live)
    outs = () if loop is None else tuple(loop.outs)
    final = ir.Block(live + outs, tuple(after), tuple(program.block.returns))
    return SequentialCut(program.name, init, loop, final, frozenset(random_vars(before)))


# ---------------------------------------------------------------------------
# Structure


def _weighted(stmts) -> bool:
    return any(isinstance(s, (ir.Observe, ir.Factor)) for s in ir.walk(stmts))


def _is_weighted_loop(s) -> bool:
    return isinstance(s, ir.For) and _weighted(s.body.stmts)


def _open_groups(stmts) -> list:
    """Inline the ``Call``/``Plate`` groups that hold a loop with observations."""
    out = []
    for s in stmts:
        if isinstance(s, (ir.Call, ir.Plate)) and any(_is_weighted_loop(t) for t in ir.walk(s.stmts)):
            inner = _open_groups(s.stmts)
            if any(_is_weighted_loop(t) for t in inner):
                out.extend(inner)
                continue
        out.append(s)
    return out


# ---------------------------------------------------------------------------
# Variables: defined, read, free, random


def _reads(s) -> Iterator:
    """The atoms a statement reads at its own level (nested blocks: their free variables)."""
    if isinstance(s, ir.Sample):
        yield from s.args
    elif isinstance(s, ir.Observe):
        yield from s.args
        yield s.value
    elif isinstance(s, ir.Factor):
        yield s.log_weight
    elif isinstance(s, ir.Deterministic):
        yield s.value
    elif isinstance(s, ir.Prim):
        yield from s.args
    elif isinstance(s, ir.If):
        yield s.index
        yield from s.args
        for b in s.branches:
            yield from _block_free(b)
    elif isinstance(s, ir.For):
        yield from s.args
        yield from _block_free(s.body)
    elif isinstance(s, ir.Lambda):
        yield from s.captured
        yield from _block_free(s.body)
    elif isinstance(s, (ir.Plate, ir.Call)):
        yield from free_vars(s.stmts)


def _defs(s) -> list:
    if isinstance(s, (ir.Sample, ir.Deterministic, ir.Lambda)):
        return [s.out]
    if isinstance(s, (ir.Prim, ir.If, ir.For)):
        return list(s.outs)
    if isinstance(s, (ir.Plate, ir.Call)):
        return list(_defined_in_order(s.stmts))
    return []


def _defined_in_order(stmts) -> Iterator:
    for s in stmts:
        yield from _defs(s)


def _defined(stmts) -> set:
    return set(_defined_in_order(stmts))


def _block_free(block: ir.Block) -> set:
    return free_vars(block.stmts, block.returns) - set(block.params)


def free_vars(stmts: Iterable, returns: Iterable = ()) -> set:
    """Variables read by ``stmts`` (and ``returns``) that the statements do not define first."""
    free, defined = set(), set()
    for s in stmts:
        for a in _reads(s):
            if isinstance(a, ir.Var) and a not in defined:
                free.add(a)
        defined.update(_defs(s))
    for a in returns:
        if isinstance(a, ir.Var) and a not in defined:
            free.add(a)
    return free


def _draws(s) -> bool:
    """Whether a statement makes a random choice (anywhere inside it)."""
    return any(isinstance(t, ir.Sample) for t in ir.walk([s]))


def random_vars(stmts, random: set | None = None) -> set:
    """The variables whose values depend on a random choice (a forward taint analysis).

    A variable is random when it is a random choice, or it is computed from a
    random variable, or by a branch or loop that makes a random choice.
    """
    random = set() if random is None else random
    for s in stmts:
        if isinstance(s, (ir.Plate, ir.Call)):
            random_vars(s.stmts, random)
            continue
        reads_random = any(isinstance(a, ir.Var) and a in random for a in _reads(s))
        if isinstance(s, ir.Sample) or reads_random or _draws(s):
            random.update(_defs(s))
    return random

"""The plan of a sum (``inference.marginalize``): the discrete variables, the chains of discrete
states, the terms and what each reads, checked once per program.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from ppl.semantics.cache import cached
from ppl.semantics import effects, ir
from ppl.semantics.graph import Graph, block_flow, dependency_graph
from ppl.stdlib.errors import ModelError
from ppl.inference.marginalize.independence import crossed_labels
from ppl.inference.marginalize.layout import Layout, SiteAxes, site_axes, site_layout
from ppl.inference.marginalize.supports import site_supports


GRID_LIMIT = 1 << 16  # most joint values of the variables one group of terms reads
CHAIN_LIMIT = 1024  # most values of one step's discrete state in a chain


@dataclass(frozen=True)
class _Var:
    """A discrete site summed out element by element along its labels."""

    address: str
    axes: SiteAxes
    table: Any  # (configurations, *free_shape): the joint values of the free elements

    @property
    def labels(self):
        return self.axes.labels

    @property
    def size(self) -> int:
        return int(self.table.shape[0])

    def value(self, index):
        """The site's value when its labelled elements take configurations ``index`` (label-shaped)."""
        index = jnp.broadcast_to(jnp.asarray(index, jnp.int32), self.axes.label_shape)
        return self.axes.assemble(self.table[index])


@dataclass(frozen=True)
class _Chain:
    """A loop whose discrete sites form a first-order Markov chain of joint states."""

    loop: str
    term: str
    tables: dict  # site -> (states, *per-step shape)
    tainted: tuple  # per carry slot: whether it depends on the state
    size: int


def _joint_table(values: np.ndarray, shape: tuple[int, ...]):
    n = int(np.prod(shape, dtype=np.int64))
    count = len(values) ** n
    if count > GRID_LIMIT:
        return None
    combos = np.array(list(itertools.product(range(len(values)), repeat=n)), dtype=np.int64).reshape((count,) + shape)
    return values[combos]


def _site_error(program, address, message, hint=None):
    info = program.sites.get(address)
    return ModelError(message, span=info.span if info else None, hint=hint)


@dataclass(frozen=True)
class _Structure:
    """What the graph says, per program: chains, plain variables, terms and their reads."""

    graph: Graph
    layout: Layout
    discrete: tuple  # every discrete latent site
    chain_loops: dict  # loop -> its discrete sites
    plain: tuple  # discrete sites summed element by element
    terms: dict  # term name -> tuple of plain variables it reads
    chain_terms: dict  # loop -> term name
    tainted: dict  # loop -> tuple of bools




def _structure(program: ir.Program, args) -> _Structure:
    return cached(program, ("marginalize-structure",), lambda: _build_structure(program, args))


def _build_structure(program: ir.Program, args) -> _Structure:
    graph = dependency_graph(program)
    layout = site_layout(program, args)
    latent = program.latent_sites()
    discrete = tuple(a for a, info in latent.items() if info.is_discrete)
    dset = set(discrete)

    # loops whose discrete sites are carried to later steps: chains
    chain_loops: dict[str, list[str]] = {}
    for a in discrete:
        node = graph.nodes[a]
        carried = any(a in graph.nodes[s].carried for s in graph.nodes)
        if not carried:
            continue
        if len(node.loops) != 1:
            raise _site_error(program, a, f"the discrete random choice '{a}' is carried from step to step of "
                              "a loop nested in another loop; summing it out is not supported yet",
                              "Use a method that samples it (Gibbs, MH, SMC), or flatten the loops.")
        chain_loops.setdefault(node.loops[0], [])
    for loop in chain_loops:
        chain_loops[loop] = [a for a in graph.loops[loop].sites if a in dset]
        for a in chain_loops[loop]:
            if len(graph.nodes[a].loops) != 1:
                raise _site_error(program, a, f"the discrete random choice '{a}' is in a loop nested inside a "
                                  "loop that carries discrete values; summing it out is not supported yet",
                                  "Use a method that samples it (Gibbs, MH, SMC).")
    in_chain = {a for sites in chain_loops.values() for a in sites}
    plain = tuple(a for a in discrete if a not in in_chain)
    pset = set(plain)

    terms: dict[str, tuple] = {}
    chain_terms = {}
    tainted = {}
    chain_body = {a for loop in chain_loops for a in graph.loops[loop].sites}
    for a, node in graph.nodes.items():
        if node.kind == "deterministic" or a in chain_body:
            continue
        reads = set(node.parents) & pset
        if a in pset:
            reads.add(a)
        terms[a] = tuple(v for v in plain if v in reads)
    for loop, sites in chain_loops.items():
        body_sites = graph.loops[loop].sites
        name = f"<chain {loop}>"
        chain_terms[loop] = name
        reads = set()
        for s in body_sites:
            reads |= set(graph.nodes[s].parents) & pset
        terms[name] = tuple(v for v in plain if v in reads)
        for d in sites:
            outside = [c for c in graph.children(d) if c not in body_sites]
            if outside:
                raise _site_error(program, d, f"the discrete random choice '{d}' is carried through a loop and "
                                  f"also read after it (by '{outside[0]}'); summing it out is not supported",
                                  "Keep the chain's values inside the loop, or use Gibbs or MH.")
            if layout.labels[d] != (loop,):
                raise _site_error(program, d, f"the discrete random choice '{d}' is carried through a loop "
                                  "inside a plate or branch; summing it out is not supported yet",
                                  "Use Gibbs or MH for it.")
        tainted[loop] = _tainted_slots(program, graph.loops[loop].stmt, set(sites))

    # every variable read by a term must lie inside the term's plates and loops
    for t, reads in terms.items():
        tl = set(layout.labels.get(t, ()))
        for v in reads:
            missing = set(layout.labels[v]) - tl
            if missing:
                raise _site_error(
                    program, v,
                    f"the discrete random choice '{v}' sits inside {sorted(missing)} but "
                    f"'{t}' reads it outside {'that' if len(missing) == 1 else 'those'}; its elements cannot be "
                    "summed out one by one",
                    "Use the values inside the plate (or loop) only, or sample the site with Gibbs or MH.")
    # the plate's promise: each element of a variable is read by the same element of its terms only
    supports = site_supports(program, args, raise_errors=False) if plain else {}
    for v in plain:
        readers = [t for t, reads in terms.items() if v in reads]
        crossed = crossed_labels(program, args, v, readers, supports.get(v))
        if crossed:
            crossing = next(iter(crossed.values()))
            raise _site_error(
                program, v,
                f"the elements of the discrete random choice '{v}' along '{crossing.label}' are not read one by "
                f"one: {crossing.describe(v)}. A plate promises that its elements are independent, so they "
                "cannot be summed out one by one",
                "Use ppl.Enumerate(), ppl.Gibbs() or ppl.MH(), or draw the site outside the plate.")
    return _Structure(graph, layout, discrete, {k: tuple(v) for k, v in chain_loops.items()}, plain, terms,
                      chain_terms, tainted)


def _tainted_slots(program, stmt: ir.For, chain_sites: set) -> tuple:
    """Per carry slot of a chain loop: whether it depends on the step's discrete state.

    The chain must be first order: a slot that depends on the state may not
    also depend on the previous value of such a slot.
    """
    c, k = stmt.num_consts, stmt.num_carry
    nx = len(stmt.body.params) - c - k
    params = [frozenset()] * c + [frozenset({("slot", i)}) for i in range(k)] + [frozenset()] * nx
    flow = block_flow(stmt.body, params)
    ret = flow.returns[:k]
    tainted = [bool(ret[i] & chain_sites) for i in range(k)]
    changed = True
    while changed:
        changed = False
        for i in range(k):
            if not tainted[i] and any(isinstance(x, tuple) and x[0] == "slot" and tainted[x[1]] for x in ret[i]):
                tainted[i] = changed = True
    for i in range(k):
        if tainted[i] and any(isinstance(x, tuple) and x[0] == "slot" and tainted[x[1]] for x in ret[i]):
            site = sorted(chain_sites)[0]
            raise _site_error(program, site, f"the loop around '{site}' carries a state that accumulates the "
                              "discrete values of several steps; only first-order chains (the carried value "
                              "a function of the current step's discrete values) can be summed out",
                              "Carry the current discrete value only, or use Gibbs or MH.")
    return tuple(tainted)


@dataclass(frozen=True)
class _Plan:
    structure: _Structure
    vars: dict  # address -> _Var
    chains: dict  # loop -> _Chain
    groups: dict  # tuple of variables -> term names


def refuse_subsampling(program, what: str = "this method") -> None:
    """A subsampled plate's rows are a random choice, but not one to sum out: say what to use instead."""
    for a, info in program.latent_sites().items():
        if getattr(info.dist_type, "__name__", "") == "SubsampleIndices":
            raise effects.subsampling_refused(a, info.span, what)


def _plan(program: ir.Program, args) -> _Plan:
    refuse_subsampling(program)
    st = _structure(program, args)
    supports = site_supports(program, args) if st.discrete else {}
    variables = {}
    for a in st.plain:
        axes = site_axes(program, st.layout, a)
        table = _joint_table(supports[a], axes.free_shape)
        if table is None:
            raise _site_error(program, a, f"the discrete random choice '{a}' has {len(supports[a])}^"
                              f"{int(np.prod(axes.free_shape))} joint values outside any plate: too many to sum "
                              "out", "Put its independent elements in a ppl.plate, or use Gibbs or MH.")
        variables[a] = _Var(a, axes, jnp.asarray(table, program.sites[a].dtype))
    chains = {}
    for loop, sites in st.chain_loops.items():
        per_site = []
        for d in sites:
            shape = tuple(program.sites[d].shape)
            per_site.append(_joint_table(supports[d], shape))
        sizes = [len(t) if t is not None else GRID_LIMIT + 1 for t in per_site]
        total = int(np.prod(sizes, dtype=np.int64))
        if total > CHAIN_LIMIT:
            raise _site_error(program, sites[0], f"the chain of discrete states in the loop around '{sites[0]}' "
                              f"has {total} states per step; the forward algorithm handles at most {CHAIN_LIMIT}",
                              "Use Gibbs or MH for these sites.")
        grid = np.array(list(itertools.product(*[range(n) for n in sizes])), dtype=np.int64).reshape(total, -1)
        tables = {d: jnp.asarray(per_site[j][grid[:, j]], program.sites[d].dtype) for j, d in enumerate(sites)}
        chains[loop] = _Chain(loop, st.chain_terms[loop], tables, st.tainted[loop], total)
    groups: dict[tuple, list] = defaultdict(list)
    for t, reads in st.terms.items():
        groups[reads].append(t)
    for reads in groups:
        size = int(np.prod([variables[v].size for v in reads], dtype=np.int64))
        if size > GRID_LIMIT:
            raise ModelError(f"summing out the discrete sites {list(reads)} together needs {size} evaluations of "
                             "the model", hint="Use Gibbs or MH for some of them.")
    return _Plan(st, variables, chains, dict(groups))

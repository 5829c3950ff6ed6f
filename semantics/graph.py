"""The dependency graph of a program: which random choices feed which.

The string diagram of a static program, read off its IR by data flow. A
node is a site (``sample``, ``observe``, ``factor`` or ``deterministic``);
its *parents* are the latent sites whose values reach the node's
distribution parameters (or its observed value, or its factor weight, or
the condition of an enclosing branch) through deterministic computation.

How values flow, statement by statement:

- ``Prim``: every output depends on every input (conservative inside one
  primitive: no element-wise tracking).
- ``Sample``: the node's parents are the sources of its arguments; its
  output carries exactly its own address.
- ``Deterministic``: transparent — its output carries the sources of its
  value, so it never appears as a parent.
- ``If``: every site inside a branch also depends on the sources of the
  branch index (control dependence: whether it runs at all); an output
  depends on the index and on what each branch returns.
- ``For``: a carried loop. Each carry slot gets a marker while the body is
  analysed; the markers are then solved as a fixpoint (a slot carries what
  its initial value carries and what the body writes into it, transitively
  through other slots). A site reached through a slot depends on what that
  slot carries, from an *earlier step*: those parents are also recorded as
  ``carried``. Addresses of loop sites name the whole stacked site, so the
  graph is conservative across steps (``z`` depending on an earlier ``z``
  is a self-loop: ``'z' in parents('z')``).
- ``Plate`` and ``Call`` only group statements.

Law (checked in ``tests/test_graph.py`` against
``compile.site_log_densities``): the log-density term of a site, as a
function of the values of all latent sites, depends only on the values of
its parents and (for a latent site) its own value. Changing the value of
any other site leaves the term unchanged.

The *Markov blanket* of a node is its parents, its children and its
children's other parents (excluding the node; deterministic sites are not
random and never belong to a blanket). ``factors_of(a)`` is the set of
sites whose terms read ``a``'s value: ``a`` itself and its children — what
a Gibbs or single-site MH update of ``a`` must evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ppl.semantics import ir

__all__ = ["Node", "Loop", "Graph", "dependency_graph", "block_flow"]

_RANDOM = ("sample", "observe", "factor")


@dataclass(frozen=True)
class Node:
    """One site of the diagram.

    ``parents``: latent sites whose values reach this one (see the module
    docstring); ``carried``: those that reach it only through a loop carry
    (from earlier steps); ``loops``: names of the enclosing loops, outermost
    first; ``plates``: names of the enclosing plates; ``in_branch``: inside
    an ``If``.
    """

    address: str
    kind: str
    parents: frozenset
    carried: frozenset
    loops: tuple[str, ...]
    plates: tuple[str, ...]
    in_branch: bool


@dataclass(frozen=True)
class Loop:
    """A ``For`` of the program: its name, length, the loops around it and the sites in its body."""

    name: str
    length: int
    loops: tuple[str, ...]
    sites: tuple[str, ...]
    stmt: ir.For = field(repr=False, compare=False)


@dataclass(frozen=True)
class Graph:
    """The dependency graph; see the module docstring for its meaning."""

    nodes: dict[str, Node]
    loops: dict[str, Loop]

    # -- edges ------------------------------------------------------------------
    def parents(self, address: str) -> frozenset:
        return self.nodes[address].parents

    def children(self, address: str) -> frozenset:
        """Sites (of any kind but deterministic) that have ``address`` as a parent."""
        cached = self.__dict__.get("_children")
        if cached is None:
            cached = {a: set() for a in self.nodes}
            for a, node in self.nodes.items():
                if node.kind == "deterministic":
                    continue
                for p in node.parents:
                    cached.setdefault(p, set()).add(a)
            cached = {a: frozenset(c) for a, c in cached.items()}
            object.__setattr__(self, "_children", cached)
        return cached.get(address, frozenset())

    def factors_of(self, address: str) -> frozenset:
        """The sites whose log-density terms depend on ``address``'s value: itself and its children."""
        return frozenset({address}) | self.children(address)

    def markov_blanket(self, address: str) -> frozenset:
        """Parents, children and the children's other parents, without ``address`` itself."""
        out = set(self.parents(address)) | set(self.children(address))
        for c in self.children(address):
            out |= self.parents(c)
        out.discard(address)
        return frozenset(a for a in out if self.nodes[a].kind in _RANDOM)

    def ancestors(self, address: str) -> frozenset:
        seen: set = set()
        todo = list(self.parents(address))
        while todo:
            a = todo.pop()
            if a not in seen:
                seen.add(a)
                todo.extend(self.parents(a))
        return frozenset(seen)

    def descendants(self, address: str) -> frozenset:
        seen: set = set()
        todo = list(self.children(address))
        while todo:
            a = todo.pop()
            if a not in seen:
                seen.add(a)
                todo.extend(self.children(a))
        return frozenset(seen)

    def is_carried(self, address: str) -> bool:
        """Whether ``address``'s value reaches some site through a loop carry (a later step)."""
        return any(address in n.carried for n in self.nodes.values())

    def loop_of(self, stmt: ir.For) -> str:
        """The name of a ``For`` statement of this program."""
        for name, loop in self.loops.items():
            if loop.stmt is stmt:
                return name
        raise KeyError("this For statement is not part of the program")

    def latent(self) -> tuple[str, ...]:
        return tuple(a for a, n in self.nodes.items() if n.kind == "sample")

    def edges(self) -> list[tuple[str, str]]:
        """Every (parent, child) pair, in program order of the children."""
        return [(p, a) for a, n in self.nodes.items() for p in sorted(n.parents)]


# ---------------------------------------------------------------------------
# Data flow


@dataclass
class BlockFlow:
    """What :func:`block_flow` finds: the sources of each returned atom, and the parents of each site."""

    returns: list[frozenset]
    sites: dict[str, dict]


class _Flow:
    """Propagates sets of sources (site addresses, and carry markers of loops being analysed)."""

    def __init__(self, through_deterministic: bool = True):
        self.through = through_deterministic
        self.sites: dict[str, dict] = {}  # address -> {kind, parents, carried, loops, plates, in_branch}
        self.loops: dict[str, Loop] = {}
        self._count = 0

    @staticmethod
    def read(env, atom) -> frozenset:
        if isinstance(atom, ir.Lit):
            return frozenset()
        return env.get(atom, frozenset())

    def union(self, env, atoms) -> frozenset:
        out: frozenset = frozenset()
        for a in atoms:
            out = out | self.read(env, a)
        return out

    def block(self, block: ir.Block, param_deps, ctx) -> list[frozenset]:
        env = dict(zip(block.params, param_deps))
        self.stmts(block.stmts, env, ctx)
        return [self.read(env, r) for r in block.returns]

    def stmts(self, stmts, env, ctx) -> None:
        for s in stmts:
            self.stmt(s, env, ctx)

    def add_site(self, s, kind, parents, ctx, plates=()):
        control, loops, in_branch = ctx
        prev = self.sites.get(s.address)
        if prev is not None:  # the same address in another branch of an If: either may run
            prev["parents"] = prev["parents"] | parents | control
            return
        self.sites[s.address] = {
            "kind": kind,
            "parents": frozenset(parents | control),
            "carried": frozenset(),
            "loops": loops,
            "plates": tuple(p[0] for p in plates),
            "in_branch": in_branch,
        }

    def stmt(self, s, env, ctx) -> None:
        if isinstance(s, ir.Prim):
            deps = self.union(env, s.args)
            for v in s.outs:
                env[v] = deps
        elif isinstance(s, ir.Sample):
            self.add_site(s, "sample", self.union(env, s.args), ctx, s.plates)
            env[s.out] = frozenset({s.address})
        elif isinstance(s, ir.Observe):
            self.add_site(s, "observe", self.union(env, (*s.args, s.value)), ctx, s.plates)
        elif isinstance(s, ir.Factor):
            self.add_site(s, "factor", self.read(env, s.log_weight), ctx, s.plates)
        elif isinstance(s, ir.Deterministic):
            deps = self.read(env, s.value)
            self.add_site(s, "deterministic", deps, ctx)
            env[s.out] = deps if self.through else frozenset({s.address})
        elif isinstance(s, (ir.Plate, ir.Call)):
            self.stmts(s.stmts, env, ctx)
        elif isinstance(s, ir.If):
            self.if_(s, env, ctx)
        elif isinstance(s, ir.For):
            self.for_(s, env, ctx)
        elif isinstance(s, ir.Lambda):
            env[s.out] = self.union(env, s.captured)  # conservative: what the closure captures
        else:  # pragma: no cover - every IR node kind is listed above
            raise TypeError(f"unknown IR statement {type(s).__name__}")

    def if_(self, s: ir.If, env, ctx) -> None:
        control, loops, _ = ctx
        index = self.read(env, s.index)
        inner = (control | index, loops, True)
        arg_deps = [self.read(env, a) for a in s.args]
        outs = [index] * len(s.outs)
        for b in s.branches:
            ret = self.block(b, arg_deps, inner)
            outs = [o | r for o, r in zip(outs, ret)]
        for v, d in zip(s.outs, outs):
            env[v] = d

    def for_(self, s: ir.For, env, ctx) -> None:
        control, loops, in_branch = ctx
        name = f"loop{self._count}"
        self._count += 1
        c, k = s.num_consts, s.num_carry
        args = [self.read(env, a) for a in s.args]
        markers = [frozenset({("carry", name, i)}) for i in range(k)]
        param_deps = args[:c] + markers + args[c + k:]
        before = set(self.sites)
        ret = self.block(s.body, param_deps, (control, loops + (name,), in_branch))
        body_sites = tuple(a for a in self.sites if a not in before)
        self.loops[name] = Loop(name, s.length, loops, body_sites, s)

        def is_marker(x):
            return isinstance(x, tuple) and len(x) == 3 and x[0] == "carry" and x[1] == name

        # solve the carry slots: slot i carries its initial sources and what the body writes into it
        carries = [args[c + i] | frozenset(x for x in ret[i] if not is_marker(x)) for i in range(k)]
        changed = True
        while changed:
            changed = False
            for i in range(k):
                extra = frozenset()
                for x in ret[i]:
                    if is_marker(x):
                        extra |= carries[x[2]]
                if not extra <= carries[i]:
                    carries[i] = carries[i] | extra
                    changed = True

        def resolve(deps):
            plain = frozenset(x for x in deps if not is_marker(x))
            via = frozenset()
            for x in deps:
                if is_marker(x):
                    via |= carries[x[2]]
            return plain | via, via

        for a in body_sites:
            info = self.sites[a]
            parents, via = resolve(info["parents"])
            info["parents"] = parents
            info["carried"] = info["carried"] | frozenset(x for x in via if isinstance(x, str))
        final = [carries[i] for i in range(k)]
        ys = [resolve(d)[0] for d in ret[k:]]
        for v, d in zip(s.outs, final + ys):
            env[v] = d


def block_flow(block: ir.Block, param_deps: Iterable[frozenset] | None = None) -> BlockFlow:
    """Data flow through one block: the sources reaching each returned atom and each site's parents.

    ``param_deps`` gives the sources of the block's parameters (any hashable
    labels; none by default). Sites of the block contribute their addresses.
    """
    flow = _Flow()
    deps = list(param_deps) if param_deps is not None else [frozenset()] * len(block.params)
    ret = flow.block(block, deps, (frozenset(), (), False))
    return BlockFlow(ret, flow.sites)


def dependency_graph(program: ir.Program, through_deterministic: bool = True) -> Graph:
    """The dependency graph of a static program (computed once per program).

    With ``through_deterministic=False`` a deterministic site is a node of its own that feeds
    the sites reading its value (as a string diagram draws it), instead of being transparent.
    """
    cache = "_graph" if through_deterministic else "_graph_opaque"
    cached = program.__dict__.get(cache)
    if cached is not None:
        return cached
    flow = _Flow(through_deterministic)
    flow.block(program.block, [frozenset()] * len(program.block.params), (frozenset(), (), False))
    nodes = {}
    for a, info in flow.sites.items():
        parents = frozenset(x for x in info["parents"] if isinstance(x, str))
        nodes[a] = Node(a, info["kind"], parents, frozenset(info["carried"]) & parents, info["loops"],
                        info["plates"], info["in_branch"])
    graph = Graph(nodes, dict(flow.loops))
    object.__setattr__(program, cache, graph)
    return graph

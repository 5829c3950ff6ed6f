"""Acyclic directed mixed graphs: the causal diagram over the observed sites.

A model's diagram has a node per random choice. When only some sites are
observed, the *latent projection* (Verma and Pearl) keeps the observed ones
and summarises the latent ones by two kinds of edge:

- ``a -> b`` when some directed path from ``a`` to ``b`` has only latent
  sites in between (``a`` causes ``b`` through unobserved mechanisms);
- ``a <-> b`` (a hidden confounder) when some latent-only path leads from
  a common latent ancestor to both ``a`` and ``b`` (``a <- u -> b``, or
  ``a <- u1 <- u -> b``, ...).

Law: every distribution the full model induces on the observed sites is
Markov to the projection, and interventional distributions of observed
sites are the same in both (what identification relies on). Each projected
edge keeps a *witness*: the path through latents that produced it, used to
explain why an effect is not identifiable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ADMG", "latent_projection"]


@dataclass(frozen=True)
class ADMG:
    """Observed nodes in a topological order, directed and bidirected edges.

    ``parents[v]``: directed parents of ``v``; ``bidirected``: frozensets
    ``{a, b}``; ``witness``: for each edge (``(a, b)`` directed,
    ``frozenset({a, b})`` bidirected) a path of site names through latents
    (for a bidirected edge, ``(path, i)`` with ``path[i]`` the latent source).
    """

    order: tuple[str, ...]
    parents: dict[str, frozenset]
    bidirected: frozenset
    witness: dict = field(default_factory=dict, compare=False)

    @property
    def nodes(self) -> frozenset:
        return frozenset(self.order)

    def sorted(self, names) -> tuple[str, ...]:
        """``names`` in the graph's topological order."""
        names = set(names)
        return tuple(v for v in self.order if v in names)

    def subgraph(self, keep) -> "ADMG":
        """The subgraph induced by ``keep`` (edges with both ends kept)."""
        keep = frozenset(keep)
        return ADMG(
            tuple(v for v in self.order if v in keep),
            {v: self.parents[v] & keep for v in self.order if v in keep},
            frozenset(e for e in self.bidirected if e <= keep),
            self.witness,
        )

    def cut_incoming(self, xs) -> "ADMG":
        """``G`` with every edge into ``xs`` removed (directed and bidirected): ``G_{\\bar X}``."""
        xs = frozenset(xs)
        return ADMG(
            self.order,
            {v: (frozenset() if v in xs else ps) for v, ps in self.parents.items()},
            frozenset(e for e in self.bidirected if not (e & xs)),
            self.witness,
        )

    def ancestors(self, ys) -> frozenset:
        """``ys`` and all their ancestors along directed edges."""
        seen = set()
        todo = list(ys)
        while todo:
            v = todo.pop()
            if v not in seen:
                seen.add(v)
                todo.extend(self.parents[v])
        return frozenset(seen)

    def children(self, v) -> frozenset:
        return frozenset(c for c in self.order if v in self.parents[c])

    def districts(self) -> list[frozenset]:
        """The c-components: classes of nodes joined by bidirected paths, in topological order."""
        seen: set = set()
        out = []
        for v in self.order:
            if v in seen:
                continue
            comp, todo = set(), [v]
            while todo:
                a = todo.pop()
                if a in comp:
                    continue
                comp.add(a)
                for e in self.bidirected:
                    if a in e:
                        todo.extend(e - {a})
            seen |= comp
            out.append(frozenset(comp))
        return out

    def district_of(self, v) -> frozenset:
        for d in self.districts():
            if v in d:
                return d
        raise KeyError(v)

    def edges(self) -> list[tuple[str, str]]:
        return [(p, v) for v in self.order for p in self.sorted(self.parents[v])]

    def __str__(self) -> str:
        directed = [f"{a} -> {b}" for a, b in self.edges()]
        bi = [" <-> ".join(self.sorted(e)) for e in sorted(self.bidirected, key=lambda e: self.sorted(e))]
        return ", ".join(directed + bi) or ", ".join(self.order)


def latent_projection(order, parents: dict, observed) -> ADMG:
    """Project the DAG (``order`` topological, ``parents[v]`` its parents) onto ``observed``."""
    observed = frozenset(observed)
    children: dict = {v: [] for v in order}
    for v in order:
        for p in parents[v]:
            children[p].append(v)

    def reach(start):
        """Observed sites reached from ``start`` by directed paths whose inner nodes are latent,
        each with the path that reaches it first."""
        found: dict = {}
        todo = [(c, (start, c)) for c in children[start]]
        seen = set()
        while todo:
            v, path = todo.pop(0)
            if v in seen:
                continue
            seen.add(v)
            if v in observed:
                found.setdefault(v, path)
            else:
                todo.extend((c, path + (c,)) for c in children[v])
        return found

    obs_order = tuple(v for v in order if v in observed)
    new_parents = {v: set() for v in obs_order}
    witness: dict = {}
    for a in obs_order:
        for b, path in reach(a).items():
            new_parents[b].add(a)
            witness.setdefault((a, b), path)
    bidirected = set()
    for u in order:
        if u in observed:
            continue
        hit = reach(u)
        names = [v for v in obs_order if v in hit]
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                e = frozenset((a, b))
                bidirected.add(e)
                # the confounding path a <- ... <- u -> ... -> b
                left = tuple(reversed(hit[a]))
                witness.setdefault(e, (left + hit[b][1:], len(left) - 1))
    return ADMG(obs_order, {v: frozenset(ps) for v, ps in new_parents.items()}, frozenset(bidirected), witness)

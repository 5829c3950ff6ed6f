"""The ID algorithm (Shpitser and Pearl 2006; Tian and Pearl 2002) on an ADMG.

``identify_effect(G, y, x)`` returns an expression for ``P(y | do(x))`` in
terms of the observational distribution ``P(V)`` of the nodes of ``G``, or
raises :class:`Hedge` with the two c-forests ``F' ⊂ F`` that witness
non-identifiability (the algorithm is complete: it fails exactly when no
formula exists).

The recursion works on a *kernel* ``Q`` over the current graph's nodes (an
expression whose free variables are those nodes, plus values fixed by the
interventions made so far). Its lines, numbered as in the paper:

1. no intervention left: ``Σ_{V\\Y} Q``;
2. drop what is not an ancestor of ``Y`` (marginalise it out);
3. intervene also on the nodes ``W`` that ``X`` cuts off from ``Y``: their
   value cannot matter;
4. if ``G \\ X`` splits into c-components ``S_1..S_k``, the effect is
   ``Σ_{V\\(Y∪X)} Π_i P(s_i | do(v \\ s_i))``;
5. if ``G`` is one c-component (and so is ``G \\ X``): a hedge — fail;
6. if ``S`` is a c-component of ``G``: ``Σ_{S\\Y} Π_{v∈S} Q(v | v_π)``;
7. else restrict to the c-component ``S'`` of ``G`` around ``S``, with the
   kernel ``Π_{v∈S'} Q(v | v_π)``, and recurse.

``Q(v | v_π)`` conditions ``v`` on its predecessors in topological order;
they are first reduced to its Markov blanket in the ancestral set
(``(D ∪ pa(D)) \\ {v}``, ``D`` the district of ``v`` among its
predecessors), which is what turns the raw output into the textbook
back-door ``Σ_z P(z) P(y|x,z)`` and front-door
``Σ_m P(m|x) Σ_x' P(x') P(y|x',m)`` formulas.
"""

from __future__ import annotations

from ppl.inference.causal.admg import ADMG
from ppl.inference.causal.expr import Prob, product, ratio, summed

__all__ = ["Hedge", "identify_effect"]


class Hedge(Exception):
    """No formula exists: ``F`` and ``F' ⊂ F`` form a hedge for the effect."""

    def __init__(self, f: frozenset, f_prime: frozenset, graph: ADMG):
        super().__init__(f"hedge {sorted(f)} ⊃ {sorted(f_prime)}")
        self.f, self.f_prime, self.graph = f, f_prime, graph


def _blanket(G: ADMG, v, prev) -> frozenset:
    """The Markov blanket of ``v`` in the ancestral set ``prev ∪ {v}``."""
    sub = G.subgraph(set(prev) | {v})
    d = sub.district_of(v)
    out = set(d)
    for a in d:
        out |= sub.parents[a]
    out.discard(v)
    return frozenset(out)


def _conditional(Q, G: ADMG, v, prev):
    """``Q(v | prev)`` for the kernel ``Q`` of graph ``G`` (``prev``: the nodes before ``v``)."""
    mb = _blanket(G, v, prev)
    if isinstance(Q, Prob):  # a conditional of the observational distribution itself
        return Prob(frozenset({v}), mb | Q.given)
    joint = summed(G.nodes - mb - {v}, Q)
    return ratio(joint, summed({v}, joint))


def _chain(Q, G: ADMG, nodes) -> list:
    """``[Q(v | v_π) for v in nodes]``, in topological order."""
    return [_conditional(Q, G, v, G.order[:i]) for i, v in enumerate(G.order) if v in nodes]


def _id(y: frozenset, x: frozenset, Q, G: ADMG):
    V = G.nodes
    if not x:  # line 1
        return summed(V - y, Q)
    an = G.ancestors(y)
    if an != V:  # line 2
        return _id(y, x & an, summed(V - an, Q), G.subgraph(an))
    w = (V - x) - G.cut_incoming(x).ancestors(y)
    if w:  # line 3
        return _id(y, x | w, Q, G)
    parts = G.subgraph(V - x).districts()
    if len(parts) > 1:  # line 4
        return summed(V - (y | x), product([_id(s, V - s, Q, G) for s in parts]))
    s = parts[0]
    districts = G.districts()
    if len(districts) == 1:  # line 5
        raise Hedge(V, s, G)
    if s in districts:  # line 6
        return summed(s - y, product(_chain(Q, G, s)))
    big = next(d for d in districts if s <= d)  # line 7
    return _id(y, x & big, product(_chain(Q, G, big)), G.subgraph(big))


def identify_effect(G: ADMG, y, x):
    """An expression for ``P(y | do(x))`` over ``P(G.nodes)``, or raise :class:`Hedge`."""
    return _id(frozenset(y), frozenset(x), Prob(G.nodes), G)

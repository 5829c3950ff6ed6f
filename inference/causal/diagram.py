"""``diagram``: the model's string diagram — its sites and which feed which.

Read off the IR's dependency graph (``semantics.graph``): a node per site
(random choice, observation, deterministic quantity, factor), an edge
``a -> b`` when ``a``'s value reaches ``b``'s distribution (or value, or
weight). Interventions recorded on the model are surgery on the diagram:
a site set to a value or given a new distribution loses every edge into it
(its mechanism is cut out); a site given a new mechanism as a function of
named sites gets edges from exactly those sites. Law (tests/test_diagram.py):
the edges of ``diagram(model.do({x: v}))`` are those of ``diagram(model)``
less the edges into ``x``.

Rendering: ``str()`` is text, one line per site with its parents;
``.save("d.svg" | "d.png" | "d.pdf")`` draws it with networkx (layout by
topological generation, left to right) and matplotlib.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import re

import numpy as np

from ppl.inference.causal import surgery as S
from ppl.semantics.graph import dependency_graph
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["Diagram", "diagram", "diagram_of", "SiteNode"]

_STYLE = {  # kind -> (face colour, edge colour, line style)
    "sample": ("#ffffff", "#333333", "solid"),
    "observe": ("#c9c9c9", "#333333", "solid"),
    "deterministic": ("#ffffff", "#333333", "dashed"),
    "factor": ("#333333", "#333333", "solid"),
    "intervened": ("#fde2b0", "#b35900", "solid"),
}


@dataclass(frozen=True)
class SiteNode:
    """A node of the diagram: ``kind`` is sample/observe/deterministic/factor/intervened; ``label``
    says how the site is made (``~ Bernoulli``, ``:= 1``, ``~ Normal (do)``, ...)."""

    address: str
    kind: str
    label: str
    loops: tuple = ()
    plates: tuple = ()


@dataclass(frozen=True)
class Diagram:
    """The string diagram of a model: nodes in program order and edges ``(parent, child)``."""

    name: str
    nodes: tuple[SiteNode, ...]
    edges: frozenset

    def node(self, address: str) -> SiteNode:
        for n in self.nodes:
            if n.address == address:
                return n
        raise KeyError(address)

    def parents(self, address: str) -> tuple[str, ...]:
        return tuple(n.address for n in self.nodes if (n.address, address) in self.edges)

    def __str__(self) -> str:
        width = max((len(n.address) for n in self.nodes), default=0)
        lines = [f"diagram of '{self.name}':"]
        for n in self.nodes:
            ps = self.parents(n.address)
            where = "".join(f" [{p}]" for p in n.plates) + "".join(" [loop]" for _ in n.loops)
            lines.append(f"  {n.address:<{width}}  {n.label}{where}" + (f"  <- {', '.join(ps)}" if ps else ""))
        return "\n".join(lines)

    def _repr_svg_(self):  # notebooks show the picture
        import io

        buf = io.StringIO()
        self._figure().savefig(buf, format="svg")
        return buf.getvalue()

    def to_networkx(self):
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for n in self.nodes:
            g.add_node(n.address, kind=n.kind, label=n.label)
        g.add_edges_from(sorted(self.edges))
        return g

    def _figure(self):
        import networkx as nx
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

        g = self.to_networkx()
        h = g.copy()
        h.remove_edges_from(list(nx.selfloop_edges(h)))  # a loop site reading its own earlier steps
        for layer, names in enumerate(nx.topological_generations(h)):
            for a in names:
                g.nodes[a]["layer"] = layer
        pos = nx.multipartite_layout(g, subset_key="layer") if len(g) > 1 else {a: (0.0, 0.0) for a in g}
        layers = max((d["layer"] for _, d in g.nodes(data=True)), default=0) + 1
        tallest = max(sum(1 for _, d in g.nodes(data=True) if d["layer"] == i) for i in range(layers)) if g else 1
        fig = Figure(figsize=(2.2 + 2.0 * layers, 1.4 + 1.0 * tallest))
        ax = fig.add_axes((0, 0, 1, 0.9))
        ax.set_axis_off()
        fig.suptitle(self.name, fontsize=11)
        boxes = {}
        for n in self.nodes:
            x, y = pos[n.address]
            face, edge, style = _STYLE[n.kind]
            boxes[n.address] = box = FancyBboxPatch(
                (x - 0.09, y - 0.05), 0.18, 0.10, boxstyle="round,pad=0.02", facecolor=face, edgecolor=edge,
                linestyle=style, linewidth=1.3, transform=ax.transData, zorder=3)
            ax.add_patch(box)
            colour = "white" if n.kind == "factor" else "black"
            loop = " ↻" if (n.address, n.address) in self.edges else ""  # reads its own earlier steps
            ax.text(x, y + 0.012, n.address + loop, ha="center", va="center", fontsize=9, zorder=4, color=colour)
            ax.text(x, y - 0.028, n.label, ha="center", va="center", fontsize=7, zorder=4, color=colour)
        for a, b in sorted(self.edges):
            if a == b:
                continue
            ax.add_patch(FancyArrowPatch(pos[a], pos[b], patchA=boxes[a], patchB=boxes[b], arrowstyle="-|>",
                                         mutation_scale=14, color="#555555", linewidth=1.2, zorder=2,
                                         connectionstyle="arc3,rad=0.08"))
        xs = [p[0] for p in pos.values()] or [0.0]
        ys = [p[1] for p in pos.values()] or [0.0]
        ax.set_xlim(min(xs) - 0.2, max(xs) + 0.2)
        ax.set_ylim(min(ys) - 0.15, max(ys) + 0.15)
        return fig

    def save(self, path) -> pathlib.Path:
        """Draw the diagram to ``path``; the format is the file's suffix (svg, png, pdf)."""
        path = pathlib.Path(path)
        fmt = path.suffix.lstrip(".").lower()
        if fmt not in ("svg", "png", "pdf"):
            raise ModelError(f"cannot draw a diagram as '{path.name}': give a path ending in .svg, .png or .pdf")
        self._figure().savefig(path, format=fmt, dpi=110)
        return path


def _label(info, spec) -> tuple[str, str]:
    dist_name = info.dist_type.__name__ if info.dist_type is not None else ""
    if spec is None:
        if info.kind == "sample":
            return "sample", f"~ {dist_name}"
        if info.kind == "observe":
            return "observe", f"observed ~ {dist_name}"
        if info.kind == "deterministic":
            return "deterministic", "= f(...)"
        return "factor", "factor"
    kind, detail = spec
    if kind == "value":
        return "intervened", f"do(:= {detail})"
    if kind == "dist":
        return "intervened", f"do(~ {detail})"
    if kind == "function":
        return "intervened", "do(:= f(...))"
    return info.kind if info.kind != "sample" else "sample", f"~ {dist_name}, do({detail})"  # one index


def diagram_of(program, name: str, surgery: dict | None = None) -> Diagram:
    """The diagram of a static ``program``, with ``surgery``: address -> ``(kind, detail, reads)``
    where kind is value/dist/function/index and ``reads`` the sites a new mechanism reads."""
    graph = dependency_graph(program, through_deterministic=False)
    surgery = dict(surgery or {})
    nodes, edges = [], set()
    for a, node in graph.nodes.items():
        info = program.sites[a]
        spec = surgery.get(a)
        kind, label = _label(info, None if spec is None else spec[:2])
        nodes.append(SiteNode(a, kind, label, node.loops, node.plates))
        if spec is None or spec[0] == "index":
            parents = node.parents
        else:
            parents = frozenset(spec[2])
        edges |= {(p, a) for p in parents if p in graph.nodes}
    return Diagram(name, tuple(nodes), frozenset(edges))


def _short(value) -> str:
    arr = np.asarray(value)
    text = np.array2string(arr, separator=", ", threshold=6).replace("\n", "") if arr.ndim else str(arr.item())
    return text if len(text) <= 24 else text[:21] + "..."


def diagram(model, *args, **kwargs) -> Diagram:
    """The string diagram of ``model(*args, **kwargs)``, with its interventions as surgery.

    The diagram is read off the IR of the model *before* its interventions
    (so an intervened site keeps its node and its outgoing edges), then each
    intervention cuts the edges into its site (see the module docstring).
    """
    interventions = dict(getattr(model, "interventions", {}) or {})
    base = model.undo() if interventions else model
    program, _ = base.program(*args, **kwargs)
    if isinstance(program, Dynamic):
        raise ModelError(f"the diagram of '{program.name}' is not static: {program.reason}", span=program.span,
                         hint="A diagram needs a fixed set of sites; write the model with ppl.cond and ppl.scan.")
    nodes = dependency_graph(program, through_deterministic=False).nodes
    spec = {}
    for key, value in interventions.items():
        target = key if key in nodes else re.sub(r"(\[\d+\])+$", "", key)
        if target not in nodes:
            raise S.unknown_site_error(program.name, [key], list(nodes))
        iv = S.parse(key, value)
        if target != key:
            spec[target] = ("index", f"{key} := {_short(value)}", ())
        elif iv.kind == "value":
            spec[target] = ("value", _short(value), ())
        elif iv.kind == "dist":
            spec[target] = ("dist", type(value).__name__, ())
        else:
            own = S.leaf(target)
            scope = target.rsplit("/", 1)[0] + "/" if "/" in target else ""
            reads = [scope + p if scope + p in nodes else p for p in iv.reads(own)]
            if own in iv.params:
                reads += sorted(nodes[target].parents)  # the natural value reads the old parents
            spec[target] = ("function", "", tuple(reads))
    return diagram_of(program, getattr(model, "name", program.name), spec)

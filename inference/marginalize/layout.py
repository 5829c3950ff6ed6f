"""Which axes each site's term keeps (its plates and loops), and how a site's value splits into
them (``inference.marginalize``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics.cache import cached
from ppl.semantics import ir
from ppl.semantics.graph import dependency_graph

from ppl.inference.marginalize.elements import ElementInterpreter, _GivenElements


@dataclass(frozen=True)
class Layout:
    """``labels[address]``: the axes a site's term keeps; ``sizes[label]``: their lengths."""

    labels: dict
    sizes: dict




def _abstract(x):
    return jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype)


def site_layout(program: ir.Program, args) -> Layout:
    """The term axes of every site (computed once per program, by an abstract run)."""
    return cached(program, ("site-layout",), lambda: _site_layout(program, args))


def _site_layout(program: ir.Program, args) -> Layout:
    graph = dependency_graph(program)
    latent = program.latent_sites()
    structs = {a: jax.ShapeDtypeStruct(info.stacked_shape, info.dtype) for a, info in latent.items()}
    box = {}

    def run(choices, a):
        interp = ElementInterpreter(_GivenElements(), choices, None, graph)
        _, acc = interp.run_block(program.block, list(a))
        box["labels"], box["sizes"] = dict(interp.labels), dict(interp.sizes)
        return acc.log_prior

    jax.eval_shape(run, structs, [_abstract(x) for x in args])
    return Layout(box["labels"], box["sizes"])


@dataclass(frozen=True)
class SiteAxes:
    """How a latent site's stacked value splits: axes named by term labels, and free axes."""

    shape: tuple[int, ...]  # the stacked shape
    labels: tuple[str, ...]  # the term's labels, in order
    label_axes: tuple[int, ...]  # the value axis of each label
    free_axes: tuple[int, ...]  # every other axis, in order

    @property
    def free_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[i] for i in self.free_axes)

    @property
    def label_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[i] for i in self.label_axes)

    def assemble(self, per_label):
        """A full value from an array of shape ``label_shape + free_shape``."""
        order = list(self.label_axes) + list(self.free_axes)
        perm = np.argsort(order)
        return jnp.transpose(per_label, perm)

    def split(self, value):
        """The inverse of :meth:`assemble`."""
        return jnp.transpose(value, list(self.label_axes) + list(self.free_axes))


def site_axes(program: ir.Program, layout: Layout, address: str) -> SiteAxes:
    info = program.sites[address]
    graph = dependency_graph(program)
    node = graph.nodes[address]
    labels = layout.labels[address]
    shape = tuple(info.stacked_shape)
    nloops = len(info.loop_lengths)
    plate_dim = {name: dim for name, _, dim in info.plates}
    axes = []
    for lab in labels:
        if lab in node.loops:
            axes.append(node.loops.index(lab))
        else:
            axes.append(nloops + len(info.shape) + plate_dim[lab])
    free = tuple(i for i in range(len(shape)) if i not in axes)
    return SiteAxes(shape, tuple(labels), tuple(axes), free)

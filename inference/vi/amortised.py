"""Amortised guides: a guide whose parameters are a neural network (any pytree) that reads the data.

``Amortized(guide, net)``: ``guide`` is a ppl model whose function takes ``(net, *data)`` (``data``: the
model's array arguments, in order) and draws the model's latent sites, typically from
distributions whose parameters ``net`` computes from the data (a VAE's encoder). ``net`` is any
pytree: an Equinox module, a Flax parameter dictionary (with the module's ``apply`` called in the
guide), or a dict of arrays. Its floating-point array leaves are the guide's parameters ``phi``
(trained); every other leaf (activation functions, integer arrays, options) is held as it is.

Law: with ``combine(phi)`` the network with its trainable leaves replaced by ``phi``,
``q_phi(z | data) = guide(combine(phi), *data)``, and the guide's random choices use their own
estimators (``adev.surrogate``), exactly as a guide written with ``ppl.param``. Because the data are
arguments of the guide's program, a new data set of the same shapes reuses the compiled loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.vi.adev import surrogate, surrogate_many
from ppl.semantics import compile as C
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["Amortized", "partition", "combine"]


def _trainable(leaf) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray)) and jnp.issubdtype(leaf.dtype, jnp.inexact)


def partition(net):
    """``(phi, rest)``: the floating-point array leaves of ``net`` (a list), and what rebuilds it."""
    leaves, treedef = jax.tree.flatten(net)
    where = [i for i, x in enumerate(leaves) if _trainable(x)]
    return [leaves[i] for i in where], (treedef, leaves, where)


def combine(phi, rest):
    """The network with its trainable leaves replaced by ``phi`` (the inverse of :func:`partition`)."""
    treedef, leaves, where = rest
    filled = list(leaves)
    for i, x in zip(where, phi):
        filled[i] = x
    return jax.tree.unflatten(treedef, filled)


class Amortized:
    """An amortised guide (see the module docstring); ``ppl.Amortized(guide_fn, net)`` builds it."""

    def __init__(self, guide, net):
        if not hasattr(guide, "program"):
            raise ModelError(f"Amortized needs a ppl model (or a function) as its guide, not {type(guide).__name__}")
        self.guide, self.net = guide, net

    def bind(self, program, args):
        return _Amortized(self.guide, self.net, program, args)


class _Amortized:
    def __init__(self, guide, net, model_program, model_args):
        from ppl.inference.vi.guides import check_against_model

        self.guide = guide
        self.phi0, self.rest = partition(net)
        if not self.phi0:
            raise ModelError("the network of an amortised guide has no floating-point array to train",
                             hint="Pass the module itself (Equinox) or its parameter dictionary (Flax).")
        guide_program, leaves = self._program(self.phi0, model_args)
        check_against_model(guide_program, leaves, model_program, model_args)
        self.latents = tuple(guide_program.latent_sites())

    def _program(self, phi, args):
        program, leaves = self.guide.program(combine(phi, self.rest), *args)
        if isinstance(program, Dynamic):
            raise ModelError(program.describe() + " A guide must be static.", span=program.span)
        return program, leaves

    def init(self, key):
        return [jnp.asarray(x) for x in self.phi0]

    def constrained(self, phi):
        return combine(phi, self.rest)

    def _integrand(self, f):
        return lambda tr: f({a: tr.choices[a] for a in self.latents}, tr.log_prior)

    def expect(self, phi, key, f, baseline, args=None):
        program, leaves = self._program(phi, args)
        return surrogate(program, key, leaves, self._integrand(f), baseline)

    def expect_many(self, phi, keys, f, baseline, args=None):
        program, leaves = self._program(phi, args)
        return surrogate_many(program, keys, leaves, self._integrand(f), baseline)

    def draw(self, phi, key, args=None):
        program, leaves = self._program(phi, args)
        trace = C.run(program, C.Simulate(), leaves, key=key)
        return {a: trace.choices[a] for a in self.latents}

"""Classes whose instances are JAX pytrees by their named fields.

A subclass of :class:`LeafFields` lists in ``_children`` the attribute names that are
pytree leaves (array parameters such as a constraint's bounds or a bijector's
scale); every other attribute is static and shared by the class. Each subclass is
registered with JAX when it is defined, so its instances pass through ``jit``,
``vmap`` and ``grad`` and rebuild with traced leaves.
"""

from __future__ import annotations

import jax

__all__ = ["LeafFields"]


class LeafFields:
    """Base of the classes flattened by the attributes named in ``_children``."""

    _children: tuple[str, ...] = ()  # the names of the pytree leaves

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, cls._flatten, cls._unflatten)

    def _flatten(self):
        return tuple(getattr(self, n) for n in self._children), None

    @classmethod
    def _unflatten(cls, aux, children):
        obj = object.__new__(cls)
        for name, value in zip(cls._children, children):
            object.__setattr__(obj, name, value)
        return obj

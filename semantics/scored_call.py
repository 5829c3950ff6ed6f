"""A sub-program's log density as a value of the program that calls it: ``sim`` and ``density``.

These are the blocks a variational objective is written with, as statements of an ordinary
ppl program (``ppl.expectation``), not only as methods of an objective's context:

- ``z, log_q = sim(guide, *args)``: run ``guide(*args)`` as a sub-model call; its random
  choices are random choices of the calling program (addresses nested under the guide's name,
  each with its own ``estimator=``), and ``log_q`` is their joint log density at the values drawn,
  ``sum_a log q(z_a | ...)``, computed in the program's own arithmetic (so differentiable in the
  guide's parameters and arguments). ``z`` maps each choice's name *inside* the guide to its value.
- ``log_p = density(model, z, *args)``: ``log p(z, y)``, the model's joint log density with its
  latent sites at the values ``z`` (names inside the model) and its observations at their data;
  it adds no random choice and no weight to the calling program (a subsampled plate's row
  indices, ``plate(..., subsample_size=B)``, stay a random choice of it: the estimate is then an
  unbiased one of the full data's log density).

Laws (``E`` the expectation over the calling program's random choices)::

    E[f(*sim(q, a))]            = E_{z ~ q(a)}[f(z, log q(z; a))]
    density(p, z, *y)           = log p(z, y)     (deterministic)

Parameters (``param``) inside ``guide`` or ``model`` keep the name they have in it and are one
parameter however often the program calls it (K draws of one guide share its parameters), so
an objective program has exactly the guide's and the model's parameters. A ``scan`` or a branch
on a random value inside the called program is refused with an error (not yet supported).
"""

from __future__ import annotations

import contextlib
from typing import Any

import jax.numpy as jnp

from ppl.semantics import effects
from ppl.stdlib.errors import ModelError

__all__ = ["sim", "density"]


class SharedParams:
    """The parameters of the programs called by ``sim``/``density`` in one run: address (inside
    the called program) -> value. ``prefix`` is the scope of the innermost such call."""

    def __init__(self):
        self.values: dict = {}
        self.prefix: str | None = None

    def rename(self, address: str) -> str:
        p = self.prefix
        return address[len(p):] if p and address.startswith(p) else address


def _parts(program, what):
    fn = getattr(program, "body", None) or program
    name = getattr(program, "name", None) or getattr(fn, "__name__", what)
    if not callable(fn):
        raise ModelError(f"ppl.{what} needs a ppl model (or a function), not {type(program).__name__}",
                         span=effects.caller_span())
    return fn, name


@contextlib.contextmanager
def _called(h, name):
    """Enter a sub-model call whose parameters keep their own names (``SharedParams``)."""
    shared = h.__dict__.get("shared_params")
    if shared is None:
        shared = h.__dict__["shared_params"] = SharedParams()
    with h.enter_call(name):
        prefix = "/".join(h.scope) + "/"
        saved, shared.prefix = shared.prefix, prefix
        try:
            yield prefix
        finally:
            shared.prefix = saved


class _Layer(effects.Layer):
    def __init__(self, h, prefix, what, name):
        self.h, self.prefix, self.what, self.name = h, prefix, what, name
        self.depth = getattr(h, "branch_depth", 0)
        self.total = jnp.zeros((), jnp.result_type(float))

    def relative(self, site) -> str:
        if getattr(self.h, "branch_depth", 0) != self.depth:
            raise ModelError(f"ppl.{self.what}('{self.name}', ...): the random choice '{site.address}' is inside a "
                             "branch on a random value, whose log density ppl cannot yet return as a value",
                             span=site.span, hint="Draw both branches' values, or write the objective with "
                                                  "the context blocks (ctx.sim, ctx.density).")
        return site.address[len(self.prefix):] if site.address.startswith(self.prefix) else site.address

    def add(self, terms):
        self.total = self.total + jnp.sum(jnp.asarray(terms, jnp.result_type(float)))

    def scan(self, step, init, xs, length, reverse, span, below):
        raise ModelError(f"ppl.{self.what}('{self.name}', ...): the program has a ppl.scan, whose log density "
                         "ppl cannot yet return as a value", span=span,
                         hint="Write the objective with the context blocks (ctx.sim, ctx.density), which "
                              "support loops.")


class _Simulated(_Layer):
    """The sample sites pass on (random choices of the caller); their log densities add up."""

    def __init__(self, *a):
        super().__init__(*a)
        self.values: dict = {}

    def site(self, site, below):
        name = self.relative(site)
        if site.kind in ("observe", "factor"):
            raise ModelError(f"ppl.sim('{self.name}', ...): the program has an {site.kind} ('{name}'); a program "
                             "simulated by ppl.sim draws values and takes no data", span=site.span,
                             hint="Simulate the guide with ppl.sim, and score the model with ppl.density.")
        value = below(site)
        if site.kind == "sample":
            self.add(site.dist.log_density(value))
            self.values[name] = value
        return value


def _is_subsample(dist) -> bool:
    return type(dist).__name__ == "SubsampleIndices"


class _Scored(_Layer):
    """Each latent site takes its value from ``z``; every site's log density adds up; nothing passes
    on except a subsampled plate's row indices (a random choice of the caller)."""

    def __init__(self, *a, z):
        super().__init__(*a)
        self.z, self.used = z, set()

    def site(self, site, below):
        name = self.relative(site)
        if site.kind == "sample" and _is_subsample(site.dist):
            return below(site)
        if site.kind == "sample":
            if name not in self.z:
                raise ModelError(f"ppl.density('{self.name}', z, ...): z has no value for the latent site "
                                 f"'{name}'", span=site.span,
                                 hint=f"z must give every latent site of the model; it gives {sorted(self.z)}.")
            value = jnp.asarray(self.z[name])
            want = tuple(site.dist.batch_shape) + tuple(site.dist.event_shape)
            if tuple(value.shape) != want:
                raise ModelError(f"ppl.density('{self.name}', z, ...): z['{name}'] has shape {tuple(value.shape)}, "
                                 f"but the model's '{name}' has shape {want}", span=site.span)
            self.used.add(name)
            self.add(site.dist.log_density(value))
            return value
        if site.kind == "observe":
            self.add(site.dist.log_density(site.value))
            return site.value
        if site.kind == "factor":
            self.add(site.value)
            return None
        return site.value  # a deterministic value: computed, not recorded in the caller


def sim(guide, *args, **kwargs):
    """``(z, log_q)``: one run of ``guide(*args)`` as random choices of this program, with its log density
    (laws in the module docstring)."""
    h = effects.current_handler()
    if h is None:
        raise ModelError("ppl.sim is a statement of a ppl program (an expectation or a model)",
                         span=effects.caller_span(), hint="Call it inside a function given to ppl.expectation.")
    fn, name = _parts(guide, "sim")
    with _called(h, name) as prefix:
        layer = _Simulated(h, prefix, "sim", name)
        with h.layered(layer):
            fn(*args, **kwargs)
    return dict(layer.values), layer.total


def density(model, z: dict, *args, **kwargs) -> Any:
    """``log p(z, y)`` of ``model(*args)`` with its latent sites at ``z`` (laws in the module docstring)."""
    h = effects.current_handler()
    if h is None:
        raise ModelError("ppl.density is a statement of a ppl program (an expectation or a model)",
                         span=effects.caller_span(), hint="Call it inside a function given to ppl.expectation.")
    if not isinstance(z, dict):
        raise ModelError(f"ppl.density(model, z, ...) needs z as a dict of latent values, not {type(z).__name__}",
                         span=effects.caller_span())
    fn, name = _parts(model, "density")
    with _called(h, name) as prefix:
        layer = _Scored(h, prefix, "density", name, z=z)
        with h.layered(layer):
            fn(*args, **kwargs)
    extra = sorted(set(z) - layer.used)
    if extra:
        raise ModelError(f"ppl.density('{name}', z, ...): z gives '{extra[0]}', which is not a latent site of "
                         "the model", span=effects.caller_span(), hint="Give only the model's latent sites.")
    return layer.total

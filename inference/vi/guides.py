"""Guides: the variational families, and what an objective asks of one.

A *guide* is a program ``q_phi`` over the model's latent choices. Every guide,
once bound to a model (:func:`bind_guide`), offers:

- ``init(key) -> phi`` its unconstrained parameters (a pytree), and
  ``constrained(phi)`` their values as the user reads them;
- ``expect(phi, key, f, b, model_args) -> (value, s)``: ``E_{z ~ q_phi}[f(z, log q_phi(z))]`` with ``s`` an
  unbiased gradient surrogate (``adev.surrogate``), ``b`` the REINFORCE baseline;
- ``expect_many(phi, keys, f, b)``: the same over K independent draws (stacked);
- ``draw(phi, key) -> z``, one draw of the latent choices.

Three kinds:

- a ppl model with ``ppl.param`` sites (either front end): :class:`ProgramGuide`; its random
  choices use their own estimators;
- :class:`AutoNormal` (mean-field): ``u_a ~ Normal(loc_a, scale_a)`` independently for each
  latent site ``a`` in unconstrained coordinates, ``z_a = T_a(u_a)`` through the site's
  bijector, so ``log q(z) = sum_a log N(u_a) - log |det J_{T_a}(u_a)|`` (reparameterised);
- :class:`AutoDelta` (MAP): a point mass at ``z = T(u)``, ``log q = 0``, so the ELBO is the
  model's log density and maximising it finds the posterior mode (in the model's coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.vi.adev import surrogate, surrogate_many
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics import params as P
from ppl.semantics.program import Dynamic
from ppl.stdlib import constraints as K
from ppl.stdlib.bijectors import biject_to
from ppl.stdlib.errors import ModelError

__all__ = ["AutoNormal", "AutoDelta", "ProgramGuide", "bind_guide", "ToSupport"]


def _latents(trace, addresses):
    return {a: trace.choices[a] for a in addresses}


# ---------------------------------------------------------------------------
# Automatic guides


class ToSupport(C.Mode):
    """Law: a latent choice takes ``x = T(u[a])`` (``T`` its support's bijector); its term is
    ``log |det J_T(u[a])|``, given. (The push-forward of unconstrained values onto the model.)"""

    def sample(self, stmt, dist, inputs, key):
        if getattr(dist, "is_discrete", False):
            raise ModelError(
                f"the random choice '{stmt.address}' is discrete; an automatic guide covers continuous "
                "choices only", span=stmt.span,
                hint="Write a guide (a model with ppl.param) that draws it, e.g. from a Categorical.")
        bij = biject_to(dist.support)
        u = inputs[stmt.address]
        return bij.forward(u), C.sum_terms(bij.log_det_jacobian(u)), True


def _unconstrained_shapes(program, args):
    shapes = C.unconstrained_shapes(program, args)
    sites = program.latent_sites()
    for a, shape in shapes.items():
        if shape is None:
            raise ModelError(
                f"the random choice '{a}' is discrete; an automatic guide covers continuous choices only",
                span=sites[a].span,
                hint="Write a guide (a model with ppl.param) that draws it, e.g. from a Categorical.")
    return shapes


@dataclass(frozen=True)
class AutoNormal:
    """Mean-field normal guide in unconstrained coordinates (see the module docstring)."""

    init_scale: float = 0.1

    def bind(self, program, args):
        return _AutoNormal(program, args, _unconstrained_shapes(program, args), float(self.init_scale))


@dataclass(frozen=True)
class AutoDelta:
    """Point-mass guide: VI with it is MAP estimation (see the module docstring)."""

    def bind(self, program, args):
        return _AutoDelta(program, args, _unconstrained_shapes(program, args))


class _AutoNormal:
    def __init__(self, program, args, shapes, init_scale):
        self.program, self.args, self.shapes = program, args, shapes
        self.log_init_scale = math.log(init_scale)

    def init(self, key):
        dtype = jnp.result_type(float)
        return {"loc": {a: jnp.zeros(s, dtype) for a, s in self.shapes.items()},
                "log_scale": {a: jnp.full(s, self.log_init_scale, dtype) for a, s in self.shapes.items()}}

    def constrained(self, phi):
        return {"loc": phi["loc"], "scale": jax.tree.map(jnp.exp, phi["log_scale"])}

    def _draw(self, phi, key, args=None):
        args = self.args if args is None else args
        u, log_n = {}, jnp.zeros((), jnp.result_type(float))
        for a in self.shapes:
            loc, log_scale = phi["loc"][a], phi["log_scale"][a]
            eps = jax.random.normal(jax.random.fold_in(key, C.address_hash(a)), loc.shape, loc.dtype)
            u[a] = loc + jnp.exp(log_scale) * eps
            log_n = log_n + jnp.sum(-0.5 * eps**2 - log_scale - 0.5 * math.log(2 * math.pi))
        trace = C.run(self.program, ToSupport(), args, inputs=u)
        return _latents(trace, self.shapes), log_n - trace.log_given

    def expect(self, phi, key, f, baseline, args=None):
        z, log_q = self._draw(phi, key, args)
        value = f(z, log_q)
        return value, value

    def expect_many(self, phi, keys, f, baseline, args=None):
        z, log_q = jax.vmap(lambda k: self._draw(phi, k, args))(keys)
        value = f(z, log_q)
        return value, value

    def draw(self, phi, key, args=None):
        return self._draw(phi, key, args)[0]


class _AutoDelta(_AutoNormal):
    def __init__(self, program, args, shapes):
        self.program, self.args, self.shapes = program, args, shapes

    def init(self, key):
        return {a: jnp.zeros(s, jnp.result_type(float)) for a, s in self.shapes.items()}

    def constrained(self, phi):
        return self.draw(phi, None)

    def _draw(self, phi, key, args=None):
        trace = C.run(self.program, ToSupport(), self.args if args is None else args, inputs=phi)
        return _latents(trace, self.shapes), jnp.zeros((), jnp.result_type(float))


# ---------------------------------------------------------------------------
# Guides written as programs


class ProgramGuide:
    """A ppl program with ``ppl.param`` sites as the guide of ``model`` (checked against it)."""

    def __init__(self, guide_program: ir.Program, guide_args, model_program: ir.Program, model_args):
        self.program, self.args = guide_program, guide_args
        _check_against_model(guide_program, guide_args, model_program, model_args)
        self.latents = tuple(guide_program.latent_sites())
        self.infos = P.params_of(guide_program)
        for info in self.infos.values():
            if info.in_loop:
                raise ModelError(f"the parameter '{info.address}' is declared inside a loop", span=info.span,
                                 hint="Declare parameters outside ppl.scan (a vector parameter, indexed in the loop).")
        with P.recording_inits() as inits:
            C.run(guide_program, C.Simulate(), guide_args, key=jax.random.key(0))
        self.inits = {a: jnp.asarray(v, jnp.result_type(float)) for a, v in inits.items()}
        self.bijectors = {a: biject_to(info.constraint or K.real) for a, info in self.infos.items()}

    def init(self, key):
        return {a: self.bijectors[a].inverse(v) for a, v in self.inits.items()}

    def constrained(self, phi):
        return {a: self.bijectors[a].forward(u) for a, u in phi.items()}

    def expect(self, phi, key, f, baseline, args=None):
        with P.bound(self.constrained(phi)):
            return surrogate(self.program, key, self.args,
                             lambda tr: f(_latents(tr, self.latents), tr.log_prior), baseline)

    def expect_many(self, phi, keys, f, baseline, args=None):
        with P.bound(self.constrained(phi)):
            return surrogate_many(self.program, keys, self.args,
                                  lambda tr: f(_latents(tr, self.latents), tr.log_prior), baseline)

    def draw(self, phi, key, args=None):
        with P.bound(self.constrained(phi)):
            return _latents(C.run(self.program, C.Simulate(), self.args, key=key), self.latents)


def bind_guide(guide, model_program, model_args, guide_args=()):
    """The guide object for ``guide`` (AutoNormal(), AutoDelta(), or a ppl model with params)."""
    if guide is None:
        guide = AutoNormal()
    if hasattr(guide, "bind"):
        return guide.bind(model_program, model_args)
    if hasattr(guide, "program"):
        program, leaves = guide.program(*guide_args)
        if isinstance(program, Dynamic):
            raise ModelError(program.describe() + " A guide must be static.", span=program.span)
        return ProgramGuide(program, leaves, model_program, model_args)
    raise ModelError(f"guide={guide!r} is not a guide",
                     hint="Use ppl.AutoNormal(), ppl.AutoDelta(), or a @ppl.model function with ppl.param.")


# ---------------------------------------------------------------------------
# A guide against its model


def _where(info) -> str:
    return f" (line {info.span.line})" if info.span is not None and info.span.line else ""


def _supports(program, args) -> dict:
    found: dict = {}

    class Probe(C.Mode):
        def sample(self, stmt, dist, inputs, key):
            found[stmt.address] = dist.support
            return jnp.zeros(stmt.out.shape, stmt.out.dtype), jnp.zeros(()), False

    jax.eval_shape(lambda *a: (C.run(program, Probe(), a), 0)[1], *args)
    return found


_INSIDE = {("positive", "nonnegative"), ("unit_interval", "nonnegative"), ("boolean", "nonnegative_integer")}


def _inside(guide_support, model_support) -> bool:
    g, m = repr(guide_support), repr(model_support)
    if g == m or guide_support == model_support or model_support == K.real:
        return True
    if (g, m) in _INSIDE:
        return True
    if isinstance(guide_support, K.interval) and m in ("positive", "nonnegative"):
        return bool(np.all(np.asarray(guide_support.low) >= 0))
    return False


def _check_against_model(guide, guide_args, model, model_args):
    g_sites, m_sites = guide.latent_sites(), model.latent_sites()
    for a, info in m_sites.items():
        if a not in g_sites:
            raise ModelError(
                f"the guide '{guide.name}' has no random choice '{a}', a latent site of the model '{model.name}'"
                f"{_where(info)}", span=guide.span or info.span,
                hint=f"Add ppl.sample({a!r}, ...) to the guide: it must draw every latent site of the model.")
    for a, info in g_sites.items():
        if a not in m_sites:
            observed = model.sites.get(a)
            why = " (the model observes it)" if observed is not None and observed.kind == "observe" else ""
            raise ModelError(
                f"the guide's random choice '{a}' is not a latent site of the model '{model.name}'{why}",
                span=info.span, hint="A guide draws the model's latent sites only, with the same names.")
    for a, info in g_sites.items():
        if info.stacked_shape != m_sites[a].stacked_shape:
            raise ModelError(
                f"the guide draws '{a}' with shape {info.stacked_shape}, but the model's '{a}' has shape "
                f"{m_sites[a].stacked_shape}", span=info.span, hint="Give the guide's site the model's shape.")
    gs, ms = _supports(guide, guide_args), _supports(model, model_args)
    for a, info in g_sites.items():
        if not _inside(gs[a], ms[a]):
            raise ModelError(
                f"the guide draws '{a}' from {info.dist_type.__name__} on {gs[a]!r}, but the model's '{a}' "
                f"lives on {ms[a]!r}{_where(m_sites[a])}: the guide puts mass where the model has none",
                span=info.span,
                hint=f"Draw '{a}' in the guide from a distribution on {ms[a]!r} (for a positive site: LogNormal "
                     "or Gamma), or use ppl.AutoNormal(), which maps each site through its constraint.")

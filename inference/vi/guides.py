"""Guides: the variational families, and what an objective asks of one.

A *guide* is a program ``q_phi`` over the model's latent choices. Every guide,
once bound to a model (:func:`bind_guide`), offers:

- ``init(key) -> phi`` its unconstrained parameters (a pytree), and
  ``constrained(phi)`` their values as the user reads them;
- ``expect(phi, key, f, b, model_args) -> (value, s)``: ``E_{z ~ q_phi}[f(z, log q_phi(z))]`` with ``s`` an
  unbiased gradient surrogate (``adev.surrogate``), ``b`` the REINFORCE baseline;
- ``expect_many(phi, keys, f, b)``: the same over K independent draws (stacked);
- ``draw(phi, key) -> z``, one draw of the latent choices.

The kinds:

- a ppl model with ``ppl.param`` sites (either front end): :class:`ProgramGuide`; its random
  choices use their own estimators;
- the automatic guides (``autoguides.py``, ``flows.py``): families over the model's unconstrained
  coordinates, which also give the objective the model's ``density`` in those coordinates;
- amortised guides (``amortised.py``): a program whose parameters are a network reading the data.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from ppl.inference.vi.adev import surrogate, surrogate_many
from ppl.inference.vi.amortised import Amortized
from ppl.inference.vi.autoguides import (AutoDelta, AutoLaplace, AutoLowRank, AutoMultivariateNormal, AutoNormal,
                                         ToSupport)
from ppl.inference.vi.flows import AutoFlow
from ppl.inference.vi.site_supports import compare_supports
from ppl.inference.vi.subsample import Subsampled, is_subsample, subsample_sites
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics import params as P
from ppl.semantics.program import Dynamic
from ppl.stdlib import constraints as K
from ppl.stdlib.bijectors import biject_to
from ppl.stdlib.errors import ModelError

__all__ = ["AutoNormal", "AutoDelta", "AutoMultivariateNormal", "AutoLowRank", "AutoLaplace", "AutoFlow", "Amortized",
           "ProgramGuide", "bind_guide", "check_against_model", "ToSupport"]


def _latents(trace, addresses):
    return {a: trace.choices[a] for a in addresses}


# ---------------------------------------------------------------------------
# Guides written as programs


class ProgramGuide:
    """A ppl program with ``ppl.param`` sites as the guide of ``model`` (checked against it)."""

    named_params = True  # ``constrained(phi)`` maps each ppl.param's name to its value

    def __init__(self, guide_program: ir.Program, guide_args, model_program: ir.Program, model_args):
        self.program, self.args = guide_program, guide_args
        check_against_model(guide_program, guide_args, model_program, model_args)
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
    bound = _bind(guide, model_program, model_args, guide_args)
    if subsample_sites(model_program):  # rows of subsampled plates: drawn afresh, not fitted
        return Subsampled(bound, model_program, model_args)
    return bound


def _bind(guide, model_program, model_args, guide_args):
    if guide is None:
        guide = AutoNormal()
    if isinstance(guide, type):  # guide=ppl.AutoNormal: the class, not a guide
        raise ModelError(f"guide={guide.__name__} is a class, not a guide",
                         hint=f"Pass an instance: guide={guide.__name__}() (with its options, if any).")
    if hasattr(guide, "bind"):
        return guide.bind(model_program, model_args)
    if hasattr(guide, "program"):
        program, leaves = guide.program(*guide_args)
        if isinstance(program, Dynamic):
            raise ModelError(program.describe() + " A guide must be static.", span=program.span)
        return ProgramGuide(program, leaves, model_program, model_args)
    raise ModelError(f"guide={guide!r} is not a guide",
                     hint="Use an automatic guide (ppl.AutoNormal(), ppl.AutoMultivariateNormal(), ...), a @ppl.model "
                          "function with ppl.param, or ppl.Amortized(guide_fn, net).")


# ---------------------------------------------------------------------------
# A guide against its model


def _where(info) -> str:
    return f" (line {info.span.line})" if info.span is not None and info.span.line else ""


def check_against_model(guide, guide_args, model, model_args):
    g_sites = guide.latent_sites()
    m_sites = {a: info for a, info in model.latent_sites().items() if not is_subsample(info)}
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
    _check_supports(guide, guide_args, model, model_args, g_sites, m_sites)


def _check_supports(guide, guide_args, model, model_args, g_sites, m_sites):
    """Each guide site's support must be its model site's (the rule: ``site_supports``)."""
    for a, (same, g, m) in compare_supports(guide, guide_args, model, model_args, g_sites).items():
        info = g_sites[a]
        if same is None:
            raise ModelError(
                f"the support of the guide's '{a}' ({info.dist_type.__name__}) cannot be compared with the model's "
                f"'{a}'{_where(m_sites[a])}: a bound is traced, or the site was not reached by a run", span=info.span,
                hint="Pass the data the bounds are computed from as concrete arrays (not inside jax.jit), or use "
                     "ppl.AutoNormal(), which maps each site onto the model's support.")
        if not same:
            raise ModelError(
                f"the guide draws '{a}' from {info.dist_type.__name__} on {g!r}, but the model's '{a}' "
                f"lives on {m!r}{_where(m_sites[a])}: the guide's support must be the model's (a guide "
                "outside it draws impossible values; one inside only part of it fits only that part)",
                span=info.span,
                hint=f"Draw '{a}' in the guide from a distribution on {m!r} (for a positive site: LogNormal "
                     "or Gamma), or use ppl.AutoNormal(), which maps each site through its constraint.")

"""Per-site gradient estimators: which one a random choice uses, and whether it applies.

Each estimator is a way to make ``grad E_{x ~ p_theta}[f(x)]`` unbiased at one
random choice; ``adev.py`` composes them into one surrogate per program.

- ``"reparam"``: ``x = T(eps, theta)`` with ``eps`` fixed; the gradient flows
  through the sample (``grad E f = E[f'(x) dx/dtheta]``). Continuous
  distributions with a reparameterised sampler.
- ``"implicit"``: implicit reparameterisation (Figurnov et al. 2018):
  ``dx/dtheta = -(dF/dtheta)/p(x)`` for samplers that invert no closed-form
  map (Gamma, Beta, Dirichlet). JAX's gamma sampler differentiates this way
  already, so it runs as ``"reparam"``; the name says where it applies.
- ``"reinforce"``: the score function, ``grad E f = E[(f(x) - b) grad log
  p_theta(x)]`` for a baseline ``b`` that does not depend on ``x``. Any
  distribution.
- ``"enum"``: the exact sum ``E f = sum_v p_theta(v) f(v)`` over a finite support.
- ``"mvd"``: the measure-valued derivative: ``d/dtheta E f = c (E_{p+} f -
  E_{p-} f)`` for a decomposition ``d p_theta/d theta = c (p+ - p-)`` (table
  in :func:`mvd_terms`). Scalar Bernoulli, Categorical, Normal and Poisson choices.

Defaults: ``"implicit"`` for Gamma, Beta, Dirichlet; ``"reparam"`` for any other
distribution with a reparameterised sampler; ``"reinforce"`` otherwise
(discrete choices), whose baseline the objective supplies.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ppl.semantics import ir
from ppl.stdlib.errors import ModelError

__all__ = ["IMPLICIT", "MVD", "default_estimator", "estimator_of", "estimators_of", "mvd_terms", "problem"]

IMPLICIT = frozenset({"Gamma", "Beta", "Dirichlet"})
MVD = frozenset({"Bernoulli", "Categorical", "Normal", "Poisson"})
ENUM = frozenset({"Bernoulli", "Categorical"})


def default_estimator(dist_type) -> str:
    name = dist_type.__name__
    if name in IMPLICIT:
        return "implicit"
    if getattr(dist_type, "reparameterized", False) and not getattr(dist_type, "is_discrete", False):
        return "reparam"
    return "reinforce"


def _where(info) -> str:
    return f" (line {info.span.line})" if info.span is not None and info.span.line else ""


def problem(dist_type, asked: str, address: str) -> tuple[str, str] | None:
    """Why the estimator ``asked`` does not apply to a choice ``address`` of type ``dist_type``, as
    ``(message, hint)``; None when it applies (as far as the type tells: "mvd" also needs a scalar
    choice outside loops, which :func:`estimator_of` checks on the site)."""
    name = dist_type.__name__
    discrete = getattr(dist_type, "is_discrete", False) is True
    if asked in ("reparam", "implicit") and discrete:
        return (f"the random choice '{address}' is discrete ({name}), so it has no reparameterised "
                f"sampler: estimator={asked!r} does not apply",
                "Use estimator='reinforce' (score function), 'enum' (exact sum) or 'mvd'.")
    if asked == "reparam" and not getattr(dist_type, "reparameterized", False):
        return (f"{name} has no reparameterised sampler, so estimator='reparam' does not apply at "
                f"'{address}'", "Use estimator='reinforce'.")
    if asked == "implicit" and name not in IMPLICIT:
        return (f"estimator='implicit' applies to {', '.join(sorted(IMPLICIT))}, not to {name} at "
                f"'{address}'", "Use estimator='reparam' (or leave it out for the default).")
    if asked == "enum" and name not in ENUM:
        what = "continuous" if not discrete else "not finite"
        return (f"the random choice '{address}' ({name}) has a support that is {what}, so "
                "estimator='enum' (an exact sum over the support) does not apply",
                "Use 'enum' only on Bernoulli or Categorical choices; 'reparam' or 'reinforce' here.")
    if asked == "mvd" and name not in MVD:
        return (f"estimator='mvd' is implemented for {', '.join(sorted(MVD))}, not for {name} at "
                f"'{address}'", "Use 'reparam', 'implicit' or 'reinforce' here.")
    return None


def estimator_of(info: ir.SiteInfo, asked: str | None) -> str:
    """The estimator of the latent site ``info``: ``asked`` if it applies, else a clear error."""
    if asked is None:
        return default_estimator(info.dist_type)
    fail = problem(info.dist_type, asked, info.address)
    if fail is None and asked == "mvd" and (info.loop_lengths or info.in_branch or info.plates
                                            or tuple(info.shape) != ()):
        fail = (f"estimator='mvd' needs a single scalar choice outside loops, plates and branches, "
                f"but '{info.address}' is not one", "Use 'reinforce' or 'enum' here.")
    if fail is not None:
        raise ModelError(fail[0], span=info.span, hint=fail[1])
    return asked


def estimators_of(program: ir.Program) -> dict[str, str]:
    """Every latent site's estimator, checked (address -> name)."""
    asked = {s.address: s.estimator for s in ir.walk(program.block.stmts) if isinstance(s, ir.Sample)}
    return {a: estimator_of(info, asked.get(a)) for a, info in program.latent_sites().items()}


# ---------------------------------------------------------------------------
# Measure-valued derivatives


def _rayleigh(key, shape, dtype):
    u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
    return jnp.sqrt(-2.0 * jnp.log(u))


def _double_sided_maxwell(key, shape, dtype):
    k1, k2 = jax.random.split(key)
    m = jnp.sqrt(jax.random.gamma(k1, jnp.full(shape, 1.5, dtype), shape, dtype) * 2.0)  # chi with 3 dof
    sign = jnp.where(jax.random.bernoulli(k2, 0.5, shape), 1.0, -1.0).astype(dtype)
    return sign * m


def mvd_terms(dist, key, value):
    """The measure-valued derivative of ``dist`` at one scalar choice, as a list of
    ``(theta, c, x_plus, x_minus)``: ``d/d theta E f = c (E f(x_plus) - E f(x_minus))``
    (``x_minus`` None: the negative part is zero). ``theta`` is differentiable; the rest are not.
    ``value`` is the choice's own draw (Poisson reuses it).

    - Bernoulli(p): ``d/dp E f = f(1) - f(0)``.
    - Categorical(p): ``d/dp_k E f = f(k)`` (``E f = sum_k p_k f(k)``, linear in the vector ``p``).
    - Normal(mu, s): ``d/dmu``: ``c = 1/(s sqrt(2 pi))``, ``x± = mu ± s R``, ``R ~ Rayleigh(1)``;
      ``d/ds``: ``c = 1/s``, ``x+ = mu + s M`` (``M`` double-sided Maxwell), ``x- ~ Normal(mu, s)``.
    - Poisson(r): ``d/dr E f = E f(x + 1) - E f(x)``, ``x ~ Poisson(r)``.
    """
    sg = jax.lax.stop_gradient
    name = type(dist).__name__
    if name == "Bernoulli":
        return [(dist.probs, 1.0, jnp.asarray(1, jnp.int32), jnp.asarray(0, jnp.int32))]
    if name == "Categorical":
        probs = dist.probs
        return [(probs[k], 1.0, jnp.asarray(k, jnp.int32), None) for k in range(probs.shape[-1])]
    if name == "Normal":
        mu, s = dist.loc, dist.scale
        dtype = jnp.result_type(float)
        k1, k2, k3 = jax.random.split(key, 3)
        r = _rayleigh(k1, (), dtype)
        m = _double_sided_maxwell(k2, (), dtype)
        z = jax.random.normal(k3, (), dtype)
        mu0, s0 = sg(mu), sg(s)
        return [(mu, 1.0 / (s0 * math.sqrt(2 * math.pi)), mu0 + s0 * r, mu0 - s0 * r),
                (s, 1.0 / s0, mu0 + s0 * m, mu0 + s0 * z)]
    if name == "Poisson":
        return [(dist.rate, 1.0, value + 1, value)]
    raise ModelError(f"no measure-valued derivative for {name}")  # pragma: no cover - checked before

"""The exogenous form of a random site: how one noise value drives it in two worlds.

A site ``x ~ D(θ)`` is read as a structural equation ``x = g(θ, u)`` with
exogenous noise ``u`` of its own. Both worlds of a counterfactual share
``u``; only ``θ`` (computed from the site's parents) may differ: ``θ`` in
the factual world, ``θ'`` in the counterfactual one. Given the factual value
``x``, the counterfactual value is ``x' = g(θ', u)`` with ``u`` drawn from
its posterior given ``x = g(θ, u)``:

- **continuous** univariate sites: ``g`` is the inverse CDF, ``u = F_θ(x)``
  is determined by ``x``, and ``x' = F_θ'^{-1}(F_θ(x))``. For a normal
  site that is the reparameterisation ``x' = loc' + scale' (x - loc) / scale``
  (``u`` the standardised noise), computed in that form.
- **finite discrete** sites (Bernoulli, Categorical, Binomial: values
  ``0..K-1``): ``g`` is the inverse CDF of a uniform ``u``. ``x = k`` says
  ``u`` lies in ``[F_θ(k-1), F_θ(k))``, and ``x' = j`` exactly when ``u``
  lies in ``[F_θ'(j-1), F_θ'(j))``; so ``x'`` given ``x`` is categorical
  with probabilities ``|I_θ(x) ∩ I_θ'(j)| / P_θ(x)``: the noise is split
  into the finitely many intervals the two worlds' CDFs induce and summed
  out exactly (:func:`finite_coupling`). The pair is monotone: with
  ``θ' ≥ θ`` (a Bernoulli), ``x = 1`` implies ``x' = 1``.
- **infinite discrete** sites (Poisson, Geometric, ...): the noise is kept
  as a latent ``u ~ Uniform(F_θ(x-1), F_θ(x))`` and ``x' = F_θ'^{-1}(u)``
  (:func:`noise_interval`, then :func:`quantile`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ppl.stdlib.distributions.continuous import Normal

__all__ = ["kind_of", "finite_coupling", "noise_interval", "quantile", "continuous_coupling"]


def kind_of(d) -> str:
    """``"finite"``, ``"discrete"`` or ``"continuous"``: which exogenous form ``d`` gets."""
    if tuple(d.event_shape):
        return "multivariate"
    if not getattr(d, "is_discrete", False):
        return "continuous"
    if getattr(d, "has_enumerate_support", False):
        try:
            values = np.asarray(d.enumerate_support())
        except Exception:  # a support known only at run time (Binomial with a traced count)
            return "discrete"
        if values.size and np.all(values == np.arange(values.shape[0]).reshape((-1,) + (1,) * (values.ndim - 1))):
            return "finite"
    return "discrete"


def finite_coupling(df, dc, x):
    """``P(x' = j | x)`` for every ``j`` (last axis): the overlap of the two worlds' CDF intervals."""
    values = df.enumerate_support()  # (K, *batch)
    pf = jnp.exp(df.log_density(values))
    pc = jnp.exp(dc.log_density(values))
    ff, fc = jnp.cumsum(pf, axis=0), jnp.cumsum(pc, axis=0)
    # interval k is [F(k-1), F(k)): each boundary is one number, so equal parameters give the identity exactly
    ff_lo = jnp.concatenate([jnp.zeros_like(ff[:1]), ff[:-1]], axis=0)
    fc_lo = jnp.concatenate([jnp.zeros_like(fc[:1]), fc[:-1]], axis=0)
    hit = values == jnp.asarray(x)[None]
    hi = jnp.sum(jnp.where(hit, ff, 0.0), axis=0)
    lo = jnp.sum(jnp.where(hit, ff_lo, 0.0), axis=0)
    overlap = jnp.clip(jnp.minimum(hi[None], fc) - jnp.maximum(lo[None], fc_lo), 0.0, None)
    mass = hi - lo
    probs = jnp.where(mass[None] > 0, overlap / jnp.where(mass > 0, mass, 1.0)[None], pc)
    probs = jnp.moveaxis(probs, 0, -1)
    return probs / jnp.sum(probs, axis=-1, keepdims=True)


def noise_interval(df, x):
    """The interval ``[F(x-1), F(x)]`` of the uniform noise that gives the discrete value ``x``."""
    x = jnp.asarray(x)
    hi = df.cdf(x)
    lo = jnp.where(x > 0, df.cdf(x - 1), 0.0)
    return lo, jnp.maximum(hi, lo + 1e-12)


def quantile(dc, u):
    """``F^{-1}(u)`` under the counterfactual world's parameters."""
    return dc.icdf(u)


def continuous_coupling(df, dc, x):
    """``x' = F_θ'^{-1}(F_θ(x))`` (for a normal site, ``loc' + scale' (x - loc) / scale``)."""
    if isinstance(df, Normal) and isinstance(dc, Normal):
        return dc.loc + dc.scale * (x - df.loc) / df.scale
    return dc.icdf(df.cdf(x))

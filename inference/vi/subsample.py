"""Data subsampling under VI: ``ppl.plate(name, N, subsample_size=B)`` in the model (stochastic VI).

A subsampled plate draws its B rows as a latent site of the model (``name``, a
``SubsampleIndices(N, B)``: distinct rows, uniformly) and weighs each observation inside by
``N / B``. Under VI that site is not the guide's to fit: :class:`Subsampled` extends any bound
guide ``q(z)`` by the site's own distribution, ``q(z, idx) = q(z) P(idx)``, so every objective's
``density(z, idx) - log q(z, idx)`` is ``log p(z) + (N / B) sum_{i in idx} log p(y_i | z) - log q(z)``
(the constant ``log P(idx)`` cancels) with fresh rows at every estimate. Law (``subsample.py`` of
the distributions): ``E_idx[(N / B) sum_{i in idx} l_i] = sum_i l_i``, so the ELBO and its gradient
are unbiased for the full data's; a multi-sample objective (IWELBO, VIMCO, RWS) shares one subsample
among its K draws and estimates the bound of the subsampled likelihood (biased, as in NumPyro).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics import params as P

__all__ = ["subsample_sites", "is_subsample", "Subsampled"]


def is_subsample(info: ir.SiteInfo) -> bool:
    """A latent site that a subsampled plate draws (its rows)."""
    return info.kind == "sample" and getattr(info.dist_type, "__name__", "") == "SubsampleIndices"


def subsample_sites(program) -> tuple:
    """The addresses of the program's subsampled plates' row sites."""
    if not hasattr(program, "latent_sites"):
        return ()
    return tuple(a for a, info in program.latent_sites().items() if is_subsample(info))


def _distributions(program, args, addresses) -> dict:
    found: dict = {}

    class Probe(C.Mode):
        def sample(self, stmt, dist, inputs, key):
            if stmt.address in addresses:
                found[stmt.address] = dist
            return jnp.zeros(stmt.out.shape, stmt.out.dtype), jnp.zeros(()), False

    jax.eval_shape(lambda *a: (C.run(program, Probe(), a), 0)[1], *args)
    return found


class Subsampled:
    """A bound guide extended by the model's subsample sites, drawn from their own distribution (see the
    module docstring). Every other attribute is the inner guide's."""

    def __init__(self, inner, program, args):
        self.inner = inner
        self.sites = subsample_sites(program)
        self.dists = _distributions(program, args, set(self.sites))

    def __getattr__(self, name):  # draw_u, push, finish, check, density, constrained, ...: the inner guide's
        return getattr(self.inner, name)

    def rows(self, key):
        """``({site: rows}, log P(rows))``: fresh rows for every subsampled plate."""
        idx, log_p = {}, jnp.zeros((), jnp.result_type(float))
        for a in self.sites:
            d = self.dists[a]
            idx[a] = d.sample(jax.random.fold_in(key, C.address_hash(a)))
            log_p = log_p + jnp.sum(d.log_density(idx[a]))
        return idx, log_p

    def init(self, key):
        return self.inner.init(key)

    def expect(self, phi, key, f, baseline, args=None):
        k_rows, k_guide = jax.random.split(key)
        idx, log_p = self.rows(k_rows)
        return self.inner.expect(phi, k_guide, lambda z, log_q: f({**z, **idx}, log_q + log_p), baseline, args)

    def expect_many(self, phi, keys, f, baseline, args=None):
        idx, log_p = self.rows(jax.random.fold_in(keys[0], 1))  # one subsample for the K draws
        k = keys.shape[0]
        stacked = {a: jnp.broadcast_to(v, (k,) + v.shape) for a, v in idx.items()}
        return self.inner.expect_many(phi, keys, lambda zs, log_qs: f({**zs, **stacked}, log_qs + log_p),
                                      baseline, args)

    def draw(self, phi, key, args=None):
        k_rows, k_guide = jax.random.split(key)
        return {**self.inner.draw(phi, k_guide, args), **self.rows(k_rows)[0]}

    def log_density(self, phi, z, args=None, **kw):
        """``log q(z) + log P(rows)`` at given values (what wake-sleep objectives read)."""
        inner_z = {a: v for a, v in z.items() if a not in self.sites}
        log_p = sum(jnp.sum(self.dists[a].log_density(z[a])) for a in self.sites)
        own = getattr(self.inner, "log_density", None)
        if own is not None:
            return own(phi, inner_z, args, **kw) + log_p
        with P.bound(self.inner.constrained(phi)):  # a guide written as a program
            return C.log_density(self.inner.program, inner_z, self.inner.args) + log_p

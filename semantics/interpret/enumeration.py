"""Exact enumeration: a program as a finite table of weighted outcomes.

``M a = list[(a, trace, log_weight)]`` — the unnormalised measure of a finite
discrete program, listed.

Laws::

    pure(v)            = [(v, {}, 0)]
    sample(site)       = [(x, {site: x}, log p(x)) for x in support(site)]
    score(site, w)     = [(None, {}, w)]
    bind(m, k)         = [(y, t1 | t2, w1 + w2) for (x, t1, w1) in m for (y, t2, w2) in k(x)]

Outcomes of weight ``-inf`` are pruned (they carry no mass). Countably
infinite supports are cut at ``support_bound`` values, and paths with more
than ``max_depth`` random choices (unbounded recursion) are cut; the prior
mass lost to either cut is reported as ``truncated_mass``.
"""

from __future__ import annotations

import itertools
import math

import jax.numpy as jnp
import numpy as np

from ppl.semantics.interpret.free import outside_support, sample_log_density
from ppl.stdlib.errors import ModelError

__all__ = ["Enumeration", "site_support"]


def site_support(site, support_bound: int | None):
    """All values of a discrete site (a product over its batch elements), with log probabilities."""
    dist = site.dist
    if not getattr(dist, "is_discrete", False):
        raise ModelError(
            f"exact enumeration needs discrete random choices, but '{site.address}' is "
            f"{type(dist).__name__} (continuous)",
            span=site.span,
            hint="Use Importance, SMC or MCMC for models with continuous random choices.",
        )
    finite = getattr(dist, "has_enumerate_support", False)
    if not finite and support_bound is None:
        raise ModelError(
            f"'{site.address}' has infinitely many values ({type(dist).__name__})",
            span=site.span,
            hint="Give Enumerate(support_bound=K) to enumerate its first K values.",
        )
    values = np.asarray(dist.enumerate_support(None if finite else support_bound))  # (K,) + batch
    batch = tuple(dist.batch_shape)
    if not batch:
        for v in values:
            yield v, sample_log_density(site, v)
        return
    per_elem = values.reshape(values.shape[0], -1)  # (K, n)
    n = per_elem.shape[1]
    for combo in itertools.product(range(values.shape[0]), repeat=n):
        v = per_elem[list(combo), list(range(n))].reshape(batch)
        yield v, sample_log_density(site, v)


class Enumeration:
    """The enumeration representation (see the module laws)."""

    def __init__(self, support_bound: int | None = None, max_depth: int | None = None):
        self.support_bound = support_bound
        self.max_depth = max_depth
        self.truncated_mass = 0.0
        self._path: list[float] = []
        self.impossible = None  # an observation found outside its support, if any

    def pure(self, value, records):
        return [(value, dict(records), 0.0)]

    def sample(self, site):
        if self.max_depth is not None and len(self._path) >= self.max_depth:
            self.truncated_mass += math.exp(sum(self._path))
            return []
        outcomes = []
        kept = 0.0
        for v, lp in site_support(site, self.support_bound):
            if lp == -math.inf:
                continue
            kept += math.exp(lp)
            outcomes.append((jnp.asarray(v), {site.address: v}, lp))
        if not getattr(site.dist, "has_enumerate_support", False):
            self.truncated_mass += math.exp(sum(self._path)) * max(0.0, 1.0 - kept)
        return outcomes

    def score(self, site, log_weight):
        if log_weight == -math.inf and site.kind == "observe" and self.impossible is None:
            self.impossible = outside_support(site)
        return [(None, {}, log_weight)]

    def bind(self, m, k, site=None):
        out = []
        for x, t1, w1 in m:
            if w1 == -math.inf:
                continue
            self._path.append(w1 if site is None or site.kind == "sample" else 0.0)
            try:
                for y, t2, w2 in k(x):
                    if w2 != -math.inf:
                        out.append((y, {**t1, **t2}, w1 + w2))
            finally:
                self._path.pop()
        return out

"""Sampling representations: the quasi-Borel probability monad made concrete.

A program denotes a map from a source of randomness (a PRNG key) to a value;
with weights, to a (value, weight) pair. Random functions are ordinary values
of these maps, and ``mem`` is a memo table threaded through one run.

``Sampler``:  ``M a = key -> (a, trace)``; scores are forgotten (it draws from the prior).
``Weighted``: ``M a = key -> (a, trace, log_weight)``.

Laws (``split`` the PRNG split)::

    pure(v)         = key -> (v, {}, 0)
    sample(site)    = key -> (x ~ site.dist using key, {site: x}, 0)
    score(site, w)  = key -> (None, {}, w)           (Sampler: w dropped)
    bind(m, k)      = key -> let k1, k2 = split(key); (x, t1, w1) = m(k1);
                             (y, t2, w2) = k(x)(k2) in (y, t1 | t2, w1 + w2)

``Weighted`` is ``Sampler`` with the weight kept; the *traced* variant is
the trace each returns (address -> value), which MH moves over.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["Sampler", "Weighted", "run_weighted"]


class Weighted:
    keep_weight = True

    def pure(self, value, records):
        return lambda key: (value, dict(records), 0.0)

    def sample(self, site):
        def draw(key):
            x = site.dist.sample(key)
            return x, {site.address: x}, 0.0

        return draw

    def score(self, site, log_weight):
        w = log_weight if self.keep_weight else 0.0
        return lambda key: (None, {}, w)

    def bind(self, m, k, site=None):
        def run(key):
            k1, k2 = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
            x, t1, w1 = m(k1)
            y, t2, w2 = k(x)(k2)
            return y, {**t1, **t2}, w1 + w2

        return run


class Sampler(Weighted):
    keep_weight = False


def run_weighted(free, key):
    """Draw one weighted trace from a program tree (the Weighted fold, iteratively)."""
    from ppl.semantics.interpret.free import Pure, SampleF, ScoreF

    trace, log_weight, count = {}, 0.0, 0
    while not isinstance(free, Pure):
        count += 1
        sub = jax.random.fold_in(key, count)
        if isinstance(free, SampleF):
            x = free.site.dist.sample(sub)
            trace[free.site.address] = x
            free = free.k(jnp.asarray(x))
        elif isinstance(free, ScoreF):
            log_weight += free.log_weight
            free = free.k()
    trace.update(free.records)
    return free.value, trace, log_weight

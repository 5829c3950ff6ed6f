"""Random finite causal models for the identification and surgery tests.

A model is a DAG over sites ``v0, v1, ...`` (program order is a topological
order), each a categorical site with 2 or 3 values and a random conditional
probability table indexed by its parents' values.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import ppl
from ppl import dist


def make_model(names, parents, cards, cpts, name="random_scm"):
    """A ppl model sampling each site from its table given its parents' values."""

    def fn():
        vals = {}
        for v in names:
            table = jnp.asarray(cpts[v])
            index = tuple(vals[p] for p in parents[v])
            vals[v] = ppl.sample(v, dist.Categorical(probs=table[index] if index else table))
        return vals[names[-1]]

    fn.__name__ = name
    return ppl.model(fn)


@st.composite
def random_dag(draw, min_nodes=3, max_nodes=6, min_parents=0):
    n = draw(st.integers(min_nodes, max_nodes))
    names = [f"v{i}" for i in range(n)]
    parents = {}
    for i, v in enumerate(names):
        earlier = names[:i]
        chosen = draw(st.lists(st.sampled_from(earlier), unique=True, min_size=min(min_parents, i),
                               max_size=min(2, i))) if earlier else []
        parents[v] = tuple(sorted(chosen, key=names.index))
    cards = {v: draw(st.integers(2, 3)) if i < 2 else 2 for i, v in enumerate(names)}
    return names, parents, cards


def random_cpts(names, parents, cards, seed):
    """Tables bounded away from 0 (positivity), from a fixed seed."""
    rng = np.random.default_rng(seed)
    cpts = {}
    for v in names:
        shape = tuple(cards[p] for p in parents[v]) + (cards[v],)
        raw = rng.uniform(0.2, 1.0, size=shape)
        cpts[v] = raw / raw.sum(axis=-1, keepdims=True)
    return cpts


def exact_joint(names, parents, cards, cpts):
    """The exact joint probability table (numpy, independent of ppl): axes in ``names`` order."""
    joint = np.zeros([cards[v] for v in names])
    for idx in itertools.product(*[range(cards[v]) for v in names]):
        val = dict(zip(names, idx))
        p = 1.0
        for v in names:
            p *= cpts[v][tuple(val[q] for q in parents[v]) + (val[v],)]
        joint[idx] = p
    return joint


def enumerate_table(model, sites, engine="eager"):
    """``ppl.infer(model, method=Enumerate())`` as rows (dict of arrays) and their weights (the eager
    engine by default: for these tiny models it is faster than compiling)."""
    post = ppl.infer(model, method=ppl.Enumerate(engine=engine))
    return {s: np.asarray(post.samples[s]) for s in sites}, post.weights


def marginal(rows, weights, site):
    """``{value: probability}`` of one site from weighted rows."""
    out: dict = {}
    for v, w in zip(np.asarray(rows[site]).tolist(), weights):
        out[v] = out.get(v, 0.0) + float(w)
    return out

"""Shared checks of Markov chains against exact answers (used by the MH and Gibbs tests).

Every comparison is a z-score with the chain's Monte Carlo standard error
(``mcse_mean``, which accounts for autocorrelation; floored by the i.i.d.
error), so a test with a fixed seed fails only when the chain is wrong.
"""

from __future__ import annotations

import math

import numpy as np

import ppl
from ppl.inference.diagnostics import mcse_mean

Z_MAX = 4.0


def z_score(draws, exact):
    """(mean - exact) / MC standard error, for draws of shape (chains, draws)."""
    draws = np.asarray(draws, dtype=np.float64)
    n = draws.size
    se = max(float(mcse_mean(draws)), math.sqrt(max(np.var(draws), 1e-12) / n), 1e-3 / math.sqrt(n))
    return (draws.mean() - exact) / se


def exact_cells(model, *args):
    """Exact probabilities of every joint value of the latent sites, by enumeration."""
    post = ppl.infer(model, *args, method=ppl.Enumerate())
    names = sorted(post.samples)
    cells = {}
    for i, w in enumerate(post.weights):
        key = tuple(tuple(np.ravel(post.samples[a][i]).tolist()) for a in names)
        cells[key] = cells.get(key, 0.0) + float(w)
    return names, cells


def check_against_enumeration(post, model, *args, min_prob=0.01):
    """Each joint value with exact probability >= ``min_prob`` is visited at that frequency (|z| < Z_MAX)."""
    names, cells = exact_cells(model, *args)
    chains, draws = post.samples[names[0]].shape[:2]
    flat = [np.asarray(post.samples[a]).reshape(chains, draws, -1) for a in names]
    for cell, p in cells.items():
        if p < min_prob:
            continue
        hit = np.ones((chains, draws), bool)
        for values, want in zip(flat, cell):
            hit &= np.all(values == np.asarray(want), axis=-1)
        z = z_score(hit, p)
        assert abs(z) < Z_MAX, f"cell {dict(zip(names, cell))}: frequency {hit.mean():.4f}, exact {p:.4f}, z {z:.2f}"

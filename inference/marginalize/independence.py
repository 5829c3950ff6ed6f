"""Whether a site's elements along a plate are read one by one: a probe of the plate's promise.

A plate promises that its elements are independent given the rest (as in Pyro and NumPyro), and two
methods lean on it element by element: summing a discrete site out (``inference.marginalize``) and
Gibbs's parallel update (``inference.mcmc.gibbs``). A model can break the promise without a word:
``y ~ Normal(cumsum(jump), s)`` inside the plate of ``jump`` makes ``y[t]`` read every ``jump[s]``,
``s <= t``. Both methods then use each element's own term only, and their answers are wrong.

:func:`crossed_labels` runs the program's per-element terms (``element_log_densities``) at one
draw from the prior, then with one element ``m`` of the site changed (``m`` the first, middle and
last position of each plate), and reports a plate along which a term's element ``n != m`` moved.

Law: a label reported crosses for certain (the reported term element changed with another
element of the site). A label not reported was not seen to cross at the probed draw and
positions; reads that cross only at other values escape the probe (the same promise then stays
the user's, as in Pyro).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from ppl.inference.marginalize.elements import element_log_densities
from ppl.inference.marginalize.layout import site_axes, site_layout
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics.cache import cached
from ppl.stdlib.errors import PPLError

__all__ = ["Crossing", "crossed_labels"]

#: the prior draw the probe starts from (fixed, so that a program's plan does not depend on the run's seed)
_PROBE_SEED = 7


class Crossing(NamedTuple):
    """``term``'s element ``element`` along plate ``label`` changed when element ``changed`` of the site did."""

    label: str
    term: str
    changed: int
    element: int

    def describe(self, site: str) -> str:
        return (f"'{self.term}' at position {self.element} of '{self.label}' changes when '{site}' changes at "
                f"position {self.changed}")


def crossed_labels(program: ir.Program, args, address: str, terms, support=None) -> dict:
    """``label -> Crossing`` for each plate of ``address`` along which one of ``terms`` reads other
    elements of the site (see the module's law). ``support``: the site's finite values, if discrete."""
    key = ("plate-crossings", address, tuple(sorted(terms)))
    return cached(program, key, lambda: _probe(program, list(args), address, tuple(terms), support))


def _probe(program, args, address, terms, support) -> dict:
    layout = site_layout(program, args)
    axes = site_axes(program, layout, address)
    try:
        base = {a: np.asarray(v) for a, v in
                C.simulate(program, jax.random.key(_PROBE_SEED), args).choices.items()}
    except (PPLError, ValueError, TypeError):
        return {}  # no draw to probe from: the promise stays the user's
    if address not in base or np.shape(base[address]) != tuple(axes.shape):
        return {}
    at_base, _ = element_log_densities(program, base, args)
    found = {}
    for label, ax in zip(axes.labels, axes.label_axes):
        n = axes.shape[ax]
        readers = [t for t in terms if t in at_base and label in layout.labels.get(t, ())]
        if n < 2 or not readers:
            continue
        for m in sorted({0, n // 2, n - 1}):
            moved = dict(base)
            moved[address] = _change_element(base[address], ax, m, support)
            at_moved, _ = element_log_densities(program, moved, args)
            hit = _first_moved(readers, at_base, at_moved, layout.labels, label, m)
            if hit is not None:
                found[label] = Crossing(label, hit[0], m, hit[1])
                break
    return found


def _change_element(value: np.ndarray, axis: int, m: int, support) -> np.ndarray:
    """``value`` with its slice ``m`` along ``axis`` moved: to another value of a finite support, else by one."""
    out = np.array(value, copy=True)
    index = [slice(None)] * out.ndim
    index[axis] = m
    index = tuple(index)
    if support is not None and len(support) >= 2:
        first, second = np.asarray(support[0], out.dtype), np.asarray(support[1], out.dtype)
        out[index] = np.where(out[index] == first, second, first)
    else:
        out[index] = out[index] + 1
    return out


def _first_moved(readers, before, after, labels, label, m):
    """``(term, n)``: the first reader whose element ``n != m`` along ``label`` changed, or None."""
    for t in readers:
        a = _along(np.asarray(before[t]), labels[t], label)
        b = _along(np.asarray(after[t]), labels[t], label)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        same[m] = True
        if not same.all():
            return t, int(np.argmin(same))
    return None


def _along(term: np.ndarray, term_labels, label) -> np.ndarray:
    """The term summed over every axis but ``label``'s."""
    keep = list(term_labels).index(label)
    others = tuple(i for i in range(term.ndim) if i != keep)
    return np.sum(term, axis=others) if others else term

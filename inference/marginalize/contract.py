"""The factors of a sum and their contraction by plated variable elimination
(``inference.marginalize``, steps 3 and 4).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ppl.stdlib.errors import ModelError
from ppl.inference.marginalize.elements import ElementInterpreter, _Unconstrained, _float
from ppl.inference.marginalize.plan import _Plan


def _run_terms(plan: _Plan, program, u, args, indices: dict, key=None, sample_chains=False):
    st = plan.structure
    inputs = dict(u)
    for a, var in plan.vars.items():
        inputs[a] = var.value(indices.get(a, 0))
    mode = _Unconstrained(set(st.discrete))
    interp = ElementInterpreter(mode, inputs, key, st.graph, plan.chains, sample_chains)
    out, acc = interp.run_block(program.block, list(args))
    terms = dict(acc.terms)
    # a discrete site in a branch that did not run: count one of its values only
    for a in plan.vars:
        if a in acc.present:
            first = jnp.all(jnp.asarray(indices.get(a, 0)) == 0)
            terms[a] = jnp.where(acc.present[a], terms[a], jnp.where(first, 0.0, -jnp.inf))
    return terms, acc


def _factors(plan: _Plan, program, u, args) -> tuple[list, Any]:
    """Every term, as (array over (variables, labels), variables, labels); and whether every
    distribution's parameters were inside their domains at every value of the variables."""
    layout = plan.structure.layout
    out = []
    valid = jnp.asarray(True)
    for reads, names in plan.groups.items():
        def fn(*idx, reads=reads, names=names):
            terms, acc = _run_terms(plan, program, u, args, dict(zip(reads, idx)))
            return [terms[n] for n in names], acc.valid

        g = fn
        n = len(reads)
        for i in reversed(range(n)):
            axes = [None] * n
            axes[i] = 0
            g = jax.vmap(g, in_axes=tuple(axes))
        arrays, ok = g(*[jnp.arange(plan.vars[v].size) for v in reads])
        valid = valid & jnp.all(ok)
        for name, arr in zip(names, arrays):
            out.append(_Factor(arr, reads, layout.labels.get(name, ())))
    return out, valid


@dataclass(frozen=True)
class _Factor:
    array: Any
    vars: tuple
    labels: tuple


def _align(f: _Factor, to_vars, to_labels):
    src = [("v", v) for v in f.vars] + [("l", lab) for lab in f.labels]
    dst = [("v", v) for v in to_vars] + [("l", lab) for lab in to_labels]
    perm = [src.index(d) for d in dst if d in src]
    arr = jnp.transpose(f.array, perm)
    shape = []
    it = iter(arr.shape)
    for d in dst:
        shape.append(next(it) if d in src else 1)
    return arr.reshape(shape)


@dataclass(frozen=True)
class _Step:
    """One elimination: ``table`` over (local + remaining variables, labels), before summing."""

    table: Any
    local: tuple
    remaining: tuple
    labels: tuple


def _components(factors, is_local):
    """Groups of factors connected through shared local variables."""
    groups: list[tuple[set, list]] = []
    for f in factors:
        mine = {v for v in f.vars if is_local(v)}
        merged_vars, merged = set(mine), [f]
        keep = []
        for vs, fs in groups:
            if vs & mine:
                merged_vars |= vs
                merged += fs
            else:
                keep.append((vs, fs))
        groups = keep + [(merged_vars, merged)]
    return groups


def _contract(plan: _Plan, factors: list, record: bool = False):
    """log of the sum over every plain variable of the product of the factors (plated elimination)."""
    var_order = list(plan.vars)
    var_labels = {v: frozenset(plan.vars[v].labels) for v in var_order}
    layout = plan.structure.layout
    label_order = _label_order(factors)
    by_ordinal: dict[frozenset, list] = defaultdict(list)
    for f in factors:
        by_ordinal[frozenset(f.labels)].append(f)
    steps: list[_Step] = []
    total = jnp.zeros((), _float())
    while True:
        live = [o for o, fs in by_ordinal.items() if fs and o]
        if not live:
            break
        leaf = max(live, key=len)
        fs = by_ordinal.pop(leaf)
        labels = tuple(lab for lab in label_order if lab in leaf)
        for local, comp in _components(fs, lambda v: var_labels[v] == leaf):
            used = [v for v in var_order if any(v in f.vars for f in comp)]
            loc = tuple(v for v in used if v in local)
            rem = tuple(v for v in used if v not in local)
            vars_ = loc + rem
            table = sum(_align(f, vars_, labels) for f in comp)
            table = jnp.broadcast_to(table, tuple(plan.vars[v].size for v in vars_)
                                     + tuple(layout.sizes[lab] for lab in labels))
            if record and loc:
                steps.append(_Step(table, loc, rem, labels))
            g = logsumexp(table, axis=tuple(range(len(loc)))) if loc else table
            parent = frozenset().union(*[var_labels[v] for v in rem]) if rem else frozenset()
            if parent == leaf:
                raise ModelError(f"the discrete sites {list(rem)} sit in plates that overlap without nesting; "
                                 "they cannot be summed out element by element",
                                 hint="Nest the plates, or use Gibbs or MH.")
            plate_axes = tuple(len(rem) + i for i, lab in enumerate(labels) if lab not in parent)
            g = jnp.sum(g, axis=plate_axes) if plate_axes else g
            by_ordinal[parent].append(_Factor(g, rem, tuple(lab for lab in labels if lab in parent)))
    rest = by_ordinal.get(frozenset(), [])
    for local, comp in _components(rest, lambda v: True):
        vars_ = tuple(v for v in var_order if any(v in f.vars for f in comp))
        table = sum(_align(f, vars_, ()) for f in comp)
        table = jnp.broadcast_to(table, tuple(plan.vars[v].size for v in vars_))
        if record and vars_:
            steps.append(_Step(table, vars_, (), ()))
        total = total + (logsumexp(table) if vars_ else table)
    return total, steps


def _label_order(factors) -> list:
    order: list = []
    for f in factors:
        for lab in f.labels:
            if lab not in order:
                order.append(lab)
    return order

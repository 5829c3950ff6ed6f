"""A model's conditions as a layer over the running handler.

Where the IR -> IR transformation (``semantics/condition.py``) does not apply — a conditioned
model called as a sub-model of another, or a dynamic model, which has no IR — each sample site
named in the conditions becomes an observation of its given value, for the extent of one run.
Inside ``ppl.scan`` a site's given value is stacked by step: each enclosing loop gets the
slices of the given values for its step (threaded through the loop's ``xs``), keyed by the
address without step indices; a distribution or function given for a site (a new mechanism)
is the same at every step."""

from __future__ import annotations

import jax.numpy as jnp

from ppl.inference.causal import surgery
from ppl.semantics import effects
from ppl.stdlib.errors import AddressError, ShapeError

__all__ = ["run_conditioned"]


def run_conditioned(fn, name: str, conditions: dict, args, kwargs):
    """``fn(*args, **kwargs)`` under the current handler with ``conditions`` (site -> value)
    applied; a condition that names no site of the run is an error naming the sites it made."""
    h = effects.current_handler()
    layer = _Given(h, conditions)
    with h.layered(layer):
        out = fn(*args, **kwargs)
    missing = set(layer.wanted) - layer.used
    for address in sorted(missing):
        kind = layer.made.get(address)
        if kind == "observe":  # the site is made, but as an observation of data
            raise AddressError(
                f"condition()/do() names '{address}', which the model '{name}' observes as data: these set "
                "random choices, and an observation's value is its data",
                hint=f"To use other values for '{address}', pass them as the model's argument.")
    if missing:
        raise surgery.unknown_site_error(name, missing, layer.made)
    return out


class _Given(effects.Layer):
    """The conditions of one run, with the per-step slices of the loops it is inside."""

    def __init__(self, h, conditions: dict):
        prefix = "/".join(h.scope)
        self.h = h
        self.wanted = {(f"{prefix}/{k}" if prefix else k): v for k, v in conditions.items()}
        self.used: set = set()
        self.made: dict = {}  # address -> the kind of site the run made there
        # one table of step slices per enclosing ppl.scan, innermost last; without them every
        # step would see the whole stack
        self.loops: list = []

    def given(self, table_name: str, s):
        """The value given for sample site ``s``, and its key, or (None, None)."""
        table, loops, h = self.wanted, self.loops, self.h
        if not loops:
            return (table[s.address], s.address) if s.address in table else (None, None)
        if h.index_loops and s.address in table:  # eager addresses carry the step: 'y[3]'
            return table[s.address], s.address
        base = _strip_indices(s.address, len(loops)) if h.index_loops else s.address
        if base in table and not _is_array_like(table[base]):  # a new mechanism: the same at every step
            return table[base], base
        step_values = loops[-1][table_name]
        if base in step_values:
            return step_values[base], base
        if base in table or any(base in outer[table_name] for outer in loops[:-1]):
            raise ShapeError(
                f"condition()/do() gives '{base}', a site inside ppl.scan, values whose leading axis "
                "is not the loop's steps",
                span=s.span,
                hint="Give the stacked values of a loop site: one row per step, as in its trace.",
            )
        return None, None

    def site(self, s, below):
        self.made[s.address] = s.kind
        if s.kind == "sample":
            value, key = self.given("wanted", s)
            if key is not None:
                self.used.add(key)
                below(effects.Site("observe", s.address, s.dist, value, s.span, s.plates))
                return jnp.asarray(value)
        return below(s)

    def scan(self, step, init, xs, length, reverse, span, below):
        loops = self.loops
        n = effects.scan_length(xs, length, span)
        outer = loops[-1] if loops else {"wanted": self.wanted}
        sliced = {"wanted": _per_step(outer["wanted"], n)}
        if not sliced["wanted"]:
            loops.append(sliced)
            try:
                return below(step, init, xs, length, reverse, span)
            finally:
                loops.pop()

        def step_with_values(carry, x_and_values):
            x, values = x_and_values
            loops.append(values)
            try:
                return step(carry, x)
            finally:
                loops.pop()

        return below(step_with_values, init, (xs, sliced), length, reverse, span)


def _per_step(table: dict, n: int) -> dict:
    """The entries of ``table`` that are stacked by the ``n`` steps of a loop."""
    out = {}
    for a, v in table.items():
        if not _is_array_like(v):  # a distribution or function: not sliced by step
            continue
        v = jnp.asarray(v)
        if v.ndim >= 1 and v.shape[0] == n:
            out[a] = v
    return out


def _is_array_like(v) -> bool:
    """A value (number, list, array) rather than a new mechanism (a distribution or a function)."""
    return not (callable(v) and not hasattr(v, "__array__")) and not hasattr(v, "log_density")


def _strip_indices(address: str, count: int) -> str:
    """``'sub/y[3][1]'`` without its last ``count`` step indices."""
    for _ in range(count):
        if address.endswith("]") and "[" in address:
            address = address[: address.rindex("[")]
    return address

"""``condition`` as a program transformation: IR -> IR.

``condition_program(program, data)`` turns each random choice named in
``data`` into an observation of the given value; every reader of the choice's
variable reads the value instead (inside a loop, its step's slice). It returns
``None`` where the rewrite does not apply (a name the program does not make as a
random choice, a value that is not an array, a loop site whose value is not
stacked by step), and ``Model.condition`` then runs the model's code with the
conditions layered over the tracer, which reports the problem at the user's line.

Law (tested against exact enumeration in tests/test_condition.py): with ``D`` the
conditioned addresses, ``x`` the other latents and ``y`` the data,

    log p_cond(x, (y, D = d)) = log p(x, x_D = d, y)

so the conditioned program's latents are the original's less ``D``, its
evidence is ``p(x_D = d, y)``, and its posterior is ``p(x | x_D = d, y)``.
"""

from __future__ import annotations

import numpy as np

from ppl.semantics import ir
from ppl.semantics.rewrite import rewrite_sites

__all__ = ["condition_program"]


def condition_program(program: ir.Program, data: dict) -> ir.Program | None:
    """``program`` with the random choices in ``data`` observed at those values, or None."""
    sites = program.sites
    values = {}
    for address, given in data.items():
        info = sites.get(address)
        if info is None or info.kind != "sample":
            return None
        value = _as_value(given)
        if value is None:
            return None
        want = tuple(info.stacked_shape)
        if value.shape != want:
            if info.loop_lengths:
                return None
            try:
                value = np.broadcast_to(value, want)
            except ValueError:
                return None
        values[address] = _in_site_dtype(value, info.dtype)

    def observe(stmt: ir.Sample, atom):
        return ir.Observe(stmt.span, stmt.address, stmt.dist_type, stmt.treedef, stmt.args, atom, stmt.plates), atom

    return rewrite_sites(program, values, observe)


def _as_value(given):
    if callable(given) or hasattr(given, "log_density"):  # a distribution or function is no value
        return None
    try:
        return np.asarray(given)
    except Exception:  # a traced value (conditioning inside jit): the traced path takes it
        return None


def _in_site_dtype(value: np.ndarray, dtype) -> np.ndarray:
    """The value in the site's dtype where that loses nothing (``1.0`` for an integer site), else as given."""
    if dtype is None or value.dtype == dtype:
        return value
    try:
        cast = value.astype(dtype)
    except (TypeError, ValueError):
        return value
    return cast if np.array_equal(cast, value) else value

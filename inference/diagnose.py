"""Find the site behind a NaN or an impossible weight, by an eager, checked re-run.

Compiled code cannot raise on values, so when a compiled run produces a NaN
(or rules out every draw), the engine replays the offending draw in the
reference semantics, where every site is checked with concrete values: the
first bad parameter, observation or density raises an error naming its site
and the user's line.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np

from ppl.semantics import ir
from ppl.semantics.interpret.free import Pure, SampleF, ScoreF, reify_ir, sample_log_density
from ppl.stdlib.errors import PPLError

__all__ = ["diagnose", "lookup"]

_PART = re.compile(r"\[(\d+)\]")


def lookup(choices: dict, address: str):
    """The value of ``x[3][1]`` in stacked choices (``choices['x'][3, 1]``)."""
    if address in choices:
        return choices[address]
    base = address.split("[", 1)[0]
    idx = tuple(int(i) for i in _PART.findall(address[len(base):]))
    return np.asarray(choices[base])[idx]


def _validate(site):
    check = getattr(site.dist, "validate_params", None)
    if check is not None:
        try:
            check()
        except PPLError as err:
            err.message = f"at '{site.address}': {err.message}"
            raise err.with_span(site.span) from None


def diagnose(program: ir.Program, args, choices: dict) -> None:
    """Replay one draw eagerly with every check on; raises the first user error found."""
    free = reify_ir(program, args)
    while not isinstance(free, Pure):
        if isinstance(free, SampleF):
            _validate(free.site)
            value = jnp.asarray(lookup(choices, free.site.address))
            sample_log_density(free.site, value)
            free = free.k(value)
        elif isinstance(free, ScoreF):
            if free.site.dist is not None:
                _validate(free.site)
            free = free.k()

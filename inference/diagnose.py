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
from ppl.semantics.interpret.free import Pure, SampleF, ScoreF, outside_support, reify_ir, sample_log_density

__all__ = ["diagnose", "lookup"]

_PART = re.compile(r"\[(\d+)\]")


def lookup(choices: dict, address: str):
    """The value of ``x[3][1]`` in stacked choices (``choices['x'][3, 1]``)."""
    if address in choices:
        return choices[address]
    base = address.split("[", 1)[0]
    idx = tuple(int(i) for i in _PART.findall(address[len(base):]))
    return np.asarray(choices[base])[idx]


def diagnose(program: ir.Program, args, choices: dict, impossible: bool = False) -> None:
    """Replay one draw eagerly with every check on; raises the first user error found.

    With ``impossible=True`` (every draw had weight zero), an observation outside
    its support is reported even when the support depends on the parameters.
    """
    free = reify_ir(program, args)
    while not isinstance(free, Pure):
        if isinstance(free, SampleF):
            value = jnp.asarray(lookup(choices, free.site.address))
            sample_log_density(free.site, value)
            free = free.k(value)
        elif isinstance(free, ScoreF):
            if impossible and free.log_weight == -np.inf and free.site.kind == "observe":
                err = outside_support(free.site)
                if err is not None:
                    err.message += " (for every draw of the parameters)"
                    raise err
            free = free.k()

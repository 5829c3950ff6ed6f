"""Surgery: the interventions ``model.do({site: spec})`` accepts, parsed.

The program transformation itself is :mod:`.transform` (IR -> IR).

``do`` cuts the mechanism that produced a site out of the diagram and puts a
new one in its place. Three kinds of new mechanism (``spec``):

- a value (hard intervention): the site becomes that constant. It
  contributes no density and is no longer a random choice; descendants see
  the value; nothing upstream learns from it. On an observed site, the
  observation is dropped (its likelihood term is gone). On a
  ``ppl.deterministic`` site, the recorded quantity is replaced.
- a distribution (``dist.Normal(0, 1)``): the site is a random choice from
  that distribution, independent of its former parents.
- a function (``lambda z: z + 1``): the site is the function's value, its
  arguments taken by name from the sites made before it (in the same
  sub-model scope first). An argument named as the site itself receives its
  *natural* value — a draw from the original mechanism, recorded at
  ``"<site>.natural"`` — so ``do({"x": lambda x: x + 1})`` shifts ``x``.
  The new value is recorded as a deterministic site at the same address.

Laws (tests/test_surgery.py, against exact enumeration): do on a root is
conditioning on it; do leaves the marginal of every non-descendant alone;
``do(x=a)`` then ``do(x=a)`` is ``do(x=a)``; interventions on distinct sites
commute; a hard-intervened site has no density and no latent.
"""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass
from typing import Any

from ppl.stdlib.distributions.base import Distribution
from ppl.stdlib.errors import AddressError, ModelError

__all__ = ["Intervention", "parse", "unknown_site_error", "leaf"]


@dataclass(frozen=True)
class Intervention:
    """A new mechanism for one site: ``kind`` is ``"value"``, ``"dist"`` or ``"function"``."""

    kind: str
    payload: Any
    params: tuple[str, ...] = ()

    def reads(self, own: str) -> tuple[str, ...]:
        """Names of the sites a function intervention reads (its own name: its natural value)."""
        return tuple(p for p in self.params if p != own)


def parse(address: str, spec) -> Intervention:
    """The intervention ``spec`` given for ``address``."""
    if isinstance(spec, Intervention):
        return spec
    if isinstance(spec, Distribution):
        return Intervention("dist", spec)
    if callable(spec) and not hasattr(spec, "__array__"):
        try:
            sig = inspect.signature(spec)
        except (TypeError, ValueError):
            raise ModelError(f"do() on '{address}': cannot read the arguments of {spec!r}") from None
        params = []
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise ModelError(f"do() on '{address}': the new mechanism takes *args/**kwargs; name the sites "
                                 "it reads as its parameters (lambda z, w: ...)")
            if p.default is p.empty:
                params.append(p.name)
        return Intervention("function", spec, tuple(params))
    return Intervention("value", spec)


def leaf(address: str) -> str:
    """``'sub/x[3]'`` -> ``'x'``: how a function's parameter names its own site."""
    return re.sub(r"(\[\d+\])+$", "", address.rsplit("/", 1)[-1])


def unknown_site_error(model_name: str, missing, seen) -> AddressError:
    """An intervention or condition names sites the model never made."""
    name = sorted(missing)[0]
    close = difflib.get_close_matches(name, list(seen), n=1, cutoff=0.6)
    hint = f"Did you mean '{close[0]}'? " if close else ""
    return AddressError(
        f"condition()/do() names {sorted(missing)}, but the model '{model_name}' makes no random choice there",
        hint=hint + "Check the spelling; addresses of sub-models are 'sub/name', one element of a site 'x[3]'.")

"""Surgery: what ``model.do({site: spec})`` does at the intervened site.

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
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from ppl.semantics import effects
from ppl.stdlib.distributions.base import Distribution
from ppl.stdlib.errors import AddressError, ModelError, ShapeError, SupportError

__all__ = ["Intervention", "parse", "apply", "index_target", "unknown_site_error", "leaf"]


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


def _check_support(site, value):
    if site.dist is None:
        return
    try:
        ok = site.dist.support.check_now(np.asarray(value))
    except Exception:  # bounds known only when the model runs: checked by the density instead
        return
    if not np.all(ok):
        raise SupportError(
            f"do() sets '{site.address}' to {np.asarray(value).tolist()!r}, which is outside the support of its "
            f"distribution {type(site.dist).__name__} ({site.dist.support})",
            span=site.span, hint="Intervene with a value the site could take.")


def _shaped(site, value):
    value = jnp.asarray(value)
    if getattr(site.dist, "is_discrete", False):
        value = value.astype(jnp.int32)
    want = _site_shape(site)
    if want is not None and value.shape != want:
        try:
            value = jnp.broadcast_to(value, want)
        except ValueError:
            raise ShapeError(f"do() gives '{site.address}' a value of shape {value.shape}, but the site has shape "
                             f"{want}", span=site.span) from None
    return value


def _site_shape(site):
    if site.kind == "sample" and site.dist is not None:
        return tuple(site.dist.batch_shape) + tuple(site.dist.event_shape)
    if site.value is not None:
        return tuple(jnp.shape(site.value))
    return None


def apply(site: effects.Site, iv: Intervention, seen: dict, scope: str, inner_site: Callable):
    """Run the intervention ``iv`` at ``site``; returns the value descendants see."""
    if iv.kind == "value":
        if site.kind in ("sample", "observe"):
            _check_support(site, iv.payload)
        value = _shaped(site, iv.payload)
        if site.kind == "deterministic":
            inner_site(effects.Site("deterministic", site.address, None, value, site.span, site.plates))
        return value
    if iv.kind == "dist":
        if site.kind == "deterministic":
            raise ModelError(f"do() gives the deterministic site '{site.address}' a distribution; give it a value "
                             "or a function", span=site.span)
        new = iv.payload
        want = tuple(site.dist.batch_shape)
        if tuple(new.batch_shape) != want:
            try:
                new = new.expand(want)
            except Exception:
                raise ShapeError(f"do() gives '{site.address}' a distribution of batch shape {tuple(new.batch_shape)}"
                                 f", but the site has batch shape {want}", span=site.span) from None
        if tuple(new.event_shape) != tuple(site.dist.event_shape):
            raise ShapeError(f"do() gives '{site.address}' a distribution of event shape {tuple(new.event_shape)}, "
                             f"but the site's event shape is {tuple(site.dist.event_shape)}", span=site.span)
        return inner_site(effects.Site("sample", site.address, new, None, site.span, site.plates))
    # a function of named sites
    own = leaf(site.address)
    kwargs = {}
    for p in iv.params:
        if p == own:
            if site.kind == "sample":
                kwargs[p] = inner_site(effects.Site("sample", site.address + ".natural", site.dist, None,
                                                    site.span, site.plates))
            else:
                kwargs[p] = site.value
            continue
        key = f"{scope}/{p}" if scope and f"{scope}/{p}" in seen else p
        if key not in seen:
            close = difflib.get_close_matches(p, [a.rsplit("/", 1)[-1] for a in seen], n=1)
            raise AddressError(
                f"the new mechanism for '{site.address}' reads '{p}', but no site of that name is made before it",
                span=site.span,
                hint=(f"Did you mean '{close[0]}'? " if close else "")
                + "Its parameters name the sites it reads (made earlier in the model).")
        kwargs[p] = seen[key]
    value = jnp.asarray(iv.payload(**kwargs))
    if site.kind in ("sample", "observe"):
        value = _shaped(site, value)
    inner_site(effects.Site("deterministic", site.address, None, value, site.span, site.plates))
    return value


def index_target(address: str, table) -> str | None:
    """A key of ``table`` naming one step of the loop site ``address`` (``'x[3]'`` for ``'x'``)."""
    pattern = re.compile(re.escape(address) + r"(\[\d+\])+")
    for k in table:
        if pattern.fullmatch(k):
            return k
    return None


def unknown_site_error(model_name: str, missing, seen) -> AddressError:
    """An intervention or condition names sites the model never made."""
    name = sorted(missing)[0]
    close = difflib.get_close_matches(name, list(seen), n=1, cutoff=0.6)
    base = re.sub(r"(\[\d+\])+$", "", name)
    if base != name and base in seen:
        return AddressError(
            f"do()/condition() names '{name}', one element of the site '{base}' of the model '{model_name}', which "
            "is a plate (vectorised) site: its elements are not separate random choices",
            hint=f"Intervene on the whole site: give '{base}' an array of values.")
    hint = f"Did you mean '{close[0]}'? " if close else ""
    return AddressError(
        f"condition()/do() names {sorted(missing)}, but the model '{model_name}' makes no random choice there",
        hint=hint + "Check the spelling; addresses of sub-models are 'sub/name', loop sites 'x[3]'.")

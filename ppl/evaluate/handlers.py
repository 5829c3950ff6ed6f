"""Effect handlers the evaluator runs parts of a body under: probes that find shapes without
performing effects, the deterministic handler of ``run_deterministic``, and the guard against
a weight inside an ``if`` expression on a run-time value."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ppl.semantics import effects
from ppl.stdlib import jax_compat as jc
from ppl.stdlib.errors import ModelError

from .runtime import real_dtype, dynamic

__all__ = ["NoWeights", "ShapeHandler", "Deterministic", "run_deterministic", "SiteShapes"]


class NoWeights:
    """While evaluating both arms of a traced ``if`` expression, a weight must not occur."""

    def __init__(self, node):
        self.node = node
        self.handler = None

    def __enter__(self):
        h = effects.current_handler()
        self.handler = h
        if h is None:
            return self
        inner = h.site
        node = self.node

        def site(s):
            if s.kind in ("observe", "factor"):
                raise dynamic("an observation or factor inside an `if` expression on a value known only "
                               "when the model runs", node.span)
            return inner(s)

        self.inner = inner
        h.site = site
        return self

    def __exit__(self, *exc):
        if self.handler is not None:
            self.handler.site = self.inner
        return False


class ShapeHandler(effects.Handler):
    """A probe: draws zeros of the right shape and records nothing (for type inference)."""

    index_loops = False

    def __init__(self, outer):
        super().__init__()
        self.scope = list(getattr(outer, "scope", []))
        self.plates = list(getattr(outer, "plates", []))

    def site(self, site):
        if site.kind == "sample":
            d = site.dist
            shape = tuple(d.batch_shape) + tuple(d.event_shape)
            return jnp.zeros(shape, jnp.int32 if getattr(d, "is_discrete", False) else real_dtype())
        if site.kind == "deterministic":
            return site.value
        return None

    def claim(self, address, span):
        return None

    def run_scan(self, step, init, xs, length, reverse, span):
        return jax.lax.scan(step, init, xs, length=length, reverse=reverse)

    def run_cond(self, pred, true_fn, false_fn, operands, span):
        if not jc.is_tracer(pred):
            return super().run_cond(pred, true_fn, false_fn, operands, span)
        return jax.lax.cond(pred, true_fn, false_fn, *operands)


class Deterministic(ShapeHandler):
    """Runs a deterministic function outside a model run (an ODE right-hand side, a ``def`` called
    from Python): control flow becomes ``lax.cond``/``lax.scan``; a random choice is an error."""

    def __init__(self):
        super().__init__(None)

    def site(self, site):
        if site.kind == "deterministic":
            return site.value
        raise ModelError(
            f"a {site.kind} statement ran inside a function called outside the model "
            "(an ODE right-hand side must be deterministic)",
            span=site.span,
            hint="Draw the random values in the model and pass them to the function as arguments.",
        )


def run_deterministic(fn, *args):
    """``fn(*args)`` under a handler that gives ``if`` and ``for`` their plain JAX meaning."""
    with Deterministic():
        return fn(*args)


class SiteShapes(ShapeHandler):
    """A probe that also records each site's batch shape (value or distribution, without event axes)."""

    def __init__(self, outer):
        super().__init__(outer)
        self.depth = len(self.plates)
        self.batch_shapes: list[tuple] = []

    def site(self, site):
        d = site.dist
        if d is not None:
            event = tuple(getattr(d, "event_shape", ()))
            self.batch_shapes.append(tuple(getattr(d, "batch_shape", ())))
            if site.kind == "observe" and site.value is not None:
                shape = tuple(jnp.shape(site.value))
                self.batch_shapes.append(shape[: len(shape) - len(event)] if event else shape)
        return super().site(site)

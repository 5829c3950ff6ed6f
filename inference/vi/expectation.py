"""Expectations as programs: ``E = expectation(model)``; ``E.estimate``, ``E.grad``, ``E.value_and_grad``.

``model`` is a ppl model (either front end; anything with ``.program(*args)``) whose
random choices define a measure and whose return value is a scalar ``f``::

    E[E.estimate(key, *args)]   = E_{x ~ model(args)}[f(x, args)]
    E[E.grad(key, *args)]       = grad_args E_{x ~ model(args)}[f(x, args)]

each random choice using its estimator (``ppl.sample(..., estimator=...)``). The
``baseline=`` of the ``"reinforce"`` choices is the caller's (default 0): any value
that does not depend on this run's random choices keeps the gradient unbiased.
All three functions jit and vmap (over keys and arguments).
"""

from __future__ import annotations

import jax

from ppl.inference.vi.adev import surrogate
from ppl.semantics import ir
from ppl.semantics import params as P
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["Expectation"]


class Expectation:
    """The expectation of a scalar-valued ppl program (laws in the module docstring)."""

    def __init__(self, model):
        if not hasattr(model, "program"):
            raise ModelError(f"an expectation needs a ppl model, but got {type(model).__name__}",
                             hint="Decorate the function with @ppl.model, or pass a plain function to "
                                  "ppl.expectation.")
        self.model = model

    def __repr__(self):
        return f"<ppl.Expectation of {getattr(self.model, 'name', self.model)}>"

    def _program(self, args):
        program, leaves = self.model.program(*args)
        if isinstance(program, Dynamic):
            raise ModelError(program.describe() + " An expectation needs a static program.", span=program.span)
        weighted = [info for info in program.sites.values() if info.kind in ("observe", "factor")]
        if weighted:
            info = weighted[0]
            raise ModelError(
                f"the expectation's program has an {info.kind} ('{info.address}'): its random choices "
                "define the measure, so it takes no observations or factors", span=info.span,
                hint="Move the observation into the integrand's arithmetic, or use ppl.VI to fit a posterior.")
        return program, leaves

    def _surrogate(self, key, args, baseline):
        program, leaves = self._program(args)
        return surrogate(program, key, leaves, lambda trace: trace.retval, baseline)

    def estimate(self, key, *args, baseline=0.0):
        """An unbiased estimate of the expectation."""
        return jax.lax.stop_gradient(self._surrogate(key, args, baseline)[0])

    def value_and_grad(self, key, *args, baseline=0.0):
        """(an estimate of the expectation, an unbiased estimate of its gradient w.r.t. ``args``).

        The gradient has the structure of the arguments: one argument's gradient, or a tuple of them."""
        value, grads = jax.value_and_grad(lambda a: self._surrogate(key, a, baseline)[1])(tuple(args))
        return value, grads[0] if len(args) == 1 else grads

    def grad(self, key, *args, baseline=0.0):
        """An unbiased estimate of the gradient of the expectation w.r.t. ``args``."""
        return self.value_and_grad(key, *args, baseline=baseline)[1]

    def __call__(self, ctx, key):
        """As a variational objective (``ppl.VI(objective=E)``): the program runs on the model's arguments,
        with the guide's and the model's ``ppl.param`` values bound (those its ``ppl.sim``/``ppl.density``
        calls declare); ``(value, s)`` with ``E[grad s]`` the gradient of its expectation."""
        program, leaves = self._program(tuple(ctx.model_args))
        values = ctx.param_values()
        missing = [a for a in P.params_of(program) if a not in values]
        if missing:
            info = P.params_of(program)[missing[0]]
            raise ModelError(f"the objective '{program.name}' has a parameter '{missing[0]}' that is neither the "
                             f"guide's nor the model's", span=info.span,
                             hint="An objective program's parameters are those of the guide it simulates with "
                                  "ppl.sim and of the model it scores with ppl.density; pass that guide to ppl.VI.")
        with P.bound(values):
            return surrogate(program, key, leaves, lambda trace: trace.retval, ctx.baseline)

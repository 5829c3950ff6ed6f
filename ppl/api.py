"""``ppl.infer``: one entry point for every inference method."""

from __future__ import annotations

import jax

from ppl.inference.enumerate import Enumerate
from ppl.inference.importance import Importance
from ppl.model import Model
from ppl.posterior import Posterior
from ppl.semantics import ir
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["infer", "default_method"]


def default_method(program, args=None) -> object:
    """The method ``ppl.infer`` and ``ppl run`` use when none is given.

    Exact enumeration for finite discrete static models; NUTS for static models
    whose latent sites are continuous, or whose discrete sites can be summed out
    exactly (given ``args``, the model's array arguments); SMC for other static
    models that observe inside a loop (the sequential cut gives it steps);
    importance sampling otherwise, and for dynamic models.
    """
    if isinstance(program, ir.Program):
        latent = program.latent_sites().values()
        if all(s.is_discrete and getattr(s.dist_type, "has_enumerate_support", False) is True for s in latent):
            return Enumerate()
        from ppl.inference import registry

        continuous = registry.default_continuous()
        discrete = any(s.is_discrete for s in latent)
        if continuous is not None and (not discrete or _can_marginalize(program, args)):
            return continuous
        from ppl.inference.smc import SMC, sequential_cut

        if sequential_cut(program).loop is not None:
            return SMC(num_particles=1000)
    return Importance(num_particles=1000)


def _can_marginalize(program, args) -> bool:
    if args is None:
        return False
    from ppl.inference import marginalize

    return bool(marginalize.can_marginalize(program, args))


def infer(model: Model, *args, method=None, seed: int = 0, key=None, **kwargs) -> Posterior:
    """Run inference on ``model(*args, **kwargs)`` and return a :class:`Posterior`.

    ``method`` is ``ppl.Enumerate()``, ``ppl.Importance(num_particles=...)``, ...;
    by default exact enumeration for finite discrete models, else a sampler.
    Static models run compiled; dynamic ones (control flow on random values)
    run in the eager engine, and the posterior says so and why.
    """
    if not isinstance(model, Model):
        if callable(model):
            raise ModelError(f"ppl.infer needs a model, but got the plain function {getattr(model, '__name__', model)!r}",
                             hint="Decorate it with @ppl.model.")
        raise ModelError(f"ppl.infer needs a model, but got {type(model).__name__}")
    program, leaves = model.program(*args, **kwargs)
    if method is None:
        method = default_method(program, leaves)
    if not hasattr(method, "run"):
        raise ModelError(f"method={method!r} is not an inference method",
                         hint="Use ppl.Enumerate(), ppl.Importance(num_particles=1000), ...")
    if key is None:
        key = jax.random.key(seed)
    reason = program.describe() if isinstance(program, Dynamic) else None
    result = method.run(program, None if isinstance(program, Dynamic) else leaves, key)
    return Posterior(result, model.name, reason)

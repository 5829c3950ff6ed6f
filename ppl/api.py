"""``ppl.infer``: one entry point for every inference method."""

from __future__ import annotations

import jax

from ppl.errors_at_user import user_error
from ppl.inference import sharding
from ppl.model import Model
from ppl.posterior import Posterior
from ppl.semantics.program import Dynamic
from ppl.stdlib import jax_compat
from ppl.stdlib.errors import ModelError, PPLError

__all__ = ["infer", "default_method"]


def default_method(program, args=None) -> object:
    """The method ``ppl.infer`` and ``ppl run`` use when none is given.

    The rule is ``ppl.inference.registry.default_method`` (documented in docs/api.md, "The
    default method"): exact enumeration for finite discrete static models; importance sampling
    or SMC for models with a hard ``condition`` on a continuous value; NUTS for other continuous
    static models (discrete sites summed out where possible, given ``args``); SMC for other models
    that observe inside a loop; importance sampling otherwise, and for dynamic models.
    """
    from ppl.inference import registry

    return registry.default_method(program, args)


def infer(model: Model, *args, method=None, seed: int = 0, key=None, devices=None, **kwargs) -> Posterior:
    """Run inference on ``model(*args, **kwargs)`` and return a :class:`Posterior`.

    ``method`` is ``ppl.Enumerate()``, ``ppl.Importance(num_particles=...)``, ...;
    by default exact enumeration for finite discrete models, else a sampler.
    Static models run compiled; dynamic ones (control flow on random values)
    run in the eager engine, and the posterior says so and why.
    ``devices``: where MCMC chains, SMC particles and importance samples run (and the rows of
    plates marked ``shard=``): a number of devices, a list of devices, a ``jax.sharding.Mesh``, or
    None for the default (``ppl.config(devices=...)``, else every device when there are several);
    ``posterior.devices`` lists those used. See docs/devices.md.
    """
    if not isinstance(model, Model):
        if callable(model):
            raise ModelError(f"ppl.infer needs a model, but got the plain function {getattr(model, '__name__', model)!r}",
                             hint="Decorate it with @ppl.model.")
        raise ModelError(f"ppl.infer needs a model, but got {type(model).__name__}")
    try:
        program, leaves = model.program(*args, **kwargs)
    except PPLError as err:  # a mistake found while reading the model: one error, at the user's line
        raise user_error(err) from None
    if method is None:
        method = default_method(program, leaves)
    if isinstance(method, type):
        raise ModelError(f"method=ppl.{method.__name__} is the method itself; give an instance, with its options",
                         hint=f"Write method=ppl.{method.__name__}(); its options go inside the parentheses.")
    if not hasattr(method, "run"):
        raise ModelError(f"method={method!r} is not an inference method",
                         hint="Use ppl.Enumerate(), ppl.Importance(num_particles=1000), ...")
    if key is None:
        key = jax_compat.key_from_seed(seed)
    reason = program.describe() if isinstance(program, Dynamic) else None
    if not isinstance(program, Dynamic):  # refuse a run whose draws cannot fit in memory, before it starts
        from ppl import memory

        memory.check(program, leaves, method)
    placement, notes = None, []
    try:
        if not isinstance(program, Dynamic):  # chains, particles and sharded data on the devices
            placement, leaves, notes = sharding.for_program(program, leaves, devices)
        with sharding.placed(placement) as used:
            result = method.run(program, None if isinstance(program, Dynamic) else leaves, key)
    except PPLError as err:  # a mistake in the user's model or data: one error, at the user's line
        raise user_error(err) from None
    except jax.errors.JaxRuntimeError as err:  # the device ran out of memory after all: say so, in words
        from ppl import memory

        if not memory.is_exhausted(err):
            raise
        raise memory.exhausted_error(program, leaves, method, err) from None
    post = Posterior(result, model.name, reason)
    post.notes.extend(notes)
    post.devices = sharding.describe(used.effective(placement))
    return post

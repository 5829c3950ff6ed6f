"""The evaluator's rule for ``for``: one vectorised ``plate`` when the body allows it, else a
``scan`` carrying the names the body rebinds and collecting the names it first draws."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import effects
from ppl.stdlib.errors import ModelError, ShapeError
from ppl.syntax import ast as A

from .facts import vectorizable
from .handlers import SiteShapes
from .indexing import node_text
from .runtime import Collected, is_concrete, tracing, dynamic, plain

__all__ = ["LoopRules"]


class LoopRules:
    """Rules for loops (a part of ``Evaluator``)."""

    def s_for(self, s: A.For, env):
        start, stop = self.expr(s.start, env), self.expr(s.stop, env)
        if not (is_concrete(start) and is_concrete(stop)):
            raise dynamic("the bounds of this loop are known only when the model runs", s.span)
        for bound, node in ((start, s.start), (stop, s.stop)):
            if np.ndim(bound) != 0 or not float(bound).is_integer():
                raise ModelError(f"a loop bound must be a whole number, but {node_text(node)} is "
                                 f"{np.asarray(bound).tolist()!r}", span=node.span,
                                 hint="Give an integer, or say how to make one: to_int(x) drops the fraction, round(x) rounds.")
        start, stop = int(start), int(stop)
        n = max(0, stop - start)
        if n == 0:
            return
        if not s.carried and vectorizable(s.body) and self.iterations_are_scalar(s, env, start):
            self.plate_loop(s, env, start, n)
        else:
            self.scan_loop(s, env, start, n)

    def iterations_are_scalar(self, s: A.For, env, start) -> bool:
        """Whether one iteration's random choices are scalars (batch-wise), so a plate can stack them.

        A plate puts the iterations on the rightmost batch axis (NumPyro's rule). An iteration
        whose sites have batch shape of their own (``y[g] ~ normal(theta[g], sigma)`` with
        ``y[g]`` a row of a matrix) would collide with it; such loops run as a scan, which gives
        every iteration its own shapes. One iteration is run for its shapes only, with no effect.
        """
        h = effects.current_handler()
        probe = SiteShapes(h)
        local = dict(env)
        local[s.var] = jnp.int32(start)
        for name in s.collected:  # as in a scan step: `x[i]` is this iteration's draw of x
            local[name] = Collected(None, s.var)
        with probe:
            jax.eval_shape(lambda: (self.block(s.body, dict(local)), 0)[1])
        return all(len(shape) <= probe.depth for shape in probe.batch_shapes)

    def plate_loop(self, s: A.For, env, start, n):
        h = effects.current_handler()
        depth = len(h.plates) if h is not None else 0
        local = dict(env)
        local[s.var] = (start + jnp.arange(n)).reshape((n,) + (1,) * depth)
        with effects.plate(s.var, n, span=s.span):
            self.block(s.body, local)
        for name in s.collected:
            if name in local:
                env[name] = local[name]

    def scan_loop(self, s: A.For, env, start, n):
        carried = [c for c in s.carried if c in env]
        collected = list(s.collected)

        def step(carry, i):
            local = dict(env)
            local.update(zip(carried, carry))
            local[s.var] = i
            for name in collected:
                local[name] = Collected(None, s.var)
            self.block(s.body, local)
            ys = []
            for name in collected:
                v = local.get(name)
                v = v.value if isinstance(v, Collected) else v
                if v is None:
                    raise ModelError(
                        f"'{name}' is not drawn in every iteration of this loop", span=s.span,
                        hint=f"Draw '{name}' in every iteration and use it where it is needed (a draw that "
                             f"nothing reads changes no answer): '{name} ~ ...' before the `if`, not in it.")
                ys.append(jnp.asarray(v))
            return tuple(jnp.asarray(local[c]) for c in carried), tuple(ys)

        init = tuple(jnp.asarray(plain(env[c])) for c in carried)
        xs = start + jnp.arange(n)
        if tracing():
            for _ in range(3):  # promote the carry to the types the body produces
                shapes = self.dry_run(lambda: step(init, xs[0]))
                out = shapes[0]
                new = tuple(jnp.asarray(c, jnp.result_type(c.dtype, o.dtype)) for c, o in zip(init, out))
                if all(a.dtype == b.dtype for a, b in zip(new, init)) and all(not getattr(a, "weak_type", False)
                                                                           for a in new):
                    break
                init = tuple(jnp.array(c, dtype=c.dtype) for c in new)
            for c, o in zip(init, out):
                if c.shape != o.shape:
                    raise ShapeError(f"a variable carried by this loop changes shape from {c.shape} to {o.shape}",
                                     span=s.span)

        def typed_step(carry, i):
            new, ys = step(carry, i)
            return tuple(jnp.asarray(v, c.dtype) for v, c in zip(new, carry)), ys

        final, ys = effects.scan(typed_step, init, xs, span=s.span)
        env.update(zip(carried, final))
        env.update(zip(collected, ys if ys is not None else ()))

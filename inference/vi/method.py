"""``VI``: fit a guide by stochastic optimisation of an objective; a posterior of the guide's draws.

The loop maximises ``objective(ctx, key)`` over the guide's unconstrained
parameters ``phi`` with an optax optimiser, compiled: ``lax.scan`` over
chunks of steps inside one ``jit`` per (program, method), the data an argument
(so new data of the same shapes does not recompile). The REINFORCE baseline is a
running average of the objective (``b <- 0.9 b + 0.1 value``, starting at the
first value), which does not depend on the step's own draws, so the gradient
stays unbiased. After training: ``num_samples`` draws from the fitted guide
(pushed through the model for its deterministic sites and return value),
``params`` (the guide's parameters, constrained), ``history`` (the objective per
step) and ``log_evidence``: the objective at the fitted guide, averaged over
``num_final`` fresh estimates (for the ELBO and IWELBO a lower bound on ``log p(y)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics.cache import cached
from ppl.inference._common import refuse_partial_continuous
from ppl.inference.result import Result
from ppl.inference.marginalize import recover_discrete
from ppl.inference.vi.guides import bind_guide
from ppl.inference.vi.objectives import ELBO, Context
from ppl.inference.vi.paramset import with_model_params
from ppl.inference.vi.progress import FitProgress, enabled
from ppl.semantics import compile as C
from ppl.semantics import params as P
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["VI", "VIResult"]


@dataclass
class VIResult(Result):
    """A VI run: the draws of the fitted guide, with its parameters and the objective's history."""

    params: Any = None
    history: np.ndarray | None = None
    log_evidence_se: float | None = None


def _default_optimizer():
    import optax

    return optax.adam(1e-2)


@dataclass(frozen=True, kw_only=True)
class VI:
    """Variational inference: ``guide`` (default ``AutoNormal()``), ``objective`` (default
    ``ELBO(8)``), ``optimizer`` (an optax transformation; default ``adam(1e-2)``)."""

    guide: Any = None
    objective: Any = field(default_factory=lambda: ELBO(8))
    optimizer: Any = None
    num_steps: int = 5000
    num_samples: int = 1000
    chunk_size: int = 1000
    num_final: int = 100
    guide_args: tuple = ()
    progress: bool | None = None  # None: on when stderr is a terminal (a bar with the objective)

    name = "VI"

    def run(self, program, args, key) -> VIResult:
        if isinstance(program, Dynamic):
            raise ModelError(program.describe() + " VI needs a static model.", span=program.span)
        steps = int(self.num_steps)
        if steps < 1:
            raise ModelError(f"VI needs num_steps >= 1, not {self.num_steps}")
        optimizer = self.optimizer if self.optimizer is not None else _default_optimizer()
        refuse_partial_continuous(program, "VI")
        C.check_data(program, args)  # once here; each step's density leaves these checks out
        guide = with_model_params(bind_guide(self.guide, program, args, self.guide_args), program, args)
        k_init, k_fit, k_final, k_draw = jax.random.split(key, 4)
        phi = guide.init(k_init)
        fns = _compiled(program, self, guide, optimizer)
        state = (phi, optimizer.init(phi), jnp.zeros((), jnp.result_type(float)), jnp.zeros((), jnp.int32), k_fit)
        history: list = []
        with FitProgress(steps, type(self.objective).__name__, enabled(self.progress)) as bar:
            state = self._fit(program, args, guide, fns, state, steps, history, bar, k_draw)
        phi = fns.finish(state[0], args)
        if hasattr(guide, "check"):
            guide.check(phi)
        finals = np.asarray(fns.final(phi, jax.random.split(k_final, int(self.num_final)), args), np.float64)
        choices, retval = fns.posterior(phi, k_draw, int(self.num_samples), args)
        samples = {a: np.asarray(v) for a, v in choices.items()}
        mean, se = float(np.mean(finals)), float(np.std(finals) / np.sqrt(finals.size))
        if getattr(guide, "point_mass", False):
            # a point mass has no density on the continuous sites: its objective is log p(y, theta) at
            # the MAP point, with no entropy term, and lies above log p(y) as often as not
            evidence = dict(log_evidence=None, log_evidence_se=None,
                            notes=[f"{type(guide).__name__.lstrip('_')} is MAP estimation: the final objective "
                                   f"{mean:.4f} is log p(y, theta) at the MAP point, not a bound on log p(y), "
                                   "so log_evidence is None (fit a guide with a density, such as AutoNormal, "
                                   "for a bound)"])
        else:
            evidence = dict(log_evidence=mean, log_evidence_se=se,
                            notes=[f"log_evidence is the final objective ({type(self.objective).__name__}), a lower "
                                   f"bound on log p(y): {mean:.4f} +- {se:.4f}"])
        return VIResult(
            samples=samples,
            returns=jax.tree.map(np.asarray, retval),
            method="VI",
            engine="compiled",
            params=jax.tree.map(_readable, guide.constrained(phi)),
            history=np.concatenate(history),
            **evidence,
        )

    def _fit(self, program, args, guide, fns, state, steps, history, bar, key):
        """Run the chunks; stop with an error naming the site at the first non-finite objective."""
        done = 0
        while done < steps:
            n = min(int(self.chunk_size), steps - done)
            start = state
            state, values = fns.chunk(n)(state, args)
            values = np.asarray(values, dtype=np.float64)
            bad = ~np.isfinite(values)
            if np.any(bad):
                at = done + int(np.argmax(bad))
                _diagnose(program, args, guide, start[0], fns, key)
                raise ModelError(
                    f"the objective became {values[np.argmax(bad)]} at step {at} of VI on '{program.name}'",
                    span=program.span,
                    hint="Lower the learning rate, start the guide nearer the data (a smaller init_scale), or "
                         "check that the guide draws each site inside its support.")
            history.append(values)
            done += n
            bar.update(done, float(values[-min(n, 100):].mean()))
        return state


def _readable(x):
    return np.asarray(x) if isinstance(x, (jax.Array, np.ndarray)) else x


def _diagnose(program, args, guide, phi, fns, key) -> None:
    """Replay one guide draw at the parameters the failing chunk started from, eagerly and checked,
    in the guide (a program guide) and in the model: raises an error naming the first bad site."""
    from ppl.inference.diagnose import diagnose

    if hasattr(guide, "program") and hasattr(guide, "infos"):
        with P.bound(guide.constrained(phi)):
            draw = C.run(guide.program, C.Simulate(), guide.args, key=key)
            diagnose(guide.program, guide.args, dict(draw.choices))
    choices, _ = fns.posterior(phi, key, 1, args)
    diagnose(program, args, {a: np.asarray(v)[0] for a, v in choices.items()})


class _Compiled:
    """The jitted pieces of one (program, method, guide): chunks of steps, the final estimate, draws."""

    def __init__(self, program, method, guide, optimizer):
        import optax

        objective = method.objective

        def step(args, state, _):
            phi, opt_state, baseline, t, key = state
            key, sub = jax.random.split(key)

            def loss(p):
                with C.trusting(program):  # the data was checked once, before the loop (VI.run)
                    value, s = objective(context(guide, p, program, args, baseline), sub)
                return -s, value

            (_, value), grads = jax.value_and_grad(loss, has_aux=True)(phi)
            updates, opt_state = optimizer.update(grads, opt_state, phi)
            phi = optax.apply_updates(phi, updates)
            value = jax.lax.stop_gradient(value)
            baseline = jnp.where(t == 0, value, 0.9 * baseline + 0.1 * value)
            return (phi, opt_state, baseline, t + 1, key), value

        self._step = step
        self._chunks: dict[int, Any] = {}

        def final(phi, keys, args):
            return jax.vmap(lambda k: objective(context(guide, phi, program, args), k)[0])(keys)

        def draws(phi, keys, args):
            fitted = guide.model_values(phi) if hasattr(guide, "model_values") else {}

            def one(k):
                z = guide.draw(phi, k, args)
                with P.bound(fitted):  # the model's own ppl.param values: the fitted ones
                    return C.run(program, C.Given(), args, inputs=z)

            trace = jax.vmap(one)(keys)
            return trace.choices, trace.retval

        self.final = jax.jit(final)
        self.program = program
        self.guide = guide
        if hasattr(guide, "draw_u"):  # an automatic guide: unconstrained draws, discrete sites drawn back
            self._draw_u, self._push = jax.jit(guide.draw_u), jax.jit(guide.push)
        else:
            self._draws = jax.jit(draws)
        self.finish = jax.jit(guide.finish) if hasattr(guide, "finish") else (lambda phi, args: phi)

    def posterior(self, phi, key, n, args):
        """``(choices, retval)``: ``n`` draws of the fitted guide pushed through the model."""
        if not hasattr(self, "_draw_u"):
            return self._draws(phi, jax.random.split(key, n), args)
        k_u, k_d = jax.random.split(key)
        u = self._draw_u(phi, jax.random.split(k_u, n), args)
        discrete = recover_discrete(self.program, k_d, u, args) if self.guide.discrete else None
        # k_d draws the subsampled plates' rows instead (a guide has discrete sites or rows, never both)
        return self._push(u, discrete, args, k_d)

    def chunk(self, n: int):
        fn = self._chunks.get(n)
        if fn is None:
            step = self._step

            def run(state, args):
                return jax.lax.scan(lambda s, x: step(args, s, x), state, None, length=n)

            fn = self._chunks[n] = jax.jit(run)
        return fn


def context(guide, phi, program, args, baseline=0.0):
    """The objective's blocks for one step. An automatic guide hands the objective its draws in the
    model's unconstrained coordinates and gives the model's density there (``guide.density``)."""
    if hasattr(guide, "density"):
        return _UnconstrainedContext(guide, phi, program, args, baseline)
    return Context(guide, phi, program, args, baseline)


class _UnconstrainedContext(Context):
    def density(self, z):
        """``log p(T(u), y) + log|det J_T(u)|`` (discrete sites summed out) at the guide's draw ``u``."""
        return self.guide.density(z, self.model_args)


def compiled(program, method, guide, optimizer) -> "_Compiled":
    """The compiled loop of one (program, method, guide), cached: its ``chunk(n)(state, args)`` runs n steps
    (what ``VI.run`` does; ``benchmarks/vi.py`` times it)."""
    return _compiled(program, method, guide, optimizer)


def _compiled(program, method, guide, optimizer) -> _Compiled:
    """One compiled loop per (program, method): a second fit with new data of the same shapes reuses it.
    (The guide object is rebuilt from the same program each call; it holds no data of its own except a
    program guide's own arguments, part of the method.)"""
    try:
        key = ("vi", method, type(guide))
        hash(key)
    except TypeError:
        return _Compiled(program, method, guide, optimizer)
    return cached(program, key, lambda: _Compiled(program, method, guide, optimizer))

"""Exact inference by enumeration.

The reference semantics' enumeration representation, folded over the
program's tree, lists every outcome with its exact (unnormalised) weight.
For a static program whose discrete sites have supports fixed in advance,
the compiled engine does the same work in one vectorised call: it evaluates
the joint log density on the whole grid of site values (the product of the
supports), so both engines compute the same table. On a mesh of devices
(``inference.sharding``) the grid's outcomes are split over them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics.cache import cached
from ppl.inference import sharding
from ppl.inference._common import absent_as_nan, annotate, program_tree, stack_draws
from ppl.inference.marginalize import refuse_subsampling
from ppl.inference.result import Result
from ppl.semantics import compile as C
from ppl.semantics import effects, ir
from ppl.semantics.interpret.enumeration import Enumeration
from ppl.semantics.interpret.free import run
from ppl.stdlib.distributions.subsample import SubsampleIndices
from ppl.stdlib.errors import ModelError, PPLError

__all__ = ["Enumerate"]

GRID_LIMIT = 1 << 20


@dataclass(frozen=True, kw_only=True)
class Enumerate:
    """Exact enumeration of a discrete program.

    ``support_bound``: how many values of a countably infinite distribution
    (Poisson, Geometric, ...) to enumerate. ``max_depth``: the most random
    choices on one path (for unbounded recursion). The mass dropped by either
    bound is reported as ``truncated_mass``. ``engine``: ``"auto"`` (compiled
    grid where possible), ``"compiled"`` or ``"eager"``.
    """

    support_bound: int | None = None
    max_depth: int | None = None
    engine: str = "auto"

    name = "Enumerate"

    def run(self, program, args, key) -> Result:
        if self.engine not in ("auto", "compiled", "eager"):
            raise ModelError(f"Enumerate(engine=...) must be 'auto', 'compiled' or 'eager', not {self.engine!r}")
        if isinstance(program, ir.Program):
            refuse_subsampling(program, "Enumerate")
        if isinstance(program, ir.Program) and self.engine != "eager":
            grid = _grid(program, args, self.support_bound)
            if grid is not None:
                grid, bounded = grid
                result = _run_compiled(program, args, grid)
                if bounded:  # as the eager engine says it: nothing a user asked for is dropped unsaid
                    result.notes = list(result.notes or []) + [
                        f"enumeration was truncated: {', '.join(repr(a) for a in sorted(bounded))} took only "
                        f"{self.support_bound} values (support_bound); the posterior is renormalised over "
                        "them and the log evidence leaves the rest out (raise support_bound to include more)"]
                return result
            if self.engine == "compiled":
                raise ModelError("this program's discrete supports depend on other random choices, so the "
                                 "compiled grid cannot enumerate it; use Enumerate(engine='eager')")
        return self.run_eager(program, args)

    def run_eager(self, program, args) -> Result:
        rep = _Enumeration(self.support_bound, self.max_depth)
        try:
            table = run(program_tree(program, args), rep)
        except PPLError as err:
            if err.hint and "Enumerate(support_bound=K)" in err.hint:  # the reference engine's words
                err.hint = _bound_hint()
            raise annotate(err) from None
        if not table:
            if rep.impossible is not None:
                rep.impossible.message += " (for every value of the random choices)"
                raise rep.impossible
            raise ModelError("every outcome of the model has probability zero: the observations and factors "
                             "rule out every value of the random choices")
        values, traces, logw = zip(*table)
        logw = np.asarray(logw, dtype=np.float64)
        log_z = float(np.logaddexp.reduce(logw))
        notes = []
        if rep.truncated_mass > 0:
            notes.append(f"enumeration was truncated: prior mass {rep.truncated_mass:.3g} was left out "
                         "(raise support_bound / max_depth to include more)")
        return Result(
            samples=stack_draws(list(traces)),
            returns=list(values),
            method="Enumerate",
            engine="eager",
            log_weights=logw,
            log_evidence=log_z,
            notes=notes,
            truncated_mass=rep.truncated_mass,
        )


class _Enumeration(Enumeration):
    """Enumeration of a model's outcomes for the posterior: a subsampled plate's rows are refused (their
    outcomes would be enumerated as a random choice, and the other choices' marginal is no posterior)."""

    def sample(self, site):
        if isinstance(site.dist, SubsampleIndices):
            raise effects.subsampling_refused(site.address, site.span, "Enumerate")
        return super().sample(site)


def _bound_hint() -> str:
    """How to bound an infinite support from where the user is (Python, ``ppl run``, the REPL)."""
    from ppl.inference.mcmc.checks import how_to_set

    return f"Give {how_to_set('Enumerate', 'support_bound', 'K')} to enumerate its first K values."


def _fatal(problem: C.SupportProblem) -> ModelError | None:
    """The support problems exact enumeration cannot get past, in its words."""
    if problem.why == "continuous":
        return ModelError(
            f"exact enumeration needs discrete random choices, but '{problem.address}' is "
            f"{problem.dist_name} (continuous)",
            span=problem.span,
            hint="Use Importance, SMC or MCMC for models with continuous random choices.",
        )
    if problem.why == "infinite":
        return ModelError(f"'{problem.address}' has infinitely many values ({problem.dist_name})", span=problem.span,
                          hint=_bound_hint())
    return None  # supports known only at run time, or different per element: no fixed grid


def _grid(program: ir.Program, args, bound):
    """Per-site candidate values when every support is fixed in advance, and the sites whose
    infinite supports were cut at ``bound``; else None."""
    latent = program.latent_sites()
    if not latent:
        return {}, set()
    probe = C.SupportProbe(bound, fatal=_fatal)
    try:
        C.probe_supports(program, probe, args)
    except ModelError:
        raise
    except Exception:
        return None
    if probe.problems or set(probe.supports) != set(latent):
        return None
    grid = {}
    total = 1
    for a, info in latent.items():
        k = probe.supports[a].shape[0]
        n = int(np.prod(info.stacked_shape, dtype=np.int64))
        total *= k ** n
        if total > GRID_LIMIT:
            return None
        grid[a] = (probe.supports[a].reshape(k, -1)[:, 0], info.stacked_shape)
    return grid, probe.bounded & set(grid)


def _weights_fn(program: ir.Program, canonical: dict, size: int):
    """``(choices, args) -> (log weights, returns, choices, valid)`` over a grid of ``size`` outcomes, jitted once
    per program and grid (the data are arguments, so new data of the same shapes reuse it)."""
    key = ("enumerate", size, tuple((a, np.asarray(v).item()) for a, v in canonical.items()))

    def weight(c, args):
        trace = C.run(program, C.Given(), args, inputs=c)
        lw = trace.log_joint
        for a, present in trace.present.items():
            if a in c:  # an element of a site in a branch that did not run counts once, at a canonical value
                value = jnp.asarray(c[a])
                present = jnp.asarray(present)
                present = jnp.reshape(present, jnp.shape(present) + (1,) * (value.ndim - present.ndim))
                counted = jnp.all(present | (value == canonical[a]))  # elementwise: a loop's steps differ
                lw = jnp.where(counted, lw, -jnp.inf)
        return lw, trace.retval, trace.choices, trace.valid, trace.present

    return cached(program, key, lambda: jax.jit(jax.vmap(weight, in_axes=(0, None), axis_size=size)))


def _run_compiled(program, args, grid) -> Result:
    names = list(grid)
    per_site = []
    for a in names:
        values, shape = grid[a]
        n = int(np.prod(shape, dtype=np.int64))
        combos = np.array(list(itertools.product(range(len(values)), repeat=n)), dtype=np.int64)
        combos = combos.reshape((-1,) + tuple(shape)) if n else np.zeros((1,) + tuple(shape), np.int64)
        per_site.append(values[combos])
    mesh = list(itertools.product(*[range(len(v)) for v in per_site])) if names else [()]
    idx = np.array(mesh, dtype=np.int64).reshape(len(mesh), len(names))
    choices = {a: jnp.asarray(per_site[j][idx[:, j]]) for j, a in enumerate(names)}
    canonical = {a: jnp.asarray(grid[a][0][0]) for a in names}

    fn = _weights_fn(program, canonical, len(mesh))
    # placement (inference/sharding.py): on a mesh, the outcomes split over the devices; the grid's
    # size is not the user's choice, so a size that does not divide goes on fewer devices, never an error
    placement = sharding.current()
    if placement is not None and placement.batch_axis is not None:
        if len(mesh) % placement.axis_size(placement.batch_axis) == 0 or jax.process_count() == 1:
            placement = sharding.for_batch(len(mesh), "outcomes", placement._replace(explicit=False))
        else:  # several processes: each computes the whole (small) grid itself
            placement = None
    fn = sharding.place(fn, placement, len(mesh), choices, list(args))
    logw, returns, recorded, valid, present = sharding.fetch(fn(choices, list(args)))
    logw = np.asarray(logw, dtype=np.float64)
    valid = np.asarray(valid)
    if not np.all(valid):
        i = int(np.argmin(valid))
        _nan_error(program, args, {a: v[i] for a, v in choices.items()})
    keep = np.isfinite(logw) | np.isnan(logw)
    if np.any(np.isnan(logw)):
        return None or _nan_error(program, args, {a: v[np.isnan(logw)][0] for a, v in choices.items()})
    if not np.any(keep):
        from ppl.inference.diagnose import diagnose

        diagnose(program, args, {a: v[0] for a, v in choices.items()}, impossible=True)
        raise ModelError("every outcome of the model has probability zero: the observations and factors "
                         "rule out every value of the random choices")
    samples = {a: np.asarray(v)[keep] for a, v in recorded.items()}
    samples = absent_as_nan(samples, {a: np.asarray(f)[keep] for a, f in present.items()})
    return Result(
        samples=samples,
        returns=jax.tree.map(lambda r: np.asarray(r)[keep], returns),
        method="Enumerate",
        engine="compiled",
        log_weights=logw[keep],
        log_evidence=float(np.logaddexp.reduce(logw[keep])),
    )


def _nan_error(program, args, choices):
    from ppl.inference.diagnose import diagnose

    diagnose(program, args, choices)
    raise ModelError("the model's log density is NaN for some values of its random choices")

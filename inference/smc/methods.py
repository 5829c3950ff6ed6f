"""``SMC``: sequential Monte Carlo as an inference method.

The method is a composition: the sequential cut of the program
(``cut.sequential_cut``), its pieces as particle kernels (``kernels``), a
resampler (``resampling``) and, optionally, a proposal and a rejuvenation
kernel (``rejuvenation``), run by the compiled filter (``compiled``) for
static programs or by Population over Sequential (``eager``) for dynamic ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ppl.inference.diagnose import diagnose
from ppl.inference.result import Result
from ppl.inference._common import absent_as_nan
from ppl.inference.smc import compiled
from ppl.inference.smc import kernels as K
from ppl.inference.smc.eager import TraceMH, run_eager
from ppl.inference.smc.resampling import SCHEMES
from ppl.semantics import ir
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["SMC"]


@dataclass(frozen=True, kw_only=True)
class SMC:
    """Sequential Monte Carlo over the steps of the model's loop, with a log-evidence estimate.

    A static model whose top level loops (``ppl.scan``) over observations is cut
    into the statements before the loop, one step per iteration and the rest;
    ``num_particles`` particles run through the steps in one compiled program,
    resampled with ``resampling`` (``'systematic'``, ``'stratified'`` or
    ``'multinomial'``) whenever the effective sample size falls below
    ``ess_threshold * num_particles`` (1: after every step; 0: never). A model
    without such a loop runs as importance sampling (one step). Dynamic models
    run in the eager engine, one step per ``observe``/``factor``.

    ``proposal``: a model that proposes the step's random choices, called with
    the step's carry and its slice of ``xs`` (``proposal(carry, x_t)``; flat
    array arguments for structured carries) and sampling the step's sites by
    their addresses; particles are weighted by ``p(x_t, y_t | carry) / q(x_t)``.

    ``rejuvenation``: a move (``RandomWalk(step_size=0.2)``, ``HMCMove(step_size=0.1)``,
    ``NUTSMove(step_size=0.1)`` from ``ppl.inference.smc``: families ``move.kernel(logdensity_fn)``
    of kernels with ``init``/``step``, the MCMC driver's contract; or your own
    ``kernel(key, position, logdensity_fn) -> position``) applied to every particle
    after each resampling; it moves the static parameters (the continuous
    random choices before the loop, unconstrained) and must leave
    ``exp(logdensity_fn)``, the current partial posterior, invariant. Where a
    static parameter decides which branch of ``ppl.cond`` runs, ``logdensity_fn``
    is ``-inf`` at values that would change the branches a particle took (the
    choices such a move would make have no value to move from).

    ``engine``: ``'auto'`` (compiled for static models), ``'compiled'`` or ``'eager'``.

    ``islands``: 1 (the default) resamples the whole population together, also when its particles
    are split over several devices (a correct resampling of all of them). ``islands=k`` runs ``k``
    independent populations of ``num_particles / k`` (on a mesh of ``k`` devices, one per device,
    with no communication between them); the evidence is the mean of the islands' estimates
    (unbiased, with more variance), and each particle's weight includes its island's evidence
    (``inference/smc/islands.py``).

    The result has the final particles (``samples``; loop sites with shape
    ``(num_particles, steps, ...)``: each particle's ancestral path), their
    ``log_weights``, ``log_evidence``, and ``sample_stats``: ``ess`` and
    ``resampled`` per step (and ``moved``, the fraction of particles the
    rejuvenation kernel moved).
    """

    num_particles: int = 1000
    resampling: str = "systematic"
    ess_threshold: float = 0.5
    proposal: Any = None
    rejuvenation: Any = None
    engine: str = "auto"
    islands: int = 1

    name = "SMC"

    def __post_init__(self):
        n = self.num_particles
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ModelError(f"SMC(num_particles=...) must be a positive integer, not {n!r}")
        if self.resampling not in SCHEMES:
            raise ModelError(f"SMC(resampling=...) must be one of {sorted(SCHEMES)}, not {self.resampling!r}")
        t = self.ess_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)) or not 0 <= t <= 1:
            raise ModelError(f"SMC(ess_threshold=...) must be a number between 0 (never resample) and 1 "
                             f"(resample after every step), not {t!r}")
        if self.proposal is not None and not hasattr(self.proposal, "program"):
            raise ModelError(f"SMC(proposal=...) must be a model (decorated with @ppl.model), not "
                             f"{type(self.proposal).__name__}")
        if type(self.rejuvenation).__name__ in ("NUTS", "HMC", "MH", "Gibbs") and \
                type(self.rejuvenation).__module__.startswith("ppl.inference.mcmc"):
            kind = type(self.rejuvenation).__name__
            move = {"NUTS": "NUTSMove(step_size=0.1)", "HMC": "HMCMove(step_size=0.1, num_integration_steps=10)"}
            raise ModelError(f"SMC(rejuvenation=ppl.{kind}(...)): rejuvenation takes one MCMC kernel, not an "
                             "inference method with warm-up and chains",
                             hint=f"Use ppl.inference.smc.{move.get(kind, 'RandomWalk(step_size=0.1)')}, "
                                  "with a step size on the scale of the posterior.")
        if self.rejuvenation is not None and not (callable(self.rejuvenation) or hasattr(self.rejuvenation, "kernel")
                                                  or isinstance(self.rejuvenation, TraceMH)):
            raise ModelError(f"SMC(rejuvenation=...) must be a kernel(key, position, logdensity_fn) -> position, "
                             f"not {type(self.rejuvenation).__name__}",
                             hint="Use ppl.inference.smc.RandomWalk(step_size=0.1), or your own kernel.")
        k = self.islands
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or n % k:
            raise ModelError(f"SMC(islands=...) must be a positive whole number that divides num_particles={n}, "
                             f"not {k!r}", hint="e.g. islands=4 with num_particles a multiple of 4 (one island per "
                                                "device); islands=1 resamples the whole population together.")
        if self.engine not in ("auto", "compiled", "eager"):
            raise ModelError(f"SMC(engine=...) must be 'auto', 'compiled' or 'eager', not {self.engine!r}")

    @property
    def options(self) -> compiled.Options:
        return compiled.Options(int(self.num_particles), self.resampling, float(self.ess_threshold),
                                self.proposal, self.rejuvenation, int(self.islands))

    def run(self, program, args, key) -> Result:
        if not jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        trace_mh = isinstance(self.rejuvenation, TraceMH)
        if trace_mh and self.engine == "compiled":
            raise ModelError("SMC(rejuvenation=TraceMH(...)) moves whole traces in the eager engine, but "
                             "engine='compiled' was asked for",
                             hint="Leave engine= out, or use RandomWalk/HMCMove/NUTSMove with the compiled engine.")
        eager = isinstance(program, Dynamic) or self.engine == "eager" or trace_mh
        if eager:
            if not isinstance(program, Dynamic):
                from ppl.inference.marginalize import refuse_subsampling

                refuse_subsampling(program, "SMC")  # as in _run_compiled
            if isinstance(program, Dynamic) and self.engine == "compiled":
                raise ModelError(f"SMC(engine='compiled') cannot run this model: {program.describe()}",
                                 span=program.span)
            if self.proposal is not None or (self.rejuvenation is not None and not trace_mh) or self.islands != 1:
                what = "proposal=" if self.proposal is not None else \
                    "rejuvenation=" if self.rejuvenation is not None else "islands="
                why = program.describe() if isinstance(program, Dynamic) else "engine='eager' was asked for"
                raise ModelError(f"SMC({what}...) needs the compiled engine, but {why}",
                                 hint="Write the model's steps with ppl.scan (and branches with ppl.cond)"
                                 + ("; for resample-move on this model use rejuvenation=TraceMH(num_moves=k)."
                                    if what == "rejuvenation=" else "."))
            return run_eager(program, args, key, num_particles=int(self.num_particles),
                             resampling=self.resampling, ess_threshold=float(self.ess_threshold),
                             mh_steps=self.rejuvenation.num_moves if trace_mh else 0)
        return _run_compiled(program, args, key, self.options)


def _particles_first(a, axis):
    a = np.asarray(a)
    return a if axis in (0, None) else np.moveaxis(a, axis, 0)


def _run_compiled(program: ir.Program, args, key, options: compiled.Options) -> Result:
    from ppl.inference.marginalize import refuse_subsampling

    refuse_subsampling(program, "SMC")  # its rows would be a latent site: p(theta, rows | y) is not the posterior
    f = compiled.get_filter(program, options)
    out = f(key, args)  # fetched to the host in one transfer; NumPy from here on
    log_w = np.asarray(out.log_weights, dtype=np.float64)
    log_z = float(out.log_evidence)

    def draws(samples, returns):
        """Samples particles first, and the return values as the program's pytree."""
        samples = {a: _particles_first(v, f.sample_axes[a]) for a, v in samples.items()}
        samples, present = K.split_present(samples)
        samples = absent_as_nan(samples, present)  # a site's draws where its branch did not run
        flat = []
        for v, axis in zip(returns, f.return_axes):
            v = np.asarray(v)
            flat.append(np.broadcast_to(v, (options.num_particles,) + v.shape) if axis is None
                        else _particles_first(v, axis))
        return samples, jax.tree.unflatten(program.out_tree, flat)

    if out.paths is None:
        samples, returns = draws(out.samples, out.returns)
        deferred = None
    else:  # the ancestral paths are read back when the samples are first read (Filter.defers_paths)
        samples = returns = None

        def deferred():
            return draws(*out.paths())
    stats = {"ess": np.asarray(out.ess), "resampled": np.asarray(out.resampled)}
    cut = f.cut
    if cut.loop is not None and cut.init_weighted:
        stats["ess_init"] = float(out.ess_init)
        stats["resampled_init"] = bool(out.resampled_init)
    if options.rejuvenation is not None:
        stats["moved"] = np.asarray(out.moved)
    _check(program, args, (lambda: samples) if deferred is None else (lambda: deferred()[0]), log_w, log_z,
           bool(out.valid), stats)
    notes = []
    if cut.loop is None:
        notes.append(f"{cut.describe()}")
    return Result(samples=samples, returns=returns, method="SMC", engine="compiled", log_weights=log_w,
                  log_evidence=log_z, sample_stats=stats, notes=notes, deferred=deferred)


def _check(program, args, samples, log_w, log_z, valid, stats):
    """A clear error for NaN weights or an impossible run; ``samples()`` gives the draws (read only then)."""
    bad = np.isnan(log_w)
    if not valid or math.isnan(log_z) or np.any(bad):
        i = int(np.argmax(bad)) if np.any(bad) else 0
        diagnose(program, args, {a: v[i] for a, v in samples().items()})
        raise ModelError("some particles have a NaN weight or a parameter outside its domain",
                         hint="Check the model's parameters for NaN values.")
    if log_z == -math.inf:
        ess = stats["ess"]
        zero = np.flatnonzero(ess == 0)
        where = f" after step {int(zero[0])} of the loop" if zero.size else ""
        diagnose(program, args, {a: v[0] for a, v in samples().items()}, impossible=True)
        raise ModelError(f"every particle has weight zero{where}: the observations are impossible under the "
                         "particles' draws",
                         hint="Use more particles, a proposal that looks at the data, or check the observations.")

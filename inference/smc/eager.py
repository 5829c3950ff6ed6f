"""SMC on any program, in the reference semantics: Population over Sequential.

Every particle is a suspended program (``sequential.Particle``). One SMC step
advances each unfinished particle to its next ``score`` (drawing its random
choices from the prior on the way), adds that score to its weight, and
resamples the population when its ESS is low; this repeats until every
particle has finished. Particles may finish at different steps (random-length
programs): a finished particle keeps its weight and takes part in resampling.

This is MonadBayes's ``sequentially resampler steps . withParticles n``. As in
``Population``, resampling keeps the population's total mass: every offspring
carries the mean weight, so ``log Z = log mean exp(final weights)`` is the
(unbiased) evidence estimate, also under adaptive resampling.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference._common import annotate, program_tree, stack_draws
from ppl.inference.result import Result
from ppl.inference.smc import resampling as R
from ppl.semantics.interpret.population import log_mean_exp
from ppl.semantics.interpret.sequential import Particle, advance, is_finished
from ppl.stdlib.errors import ModelError, PPLError

__all__ = ["run_eager"]

_jitted_schemes: dict = {}


def _ess(log_w: np.ndarray) -> float:
    m = np.max(log_w)
    if not np.isfinite(m):
        return 0.0
    w = np.exp(log_w - m)
    return float(w.sum() ** 2 / np.sum(w**2))


def _ancestors(scheme: str, key, log_w: np.ndarray) -> np.ndarray:
    fn = _jitted_schemes.get(scheme)
    if fn is None:
        fn = _jitted_schemes[scheme] = jax.jit(R.SCHEMES[scheme])
    return np.asarray(fn(key, jnp.asarray(log_w)))


def run_eager(program, args, key, *, num_particles: int, resampling: str, ess_threshold: float) -> Result:
    """SMC over the program's scores, particle by particle, with concrete values."""
    n = num_particles
    try:
        tree = program_tree(program, args)
    except PPLError as err:
        raise annotate(err) from None
    particles = [Particle(tree, {}, 0.0)] * n
    ess, resampled = [], []
    step = 0
    while not all(is_finished(p) for p in particles):
        k_advance, k_resample = jax.random.split(jax.random.fold_in(key, step))
        keys = jax.random.split(k_advance, n)
        try:
            particles = [p if is_finished(p) else advance(p, keys[i])[0] for i, p in enumerate(particles)]
        except PPLError as err:
            raise annotate(err) from None
        log_w = np.array([p.log_weight for p in particles], dtype=np.float64)
        if np.any(np.isnan(log_w)):
            raise ModelError(f"a particle's weight became NaN at score number {step + 1}",
                             hint="Check the model's parameters and observations for NaN values.")
        if np.all(log_w == -np.inf):
            raise ModelError(f"every particle has weight zero after score number {step + 1}: the observations "
                             "are impossible under the particles' draws",
                             hint="Use more particles, or check the observations against the model.")
        e = _ess(log_w)
        ess.append(e)
        more = not all(is_finished(p) for p in particles)
        do = more and ess_threshold > 0 and (ess_threshold >= 1 or e < ess_threshold * n)
        resampled.append(do)
        if do:
            total = log_mean_exp(log_w)
            idx = _ancestors(resampling, k_resample, log_w)
            particles = [particles[i]._replace(log_weight=total) for i in idx]
        step += 1
    log_w = np.array([p.log_weight for p in particles], dtype=np.float64)
    traces = [{**p.trace, **p.program.records} for p in particles]
    values = [p.program.value for p in particles]
    return Result(
        samples=stack_draws(traces),
        returns=values,
        method="SMC",
        engine="eager",
        log_weights=log_w,
        log_evidence=log_mean_exp(log_w),
        sample_stats={"ess": np.asarray(ess), "resampled": np.asarray(resampled, dtype=bool)},
    )

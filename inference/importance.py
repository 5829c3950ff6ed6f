"""Importance sampling with the prior as proposal.

Each particle runs the program forwards (``generate`` with no constraints):
its weight is the likelihood of the observations times the factors. The
average weight is an unbiased estimate of the evidence ``p(y)``.

Static programs: one ``jit(vmap(generate))`` over the particles' keys.
Dynamic programs: spawn-then-weigh in the eager engine, ``population.spawn(n)``
over the weighted sampler (``semantics.interpret``), particle by particle.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from ppl.inference import sharding
from ppl.inference._common import (absent_as_nan, annotate, population_result, raise_if_impossible,
                                   warn_if_degenerate)
from ppl.inference.diagnose import diagnose
from ppl.inference.marginalize import refuse_subsampling
from ppl.inference.result import Result
from ppl.semantics import compile as C
from ppl.semantics.cache import cached
from ppl.semantics import ir
from ppl.semantics.interpret import population
from ppl.semantics.interpret.population import log_mean_exp
from ppl.semantics.interpret.sampler import weighted_python
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError, PPLError

__all__ = ["Importance"]

@dataclass(frozen=True, kw_only=True)
class Importance:
    """Importance sampling from the prior, with a log-evidence estimate."""

    num_particles: int = 1000

    name = "Importance"

    def run(self, program, args, key) -> Result:
        n = int(self.num_particles)
        if n < 1:
            raise ModelError(f"Importance needs num_particles >= 1, not {self.num_particles}")
        if isinstance(program, Dynamic):
            return self._run_eager(program, key, n)
        # a subsampled plate's scaled likelihood is an estimate: its exp, as a weight, is no posterior's
        refuse_subsampling(program, "Importance")
        fn = _batched_generate(program, n)
        keys = jax.random.split(key, n)
        # placement (inference/sharding.py): on a mesh, the samples split over the devices
        fn = sharding.place(fn, sharding.for_batch(n, "samples"), n, keys, args)
        trace, logw = sharding.fetch(fn(keys, args))
        logw = np.asarray(logw, dtype=np.float64)
        samples = {a: np.asarray(v) for a, v in trace.choices.items()}
        _check_weights(program, args, samples, logw, np.asarray(trace.log_prior), np.asarray(trace.valid))
        samples = absent_as_nan(samples, trace.present)
        warn_if_degenerate(logw, "Importance")
        return Result(
            samples=samples,
            returns=jax.tree.map(np.asarray, trace.retval),
            method="Importance",
            engine="compiled",
            log_weights=logw,
            log_evidence=log_mean_exp(logw),
        )

    def _run_eager(self, program: Dynamic, key, n) -> Result:
        """Spawn, then weigh: ``n`` runs of the weighted sampler (``population.spawn``), run ``i`` with
        the key ``fold_in(key, i)``, each running the model's Python directly (no tree, no replay)."""
        try:
            particles = population.spawn(n, lambda k: weighted_python(program.call, k, checked=True), key)
        except PPLError as err:
            raise annotate(err) from None
        logw = population.log_weights(particles)
        raise_if_impossible(logw, (p.state.impossible for p in particles))
        if np.all(logw == -np.inf):
            raise ModelError("every particle has weight zero: the observations are impossible under the prior "
                             "draws", hint="Use more particles, or a method that does not draw from the prior.")
        warn_if_degenerate(logw, "Importance")
        return population_result(particles, "Importance")


def _batched_generate(program: ir.Program, n: int):
    def build():
        def one(k, args):
            return C.generate(program, k, args, {})

        return jax.jit(jax.vmap(one, in_axes=(0, None)))

    return cached(program, ("importance", n), build)


def _check_weights(program, args, samples, logw, log_prior, valid):
    bad = np.isnan(logw) | np.isnan(log_prior) | ~np.broadcast_to(valid, logw.shape)
    if np.any(bad):
        i = int(np.argmax(bad))
        diagnose(program, args, {a: v[i] for a, v in samples.items()})
        raise ModelError("some particles have a NaN weight or a parameter outside its domain",
                         hint="Check the model's parameters for NaN values.")
    if np.all(logw == -np.inf):
        diagnose(program, args, {a: v[0] for a, v in samples.items()}, impossible=True)
        raise ModelError("every particle has weight zero: the observations are impossible under the prior draws",
                         hint="Use more particles, or a method that does not draw from the prior.")

"""The values of the finite discrete latent sites (``inference.marginalize``), with the errors
that say why a site cannot be summed out.
"""

from __future__ import annotations

import jax
import numpy as np

from ppl.stdlib import jax_compat as jc
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.stdlib.errors import ModelError
from ppl.inference.marginalize.layout import _abstract


def _support_error(problem: C.SupportProblem) -> ModelError | None:
    """A support problem in the words of summing out (continuous sites are simply not summed)."""
    if problem.why == "continuous":
        return None
    if problem.why == "infinite":
        return ModelError(
            f"the discrete random choice '{problem.address}' ({problem.dist_name}) has infinitely many "
            "values, so it cannot be summed out", span=problem.span,
            hint="Give it a finite support (Categorical, Bernoulli, Binomial), or use a method that "
            "samples it (Gibbs, MH, SMC).")
    if problem.why == "unknown":
        return ModelError(
            f"the support of the discrete random choice '{problem.address}' is not known before the "
            f"program runs ({problem.detail})", span=problem.span,
            hint="Give the distribution's size parameters (e.g. Binomial's total_count) as numbers known "
                 "before the run: written in the model, or passed as a Python or NumPy scalar (an array "
                 "argument, even of one element, is a traced value); where they depend on another random "
                 "choice, use a method that draws the choices (Gibbs, MH, SMC) or Enumerate(engine='eager').")
    return ModelError(f"the {problem.detail or 'elements'} of the discrete random choice '{problem.address}' have "
                      "different supports", span=problem.span)


def _probe_errors(probe: C.SupportProbe) -> list[ModelError]:
    return [e for e in (_support_error(p) for p in probe.problems.values()) if e is not None]


def site_supports(program: ir.Program, args, raise_errors: bool = True) -> dict[str, np.ndarray]:
    """The values of each finite discrete latent site (one list for all its elements).

    Found by an abstract run (nothing is computed) when the supports depend on shapes only,
    as those of Bernoulli and Categorical do; otherwise by running the program on the
    concrete ``args``.
    """
    probe = C.SupportProbe()

    def go(*a):
        C.probe_supports(program, probe, a)
        return 0

    jax.eval_shape(go, *[_abstract(x) for x in args])
    concrete = not any(jc.is_tracer(x) for x in args)
    if _probe_errors(probe) and concrete:
        probe = C.SupportProbe()
        C.probe_supports(program, probe, args)
    errors = _probe_errors(probe)
    if raise_errors and errors:
        raise errors[0]
    return {a: _value_table(v) for a, v in probe.supports.items()}


def _value_table(values: np.ndarray) -> np.ndarray:
    """The values one element takes, as a flat table (the supports are the same for every element)."""
    flat = values.reshape(values.shape[0], -1)
    return flat[:, 0] if flat.shape[1] else flat.reshape(values.shape[0])

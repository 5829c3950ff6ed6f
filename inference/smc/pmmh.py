"""Particle marginal Metropolis-Hastings (Andrieu, Doucet and Holenstein, 2010).

The model's static parameters ``theta`` (the continuous random choices before
its loop) are moved by random-walk Metropolis in unconstrained coordinates
``u``; the intractable likelihood ``p(y | theta)`` is replaced by the compiled
particle filter's estimate at ``theta = T(u)`` (``Filter.at``), so one
iteration is::

    u' = u + step_size * N(0, I)
    Z' = filter.at(key, args, u')          # estimates p(T(u')) |J(u')| p(y | T(u'))
    accept with probability min(1, Z' / Z)

and each draw also carries one particle's trajectory, picked by its final
weight. The transition is a kernel of the MCMC contract (``pmmh_kernel``);
the chains run in the one MCMC driver (``inference.mcmc.driver``), vectorised
in one compiled program with the filter inside, kept in the program's compile
cache (a second run with new data or a new step size compiles nothing).

Law: because ``Z`` is unbiased for the unnormalised target and the proposal
is symmetric, the chain on ``(u, particles)`` leaves ``p(theta, x | y)``
invariant whatever the number of particles (more particles only mix better).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ppl.inference.mcmc import driver, programs, warmup
from ppl.inference.result import Result
from ppl.inference._common import absent_as_nan
from ppl.inference.smc import compiled
from ppl.inference.smc import kernels as K
from ppl.inference.smc import pmmh_kernel as PK
from ppl.inference.smc.resampling import SCHEMES
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["PMMH"]


@dataclass(frozen=True, kw_only=True)
class PMMH:
    """Particle marginal Metropolis-Hastings over a model's static parameters.

    The model draws its parameters before a ``ppl.scan`` that observes data;
    ``num_particles`` particles estimate the likelihood of each proposed
    parameter value. ``step_size`` is the random walk's scale on the
    unconstrained parameters (choose it so that the acceptance rate, reported
    in ``sample_stats["accept_prob"]``, lies roughly between 0.1 and 0.4).
    ``num_warmup`` iterations are discarded. Draws hold the parameters and,
    per draw, the trajectory of one particle (and that particle's return value).
    """

    num_samples: int = 1000
    num_warmup: int = 200
    num_chains: int = 4
    num_particles: int = 100
    step_size: float = 0.1
    resampling: str = "systematic"
    ess_threshold: float = 0.5

    name = "PMMH"

    def __post_init__(self):
        for field, least in (("num_samples", 1), ("num_warmup", 0), ("num_chains", 1), ("num_particles", 1)):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ModelError(f"PMMH({field}=...) must be an integer >= {least}, not {v!r}")
        if isinstance(self.step_size, bool) or not isinstance(self.step_size, (int, float)) or not self.step_size > 0:
            raise ModelError(f"PMMH(step_size=...) must be a positive number, not {self.step_size!r}")
        if self.resampling not in SCHEMES:
            raise ModelError(f"PMMH(resampling=...) must be one of {sorted(SCHEMES)}, not {self.resampling!r}")
        if not 0 <= self.ess_threshold <= 1:
            raise ModelError(f"PMMH(ess_threshold=...) must lie in [0, 1], not {self.ess_threshold!r}")

    def run(self, program, args, key) -> Result:
        if isinstance(program, Dynamic):
            raise ModelError(f"PMMH needs a static model, but {program.describe()}", span=program.span,
                             hint="Use ppl.SMC or ppl.MH for dynamic models.")
        from ppl.inference.marginalize import refuse_subsampling

        refuse_subsampling(program, "PMMH")  # exp of a subsample-scaled log-likelihood is no unbiased estimate
        if not jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        options = compiled.Options(int(self.num_particles), self.resampling, float(self.ess_threshold))
        f = compiled.get_filter(program, options)
        params = _parameters(f.cut, program)
        shapes = C.unconstrained_shapes(program, args)
        template = {a: jnp.zeros(shapes[a], jnp.result_type(float)) for a in params}
        spec = tuple((a, tuple(np.shape(v)), str(v.dtype)) for a, v in sorted(template.items()))
        plan = driver.Plan(int(self.num_chains), int(self.num_warmup), int(self.num_samples))
        run = programs.program_for(program, ("PMMH", options, spec, plan),
                                   lambda ref: driver.build(_Target(f, template), plan))
        step_size = jnp.asarray(self.step_size, jnp.result_type(float))
        (draws, returns), stats, _, _ = jax.device_get(run(key, None, list(args), step_size))
        samples = {a: np.asarray(v) for a, v in draws.items()}  # (chains, draws, ...): one particle per draw
        samples, present = K.split_present(samples)
        returns = jax.tree.unflatten(program.out_tree, [np.asarray(v) for v in returns])
        log_z = np.asarray(stats["log_density"])
        if not np.all(np.isfinite(log_z)):
            raise ModelError("PMMH: the particle filter's likelihood estimate was not finite at some draws "
                             "(every particle impossible, or a NaN in the model)",
                             hint="Use more particles, or check the data against the model's support.")
        accept = np.asarray(stats["accept_prob"], np.float64)
        stats = {"accept_prob": accept, "log_likelihood_estimate": log_z}
        notes = []
        rate = float(np.mean(accept))
        if rate < 0.05 or rate > 0.6:
            notes.append(f"PMMH acceptance rate {rate:.2f}: aim for 0.1-0.4 by changing step_size "
                         "(smaller raises it) or num_particles (more lowers the estimate's noise)")
        result = Result(samples=samples, returns=returns, method="PMMH", engine="compiled", chains=True,
                        sample_stats=stats, notes=notes)
        from ppl.inference.mcmc import checks  # the checks every MCMC method runs (R-hat, ESS)

        checks.check_result(result, sites=params)
        result.samples = absent_as_nan(result.samples, present)  # a site's draws where its branch did not run
        return result


class _Target:
    """The driver's target for PMMH: chains start at uniform draws in [-2, 2] (unconstrained), each
    with a fresh estimate; the family is ``pmmh_kernel.PMMHFamily``, at the run's step size (the
    driver's ``numbers``), with no adaptation; a kept draw records the picked particle."""

    def __init__(self, f: compiled.Filter, template: dict):
        self.flat0, unravel = ravel_pytree(template)
        self.estimate = PK.estimator(f, unravel)

    def setup(self, key, data, args, step_size, num_chains, adapt_key=None) -> driver.Setup:
        dim, dtype = self.flat0.size, self.flat0.dtype

        def start(k):
            k_init, k_first = jax.random.split(k)
            return PK.point(self.estimate, k_first, args, jax.random.uniform(k_init, (dim,), dtype, -2.0, 2.0))

        points = jax.vmap(start)(jax.random.split(key, num_chains))
        family = PK.PMMHFamily(self.estimate, args)
        states = jax.vmap(lambda p: family(step_size).init(p))(points)
        # a start whose estimate is -inf still moves (to the first proposal with a finite one)
        return driver.Setup(family, warmup.Fixed(jnp.full((num_chains,), step_size)), states, jnp.asarray(True),
                            record=lambda state: state.record, dtype=dtype, report=jnp.isfinite(points.log_z))

    def finalize(self, records):
        return records


def _parameters(cut, program: ir.Program) -> tuple[str, ...]:
    if cut.loop is None:
        raise ModelError(f"PMMH estimates the likelihood with a particle filter over a loop, but {cut.describe()}",
                         hint="Write the model's time steps with ppl.scan, or use NUTS for a model without them.")
    params = tuple(a for a, s in cut.init_sites().items()
                   if s.kind == "sample" and not s.is_discrete and not s.in_branch and not s.loop_lengths)
    if not params:
        raise ModelError(f"PMMH moves the static parameters (continuous random choices before the loop), but "
                         f"the model '{program.name}' has none", hint="Use ppl.SMC to infer the trajectory alone.")
    return params

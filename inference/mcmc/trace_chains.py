"""Chains on a program's traces (MH, Gibbs), run by the one driver (``driver``).

A *trace target*: positions are dicts of a static program's latent sites;
every chain starts at the first of ``INIT_TRIES`` prior draws with a finite
joint density and valid parameters (``prior_init``); the kernel family is the
method's (``mh_kernel.TraceMH.family``, ``gibbs.GibbsSweep.family``), built
from an analysis of the program done once per compiled program; a kept draw
records every site's value (deterministic ones included) and the return
value. The compiled program lives in the program's compile cache
(``programs``), keyed by the method's options, the ``driver.Plan`` and the
placement (on a mesh the chains are split over the devices, each device
running its own chains' loop: ``driver.on_devices``).

``run`` packages the draws as a ``Result`` and runs the checks every MCMC
method runs (``checks.check_result``); when no chain has a starting point the
checked re-run of a prior draw names the site that makes every start
impossible (``checked_start``).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference import sharding
from ppl.inference._common import absent_as_nan
from ppl.inference.mcmc import checks, driver, programs
from ppl.inference.mcmc.mh_kernel import MHState
from ppl.inference.result import Result
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.stdlib.errors import ModelError

__all__ = ["INIT_TRIES", "prior_init", "run", "checked_start"]

INIT_TRIES = 64


def prior_init(program: ir.Program, key, args, tries: int = INIT_TRIES) -> MHState:
    """A prior draw with finite joint density and valid parameters: the first of ``tries`` draws
    that has one (the state's ``log_density`` is ``-inf`` when none has)."""
    latent = program.latent_sites()
    traces = jax.vmap(lambda k: C.simulate(program, k, args))(jax.random.split(key, tries))
    ok = jnp.isfinite(traces.log_joint) & traces.valid
    i = jnp.argmax(ok)
    pick = jax.tree.map(lambda x: x[i], traces)
    choices = {a: pick.choices[a] for a in latent}
    present = {a: pick.present[a] for a in pick.present if a in latent}
    return MHState(choices, present, jnp.where(ok[i], pick.log_joint, -jnp.inf), (pick.choices, pick.retval))


class _Trace(NamedTuple):
    """The driver's target for a trace method (built once per compiled program)."""

    program: ir.Program
    analysis: Any  # has family(args)
    adaptation: Any  # kernel.Adaptation

    def setup(self, key, data, args, numbers, num_chains, adapt_key=None) -> driver.Setup:
        starts = jax.vmap(lambda k: prior_init(self.program, k, args))(jax.random.split(key, num_chains))
        ok = jnp.all(jnp.isfinite(starts.log_density))
        return driver.Setup(self.analysis.family(args), self.adaptation, starts, ok,
                            record=lambda state: (state.record, getattr(state, "present", {})), dtype=jnp.result_type(float),
                            report=jnp.isfinite(starts.log_density))

    def finalize(self, records):
        return records


def run(method_name: str, options: Hashable, analyse: Callable[[], Any], adaptation: Any, program: ir.Program,
        args, key, *, num_chains: int, num_warmup: int, num_samples: int, thin: int,
        min_acceptance: float | None = None) -> Result:
    """Warm up and sample ``num_chains`` chains of the method's kernel on ``program``, as a ``Result``.

    ``options`` (hashable) and the run's sizes key the compiled program; ``analyse()`` builds the
    method's analysis of the program (with ``family(args)``) the first time.
    """
    plan = driver.Plan(int(num_chains), int(num_warmup), int(num_samples), int(thin))
    # placement (inference/sharding.py): on a mesh, the chains split over the devices, each device
    # running the loop of its own chains (driver.on_devices)
    placement = sharding.for_batch(plan.num_chains, "chains")
    compiled = programs.program_for(
        program, (options, adaptation, plan, placement),
        lambda ref: driver.build(_Trace(ref(), analyse(), adaptation), plan, placement))
    compiled = sharding.place(compiled, placement, plan.num_chains, key, None, list(args), None,
                              compiler_options=driver.compiler_options())

    def go():
        out = sharding.fetch(compiled(key, None, list(args), None))  # several processes: all chains
        return _result(method_name, out, list(program.latent_sites()), min_acceptance)

    return checked_start(program, args, key, go)


def _result(method_name: str, out, latent: list, min_acceptance) -> Result:
    ((choices, retval), present), stats, _, init_ok = out
    if not bool(np.all(np.asarray(init_ok))):
        raise ModelError(f"{method_name} found no starting point with nonzero probability in {INIT_TRIES} draws "
                         "from the prior", hint="Check that the observations are possible under the model.")
    logp = np.asarray(stats["log_density"], dtype=np.float64)
    if np.any(np.isnan(logp)):
        raise ModelError(f"the model's log density became NaN during {method_name}",
                         hint="Check the model's parameters for values outside their domains.")
    result = Result(
        samples={a: np.asarray(v) for a, v in choices.items()},
        returns=jax.tree.map(np.asarray, retval),
        method=method_name,
        engine="compiled",
        chains=True,
        sample_stats={"accept_prob": np.asarray(stats["accept_prob"], dtype=np.float64), "log_density": logp},
    )
    checks.check_result(result, sites=latent, min_acceptance=min_acceptance)
    # a site made in some draws only: NaN where it is absent, as every engine records it (after the
    # checks, which read the chains' placeholder values as before)
    result.samples = absent_as_nan(result.samples, present)
    return result


def checked_start(program: ir.Program, args, key, run):
    """``run()``; when it finds no starting point, the checked re-run of a prior draw names the site
    (and the user's line) that makes every start impossible, where there is one."""
    try:
        return run()
    except ModelError as err:
        if "no starting point" not in err.message:
            raise
        from ppl.inference.mcmc.methods import _diagnose_start

        _diagnose_start(program, list(args), key, None, err)
        raise

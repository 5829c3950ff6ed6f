"""``NUTS`` and ``HMC`` as inference methods on ppl programs.

The PPL part of gradient-based MCMC: a static program becomes a log density
over its latent sites in unconstrained space (``compile.log_density_unconstrained``:
each site's bijector and log-Jacobian included), the chains run in one compiled
program (``base.run_chains``), and the draws are mapped back to the model's own
coordinates (``compile.constrain``, deterministic sites included). Discrete
latent sites are summed out exactly where ``inference.marginalize`` can, and
drawn afterwards from their exact conditional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.mcmc import adaptation as adapt_mod
from ppl.inference.mcmc import checks, export_cache
from ppl.inference.mcmc import chees, hmc, many_chains, nuts
from ppl.inference.mcmc import init as init_mod
from ppl.inference.mcmc.base import run_chains
from ppl.inference._common import refuse_partial_continuous
from ppl.inference.result import Result
from ppl.semantics import compile as C
from ppl.semantics import ir, ir_digest
from ppl.semantics.cache import cached
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import DensityError, ModelError, PPLError

__all__ = ["NUTS", "HMC", "ChEES"]


def _functions(program: ir.Program, marginal: bool):
    """Per program (kept in the compile cache): the log density function, whose identity keys the
    compiled sampler, and the compiled map back to constrained values."""
    return cached(program, ("gradient-mcmc", marginal), lambda: _build_functions(program, marginal))


def _build_functions(program: ir.Program, marginal: bool):
    """The log density leaves out the checks that read only the data: ``run`` makes them once
    (``C.check_data``) before the chains start."""
    if marginal:
        from ppl.inference import marginalize as M

        def logdensity(u, *args):
            with C.trusting(program):
                return M.marginal_log_density_unconstrained(program, u, list(args))

        def constrain_one(u, d, args):
            return M.constrained_trace(program, u, d, args)

        constrain = jax.jit(jax.vmap(jax.vmap(constrain_one, in_axes=(0, 0, None)), in_axes=(0, 0, None)))
        return logdensity, constrain

    def logdensity(u, *args):
        with C.trusting(program):
            return C.log_density_unconstrained(program, u, list(args))

    def constrain_one(u, args):
        trace = C.run_unconstrained(program, u, args)
        return trace.choices, trace.retval

    constrain = jax.jit(jax.vmap(jax.vmap(constrain_one, in_axes=(0, None)), in_axes=(0, None)))
    return logdensity, constrain


def _stored(program: ir.Program, constrain, density_key: str | None, call: tuple):
    """``constrain`` for arguments shaped like ``call``, kept on disk beside the sampler program
    (``export_cache``, keyed by the same IR digest: a later process traces neither), on one device;
    ``constrain`` itself where the density has no key or the cache is off."""
    if density_key is None or export_cache.directory() is None or jax.device_count() != 1:
        return constrain
    shapes = repr([(np.shape(x), str(jnp.result_type(x)), bool(getattr(x, "weak_type", False)))
                   for x in jax.tree.leaves(call)] + [str(jax.tree.structure(call))])

    def load():  # once per shapes and JAX settings in a process; the disk key is computed only then
        name = export_cache.key(f"constrain {shapes}", density_key)
        return constrain if name is None else export_cache.load_or_export(constrain, name, call)

    return cached(program, ("stored-constrain", density_key, shapes, export_cache.settings()), load)


@dataclass(frozen=True, kw_only=True)
class _GradientMCMC:
    num_warmup: int = 1000
    num_samples: int = 1000
    num_chains: int = 4
    target_accept: float = 0.8
    dense_mass: bool = False
    init: Any = "uniform"  # "uniform" (in (-2, 2), unconstrained), "pathfinder", or a dict of constrained values
    progress: bool | None = None
    thin: int = 1  # keep every thin-th draw after warm-up: num_samples kept, num_samples * thin run

    def _builder(self):  # pragma: no cover - overridden
        raise TypeError

    def _validate(self):
        name = type(self).__name__
        if self.num_samples < 1 or self.num_warmup < 0 or self.num_chains < 1 or self.thin < 1:
            raise ModelError(f"{name} needs num_samples >= 1, num_warmup >= 0, num_chains >= 1 and thin >= 1")
        if not 0.0 < self.target_accept < 1.0:
            raise ModelError(f"{name}(target_accept=...) must lie in (0, 1), not {self.target_accept}")

    def run(self, program, args, key) -> Result:
        self._validate()
        name = type(self).__name__
        if isinstance(program, Dynamic):
            raise ModelError(
                f"{name} needs a static model, but {program.describe()}",
                span=program.span,
                hint="Use ppl.MH, ppl.SMC or ppl.Importance for dynamic models.",
            )
        latent = program.latent_sites()
        if not latent:
            raise ModelError(f"{name}: the model '{program.name}' has no latent random choices to sample")
        refuse_partial_continuous(program, name)
        discrete = [a for a, s in latent.items() if s.is_discrete]
        marginal = bool(discrete)
        if marginal:
            from ppl.inference import marginalize as M

            M.refuse_subsampling(program, name)  # a subsampled plate: say to use VI, not "cannot be summed out"
            try:
                M.check_marginalizable(program, args)
            except ModelError as err:
                raise ModelError(
                    f"{name} needs continuous latent sites, but '{discrete[0]}' is discrete and cannot be "
                    f"summed out exactly here: {err.message}",
                    span=err.span or latent[discrete[0]].span,
                    hint=err.hint or "Use ppl.Gibbs, ppl.MH or ppl.SMC, or marginalise the site by hand.",
                ) from None
        if len(discrete) == len(latent):
            raise ModelError(
                f"{name} samples continuous latent sites, but every latent site of '{program.name}' is discrete "
                f"({', '.join(repr(a) for a in discrete)}): there are no coordinates to move",
                span=latent[discrete[0]].span,
                hint="Use ppl.Enumerate() for the exact posterior of finite discrete choices, or ppl.Gibbs, "
                     "ppl.MH or ppl.SMC.")
        C.check_data(program, args)  # once here; the compiled density leaves these checks out
        ushapes = C.unconstrained_shapes(program, args)
        template = {a: np.zeros(ushapes[a], jnp.result_type(float)) for a in latent if ushapes[a] is not None}
        logdensity, constrain = _functions(program, marginal)
        # the density is this program's, summed over its discrete sites or not: its IR keys the
        # program on disk without a trace (None where the IR holds something it cannot read)
        digest = None if export_cache.directory() is None else cached(program, "ir-digest",
                                                                       lambda: ir_digest.digest(program))
        density_key = None if digest is None else f"gradient-mcmc marginal={marginal} {digest}"
        if isinstance(self.init, str) and self.init == "pathfinder":  # one Pathfinder draw per chain
            from ppl.inference.vi.pathfinder import pathfinder_init

            strategy = init_mod.values(pathfinder_init(program, args, jax.random.fold_in(key, 2), self.num_chains))
        else:
            strategy = _init_strategy(self.init, program, args, template)
        adapt = adapt_mod.Adaptation(target_accept=self.target_accept,
                                     metric="dense" if self.dense_mass else "diag")
        mapped: dict = {}

        def to_model(positions):
            """The draws in the model's coordinates (each discrete site drawn back from its exact
            conditional first); dispatched while the sampler runs, so its trace and compilation
            overlap the sampling. An error here is raised after the run's own checks."""
            try:
                if marginal:
                    from ppl.inference import marginalize as M

                    discrete_draws = M.recover_discrete(program, jax.random.fold_in(key, 1), positions, list(args))
                    call = (positions, discrete_draws, list(args))
                else:
                    call = (positions, list(args))
                mapped["out"] = _stored(program, constrain, density_key, call)(*call)
            except Exception as err:  # noqa: BLE001 - re-raised below, once the run is known to be sound
                mapped["error"] = err

        try:
            result = run_chains(
                key, logdensity, strategy, self._builder(),
                num_warmup=self.num_warmup, num_samples=self.num_samples, num_chains=self.num_chains,
                adapt=adapt, progress=self.progress, args=tuple(args), warn=False, thin=self.thin,
                density_key=density_key, while_running=to_model,
            )
        except DensityError:
            raise  # a finite density with a bad gradient: nothing for the checked re-run to find
        except ModelError as err:
            # no start point with a finite density: replay one point with every check on, so the
            # error names the site (and line) that is impossible or NaN, when there is one
            _diagnose_start(program, args, key, self.init, err)
            raise
        if "error" in mapped:
            raise mapped["error"]
        choices, returns = mapped["out"]
        samples = {a: np.asarray(v) for a, v in choices.items()}
        stats = {k: np.asarray(v) for k, v in result.sample_stats.items()}
        out = Result(
            samples=samples,
            returns=jax.tree.map(np.asarray, returns),
            method=name,
            engine="compiled",
            chains=True,
            sample_stats=stats,
        )
        # the checks every MCMC method runs (divergences, tree depth, E-BFMI, R-hat, ESS), on the
        # latent sites in the model's own coordinates; reported once, as SamplingWarnings
        self._check(out, [a for a, s in latent.items() if not s.is_discrete])
        return out

    def _check(self, out: Result, sites: list) -> None:
        checks.check_result(out, max_tree_depth=getattr(self, "max_tree_depth", None), sites=sites)


def _diagnose_start(program, args, key, init, err):
    """Raise the checked re-run's error at a prior draw (with the given init values), if it finds one."""
    from ppl.inference.diagnose import diagnose

    choices = dict(C.simulate(program, jax.random.fold_in(key, 7), list(args)).choices)
    if isinstance(init, dict):
        choices.update({a: jnp.asarray(v) for a, v in init.items()})
    try:
        diagnose(program, list(args), choices, impossible=True)
    except PPLError as found:
        # the site and line found replace the sampler's "no start point" (a chain of two errors, the
        # first internal, would make one mistake read as two)
        raise found from None


def _init_strategy(init, program, args, template):
    if isinstance(init, str):
        if init != "uniform":
            raise ModelError(f"init={init!r}: use 'uniform', 'pathfinder' or a dict of initial values")
        return init_mod.uniform(template)
    if isinstance(init, dict):
        from ppl.stdlib.bijectors import biject_to

        # constrained values -> unconstrained, through each site's own bijector at that point
        u = {}
        unknown = sorted(set(init) - set(template))
        if unknown:
            raise ModelError(f"init names {unknown}, which are not latent sites of '{program.name}'; "
                             f"its latent sites are {sorted(template)}")
        for a in template:
            if a not in init:
                raise ModelError(f"init is missing a value for '{a}'")
        values = {a: jnp.asarray(init[a], jnp.result_type(float)) for a in template}
        dists = _site_dists(program, values, args)
        for a in template:
            support = dists[a].support
            u[a] = biject_to(support).inverse(values[a])
            # the sampler moves in unconstrained space, where the support's boundary is infinitely far
            inside = np.asarray(support.check_now(np.asarray(values[a]))).all() and np.isfinite(u[a]).all()
            if not inside:
                raise ModelError(
                    f"init gives '{a}' the value {np.asarray(init[a]).tolist()!r}, which is not strictly inside "
                    f"the support of its distribution ({support.describe()})",
                    span=program.latent_sites()[a].span,
                    hint=f"Give '{a}' an initial value inside its support and off its boundary, or leave init "
                    "out to start at random points.",
                )
        return init_mod.at_point(u)
    raise ModelError(f"init must be 'uniform' or a dict of values, not {type(init).__name__}")


def _site_dists(program, values, args):
    """Each latent site's distribution at the given values (for mapping init values)."""
    captured = {}

    class _Capture(C.Given):
        def sample(self, stmt, dist, inputs, key):
            captured[stmt.address] = dist
            return super().sample(stmt, dist, inputs, key)

    C.run(program, _Capture(), args, inputs=values)
    return captured


@dataclass(frozen=True, kw_only=True)
class NUTS(_GradientMCMC):
    """The No-U-Turn sampler with Stan's warm-up (step size and mass matrix)."""

    max_tree_depth: int = 10

    def _builder(self):
        return nuts.Builder(max_tree_depth=self.max_tree_depth)


@dataclass(frozen=True, kw_only=True)
class HMC(_GradientMCMC):
    """Hamiltonian Monte Carlo with a fixed number of leapfrog steps per transition."""

    num_steps: int = 16

    def _builder(self):
        return hmc.Builder(num_integration_steps=self.num_steps)


@dataclass(frozen=True, kw_only=True)
class ChEES(_GradientMCMC):
    """ChEES-HMC: many chains of jittered HMC sharing one step size, trajectory length and diagonal
    metric, tuned across the chains during warm-up (``chees``, ``chees_warmup``). Every chain takes
    the same number of leapfrog steps per transition, so thousands of chains vectorise without
    waiting for one another (on an accelerator, where NUTS's chains each build their own tree).

    Needs at least ``chees.MIN_CHAINS`` chains; made for hundreds to thousands.
    ``max_leapfrog_steps`` bounds a trajectory; ``learning_rate`` is the warm-up's step on the
    log trajectory length; ``adapt_mass=False`` keeps the identity metric.
    """

    num_chains: int = 256
    num_warmup: int = 500
    num_samples: int = 500
    target_accept: float = 0.651
    max_leapfrog_steps: int = 1000
    learning_rate: float = 0.025
    adapt_mass: bool = True

    def _validate(self):
        super()._validate()
        if self.num_chains < chees.MIN_CHAINS:
            raise ModelError(
                f"ChEES tunes its step size and trajectory length from statistics across chains, so it needs "
                f"at least {chees.MIN_CHAINS} chains, not num_chains={self.num_chains}",
                hint=f"Give ChEES(num_chains=...) {chees.MIN_CHAINS} or more (it is made for hundreds to "
                     "thousands, e.g. 1024 on an accelerator), or use ppl.NUTS for a few chains.",
            )
        if self.dense_mass:
            raise ModelError("ChEES adapts a diagonal metric; dense_mass=True is not supported",
                             hint="Leave dense_mass out, or use ppl.NUTS(dense_mass=True).")
        if self.max_leapfrog_steps < 1 or not self.learning_rate > 0:
            raise ModelError("ChEES needs max_leapfrog_steps >= 1 and learning_rate > 0")

    def _check(self, out: Result, sites: list) -> None:
        many_chains.check_result(out, sites)  # nested R-hat and a total ESS floor (many short chains)

    def _builder(self):
        return chees.Builder(max_leapfrog_steps=self.max_leapfrog_steps, learning_rate=self.learning_rate,
                             adapt_mass=self.adapt_mass)

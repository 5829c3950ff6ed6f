"""Running MCMC chains on a log density: ``run_chains``.

``run_chains(key, logdensity_fn, init_positions, kernel_builder, ...)`` runs
the chain driver (``driver``) on a *density target*: positions are the flat
(ravelled) vector of the log density's argument, initial points come from an
``init`` strategy (``init.initialize``: redraws non-finite ones), the kernel
family is ``kernel_builder.family(flat log density)`` (``nuts.Builder`` by
default; ``hmc.Builder``; any object with BlackJAX's ``init`` and
``build_kernel``, such as the module ``blackjax.mcmc.nuts``, is wrapped into
a family) and warm-up is Stan's (``warmup.Windowed``). NUTS and HMC offer the
step-at-a-time fast path (``stepwise_driver``), which the driver takes.

The compiled program is kept per (log density, shapes, options)
(``programs``); on a device mesh it runs with the chain axis split over the
devices (``inference.sharding``).

Law: each chain's draws after warm-up are those of its own Markov chain with
the kernel at the adapted (step size, metric); chains are independent given
their keys, however their steps interleave.

After a run, ``check_sampling`` issues ``SamplingWarning``s for divergences,
saturated tree depth, low E-BFMI, R-hat above 1.01 and low effective sample
size (``checks``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ppl.inference import sharding
from ppl.inference.mcmc import adaptation as adapt_mod
from ppl.inference.mcmc import checks, driver, export_cache, programs, warmup
from ppl.inference.mcmc import init as init_mod
from ppl.inference.mcmc import nuts
from ppl.inference.mcmc import progress as progress_mod
from ppl.inference.mcmc.checks import SamplingWarning
from ppl.inference.mcmc.hmc import FlatState

__all__ = ["MCMCResult", "SamplingWarning", "run_chains", "check_sampling", "clear_compiled_programs"]

Array = Any


class MCMCResult(NamedTuple):
    """Draws and statistics of a run.

    ``positions``: the pytree of the log density's argument, each leaf with
    leading axes ``(num_chains, num_samples)``; ``sample_stats``: a dict of
    arrays ``(num_chains, num_samples)`` (``diverging``, ``accept_prob``,
    ``step_size``, ``num_steps``, ``tree_depth`` for NUTS, ``energy``,
    ``log_density``); ``adaptation``: ``step_size`` ``(num_chains,)`` and
    ``inverse_mass_matrix`` ``(num_chains, d)`` or ``(num_chains, d, d)``
    on the flat parameter vector.
    """

    positions: Any
    sample_stats: dict
    adaptation: dict


# --------------------------------------------------------------------------- the density target


class _BlackJAXKernel(NamedTuple):
    """A kernel from BlackJAX's ``init`` / ``build_kernel`` pair at fixed ``hmc.Params``."""

    builder: Any
    logdensity_fn: Callable
    params: Any

    def init(self, position):
        return self.builder.init(position, self.logdensity_fn)

    def step(self, key, state):
        p = self.params
        return self.builder.build_kernel()(key, state, self.logdensity_fn, p.step_size, p.metric.inverse_mass_matrix)


class _BlackJAXFamily(NamedTuple):
    builder: Any
    logdensity_fn: Callable

    def __call__(self, params) -> _BlackJAXKernel:
        return _BlackJAXKernel(self.builder, self.logdensity_fn, params)


def family_of(builder: Any, logdensity_fn: Callable):
    """The kernel family of ``builder`` on ``logdensity_fn`` (``builder.family``, or BlackJAX's pair wrapped)."""
    if hasattr(builder, "family"):
        return builder.family(logdensity_fn)
    return _BlackJAXFamily(builder, logdensity_fn)


class _Spec(NamedTuple):
    """Everything static about a run on a density; hashable, the cache key with the log density."""

    treedef: Any
    leaf_specs: tuple
    init_kind: str
    init_radius: float
    init_max_tries: int
    init_data_spec: Any
    args_spec: Any
    key_spec: tuple
    kernel_builder: Any
    adapt: adapt_mod.Adaptation
    plan: driver.Plan


class _Density(NamedTuple):
    """The driver's target for ``run_chains`` (built once per compiled program)."""

    fn_ref: Callable
    spec: _Spec
    unravel: Callable
    dim: int
    dtype: Any

    def setup(self, key, data, args, numbers, num_chains, adapt_key=None) -> driver.Setup:
        logdensity_fn = self.fn_ref()
        if logdensity_fn is None:  # pragma: no cover - the cache entry dies with the function
            raise RuntimeError("the log density function of this compiled sampler no longer exists")

        @jax.jit  # traced once: the initial points, the step-size search and the kernel share the trace
        def flat_logdensity(x):
            return logdensity_fn(self.unravel(x), *args)

        spec, dtype = self.spec, self.dtype
        value_and_grad = jax.value_and_grad(flat_logdensity)
        strategy = init_mod.Strategy(spec.init_kind, data, spec.init_radius, spec.init_max_tries)
        ravel = lambda t: ravel_pytree(t)[0]  # noqa: E731
        make_warmup = getattr(spec.kernel_builder, "warmup", None)  # a kernel with its own warm-up (ChEES)
        # Stan's warm-up searches its initial step size in the loop that finds the initial points
        # (one copy of the gradient in the program for both); the adaptation is made once ``ok`` is known
        windowed = lambda ok: warmup.Windowed(spec.adapt, numbers, spec.plan.num_warmup, self.dim, dtype,  # noqa: E731
                                              value_and_grad, ok)
        search = None
        if make_warmup is None and adapt_key is not None:
            search = windowed(jnp.bool_(True)).search(adapt_key, num_chains)
        found = None
        if search is None:
            start = init_mod.initialize(key, strategy, value_and_grad, num_chains, ravel)
        else:
            start, found = init_mod.initialize(key, strategy, value_and_grad, num_chains, ravel, then=search)
        ok = jnp.all(start.status == init_mod.OK)
        states = FlatState(start.position.astype(dtype), start.log_density, start.log_density_grad.astype(dtype))
        if make_warmup is None:
            adaptation = windowed(ok)
        else:
            adaptation = make_warmup(numbers=numbers, num_warmup=spec.plan.num_warmup, dim=self.dim, dtype=dtype,
                                     value_and_grad=value_and_grad, ok=ok)
        adapt = None if found is None else adaptation.init(adapt_key, states, found=found)
        return driver.Setup(family_of(spec.kernel_builder, flat_logdensity), adaptation, states, ok,
                            record=lambda state: state.position, dtype=dtype,
                            report=(start.status, start.tries, start.log_density), adapt=adapt)

    def finalize(self, draws):
        return jax.vmap(jax.vmap(self.unravel))(draws)


def _ravel_abstract(template: Any) -> tuple[jax.ShapeDtypeStruct, Callable]:
    """``ravel_pytree(template)`` with the flat vector's shape and dtype in place of its values.

    Traced abstractly, so no operation runs eagerly: each would compile a small XLA program on a
    process's first run. ``unravel`` holds only the leaves' shapes and dtypes, never a tracer.
    Remembered per tree structure, shapes and dtypes (a run asks twice; a warm run of a small
    model would spend 2% of its time tracing it again).
    """
    spec = _spec(template)
    got = _RAVELLED.get(spec)
    if got is None:
        if len(_RAVELLED) >= 256:  # many models in one process: start again rather than grow
            _RAVELLED.clear()
        got = _RAVELLED[spec] = _ravel_traced(template)
    return got


_RAVELLED: dict = {}


def _ravel_traced(template: Any) -> tuple[jax.ShapeDtypeStruct, Callable]:
    got = {}

    def flat_of(tree):
        flat, got["unravel"] = ravel_pytree(tree)
        return flat

    return jax.eval_shape(flat_of, template), got["unravel"]


def _spec(tree: Any) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(x), str(jnp.result_type(x)), _is_weak(x)) for x in leaves)


def _is_weak(x: Any) -> bool:
    return bool(getattr(x, "weak_type", False)) or isinstance(x, (int, float, complex))


def _compiled(key, logdensity_fn: Callable, strategy: init_mod.Strategy, template: Any, args: tuple,
              kernel_builder: Any, adapt: adapt_mod.Adaptation, plan: driver.Plan,
              density_key: str | None = None) -> Callable:
    """The compiled program of a run (built once per log density and ``_Spec``), placed on the devices."""
    flat, unravel = _ravel_abstract(template)
    spec = _Spec(
        treedef=jax.tree.structure(template),
        leaf_specs=_spec(template)[1],
        init_kind=strategy.kind,
        init_radius=strategy.radius,
        init_max_tries=strategy.max_tries,
        init_data_spec=_spec(strategy.data),
        args_spec=_spec(args),
        key_spec=(np.shape(key), str(key.dtype)),
        kernel_builder=kernel_builder,
        adapt=adapt.structure(),
        plan=plan,
    )

    # placement (inference/sharding.py): on a mesh, the chains split over the devices, each running
    # the loop of its num_chains / D chains (driver.on_devices); identity on one device
    placement = sharding.for_batch(plan.num_chains, "chains")

    def build(ref):
        target = _Density(ref, spec, unravel, int(flat.size), flat.dtype)
        name = _program_key(logdensity_fn, unravel, flat, args, spec, placement, density_key)
        if name is None:
            return driver.build(target, plan, placement)
        return export_cache.load_or_export(driver.program(target, plan), name,
                                           (key, strategy.data, args, adapt.numbers()), driver.compiler_options())

    # the JAX settings that change a trace (random streams, precision) are part of which program it is
    program = programs.program_for(logdensity_fn, (spec, placement, export_cache.settings()), build)
    return sharding.place(program, placement, plan.num_chains, key, strategy.data, args, adapt.numbers(),
                          compiler_options=driver.compiler_options())


def _program_key(logdensity_fn: Callable, unravel: Callable, flat: Array, args: tuple, spec: _Spec,
                 placement: Any, density_key: str | None) -> str | None:
    """The on-disk cache key of the program (``export_cache``), or None where it cannot be used:
    on a device mesh or several processes, with a progress display (host callbacks), or with a
    kernel or adaptation from outside ppl (its behaviour is not in the hashed source).
    ``density_key`` (see ``run_chains``) keys the density without tracing it, on one device only
    (several devices may split a density's plates, which its program does not say)."""
    if export_cache.directory() is None or placement is not None or spec.plan.progress or jax.process_count() > 1:
        return None
    if not all(type(x).__module__.startswith("ppl.inference.mcmc.") for x in (spec.kernel_builder, spec.adapt)):
        return None
    if density_key is not None and jax.device_count() == 1 and sharding.current() is None:
        return export_cache.key(repr(spec), f"density {density_key}")

    def value_and_grad(x, *a):
        return jax.value_and_grad(lambda y: logdensity_fn(unravel(y), *a))(x)

    return export_cache.fingerprint(value_and_grad, flat, args, repr(spec))


# --------------------------------------------------------------------------- public entry point


def _start(init_positions: Any, num_chains: int | None) -> tuple[init_mod.Strategy, int, Any]:
    """The init strategy, the number of chains and one chain's template position."""
    strategy = init_positions if isinstance(init_positions, init_mod.Strategy) else init_mod.values(init_positions)
    if strategy.kind == "values":
        leaves = jax.tree.leaves(strategy.data)
        if not leaves:
            raise ValueError("init_positions has no arrays")
        leading = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
        if len(leading) != 1 or None in leading:
            raise ValueError("every array of init_positions needs the same leading (chain) axis")
        (inferred,) = leading
        if num_chains is not None and num_chains != inferred:
            raise ValueError(f"num_chains={num_chains} but init_positions holds {inferred} chains")
        return strategy, inferred, jax.tree.map(lambda x: jnp.asarray(x)[0], strategy.data)
    return strategy, 4 if num_chains is None else num_chains, strategy.data


def run_chains(
    key: Array,
    logdensity_fn: Callable,
    init_positions: Any,
    kernel_builder: Any = None,
    *,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    num_chains: int | None = None,
    adapt: adapt_mod.Adaptation | bool | None = None,
    progress: bool | None = None,
    args: tuple = (),
    warn: bool = True,
    decouple_chains: bool = True,
    steps_per_round: int = 1,
    thin: int = 1,
    density_key: str | None = None,
    while_running: Callable | None = None,
) -> MCMCResult:
    """Warm up and sample ``num_chains`` chains of ``kernel_builder`` on ``logdensity_fn``.

    ``logdensity_fn(position, *args) -> scalar`` must be pure and jittable;
    ``args`` (arrays) are passed at run time, so new data of the same shapes
    reuse the compiled program. ``init_positions`` is a pytree with a leading
    chain axis, or an ``init`` strategy (``init.uniform(template)`` redraws
    points with non-finite density). ``kernel_builder`` defaults to
    ``nuts.Builder()``; ``hmc.Builder(...)`` or any object with ``init`` and
    ``build_kernel`` (e.g. the module ``blackjax.mcmc.nuts``) also work
    (see ``family_of``).
    ``adapt`` is an ``adaptation.Adaptation`` (default: Stan's warm-up with a
    diagonal metric), or ``False`` for none. ``thin``: keep every ``thin``-th
    transition after warm-up (``num_samples`` kept, ``num_samples * thin`` run;
    the draws are those of the unthinned run at rows ``thin-1, 2*thin-1, ...``).
    ``progress``: ``None`` shows a
    progress display only on a terminal for runs longer than a second.
    ``density_key``: a text that fixes ``logdensity_fn``'s values and gradients at arguments of
    ``args``' shapes and dtypes (for a ppl program's density, ``semantics.ir_digest``): given, the
    on-disk program cache keys the run on it instead of tracing the density. A key that two
    different densities share would run the wrong one, so leave it None unless it is that.
    ``while_running(positions)``: called once the program is on its way, with the kept draws'
    positions (arrays JAX is still computing), before this waits for them; what it traces,
    compiles and dispatches (the map to the model's coordinates) overlaps the sampling. It is
    called before the initial points are checked, so it must not raise for positions of a run
    that found none (it is a trace: it reads no values).

    Raises ``ModelError`` when no chain has a usable initial point; with
    ``warn``, issues ``SamplingWarning``s (see ``check_sampling``).
    """
    if num_warmup < 0 or num_samples < 1 or thin < 1:
        raise ValueError("num_warmup must be >= 0, num_samples >= 1 and thin >= 1")
    strategy, num_chains, template = _start(init_positions, num_chains)
    if num_chains < 1:
        raise ValueError("num_chains must be at least 1")
    flat, _ = _ravel_abstract(template)
    if flat.size == 0:
        raise ValueError("the position has no coordinates to sample")
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise ValueError(f"positions must be floating point, not {flat.dtype}")

    if kernel_builder is None:
        kernel_builder = nuts.Builder()
    if adapt is None or adapt is True:
        adapt = adapt_mod.Adaptation()
    elif adapt is False:
        adapt = adapt_mod.NO_ADAPTATION
    show = progress_mod.enabled(progress)
    args = tuple(args)
    plan = driver.Plan(int(num_chains), int(num_warmup), int(num_samples), int(thin), show,
                       bool(decouple_chains), int(steps_per_round))
    program = _compiled(key, logdensity_fn, strategy, template, args, kernel_builder, adapt, plan, density_key)
    if show:
        delay = 0.0 if progress else 1.0
        with progress_mod.ChainProgress(num_chains, num_warmup, num_samples * thin, delay=delay):
            out = jax.block_until_ready(program(key, strategy.data, args, adapt.numbers()))
    else:
        out = program(key, strategy.data, args, adapt.numbers())
    out = sharding.fetch(out)  # several processes: every process gets all chains
    positions, stats, adaptation, (status, tries, _) = out
    if while_running is not None:
        while_running(positions)
    init_mod.check(np.asarray(status), int(tries), strategy)

    result = MCMCResult(positions, stats.columns(), adaptation)
    if warn:
        check_sampling(
            result,
            max_tree_depth=getattr(kernel_builder, "max_tree_depth", None),
        )
    return result


# --------------------------------------------------------------------------- warnings (``checks``)

RHAT_THRESHOLD = checks.RHAT_THRESHOLD
ESS_PER_CHAIN = checks.ESS_PER_CHAIN
EBFMI_THRESHOLD = checks.EBFMI_THRESHOLD
check_sampling = checks.check_sampling


def clear_compiled_programs() -> None:
    """Forget every compiled sampler program of a log density (the next run compiles afresh)."""
    programs.clear()

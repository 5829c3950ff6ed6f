"""Running MCMC chains: warm-up and sampling of all chains in one compiled program.

``run_chains(key, logdensity_fn, init_positions, kernel_builder, ...)``
compiles, once per (log density, shapes, options), a single XLA program that

1. finds initial points (``init.initialize``: redraws non-finite ones);
2. picks a first step size (Stan's heuristic);
3. runs warm-up (``adaptation``: dual averaging, windowed metric estimates)
   and sampling for all chains, vectorised with ``vmap``, with no Python
   in the loop;
4. returns the draws and per-draw statistics.

Two drivers share the bookkeeping. Kernels that come as a ``Stepwise``
machine (ours: ``nuts.Builder``, ``hmc.Builder``) are advanced *one
leapfrog step at a time* for every chain, in an inner loop that carries only
the trajectories; when trajectories have ended, the outer loop records their
draws, adapts and starts their next transitions while the others go on. A
chain that has ended waits a little for others to end too (a few steps in
all, ``WAIT_STEPS_PER_CHAIN``), so that one round of bookkeeping serves
several chains: for a small model that bookkeeping costs as much as a step
or two, while the inner step is all the cost of a large one. So vectorised
chains never wait for the longest trajectory among them, and the cost is
about the longest chain's total work rather than the sum over iterations of
the longest trajectory. Any other kernel with ``init`` and
``build_kernel`` (BlackJAX's ``blackjax.mcmc.nuts`` module, say) runs one
transition per iteration of a loop over draws.

Law: each chain's draws after warm-up are those of its own Markov chain with
the kernel at the adapted (step size, metric); chains are independent given
their keys, however their steps interleave.

After a run, ``check_sampling`` issues ``SamplingWarning``s for divergences,
saturated tree depth, low E-BFMI, R-hat above 1.01 and low effective sample
size.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ppl.inference import sharding
from ppl.inference.mcmc import adaptation as adapt_mod
from ppl.inference.mcmc import checks
from ppl.inference.mcmc import init as init_mod
from ppl.inference.mcmc import nuts
from ppl.inference.mcmc import progress as progress_mod
from ppl.inference.mcmc.checks import SamplingWarning
from ppl.inference.mcmc.counter_rng import derive_key
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


# Names of per-transition statistics, and the names kernels (ours, BlackJAX's) give them.
_STAT_FIELDS = {
    "diverging": ("diverging", "is_divergent"),
    "accept_prob": ("accept_prob", "acceptance_rate"),
    "num_steps": ("num_steps", "num_integration_steps"),
    "tree_depth": ("tree_depth", "num_trajectory_expansions"),
    "energy": ("energy",),
    "nonfinite": ("nonfinite",),
}


def _standard_stats(info: Any) -> dict:
    stats = {}
    for name, aliases in _STAT_FIELDS.items():
        for alias in aliases:
            if hasattr(info, alias):
                stats[name] = getattr(info, alias)
                break
    return stats


def _select(mask: Array, on_true: Any, on_false: Any) -> Any:
    """Per-chain select: ``mask`` has shape (chains,), leaves (chains, ...)."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, on_true, on_false)


# --------------------------------------------------------------------------- the compiled program


class _Plan(NamedTuple):
    """Everything static about a run; hashable, the cache key with the log density."""

    treedef: Any
    leaf_specs: tuple
    init_kind: str
    init_radius: float
    init_max_tries: int
    init_data_spec: Any
    args_spec: Any
    key_spec: tuple
    kernel_builder: Any
    num_warmup: int
    num_samples: int
    num_chains: int
    adapt: adapt_mod.Adaptation
    progress: bool
    decouple_chains: bool
    steps_per_round: int
    thin: int = 1  # keep every thin-th draw after warm-up (the thin-th, 2·thin-th, ...)


def _spec(tree: Any) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(x), str(jnp.result_type(x)), _is_weak(x)) for x in leaves)


def _is_weak(x: Any) -> bool:
    return bool(getattr(x, "weak_type", False)) or isinstance(x, (int, float, complex))


def _build_program(fn_ref: Callable[[], Callable], plan: _Plan, unravel: Callable, dim: int, dtype) -> Callable:
    C, W = plan.num_chains, plan.num_warmup
    config = plan.adapt
    collect_np, window_end_np = adapt_mod.schedule(W, config)
    has_windows = bool(window_end_np.any())

    def ravel(tree):
        return ravel_pytree(tree)[0]

    def program(key, init_data, args, numbers):
        logdensity_fn = fn_ref()
        if logdensity_fn is None:  # pragma: no cover - the cache entry dies with the function
            raise RuntimeError("the log density function of this compiled sampler no longer exists")

        def flat_logdensity(x):
            return logdensity_fn(unravel(x), *args)

        value_and_grad = jax.value_and_grad(flat_logdensity)
        strategy = init_mod.Strategy(plan.init_kind, init_data, plan.init_radius, plan.init_max_tries)
        key_init, key_step, key_run = jax.random.split(key, 3)
        start = init_mod.initialize(key_init, strategy, value_and_grad, C, ravel)
        init_ok = jnp.all(start.status == init_mod.OK)
        state = FlatState(start.position.astype(dtype), start.log_density, start.log_density_grad.astype(dtype))

        eps0 = jnp.full((C,), numbers.initial_step_size, dtype)
        adapt = jax.vmap(lambda e: adapt_mod.adaptation_init(dim, e, config, dtype))(eps0)
        if config.find_initial_step_size:
            eps = jax.vmap(
                lambda k, s, m, e: adapt_mod.find_reasonable_step_size(k, s, m, e, value_and_grad)
            )(jax.random.bits(key_step, (C, 2), jnp.uint32), state, adapt.metric, eps0)
            eps = jnp.where(init_ok, eps, eps0)
            adapt = jax.vmap(lambda e: adapt_mod.adaptation_init(dim, e, config, dtype))(eps)

        if plan.decouple_chains and hasattr(plan.kernel_builder, "stepwise"):
            chain_keys = jax.random.bits(key_run, (C, 2), jnp.uint32)  # key words, see counter_rng.key_words
        else:
            chain_keys = jax.random.split(key_run, C)
        collect = jnp.asarray(collect_np if W else np.zeros(1, bool))
        window_end = jnp.asarray(window_end_np if W else np.zeros(1, bool))

        def adapt_after(adapt, t, in_warmup, position, accept_prob):
            """Warm-up bookkeeping after transition ``t`` of the chains in ``in_warmup``."""
            tw = jnp.clip(t, 0, max(W - 1, 0))
            updated = jax.vmap(
                lambda a, tt, x, acc, col, last: adapt_mod.adaptation_update(
                    a, tt, x, acc, col, last, config, numbers
                )
            )(adapt, t, position, accept_prob, collect[tw] & in_warmup, t == W - 1)
            adapt = _select(in_warmup, updated, adapt)
            if has_windows:
                ends = window_end[tw] & in_warmup
                adapt = jax.lax.cond(
                    jnp.any(ends),
                    lambda a: _select(ends, jax.vmap(lambda s: adapt_mod.end_window(s, config))(a), a),
                    lambda a: a,
                    adapt,
                )
            return adapt

        if plan.decouple_chains and hasattr(plan.kernel_builder, "stepwise"):
            run = _stepwise_driver(plan, value_and_grad, adapt_after)
        else:
            run = _transition_driver(plan, flat_logdensity, adapt_after)
        draws, stats, adapt, steps = run(state, adapt, chain_keys, init_ok)

        positions = jax.vmap(jax.vmap(unravel))(draws)
        adaptation = {
            "step_size": adapt.step_size,
            "inverse_mass_matrix": adapt.metric.inverse_mass_matrix,
            "num_integration_steps": steps,
        }
        status = (start.status, start.tries, start.log_density)
        return positions, stats, adaptation, status

    return jax.jit(program)


class _StatTable(NamedTuple):
    """Per-draw statistics kept as columns of one float buffer (one write per finished transition)."""

    names: tuple
    dtypes: tuple

    @staticmethod
    def of(values: dict) -> "_StatTable":
        return _StatTable(tuple(values), tuple(jnp.result_type(v) for v in values.values()))

    def row(self, values: dict, dtype) -> Array:
        """The statistics as the last axis, built by one elementwise expression (no concatenation)."""
        columns = [jnp.asarray(values[name]).astype(dtype)[..., None] for name in self.names]
        index = jnp.arange(len(columns))
        out = columns[-1]
        for i in range(len(columns) - 2, -1, -1):
            out = jnp.where(index == i, columns[i], out)
        return jnp.broadcast_to(out, out.shape[:-1] + (len(columns),))

    def split(self, buffer: Array) -> dict:
        return {name: buffer[..., i].astype(dt) for i, (name, dt) in enumerate(zip(self.names, self.dtypes))}


# How long chains whose trajectory has ended wait for the others before the driver records,
# adapts and restarts them: until the steps they have waited, summed over chains, reach this many
# per chain (ski rental: waiting costs integration steps of idle chains, not waiting costs a round
# of bookkeeping). A round of bookkeeping is worth a step or two of a small model, where both are
# dominated by the fixed cost of each compiled kernel, and little against a step of a large one:
# chains wait only when a step's work (elements computed by the log density and its gradient) is
# at most SMALL_STEP_WORK.
WAIT_STEPS_PER_CHAIN = 1
SMALL_STEP_WORK = 4096


def _step_work(value_and_grad: Callable, position: Array) -> int:
    """Elements computed by one evaluation of ``value_and_grad`` (a static proxy of its cost)."""
    jaxpr = jax.make_jaxpr(value_and_grad)(position)
    return sum(int(np.prod(v.aval.shape)) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars)


def _stepwise_driver(plan: _Plan, value_and_grad: Callable, adapt_after: Callable) -> Callable:
    """Chains advance one integration step at a time, in an inner loop that stops when trajectories
    have ended; each chain's transitions end on their own (see ``WAIT_STEPS_PER_CHAIN``)."""
    C, W, S, K = plan.num_chains, plan.num_warmup, plan.num_samples, plan.thin
    total = W + S * K
    machine = plan.kernel_builder.stepwise()
    every = progress_mod.interval(C, total)
    chains = jnp.arange(C)

    start = jax.vmap(machine.start)
    advance = jax.vmap(lambda traj, m: machine.advance(traj, value_and_grad, m))
    is_done = jax.vmap(machine.is_done)
    finish = jax.vmap(machine.finish)

    class Carry(NamedTuple):
        traj: Any
        adapt: Any
        t: Array  # transitions finished, per chain
        started: Array  # transitions started, per chain (their keys derive from it)
        draws: Array  # (C, S + 1, d); row S takes the draws that are not kept
        stats: Array  # (C, S + 1, number of statistics), the same way
        divergences: Array  # after warm-up, per chain
        steps: Array  # integration steps, per chain

    def begin(keys, started, state, adapt):
        transition_keys = jax.vmap(derive_key)(keys, started)
        return start(transition_keys, state, adapt.metric, adapt.step_size)

    restart = jax.vmap(machine.restart_from)

    def begin_again(previous, keys, started, state, adapt):
        transition_keys = jax.vmap(derive_key)(keys, started)
        return restart(previous, transition_keys, state, adapt.metric, adapt.step_size)

    def run(state, adapt, keys, init_ok):
        dtype = state.position.dtype
        small = _step_work(value_and_grad, state.position[0]) <= SMALL_STEP_WORK
        wait_budget = WAIT_STEPS_PER_CHAIN * C if small else 0
        started = jnp.zeros((C,), jnp.int32)
        traj = begin(keys, started, state, adapt)
        _, info0 = finish(traj)
        table = _StatTable.of(
            dict(_standard_stats(info0), step_size=adapt.step_size, log_density=state.log_density)
        )
        zeros = jnp.zeros((C,), jnp.int32)
        carry = Carry(
            traj,
            adapt,
            zeros,
            started + 1,
            jnp.zeros((C, S + 1) + state.position.shape[1:], dtype),
            jnp.zeros((C, S + 1, len(table.names)), dtype),
            zeros,
            zeros,
        )

        def round_of_steps(traj, m, frozen):
            for _ in range(plan.steps_per_round):
                # A trajectory that has ended (or a chain with nothing left to do) waits.
                frozen = frozen | is_done(traj)
                traj = _select(frozen, traj, advance(traj, m))
            return traj

        def body(c: Carry) -> Carry:
            # The inner loop carries only the trajectories, so an iteration is the integration step
            # alone; the draws, statistics and adaptation (the larger buffers) are touched once per
            # round of ended trajectories, below.
            m = c.adapt.metric
            active = c.t < total

            def go_on(inner):
                traj, waited = inner
                done = is_done(traj)
                return ~jnp.all(done | ~active) & ~(jnp.any(done & active) & (waited >= wait_budget))

            def step_all(inner):
                traj, waited = inner
                traj = round_of_steps(traj, m, ~active)
                return traj, waited + jnp.sum(is_done(traj) & active).astype(jnp.int32)

            traj, _ = jax.lax.while_loop(go_on, step_all, (c.traj, jnp.int32(0)))
            done = is_done(traj)
            new_state, info = finish(traj)
            values = dict(_standard_stats(info), step_size=traj.step_size, log_density=new_state.log_density)
            # Record in place: a kept draw goes to its row, anything else to the scratch row S.
            finished = done & (c.t < total)
            keep = finished & (c.t >= W) & ((c.t - W + 1) % K == 0)
            row = jnp.where(keep, (c.t - W) // K, S)
            draws = c.draws.at[chains, row].set(new_state.position)
            stats = c.stats.at[chains, row].set(table.row(values, dtype))
            divergences = c.divergences + (keep & values["diverging"]).astype(jnp.int32)
            steps = c.steps + jnp.where(finished, values["num_steps"], 0).astype(jnp.int32)
            adapt = c.adapt
            if W > 0:
                adapt = adapt_after(adapt, c.t, finished & (c.t < W), new_state.position, values["accept_prob"])
            # Chains whose trajectory ended start the next one; the select fuses with the step's own writes.
            traj = _select(done, begin_again(traj, keys, c.started, new_state, adapt), traj)
            t = c.t + finished.astype(jnp.int32)
            started = c.started + done.astype(jnp.int32)
            if plan.progress:
                before, after = jnp.sum(c.t) // every, jnp.sum(t) // every
                jax.lax.cond(after != before, lambda: progress_mod.report(t, divergences), lambda: None)
            return Carry(traj, adapt, t, started, draws, stats, divergences, steps)

        def more(c: Carry) -> Array:
            return init_ok & jnp.any(c.t < total)

        out = jax.lax.while_loop(more, body, carry)
        return out.draws[:, :S], table.split(out.stats[:, :S]), out.adapt, out.steps

    return run


def _transition_driver(plan: _Plan, flat_logdensity: Callable, adapt_after: Callable) -> Callable:
    """One whole transition of every chain per loop iteration (any BlackJAX-style kernel)."""
    C, W, S, K = plan.num_chains, plan.num_warmup, plan.num_samples, plan.thin
    total = W + S * K
    builder = plan.kernel_builder
    kernel = builder.build_kernel()
    every = max(1, total // progress_mod.REPORTS_PER_RUN)

    def step(keys, states, step_size, imm):
        return jax.vmap(kernel, in_axes=(0, 0, None, 0, 0))(keys, states, flat_logdensity, step_size, imm)

    def run(state, adapt, keys, init_ok):
        dtype = state.position.dtype
        states = jax.vmap(lambda x: builder.init(x, flat_logdensity))(state.position)
        probe_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, 0)
        _, info0 = jax.eval_shape(step, probe_keys, states, adapt.step_size, adapt.metric.inverse_mass_matrix)
        table = _StatTable.of(
            dict(_standard_stats(info0), step_size=adapt.step_size, log_density=state.log_density)
        )
        buffers = (
            jnp.zeros((C, S + 1) + state.position.shape[1:], dtype),
            jnp.zeros((C, S + 1, len(table.names)), dtype),
        )

        def body(i, carry):
            states, adapt, (draws, stats), divergences, steps = carry
            step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, i)
            states, info = step(step_keys, states, adapt.step_size, adapt.metric.inverse_mass_matrix)
            position, log_density = states[0], states[1]
            kept = (i >= W) & ((i - W + 1) % K == 0)
            row = jnp.where(kept, (i - W) // K, S)
            draws = draws.at[:, row].set(position)
            values = dict(_standard_stats(info), step_size=adapt.step_size, log_density=log_density)
            stats = stats.at[:, row].set(table.row(values, dtype))
            divergences = divergences + (kept & values["diverging"]).astype(jnp.int32)
            steps = steps + values["num_steps"].astype(jnp.int32)
            if W > 0:
                in_warmup = jnp.broadcast_to(i < W, (C,))
                adapt = jax.lax.cond(
                    i < W,
                    lambda a: adapt_after(a, jnp.full((C,), i), in_warmup, position, values["accept_prob"]),
                    lambda a: a,
                    adapt,
                )
            if plan.progress:
                jax.lax.cond(
                    (i + 1) % every == 0,
                    lambda: progress_mod.report(jnp.full((C,), i + 1), divergences),
                    lambda: None,
                )
            return states, adapt, (draws, stats), divergences, steps

        zeros = jnp.zeros((C,), jnp.int32)
        carry = (states, adapt, buffers, zeros, zeros)
        upper = jnp.where(init_ok, total, 0)
        _, adapt, (draws, stats), _, steps = jax.lax.fori_loop(0, upper, body, carry)
        return draws[:, :S], table.split(stats[:, :S]), adapt, steps

    return run


# --------------------------------------------------------------------------- cache

_PROGRAMS: "weakref.WeakKeyDictionary[Callable, dict]" = weakref.WeakKeyDictionary()
_PROGRAMS_STRONG: "OrderedDict[tuple, Callable]" = OrderedDict()
_STRONG_LIMIT = 32


def _program_for(logdensity_fn: Callable, plan: _Plan, unravel: Callable, dim: int, dtype) -> Callable:
    """The compiled program for ``(logdensity_fn, plan)``, built on first use."""
    try:
        table = _PROGRAMS.get(logdensity_fn)
        if table is None:
            table = {}
            _PROGRAMS[logdensity_fn] = table
        program = table.get(plan)
        if program is None:
            program = _build_program(weakref.ref(logdensity_fn), plan, unravel, dim, dtype)
            table[plan] = program
        return program
    except TypeError:  # not weakly referenceable: keep a bounded number of strong entries
        key = (id(logdensity_fn), plan)
        entry = _PROGRAMS_STRONG.get(key)
        if entry is not None and entry[0] is logdensity_fn:
            _PROGRAMS_STRONG.move_to_end(key)
            return entry[1]
        program = _build_program(lambda: logdensity_fn, plan, unravel, dim, dtype)
        _PROGRAMS_STRONG[key] = (logdensity_fn, program)
        while len(_PROGRAMS_STRONG) > _STRONG_LIMIT:
            _PROGRAMS_STRONG.popitem(last=False)
        return program


# --------------------------------------------------------------------------- public entry point


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
) -> MCMCResult:
    """Warm up and sample ``num_chains`` chains of ``kernel_builder`` on ``logdensity_fn``.

    ``logdensity_fn(position, *args) -> scalar`` must be pure and jittable;
    ``args`` (arrays) are passed at run time, so new data of the same shapes
    reuse the compiled program. ``init_positions`` is a pytree with a leading
    chain axis, or an ``init`` strategy (``init.uniform(template)`` redraws
    points with non-finite density). ``kernel_builder`` defaults to
    ``nuts.Builder()``; ``hmc.Builder(...)`` or any object with ``init`` and
    ``build_kernel`` (e.g. the module ``blackjax.mcmc.nuts``) also work.
    ``adapt`` is an ``adaptation.Adaptation`` (default: Stan's warm-up with a
    diagonal metric), or ``False`` for none. ``thin``: keep every ``thin``-th
    transition after warm-up (``num_samples`` kept, ``num_samples * thin`` run;
    the draws are those of the unthinned run at rows ``thin-1, 2*thin-1, ...``).
    ``progress``: ``None`` shows a
    progress display only on a terminal for runs longer than a second.

    Raises ``ModelError`` when no chain has a usable initial point; with
    ``warn``, issues ``SamplingWarning``s (see ``check_sampling``).
    """
    if num_warmup < 0 or num_samples < 1 or thin < 1:
        raise ValueError("num_warmup must be >= 0, num_samples >= 1 and thin >= 1")
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
        num_chains = inferred
        template = jax.tree.map(lambda x: jnp.asarray(x)[0], strategy.data)
    else:
        num_chains = 4 if num_chains is None else num_chains
        template = strategy.data
    if num_chains < 1:
        raise ValueError("num_chains must be at least 1")
    flat, unravel = ravel_pytree(template)
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

    plan = _Plan(
        treedef=jax.tree.structure(template),
        leaf_specs=_spec(template)[1],
        init_kind=strategy.kind,
        init_radius=strategy.radius,
        init_max_tries=strategy.max_tries,
        init_data_spec=_spec(strategy.data),
        args_spec=_spec(args),
        key_spec=(np.shape(key), str(key.dtype)),
        kernel_builder=kernel_builder,
        num_warmup=int(num_warmup),
        num_samples=int(num_samples),
        num_chains=int(num_chains),
        adapt=adapt.structure(),
        progress=show,
        decouple_chains=bool(decouple_chains),
        steps_per_round=int(steps_per_round),
        thin=int(thin),
    )
    program = _program_for(logdensity_fn, plan, unravel, int(flat.size), flat.dtype)
    # placement (inference/sharding.py): on a mesh, the same program with the chain axis of its
    # outputs split over the devices, so each runs num_chains / D chains; identity on one device
    program = sharding.place(program, sharding.for_batch(num_chains, "chains"), num_chains,
                             key, strategy.data, args, adapt.numbers())

    if show:
        delay = 0.0 if progress else 1.0
        with progress_mod.ChainProgress(num_chains, num_warmup, num_samples * thin, delay=delay):
            out = jax.block_until_ready(program(key, strategy.data, args, adapt.numbers()))
    else:
        out = program(key, strategy.data, args, adapt.numbers())
    out = sharding.fetch(out)  # several processes: every process gets all chains
    positions, stats, adaptation, (status, tries, _) = out
    init_mod.check(np.asarray(status), int(tries), strategy)

    result = MCMCResult(positions, stats, adaptation)
    if warn:
        check_sampling(
            result,
            max_tree_depth=getattr(kernel_builder, "max_tree_depth", None),
        )
    return result


# --------------------------------------------------------------------------- warnings

RHAT_THRESHOLD = checks.RHAT_THRESHOLD
ESS_PER_CHAIN = checks.ESS_PER_CHAIN
EBFMI_THRESHOLD = checks.EBFMI_THRESHOLD


def _flat_names(positions: Any) -> list[str]:
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(positions)[0]:
        base = jax.tree_util.keystr(path).lstrip(".").strip("[]'\"") or "x"
        event = np.shape(leaf)[2:]
        if not event:
            names.append(base)
        else:
            names.extend(f"{base}[{','.join(map(str, idx))}]" for idx in np.ndindex(*event))
    return names


def _flat_draws(positions: Any) -> np.ndarray:
    leaves = [np.asarray(x, dtype=np.float64) for x in jax.tree.leaves(positions)]
    C, S = leaves[0].shape[:2]
    return np.concatenate([x.reshape(C, S, -1) for x in leaves], axis=-1)


def check_sampling(result: MCMCResult, *, max_tree_depth: int | None = None, stacklevel: int | None = None,
                   method: str = "NUTS") -> None:
    """Issue ``SamplingWarning``s about a finished run (``checks.check_draws``, the checks every
    MCMC method runs): divergent transitions after warm-up; trajectories stopped by
    ``max_tree_depth``; E-BFMI below 0.3; R-hat above 1.01; bulk or tail ESS below 100 per chain.
    The warnings point at the first frame outside ppl (``stacklevel`` is accepted and ignored).
    """
    draws = _flat_draws(result.positions)
    names = _flat_names(result.positions)
    checks.check_draws(method, result.sample_stats, names, draws, max_tree_depth=max_tree_depth)


def clear_compiled_programs() -> None:
    """Forget every compiled sampler program (the next run compiles afresh)."""
    _PROGRAMS.clear()
    _PROGRAMS_STRONG.clear()

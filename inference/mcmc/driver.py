"""The MCMC driver: warm-up and sampling of all chains of any kernel, in one compiled program.

Every Markov chain method in ppl runs here: HMC and NUTS (``base.run_chains``
on a log density), trace MH and Gibbs (``trace_chains`` on a program). What is
sampled is a *target* (hashable: the static part of the cache key), whose
``setup(key, data, args, numbers, num_chains)``, called inside the compiled
program, gives a ``Setup``: the kernel family (``kernel.Family``), the
adaptation (``kernel.Adaptation``, ``warmup``), the chains' initial states,
whether every chain has a usable start, what to record of a state at each
kept draw, and a report of the start for the host. The program

1. sets up the target (initial states, found by the target's own strategy);
2. initialises the adaptation (for NUTS: Stan's initial step size, searched in the loop that
   finds the initial states, ``Setup.adapt``);
3. runs warm-up and sampling for all chains, vectorised with ``vmap``, with
   no Python in the loop: ``family(adaptation.params(A)).step(key, state)``,
   then ``adaptation.update`` during warm-up;
4. returns the records of the kept draws, the per-draw statistics (the
   ``Info`` fields named in ``kernel.STAT_FIELDS``, the log density, the
   adaptation's ``stats``), the adaptation's ``summary`` and the start report.

When the family offers the step-at-a-time fast path (``stepwise()``), step 3
runs in ``stepwise_driver``; otherwise one whole transition of every chain per
loop iteration (``transitions`` below).

Law: each chain's draws after warm-up are those of its own Markov chain with
the kernel at the adapted parameters; chains are independent given their keys,
however their steps interleave. ``thin=K`` keeps transitions ``W + K - 1,
W + 2K - 1, ...`` (``W`` warm-up transitions).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.mcmc import progress as progress_mod
from ppl.inference.mcmc.hmc import assemble
from ppl.inference.mcmc.kernel import standard_stats

__all__ = ["Plan", "Setup", "StatTable", "Statistics", "build", "use_fast_path"]

Array = Any


class Plan(NamedTuple):
    """How many chains and transitions, and how to run them; hashable (part of the cache key)."""

    num_chains: int
    num_warmup: int
    num_samples: int
    thin: int = 1  # keep every thin-th draw after warm-up (the thin-th, 2·thin-th, ...)
    progress: bool = False
    decouple_chains: bool = True  # use the fast path where the family offers it
    steps_per_round: int = 1


class Setup(NamedTuple):
    """What a target gives the driver inside the compiled program (leading chain axes)."""

    family: Callable  # params -> Kernel
    adaptation: Any  # kernel.Adaptation
    states: Any  # initial states
    ok: Array  # () every chain has a usable start
    record: Callable  # state -> what a kept draw keeps (one chain)
    dtype: Any  # of the statistics buffer
    report: Any  # the start, for the host
    adapt: Any = None  # the adaptation's initial state, when the target made it with its start


class StatTable(NamedTuple):
    """Per-draw statistics kept as columns of one float buffer (one write per finished transition)."""

    names: tuple
    dtypes: tuple

    @staticmethod
    def of(values: dict) -> "StatTable":
        return StatTable(tuple(values), tuple(jnp.result_type(v) for v in values.values()))

    def row(self, values: dict, dtype) -> Array:
        """The statistics as the last axis, built by one elementwise expression (no concatenation)."""
        return assemble([jnp.asarray(values[name]).astype(dtype) for name in self.names], axis=-1)

    def split(self, buffer: Array, rows: int) -> "Statistics":
        """The buffer's first ``rows`` draws as the program returns them (split on the host)."""
        return Statistics(buffer, self.names, tuple(np.dtype(dt).name for dt in self.dtypes), rows)


@jax.tree_util.register_pytree_node_class
class Statistics(Mapping):
    """Per-draw statistics as a compiled program returns them: the whole buffer, its columns named.

    Read on the host (``stats["accept_prob"]``, ``columns()``): a column cut and converted inside
    the program would be a compiled kernel of its own, one per statistic, each a cost to every
    program's compilation. A pytree of one leaf (the buffer), which ``jax.export`` can store.
    """

    def __init__(self, buffer: Array, names: tuple, dtypes: tuple, rows: int):
        self.buffer, self.names, self.dtypes, self.rows = buffer, tuple(names), tuple(dtypes), int(rows)

    def tree_flatten(self):
        return (self.buffer,), (self.names, self.dtypes, self.rows)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], *aux)

    def __getitem__(self, name: str) -> np.ndarray:
        i = self.names.index(name)
        return np.asarray(self.buffer)[..., : self.rows, i].astype(self.dtypes[i])

    def __iter__(self):
        return iter(sorted(self.names))

    def __len__(self) -> int:
        return len(self.names)

    def columns(self) -> dict:
        """Every statistic, ``(chains, draws)`` each, as NumPy arrays, by name in alphabetical order
        (the order a dict of them had as a program's output, which ``ppl run --out`` columns keep)."""
        host = np.asarray(self.buffer)[..., : self.rows, :]
        found = {name: host[..., i].astype(dt) for i, (name, dt) in enumerate(zip(self.names, self.dtypes))}
        return {name: found[name] for name in sorted(found)}


jax.export.register_pytree_node_serialization(
    Statistics,
    serialized_name="ppl.inference.mcmc.driver.Statistics",
    serialize_auxdata=lambda aux: json.dumps(aux).encode(),
    deserialize_auxdata=lambda data: tuple(tuple(x) if isinstance(x, list) else x for x in json.loads(data)),
)


def use_fast_path(plan: Plan, family: Any) -> bool:
    return plan.decouple_chains and hasattr(family, "stepwise")


def log_density_of(state: Any) -> Array:
    """A state's log density (``log_density``; BlackJAX's states call it ``logdensity``)."""
    return state.log_density if hasattr(state, "log_density") else state.logdensity


def counters(values: dict, shape) -> tuple[Array, Array]:
    """(diverging, num_steps) of a transition's statistics; zeros for kernels without them."""
    zero = jnp.zeros(shape, jnp.int32)
    return values.get("diverging", zero), values.get("num_steps", zero)


# XLA's CPU backend hands each fused kernel to LLVM at -O2 by default. A sampler program is a few
# hundred small kernels inside loops whose cost is dominated by their count, not by their bodies,
# and -O1 compiles it about a fifth faster with the same speed (benchmarks/first_draw.py: the
# hierarchical 50x20 model's program 3.8 s -> 3.0 s to compile; benchmarks/nuts.py: warm times
# unchanged). Its floating-point results may differ from -O2's in the last bits, as any two compilers'.
# Other backends keep their defaults.
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def compiler_options() -> dict | None:
    """The XLA options a sampler program is compiled with on the default backend (None: XLA's own)."""
    return dict(CPU_COMPILER_OPTIONS) if jax.default_backend() == "cpu" else None


def build(target: Any, plan: Plan, placement: Any = None) -> Callable:
    """``program(target, plan, placement)`` jitted: with ``compiler_options()`` when nothing is
    placed; placed, without them, for the program ``sharding.place`` compiles around it (XLA's
    options belong to the outermost program)."""
    if placement is not None:
        return jax.jit(program(target, plan, placement))
    return jax.jit(program(target, plan), compiler_options=compiler_options())


def program(target: Any, plan: Plan, placement: Any = None) -> Callable:
    """The program ``(key, data, args, numbers) -> (records, stats, summary, report)``, not yet
    jitted: ``build`` jits it; ``sharding.place`` and ``export_cache`` wrap it in their own programs.

    ``placement`` (``inference.sharding.Placement``, or None): with a batch axis, the chains are
    split over it and each device runs the loop of its own chains (``on_devices``).
    """
    C = plan.num_chains

    def run_all(key, data, args, numbers):
        key_init, key_adapt, key_run = jax.random.split(key, 3)
        # a target may initialise the adaptation in the loop that finds its start (``adapt_key``:
        # the key ``adaptation.init`` takes), so that both evaluate the density's gradient in one place
        setup = target.setup(key_init, data, args, numbers, C, adapt_key=key_adapt)
        adapt = setup.adaptation.init(key_adapt, setup.states) if setup.adapt is None else setup.adapt
        if use_fast_path(plan, setup.family):
            from ppl.inference.mcmc.stepwise_driver import run

            chain_keys = jax.random.bits(key_run, (C, 2), jnp.uint32)  # key words, see counter_rng.key_words
        else:
            run = transitions
            chain_keys = jax.random.split(key_run, C)
        records, stats, adapt, steps = on_devices(run, plan, setup, adapt, chain_keys, placement)
        summary = dict(setup.adaptation.summary(adapt), num_integration_steps=steps)
        return target.finalize(records), stats, summary, setup.report

    return run_all


def on_devices(run: Callable, plan: Plan, setup: Setup, adapt: Any, keys: Array, placement: Any):
    """``run(plan, setup, adapt, keys)``; on a placement with a batch axis of ``D`` devices, once per
    device on its ``C / D`` chains (``shard_map``), so the loops' conditions, bookkeeping and
    adaptation are each device's own and the devices exchange nothing until the draws are returned.

    Everything before (initial points, the initial step size) and the chain keys are computed for
    all chains together, so each chain starts from, and draws with, what it would on one device;
    ``setup.ok`` (every chain has a usable start) is the one value all devices share. This needs an
    adaptation that tunes each chain on its own (``per_chain``: Stan's warm-up, MH, Gibbs); one
    that pools statistics across chains (ChEES) runs as one loop over all chains, which XLA
    partitions over the devices (its means over chains are then collectives at every step).
    """
    axis = None if placement is None else placement.batch_axis
    if axis is None or not getattr(setup.adaptation, "per_chain", False):
        return run(plan, setup, adapt, keys)
    from ppl.stdlib.jax_compat import shard_map
    from jax.sharding import PartitionSpec

    devices = int(placement.mesh.shape[axis])
    local = plan._replace(num_chains=plan.num_chains // devices)

    def one_device(states, adapt, keys, first):
        return run(local, setup._replace(states=states), adapt, keys, first=first[0])

    split = PartitionSpec(axis)
    first = jnp.arange(devices, dtype=jnp.int32) * local.num_chains  # each device's first chain
    return shard_map(one_device, placement.mesh, in_specs=(split, split, split, split), out_specs=split,
                     axis_names={axis})(setup.states, adapt, keys, first)


def transitions(plan: Plan, setup: Setup, adapt: Any, keys: Array, first: Any = None):
    """One whole transition of every chain per loop iteration."""
    C, W, S, K = plan.num_chains, plan.num_warmup, plan.num_samples, plan.thin
    total = W + S * K
    every = max(1, total // progress_mod.REPORTS_PER_RUN)
    adaptation, dtype = setup.adaptation, setup.dtype

    def step(keys, states, adapt):
        params = adaptation.params(adapt)
        return jax.vmap(lambda k, s, p: setup.family(p).step(k, s))(keys, states, params)

    def stat_values(info, states, adapt):
        return dict(standard_stats(info), **adaptation.stats(adapt), log_density=log_density_of(states))

    # each chain's state as its kernel makes it (law 4: the state of the point where the setup put it)
    states0 = jax.vmap(lambda p, x: setup.family(p).init(x))(adaptation.params(adapt), setup.states.position)
    probe_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, 0)
    probe_states, info0 = jax.eval_shape(step, probe_keys, states0, adapt)
    table = StatTable.of(stat_values(info0, probe_states, adapt))
    record0 = jax.eval_shape(jax.vmap(setup.record), states0)
    buffers = (jax.tree.map(lambda x: jnp.zeros((C, S + 1) + x.shape[1:], x.dtype), record0),
               jnp.zeros((C, S + 1, len(table.names)), dtype))

    def body(i, carry):
        states, adapt, (draws, stats), divergences, steps = carry
        step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, i)
        states, info = step(step_keys, states, adapt)
        kept = (i >= W) & ((i - W + 1) % K == 0)
        row = jnp.where(kept, (i - W) // K, S)
        draws = jax.tree.map(lambda buf, x: buf.at[:, row].set(x), draws, jax.vmap(setup.record)(states))
        values = stat_values(info, states, adapt)  # the parameters this transition ran with
        stats = stats.at[:, row].set(table.row(values, dtype))
        diverging, num_steps = counters(values, (C,))
        divergences = divergences + (kept & diverging).astype(jnp.int32)
        steps = steps + num_steps.astype(jnp.int32)
        if W > 0:
            active = jnp.broadcast_to(i < W, (C,))
            adapt = jax.lax.cond(
                i < W,
                lambda a: adaptation.update(a, jnp.full((C,), i), active, states, info),
                lambda a: a,
                adapt,
            )
        if plan.progress:
            jax.lax.cond(
                (i + 1) % every == 0,
                lambda: progress_mod.report(jnp.full((C,), i + 1), divergences, first),
                lambda: None,
            )
        return states, adapt, (draws, stats), divergences, steps

    zeros = jnp.zeros((C,), jnp.int32)
    carry = (states0, adapt, buffers, zeros, zeros)
    upper = jnp.where(setup.ok, total, 0)
    _, adapt, (draws, stats), _, steps = jax.lax.fori_loop(0, upper, body, carry)
    return jax.tree.map(lambda x: x[:, :S], draws), table.split(stats, S), adapt, steps

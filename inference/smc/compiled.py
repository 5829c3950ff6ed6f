"""Compiled SMC: a sequential cut run as one jitted function.

The population is vectorised (``vmap`` of the cut's pieces over particles)
and the steps are one ``lax.scan`` with resampling inside, so a run is a
single XLA computation::

    init          draw the static parameters, weight by what is observed before the loop
    scan t:       step (propagate + weight) ; ESS ; resample if ESS < threshold * N
                  [; move each particle with the rejuvenation kernel]
    backtrack     the ancestral paths of the step sites, from the ancestor indices
    final         the statements after the loop

Log-evidence (unbiased, also under adaptive resampling): with ``w`` the
weights since the last resampling, ``log Z = sum over resampling times of
log mean w + log mean w_final``. The population's state and when and how it
is resampled are ``population.py``.

Trajectories: each step emits the particles' choices and the ancestor indices
of its resampling, read backwards afterwards; the output, and how it reaches
the host (packed, the paths read when first wanted), is ``output.py``.

Values that do not depend on a random choice (data, the model's arguments)
are not copied per particle: the cut says which they are, and the pieces are
vmapped with ``in_axes=None`` for them.

One jitted function per (program, options); ``jit`` itself keys on shapes,
so a second run with the same shapes does not trace again (``Filter.num_traces``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ppl.semantics.cache import cached
from ppl.inference import sharding
from ppl.inference.smc import islands as IS
from ppl.inference.smc import kernels as K
from ppl.inference.smc import output as O
from ppl.inference.smc import rejuvenation
from ppl.inference.smc import resampling as R
from ppl.inference.smc.cut import SequentialCut, sequential_cut
from ppl.inference.smc.output import Output
from ppl.inference.smc.population import Resampler, State
from ppl.semantics import ir
from ppl.stdlib.errors import ModelError

__all__ = ["Options", "Output", "Filter", "get_filter"]


class Options(NamedTuple):
    num_particles: int
    resampling: str
    ess_threshold: float
    proposal: Any = None
    rejuvenation: Any = None
    islands: int = 1  # > 1: independent sub-populations, each resampled on its own (islands.py)


def get_filter(program: ir.Program, options: Options) -> "Filter":
    """The compiled filter for ``program`` and ``options`` (built once, then cached)."""
    try:
        hash(options)
        key = options
    except TypeError:  # an unhashable proposal or kernel: cache by identity
        key = tuple(id(o) for o in options)
    return cached(program, ("smc-filter", key), lambda: Filter(sequential_cut(program), options))


class Filter:
    """SMC over one sequential cut, with fixed options: ``filter(key, args) -> Output``."""

    def __init__(self, cut: SequentialCut, options: Options):
        self.cut = cut
        self.options = options
        self.n = int(options.num_particles)
        self.scheme = R.SCHEMES[options.resampling]
        self.threshold = float(options.ess_threshold)
        self.islands = int(options.islands)
        self.resample = Resampler(self.n, self.scheme, self.threshold, self.islands)
        loop = cut.loop
        self.proposal = None
        if options.proposal is not None:
            if loop is None:
                raise ModelError(f"SMC(proposal=...) proposes the steps of a loop, but {cut.describe()}",
                                 hint="Write the model's time steps with ppl.scan, or leave out the proposal.")
            self.proposal = K.Proposal(options.proposal, loop.body, loop.num_consts, cut.name)
        self.moved_sites: tuple[str, ...] = ()
        if options.rejuvenation is not None:
            if loop is None:
                raise ModelError(f"SMC(rejuvenation=...) moves particles between the steps of a loop, but "
                                 f"{cut.describe()}")
            self.moved_sites = tuple(a for a, s in cut.init_sites().items()
                                     if s.kind == "sample" and not s.is_discrete and not s.in_branch
                                     and not s.loop_lengths)
            if not self.moved_sites:
                raise ModelError(
                    "SMC(rejuvenation=...) moves the static parameters (the continuous random choices before "
                    f"the loop), but the model '{cut.name}' has none",
                    hint="Leave out rejuvenation, or draw the model's parameters before its ppl.scan.")
        self.random_pos = {v: i for i, v in enumerate(v for v in cut.live if cut.is_random(v))}
        self.num_traces = 0
        self.sample_axes: dict[str, int] = {}
        self.return_axes: list = []
        self._return_alias: list = []  # per return value: the index of the sample it is, or None
        self._per_step_columns = 2  # ESS, resampled (and moved, with rejuvenation)
        # The ancestral paths (the backtrack through the ancestor indices, T gathers of N) are read
        # when the samples are first read, not in every run, where nothing after the loop uses them.
        # On the CPU only, where the records waiting in the posterior are in host memory (on an
        # accelerator they would hold its memory), and in one process (a later read on one process
        # of a multi-host run would wait for the others).
        self.defers_paths = (loop is not None and not cut.final.stmts and options.rejuvenation is None
                             and self.threshold > 0.0 and jax.process_count() == 1
                             and jax.devices()[0].platform == "cpu")
        self._fn = jax.jit(self._packed)
        self._paths_fn = jax.jit(self._read_paths)

    def __call__(self, key, args) -> Output:
        """One run, fetched to the host: an ``Output`` of NumPy arrays."""
        # placement (inference/sharding.py): on a mesh, the particle axis split over the devices;
        # resampling stays global (the same function of every weight), unless islands= asks otherwise
        args = list(args)
        fn = sharding.place(self._fn, sharding.for_batch(self.n, "particles"), self.n, key, args)
        head, samples, own, anc = fn(key, args)
        if anc is not None:
            return O.deferred(head, samples, own, lambda records: self._paths_fn(anc, records),
                              self._return_alias, self.sample_axes, self.return_axes, self._host_output)
        head, samples, own = jax.device_get(sharding.fetch((head, samples, own)))
        return self._host_output(head, samples, O.returns_of(samples, own, self._return_alias))

    def _host_output(self, head, samples, returns, paths=None) -> Output:
        """The ``Output`` of the fetched vector of weights, scalars and per-step statistics."""
        return O.unpack(head, self.n, self._per_step_columns, samples, returns, paths)

    def _read_paths(self, anc, records: list) -> list:
        """The final particles' paths through the loop's records (each ``(T, N, ...)``)."""
        return O.backtrack(anc, {}, records, self.cut.loop.reverse, self.n)[1]

    def _packed(self, key, args):
        """``_run`` with its outputs as few arrays as can be (``output.pack``): each costs a transfer."""
        out = self._run(key, args, defer=self.defers_paths)
        packed, self._return_alias, self._per_step_columns = O.pack(out, self.options.rejuvenation is not None)
        return packed

    def at(self, key, args, u: dict) -> Output:
        """The filter with the parameters ``u`` (unconstrained, by address) fixed instead of drawn.

        Its ``log_evidence`` estimates ``log p(T(u)) + log|J(u)| + log p(y | T(u))`` without bias in
        ``exp``: the target of particle marginal Metropolis-Hastings. Pure; trace it inside ``jit``.
        """
        return self._run(key, list(args), u)

    # -- the whole run ------------------------------------------------------------
    def _run(self, key, args, fixed: dict | None = None, defer: bool = False) -> Output:
        """One run. ``defer``: the loop's records are not backtracked; ``Output.paths`` holds the
        ancestor indices (see ``defers_paths``)."""
        self.num_traces += 1
        cut, n = self.cut, self.n
        random = [cut.is_random(v) for v in cut.live]
        if cut.loop is None:
            init_keys = jax.random.split(key, n)  # the keys of Importance: the same draws
            k_loop = k_final = k_res = None
        else:
            k_init, k_loop, k_final, k_res = jax.random.split(key, 4)
            init_keys = jax.random.split(k_init, n)

        def init_one(k):
            piece = K.run_init(cut.init, k, args) if fixed is None else K.run_init_at(cut.init, k, args, fixed)
            rand = [o for o, r in zip(piece.outs, random) if r]
            shared = [o for o, r in zip(piece.outs, random) if not r]
            return rand, shared, piece.choices, piece.log_weight, piece.valid

        rand, shared, init_choices, lw, valid = jax.vmap(init_one, out_axes=(0, None, 0, 0, 0))(init_keys)
        zero = jnp.zeros((self.islands,) if self.islands > 1 else (), lw.dtype)
        u = {}
        if self.moved_sites:
            names = frozenset(self.moved_sites)
            u = jax.vmap(lambda c: K.unconstrain(cut.init, args, c, names))(init_choices)
        state = State([], list(rand), dict(init_choices), lw, zero, jnp.all(valid), u, {}, [])
        shared = dict(zip([v for v, r in zip(cut.live, random) if not r], shared))

        ess_init = R.ess(state.log_weights)
        resampled_init = jnp.asarray(False)
        empty = jnp.zeros((0,), lw.dtype)
        ess_t, resampled, moved = empty, jnp.zeros((0,), bool), empty
        if cut.loop is None:  # importance sampling: one weighting step, never resampled
            step_values, ys, ys_axis, anc = {}, [], 0, None
            ess_t, resampled = ess_init[None], jnp.zeros((1,), bool)
        else:
            if cut.init_weighted:
                state, _, resampled_init = self.resample(state, k_res, R.summarise(state.log_weights), True)
            state, step_values, ys, ys_axis, ess_t, resampled, moved, anc = self._loop(state, shared, k_loop,
                                                                                       args, defer)

        # the statements after the loop
        final_values, final_axes = self._final_inputs(state, shared, ys, ys_axis)
        final_choices = {}
        if cut.final.stmts:
            def final_one(k, values):
                return K.run_final(cut.final, k, values)

            keys = jax.random.split(k_final if k_final is not None else key, n)
            piece = jax.vmap(final_one, in_axes=(0, final_axes))(keys, final_values)
            state = state._replace(log_weights=state.log_weights + piece.log_weight,
                                   valid=state.valid & jnp.all(piece.valid))
            final_choices = piece.choices
            returns, self.return_axes = list(piece.outs), [0] * len(piece.outs)
        else:
            env = dict(zip(cut.final.params, zip(final_values, final_axes)))
            resolved = [(a.value, None) if isinstance(a, ir.Lit) else env[a] for a in cut.final.returns]
            returns = [v for v, _ in resolved]
            self.return_axes = [ax for _, ax in resolved]

        samples = {}
        axes = {}
        for a, v in state.init_choices.items():
            samples[a], axes[a] = v, 0
        for a, v in step_values.items():
            samples[a], axes[a] = v, ys_axis
        for a, v in final_choices.items():
            samples[a], axes[a] = v, 0
        self.sample_axes = axes
        if self.islands > 1:  # each particle weighs its island's evidence (islands.py)
            final_w = state.log_weights + IS.per_particle(state.log_z, n)
            state = state._replace(log_weights=final_w)
            log_z = R.log_mean_exp(final_w)
        else:
            log_z = state.log_z + R.log_mean_exp(state.log_weights)
        return Output(state.log_weights, log_z, samples, returns, ess_t, resampled, ess_init, resampled_init,
                      moved, state.valid, anc if defer else None)

    # -- values of the init's scope -------------------------------------------------
    def _value(self, state: State, shared: dict, atom):
        """(value, particle axis) of an atom of the init's scope; ``shared``: the values not per particle."""
        if isinstance(atom, ir.Lit):
            return atom.value, None
        if atom in self.random_pos:
            return state.live[self.random_pos[atom]], 0
        return shared[atom], None

    def _final_inputs(self, state, shared, ys, ys_axis):
        cut = self.cut
        values, axes = [], []
        for v in cut.live:
            val, ax = self._value(state, shared, v)
            values.append(val)
            axes.append(ax)
        if cut.loop is not None:
            values += list(state.carry) + list(ys)
            axes += [0] * len(state.carry) + [ys_axis] * len(ys)
        return values, axes

    # -- the loop -----------------------------------------------------------------------
    def _loop(self, state: State, shared, k_loop, args, defer: bool = False):
        cut, n = self.cut, self.n
        loop = cut.loop
        c, k = loop.num_consts, loop.num_carry
        T = loop.length
        last = 0 if loop.reverse else T - 1
        carry0 = []
        for a, p in zip(loop.args[c:c + k], loop.body.params[c:c + k]):
            val, ax = self._value(state, shared, a)
            val = jnp.asarray(val, p.dtype)
            carry0.append(val if ax == 0 else jnp.broadcast_to(val, (n,) + jnp.shape(val)))
        state = state._replace(carry=carry0)
        xs_atoms = loop.args[c + k:]
        shared_xs = [self._value(state, shared, a)[0] for a in xs_atoms if not self.cut.is_random(a)]
        rejuvenate = self.options.rejuvenation is not None
        if rejuvenate:
            sites = {a: s for a, s in cut.step_sites().items() if s.kind in ("sample", "deterministic")}
            path = {a: jnp.zeros((n, T) + tuple(s.stacked_shape), s.dtype) for a, s in sites.items()}
            path.update({K.PRESENT + a: jnp.zeros((n, T) + tuple(sites[a].loop_lengths), bool)
                         for a in K.branch_sites(loop.body)})
            ys0 = [jnp.zeros((n,) + tuple(v.shape), v.dtype) for v in loop.outs[k:]]
            state = state._replace(path=path, ys=ys0)
        single_proposal = self.proposal

        def body(state: State, inp):
            t, keys_t, x_shared = inp
            k_draw, k_q, k_res, k_move = keys_t
            consts = [self._value(state, shared, a) for a in loop.args[:c]]
            it = iter(x_shared)
            xs = []
            for a in xs_atoms:
                if self.cut.is_random(a):
                    full, _ = self._value(state, shared, a)
                    xs.append((jax.lax.dynamic_index_in_dim(full, t, axis=1, keepdims=False), 0))
                else:
                    xs.append((next(it), None))
            pkeys = K.particle_keys(k_draw, n)
            qkeys = K.particle_keys(k_q, n) if single_proposal is not None else None

            def one(pk, qk, cv, carry, xv):
                return K.run_step(loop.body, c, k, pk, cv, carry, xv, single_proposal, qk)

            piece = jax.vmap(one, in_axes=(0, None if qkeys is None else 0, [ax for _, ax in consts], 0,
                                           [ax for _, ax in xs]))(
                pkeys, qkeys, [v for v, _ in consts], state.carry, [v for v, _ in xs])
            ys_t = list(piece.outs[k:])
            lw = state.log_weights + piece.log_weight
            state = state._replace(carry=list(piece.outs[:k]), log_weights=lw,
                                   valid=state.valid & piece.valid)
            if rejuvenate:
                path = {a: state.path[a].at[:, t].set(piece.choices[a]) for a in state.path}
                ys_path = [p.at[:, t].set(y) for p, y in zip(state.ys, ys_t)]
                state = state._replace(path=path, ys=ys_path)
            summary = R.summarise(lw)
            e = summary[1]
            allowed = True if cut.final_weighted else (t != last)
            state, anc, did = self.resample(state, k_res, summary, allowed)
            if rejuvenate:
                state, moved = jax.lax.cond(did, lambda s: self._move(s, k_move, t, args),
                                            lambda s: (s, jnp.zeros((), lw.dtype)), state)
                return state, (e, did, moved)
            own_ys = [y for j, y in enumerate(ys_t) if j not in aliases]
            return state, (piece.choices, own_ys, anc, e, did)

        # a loop output that is a random choice of the step (``return x, x``) is read from the choices
        site_of = {s.out: s.address for s in ir.walk(loop.body.stmts) if isinstance(s, (ir.Sample, ir.Deterministic))}
        aliases = {j: site_of[a] for j, a in enumerate(loop.body.returns[k:]) if isinstance(a, ir.Var) and a in site_of}
        steps = jnp.arange(T, dtype=jnp.int32)
        # every step's keys at once, before the loop: those of split(fold_in(k_loop, t), 4) at step t
        step_keys = jax.vmap(lambda t: jax.random.split(jax.random.fold_in(k_loop, t), 4))(steps)
        # validity per slot through the loop (not gathered when resampling: a slot is marked once any
        # particle in it was invalid), reduced once after it instead of at every step
        state = state._replace(valid=jnp.broadcast_to(state.valid, (n,)))
        state, out = jax.lax.scan(body, state, (steps, step_keys, shared_xs), reverse=loop.reverse)
        state = state._replace(valid=jnp.all(state.valid))
        if rejuvenate:
            e, did, moved = out
            return state, dict(state.path), list(state.ys), 0, e, did, moved, None
        choices, own_ys, anc, e, did = out
        moved = jnp.zeros(e.shape, e.dtype)  # no rejuvenation: nothing moved
        if anc is not None and not defer:
            choices, own_ys = O.backtrack(anc, choices, own_ys, loop.reverse, n)
        it = iter(own_ys)
        ys = [choices[aliases[j]] if j in aliases else next(it) for j in range(len(loop.outs) - k)]
        return state, choices, ys, 1, e, did, moved, anc

    # -- rejuvenation ---------------------------------------------------------------------
    def _loop_args(self, state_like_live):
        """loop_args(live outs of init) -> (consts, carry0, xs) for one particle (replay)."""
        cut = self.cut
        loop = cut.loop
        c, k = loop.num_consts, loop.num_carry
        env = dict(zip(cut.live, state_like_live))

        def val(a):
            return a.value if isinstance(a, ir.Lit) else env[a]

        args = [val(a) for a in loop.args]
        return args[:c], args[c:c + k], args[c + k:]

    def _move(self, state: State, key, t, args):
        """Apply the rejuvenation kernel to every particle; rebuild what its parameters determine."""
        cut = self.cut
        kernel = self.options.rejuvenation
        moved = frozenset(self.moved_sites)
        random = [cut.is_random(v) for v in cut.live]

        init_latent = {a for a, s in cut.init_sites().items() if s.kind == "sample"}

        def one(k, u, choices, path):
            fixed = {a: v for a, v in choices.items() if a in init_latent and a not in moved}

            def logdensity_fn(position):
                # a move that would change which branches run is rejected: the sites that it would
                # make have no value to move from (the move stays reversible, as between two
                # regions of zero density)
                lp, _, new_choices, _, _, flags = K.replay(cut, args, position, fixed, path, t, self._loop_args)
                return jnp.where(K.same_branches(choices, new_choices, path, flags), lp, -jnp.inf)

            new_u = rejuvenation.apply(kernel, k, u, logdensity_fn)  # the kernel contract's init/step
            # the branches taken are the particle's own (a move that changes them is rejected), so the
            # path's present flags stand as they are
            _, outs, new_choices, carry, ys, _ = K.replay(cut, args, new_u, fixed, path, t, self._loop_args)
            rand = [o for o, r in zip(outs, random) if r]
            changed = jnp.any(jnp.stack([jnp.any(new_u[a] != u[a]) for a in u]))
            return new_u, rand, new_choices, carry, ys, changed

        keys = jax.random.split(key, self.n)
        new_u, rand, new_choices, carry, ys, changed = jax.vmap(one)(keys, state.u, state.init_choices, state.path)
        state = state._replace(u=new_u, live=rand, init_choices=new_choices, carry=list(carry), ys=list(ys))
        return state, jnp.mean(changed.astype(state.log_weights.dtype))

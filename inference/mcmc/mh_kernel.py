"""Trace Metropolis–Hastings as a kernel (the contract of ``kernel``): the moves of ``mh``.

``TraceMH(method, program, args)`` analyses a static program once (its latent
sites, dependency graph, the addresses of single-site moves, a user proposal);
``TraceMH.family(args)(None)`` is the kernel at run-time arguments ``args``:
``init(choices) -> MHState`` (the program run on the latent sites' values) and
``step(key, state) -> (MHState, MHInfo)``: one iteration (a sweep of
single-site moves, one block move, or one user-proposal move).

Law: every move leaves the posterior invariant (see ``mh``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics.graph import dependency_graph
from ppl.semantics.program import Dynamic, split_args
from ppl.stdlib.errors import AddressError, ModelError

__all__ = ["MHState", "MHInfo", "MHKernel", "MHFamily", "TraceMH", "select_sites", "state_at"]


class MHState(NamedTuple):
    """A chain's state: latent values, branch-presence flags, the joint log density, and the
    record of the current point (every site's value, deterministic ones included; the return value)."""

    choices: dict
    present: dict
    log_density: Any
    record: Any

    @property
    def position(self) -> dict:
        return self.choices


def select_sites(names, selection, what="MH(selection=...)"):
    chosen = []
    for sel in selection:
        hit = [a for a in names if a == sel or a.startswith(sel + "/")]
        if not hit:
            raise AddressError(f"{what} names {sel!r}, but the model has no latent site there; its latent "
                               f"sites are {sorted(names)}")
        chosen += [a for a in hit if a not in chosen]
    return chosen


class TraceMH:
    """What MH knows of one (program, method) pair: its sites, dependency graph, the moves.

    ``family(args)`` is the kernel family on the program at run-time arguments ``args``
    (``MHFamily``: no parameters to tune, ``family(None)`` is the kernel).
    """

    def __init__(self, method, program: ir.Program, args):
        self.method = method
        self.program = program
        self.latent = program.latent_sites()
        self.names = list(self.latent)
        self.graph = dependency_graph(program)
        self.branchy = {a for a, n in self.graph.nodes.items() if n.in_branch}
        if not self.names:
            raise ModelError("MH needs at least one latent random choice; this model has none",
                             hint="Use Enumerate or Importance to evaluate a model with no latent sites.")
        self.units = []  # (site index, flat step) of every single-site address
        for j, a in enumerate(self.names):
            steps = int(np.prod(self.latent[a].loop_lengths, dtype=np.int64))
            self.units += [(j, t) for t in range(steps)]
        if method.selection is not None:
            self.block = select_sites(self.names, method.selection)
        if method.proposal is not None:
            self._build_proposal(args)

    # -- single site and block moves ----------------------------------------------------
    def _mask(self, a, b, step):
        loops = tuple(self.latent[b].loop_lengths)
        if b != a:
            return jnp.zeros(loops, bool)
        if not loops:
            return jnp.asarray(True)
        n = int(np.prod(loops, dtype=np.int64))
        return (jnp.arange(n) == step).reshape(loops)

    def _terms_of(self, sites) -> frozenset | None:
        """The sites whose terms a move of ``sites`` can change; None for the whole joint."""
        out = set()
        for a in sites:
            if any(d in self.branchy for d in self.graph.descendants(a) | {a}):
                return None
            out |= self.graph.factors_of(a)
        return frozenset(out)

    def move(self, key, state: MHState, args, masks: dict, keep):
        k_draw, k_accept = jax.random.split(key)
        choices_old = {b: state.choices[b] for b in self.names}
        new, log_w, terms_new, terms_old = C.regenerate(self.program, k_draw, args, choices_old, masks,
                                                        present=state.present, record_terms=True)
        choices_new = {b: new.choices[b] for b in self.names}
        present_new = {b: new.present[b] for b in state.present}
        if keep is None:
            log_alpha = jnp.where(new.valid, log_w, -jnp.inf)
        else:  # only these terms change; a parameter pushed outside its domain shows as NaN there
            log_alpha = sum(jnp.sum(terms_new[s]) - jnp.sum(terms_old[s]) for s in keep if s in terms_new)
        log_alpha = jnp.where(jnp.isnan(log_alpha), -jnp.inf, log_alpha)
        accept_prob = jnp.minimum(1.0, jnp.exp(log_alpha))
        accept = jax.random.uniform(k_accept) < accept_prob
        choices = jax.tree.map(lambda x, y: jnp.where(accept, x, y), choices_new, state.choices)
        present = jax.tree.map(lambda x, y: jnp.where(accept, x, y), present_new, state.present)
        return state._replace(choices=choices, present=present), accept_prob

    def single_site_move(self, j):
        a = self.names[j]
        keep = self._terms_of([a])

        def move(key, state, args, step):
            masks = {b: self._mask(a, b, step) for b in self.names}
            return self.move(key, state, args, masks, keep)

        return move

    def sweep(self, key, state, args):
        units = np.asarray(self.units, dtype=np.int32)
        u = len(units)
        k_order, k_moves = jax.random.split(key)
        if self.method.order == "random":
            picks = jax.random.randint(k_order, (u,), 0, u)
        else:
            picks = jnp.arange(u)
        site_of = jnp.asarray(units[:, 0])[picks]
        step_of = jnp.asarray(units[:, 1])[picks]
        branches = [self.single_site_move(j) for j in range(len(self.names))]

        def one(state, x):
            k, j, t = x
            if len(branches) == 1:
                state, p = branches[0](k, state, args, t)
            else:
                state, p = jax.lax.switch(j, branches, k, state, args, t)
            return state, p

        state, probs = jax.lax.scan(one, state, (jax.random.split(k_moves, u), site_of, step_of))
        return state, jnp.mean(probs)

    def block_move(self, key, state, args):
        masks = {}
        for b in self.names:
            loops = tuple(self.latent[b].loop_lengths)
            masks[b] = jnp.full(loops, b in self.block, bool)
        return self.move(key, state, args, masks, self._terms_of(self.block))

    # -- user proposals -------------------------------------------------------------------
    def _model_args(self, leaves):
        return self.program.in_tree(list(leaves))

    def _build_proposal(self, args):
        prop = self.method.proposal
        init = C.simulate(self.program, jax.random.key(0), args)
        choices = {a: init.choices[a] for a in self.names}
        margs, mkwargs = self._model_args(args)
        program, _ = prop.program(choices, *margs, **mkwargs)
        if isinstance(program, Dynamic):
            raise ModelError("the MH proposal is dynamic, but the model is static; a static model needs a "
                             "static proposal", span=program.span,
                             hint="Branch on random values in the proposal with ppl.cond.")
        sites = program.sites
        for a, info in sites.items():
            if info.kind in ("observe", "factor"):
                raise ModelError(f"the MH proposal observes or factors at '{a}'; a proposal may only make "
                                 "random choices", span=info.span)
        self.proposed = [a for a, info in sites.items() if info.kind == "sample"]
        for a in self.proposed:
            if a not in self.latent:
                raise AddressError(f"the MH proposal makes the random choice '{a}', but the model has no latent "
                                   f"site there; its latent sites are {sorted(self.names)}", span=sites[a].span)
            if tuple(sites[a].stacked_shape) != tuple(self.latent[a].stacked_shape):
                raise AddressError(f"the MH proposal's '{a}' has shape {sites[a].stacked_shape}, but the model's "
                                   f"has shape {self.latent[a].stacked_shape}", span=sites[a].span)
        self.prop_program = program

    def _prop_leaves(self, choices, leaves):
        margs, mkwargs = self._model_args(leaves)
        dyn, _ = split_args((choices, *margs), mkwargs)
        return dyn

    def proposal_move(self, key, state, args):
        key, k_accept = jax.random.split(key)
        q = C.simulate(self.prop_program, key, self._prop_leaves(state.choices, args))
        proposed = {a: jnp.asarray(q.choices[a], self.latent[a].dtype) for a in self.proposed}
        choices_new = {**state.choices, **proposed}
        new = C.run(self.program, C.Given(), args, inputs=choices_new)
        current = {a: state.choices[a] for a in self.proposed}
        log_q_back = C.log_density(self.prop_program, current, self._prop_leaves(choices_new, args))
        log_q_fwd = q.log_prior + q.log_likelihood
        log_alpha = new.log_joint - state.log_density + log_q_back - log_q_fwd
        log_alpha = jnp.where(jnp.isnan(log_alpha) | ~new.valid, -jnp.inf, log_alpha)
        accept_prob = jnp.minimum(1.0, jnp.exp(log_alpha))
        accept = jax.random.uniform(k_accept) < accept_prob
        choices = jax.tree.map(lambda x, y: jnp.where(accept, x, y), choices_new, state.choices)
        present_new = {b: new.present[b] for b in state.present}
        present = jax.tree.map(lambda x, y: jnp.where(accept, x, y), present_new, state.present)
        log_density = jnp.where(accept, new.log_joint, state.log_density)
        record = jax.tree.map(lambda x, y: jnp.where(accept, x, y), (new.choices, new.retval), state.record)
        return MHState(choices, present, log_density, record), accept_prob

    # -- iterations ---------------------------------------------------------------------
    def step(self, key, state: MHState, args):
        """One iteration: ``(state, acceptance probability)``."""
        if self.method.proposal is not None:
            return self.proposal_move(key, state, args)
        if self.method.selection is not None:
            state, prob = self.block_move(key, state, args)
        else:
            state, prob = self.sweep(key, state, args)
        tr = C.run(self.program, C.Given(), args, inputs=state.choices)
        return state._replace(log_density=tr.log_joint, record=(tr.choices, tr.retval)), prob

    def family(self, args) -> "MHFamily":
        return MHFamily(self, list(args))


def state_at(program: ir.Program, choices: dict, args) -> MHState:
    """The state at ``choices`` (the latent sites' values): the program run on them."""
    latent = program.latent_sites()
    tr = C.run(program, C.Given(), args, inputs=choices)
    present = {a: tr.present[a] for a in tr.present if a in latent}
    return MHState(dict(choices), present, tr.log_joint, (tr.choices, tr.retval))


class MHInfo(NamedTuple):
    """What one MH iteration did: the mean acceptance probability of its moves."""

    accept_prob: Any


class MHKernel(NamedTuple):
    """Trace MH at run-time arguments ``args`` (the contract of ``kernel``): positions are dicts
    of the latent sites' values."""

    mh: TraceMH
    args: list

    def init(self, position: dict) -> MHState:
        return state_at(self.mh.program, position, self.args)

    def step(self, key, state: MHState) -> tuple[MHState, MHInfo]:
        state, prob = self.mh.step(key, state, self.args)
        return state, MHInfo(prob)


class MHFamily(NamedTuple):
    """``family(None) -> MHKernel`` (MH has no tuned parameters; ``warmup.Fixed``)."""

    mh: TraceMH
    args: list

    def __call__(self, params: Any = None) -> MHKernel:
        return MHKernel(self.mh, self.args)

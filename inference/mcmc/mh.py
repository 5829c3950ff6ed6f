"""Trace Metropolis–Hastings: single-site, block, and user proposals written as models.

The state is a trace (the values of the latent sites). A move proposes a new
trace ``x'`` from the current ``x`` and accepts it with probability
``min(1, alpha)``::

    log alpha = log p(x') + log q(x | x') - log p(x) - log q(x' | x)

Three kinds of moves:

- **Single site** (default): one *address* is regenerated from its prior
  given the rest of the trace (Wingate et al. 2011). Addresses are those of
  the eager engine: a site outside loops is one address (a plated site is
  one address, regenerated whole); a site inside a loop has one address per
  step (``z[3]``). Sites whose existence depends on random values (inside
  an ``If``, or in a dynamic model) are handled as in trace MH: those that
  come into existence are drawn from the prior (*fresh*), those that
  disappear (*stale*) enter the reverse proposal. With the prior as
  proposal the ratio reduces to::

      log alpha = W(x') - W(x),   W(t) = sum of the log densities, in t, of the sites
                                         kept from the other trace + the observations

  plus ``log |addresses(x)| - log |addresses(x')|`` for the uniform choice
  of the address when the number of addresses varies (dynamic models).
  One iteration is a sweep: as many single-site moves as there are
  addresses, each choosing its address uniformly (``order="random"``) or
  in program order (``order="sweep"``).
- **Block** (``selection=[...]``): every address of the named sites
  (sub-model prefixes ``"sub"`` select ``"sub/..."``) is regenerated at once.
  One move per iteration.
- **User proposal** (``proposal=prop``): ``prop`` is a model called as
  ``prop(choices, *model_args, **model_kwargs)``, where ``choices`` maps the
  current trace's latent addresses to values; each of its random choices
  names a latent address of the model and proposes its new value (it may
  not observe or factor). ``q(x' | x)`` is ``prop``'s density of its choices
  when run on ``x``; the reverse density ``q(x | x')`` is ``prop``'s density
  of the *current* values at those addresses when run on ``x'`` — so a
  non-symmetric proposal is corrected exactly. One move per iteration.

Static programs run compiled: all chains ``vmap``-ed, every iteration in one
``lax.scan``, one ``jit``. A single-site move evaluates only the terms of the
regenerated site and its children (``semantics.graph``); the rest of the
joint cancels in the ratio and is dead code under ``jit``. When the
regenerated site can change which branch of an ``If`` runs, the move uses
the whole joint. User proposals evaluate the whole joint.

Dynamic programs (recursion, random-length structure) run in the eager
engine on the *traced* representation: each move re-runs the model with a
handler that replays the kept addresses and draws the others.

Law (each move preserves the posterior): checked in ``tests/test_mh.py``
against exact enumeration and conjugate posteriors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference._common import annotate, stack_draws
from ppl.inference.mcmc import checks
from ppl.inference.result import Result
from ppl.semantics import compile as C
from ppl.semantics.cache import cached
from ppl.semantics import effects, ir
from ppl.semantics.graph import dependency_graph
from ppl.semantics.interpret.free import sample_log_density, site_score
from ppl.semantics.program import Dynamic, split_args
from ppl.stdlib.errors import AddressError, ModelError, PPLError

__all__ = ["MH", "MHState", "prior_init", "compile_chains", "chains_result", "checked_start"]

INIT_TRIES = 64


class MHState(NamedTuple):
    """A chain's state: latent values, branch-presence flags, the joint log density, and the
    record of the current point (every site's value, deterministic ones included; the return value)."""

    choices: dict
    present: dict
    log_density: Any
    record: Any


@dataclass(frozen=True, kw_only=True)
class MH:
    """Trace Metropolis–Hastings (see the module docstring).

    ``num_samples`` draws per chain are kept after ``num_warmup`` iterations,
    keeping every ``thin``-th iteration. ``selection``: site names for block
    moves; ``proposal``: a model proposing new values (see above); ``order``:
    ``"random"`` or ``"sweep"`` for single-site moves.
    """

    num_samples: int = 1000
    num_warmup: int = 500
    num_chains: int = 4
    selection: Any = None
    proposal: Any = None
    thin: int = 1
    order: str = "random"

    name = "MH"

    def __post_init__(self):
        if isinstance(self.selection, str):
            object.__setattr__(self, "selection", (self.selection,))
        elif self.selection is not None:
            object.__setattr__(self, "selection", tuple(self.selection))

    def _check(self):
        for field in ("num_samples", "num_chains", "thin"):
            if int(getattr(self, field)) < 1:
                raise ModelError(f"MH needs {field} >= 1, not {getattr(self, field)}")
        if int(self.num_warmup) < 0:
            raise ModelError(f"MH needs num_warmup >= 0, not {self.num_warmup}")
        if self.order not in ("random", "sweep"):
            raise ModelError(f"MH(order=...) must be 'random' or 'sweep', not {self.order!r}")
        if self.selection is not None and self.proposal is not None:
            raise ModelError("MH takes a selection or a proposal, not both")
        if self.selection is not None and not self.selection:
            raise ModelError("MH(selection=...) names no site")
        if self.proposal is not None and not hasattr(self.proposal, "program"):
            raise ModelError(f"MH(proposal=...) must be a model (decorated with @ppl.model), not "
                             f"{type(self.proposal).__name__}")

    def run(self, program, args, key) -> Result:
        self._check()
        if isinstance(program, Dynamic):
            return _run_eager(self, program, key)
        return _run_compiled(self, program, args, key)


def _select(names, selection, what="MH(selection=...)"):
    chosen = []
    for sel in selection:
        hit = [a for a in names if a == sel or a.startswith(sel + "/")]
        if not hit:
            raise AddressError(f"{what} names {sel!r}, but the model has no latent site there; its latent "
                               f"sites are {sorted(names)}")
        chosen += [a for a in hit if a not in chosen]
    return chosen


class _Compiled:
    """The compiled kernel of one (program, method) pair."""

    def __init__(self, method: MH, program: ir.Program, args):
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
            self.block = _select(self.names, method.selection)
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
    def step(self, key, state: MHState, args, rate=None):
        """One iteration: ``(state, acceptance probability)``."""
        if self.method.proposal is not None:
            return self.proposal_move(key, state, args)
        if self.method.selection is not None:
            state, prob = self.block_move(key, state, args)
        else:
            state, prob = self.sweep(key, state, args)
        tr = C.run(self.program, C.Given(), args, inputs=state.choices)
        return state._replace(log_density=tr.log_joint, record=(tr.choices, tr.retval)), prob

    def init(self, key, args) -> MHState:
        return prior_init(self.program, key, args)


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


def compile_chains(kernel, num_samples: int, num_warmup: int, thin: int):
    """``jit(vmap(chain))`` for a kernel with ``init(key, args) -> state`` and
    ``step(key, state, args, rate) -> (state, accept_prob)``, whose state has ``log_density``
    and ``record`` (the values kept per draw).

    The returned function maps (per-chain keys, args) to ``(records, accept_prob, log_density,
    init_ok)`` with leading axes (chains, draws). ``rate`` is the warm-up adaptation rate
    ``(t + 1) ** -0.6`` at iteration ``t`` of warm-up, 0 after. The kernel is traced once: warm-up
    runs inside the loop of the first draw.
    """
    n, warm, thin = int(num_samples), int(num_warmup), int(thin)
    ftype = jnp.result_type(float)

    def chain(key, args):
        k_init, k_run = jax.random.split(key)
        state = kernel.init(k_init, args)
        init_ok = jnp.isfinite(state.log_density)

        def draw(carry, k):
            state, t = carry
            steps = jnp.where(t == 0, warm + thin, thin)

            def body(i, c):
                state, t, total = c
                rate = jnp.where(t < warm, (t + 1.0) ** -0.6, 0.0).astype(ftype)
                state, prob = kernel.step(jax.random.fold_in(k, i), state, args, rate)
                return state, t + 1, total + jnp.where(t >= warm, prob, 0.0)

            state, t, total = jax.lax.fori_loop(0, steps, body, (state, t, jnp.zeros((), ftype)))
            return (state, t), (state.record, total / thin, state.log_density)

        _, (records, prob, logp) = jax.lax.scan(draw, (state, jnp.zeros((), jnp.int32)), jax.random.split(k_run, n))
        return records, prob, logp, init_ok

    return jax.jit(jax.vmap(chain, in_axes=(0, None)))


def chains_result(method_name: str, fn, key, num_chains: int, args, latent=None) -> Result:
    """Run compiled chains and package their draws (see :func:`compile_chains`), then run the
    checks every MCMC method runs (``checks.check_result``) on the ``latent`` sites (default: all)."""
    (choices, retval), prob, logp, init_ok = fn(jax.random.split(key, int(num_chains)), list(args))
    if not bool(np.all(np.asarray(init_ok))):
        raise ModelError(f"{method_name} found no starting point with nonzero probability in {INIT_TRIES} draws "
                         "from the prior", hint="Check that the observations are possible under the model.")
    logp = np.asarray(logp, dtype=np.float64)
    if np.any(np.isnan(logp)):
        raise ModelError(f"the model's log density became NaN during {method_name}",
                         hint="Check the model's parameters for values outside their domains.")
    result = Result(
        samples={a: np.asarray(v) for a, v in choices.items()},
        returns=jax.tree.map(np.asarray, retval),
        method=method_name,
        engine="compiled",
        chains=True,
        sample_stats={"accept_prob": np.asarray(prob, dtype=np.float64), "log_density": logp},
    )
    checks.check_result(result, sites=latent,
                        min_acceptance=checks.MIN_ACCEPTANCE if method_name == "MH" else None)
    return result


def _run_compiled(method: MH, program: ir.Program, args, key) -> Result:
    cache_key = ("mh", method.num_samples, method.num_warmup, method.selection, method.proposal, method.thin,
                 method.order)
    fn = cached(program, cache_key, lambda: compile_chains(_Compiled(method, program, args), method.num_samples,
                                                           method.num_warmup, method.thin))
    return checked_start(program, args, key, lambda: chains_result("MH", fn, key, method.num_chains, args,
                                                                   latent=list(program.latent_sites())))


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


# ---------------------------------------------------------------------------
# Eager: the traced representation of a dynamic program


@jax.jit
def _fast_log_density(dist, value):
    ld = jnp.sum(jnp.asarray(dist.log_density(value), jnp.result_type(float)))
    return ld, C.params_ok(dist)


@jax.jit
def _fast_draw(dist, key, move, count):
    x = dist.sample(jax.random.fold_in(jax.random.fold_in(key, move), count))
    ld = jnp.sum(jnp.asarray(dist.log_density(x), jnp.result_type(float)))
    return x, ld, C.params_ok(dist)


class _Replay(effects.Handler):
    """Runs a dynamic model reusing the values of ``old`` at addresses not in ``redraw``;
    others (redrawn or new) are drawn from the prior. Records per-address log densities.

    With ``checked`` the sites are scored by the reference semantics (parameter checks and
    support errors raised as user errors, as at a chain's start); otherwise by one compiled
    call per site, a parameter outside its domain giving weight zero (the move is rejected).
    """

    def __init__(self, key, move: int, old: dict, redraw, checked: bool = False):
        super().__init__()
        self.key = key
        self.move = move
        self.count = 0
        self.old = old
        self.redraw = redraw
        self.checked = checked
        self.values: dict = {}
        self.log_densities: dict = {}
        self.kept: set = set()
        self.records: dict = {}
        self.scores = 0.0

    def site(self, site):
        if site.kind == "sample":
            a = site.address
            if a in self.old and not self.redraw(a):
                x = jnp.asarray(self.old[a])
                self.kept.add(a)
                if self.checked:
                    lp = sample_log_density(site, x)
                else:
                    ld, ok = _fast_log_density(site.dist, x)
                    lp = float(ld) if bool(ok) else -math.inf
            else:
                self.count += 1
                x, ld, ok = _fast_draw(site.dist, self.key, self.move, self.count)
                lp = sample_log_density(site, x) if self.checked else (float(ld) if bool(ok) else -math.inf)
            self.values[a] = x
            self.log_densities[a] = lp
            return x
        if site.kind == "deterministic":
            self.records[site.address] = site.value
            return site.value
        if self.checked or site.kind == "factor":
            self.scores += site_score(site)
        else:
            ld, ok = _fast_log_density(site.dist, site.value)
            self.scores += float(ld) if bool(ok) else -math.inf
        return None


class _Traced(NamedTuple):
    values: dict
    log_densities: dict
    scores: float
    retval: Any
    records: dict

    @property
    def log_joint(self) -> float:
        return sum(self.log_densities.values()) + self.scores


def _replay(program: Dynamic, key, move: int, old: dict, redraw, checked=False) -> tuple[_Traced, set]:
    h = _Replay(key, move, old, redraw, checked)
    try:
        with h:
            value = program.call()
    except PPLError as err:
        raise annotate(err) from None
    return _Traced(h.values, h.log_densities, h.scores, value, h.records), h.kept


def _accept(rng, log_alpha: float) -> tuple[bool, float]:
    if math.isnan(log_alpha):
        return False, 0.0
    prob = 1.0 if log_alpha >= 0 else math.exp(log_alpha)
    return bool(rng.random() < prob), prob


def _eager_move(method: MH, program: Dynamic, key, move: int, rng, cur: _Traced):
    """One MH move on a trace; returns (trace, acceptance probability)."""
    if method.proposal is not None:
        return _eager_proposal_move(method, program, jax.random.fold_in(key, move), rng, cur)
    if method.selection is not None:
        sel = method.selection

        def redraw(a):
            return any(a == s or a.startswith(s + "/") or a.startswith(s + "[") for s in sel)

    else:
        names = list(cur.values)
        if not names:
            return cur, 1.0
        chosen = names[int(rng.integers(len(names)))]

        def redraw(a):
            return a == chosen

    new, kept = _replay(program, key, move, cur.values, redraw)
    w_new = sum(new.log_densities[a] for a in kept) + new.scores
    w_old = sum(cur.log_densities[a] for a in kept) + cur.scores
    log_alpha = w_new - w_old
    if method.selection is None:
        log_alpha += math.log(len(cur.values)) - math.log(len(new.values))
    ok, prob = _accept(rng, log_alpha)
    return (new if ok else cur), prob


def _eager_proposal_move(method: MH, program: Dynamic, key, rng, cur: _Traced):
    prop = method.proposal
    k_prop, k_model = jax.random.split(key)
    q = prop.simulate(k_prop, dict(cur.values), *program.args, **program.kwargs)
    proposed = dict(q.choices)
    unknown = [a for a in proposed if a not in cur.values]
    if unknown:
        raise AddressError(f"the MH proposal makes the random choice '{unknown[0]}', but the current trace has "
                           f"no such address; it has {sorted(cur.values)}",
                           hint="A proposal may only propose values for addresses of the current trace.")
    new, kept = _replay(program, k_model, 0, {**cur.values, **proposed}, lambda a: False)
    lost = [a for a in proposed if a not in new.values]
    if lost:
        raise AddressError(f"the MH proposal set '{lost[0]}', but the model does not reach that address with "
                           "the proposed values", hint="Propose only addresses that exist after the move.")
    # kept: addresses of the new trace taken from the current or proposed values; the rest are fresh.
    # The current trace's addresses missing from the new one are stale (the reverse move draws them).
    w_new = sum(new.log_densities[a] for a in kept) + new.scores
    w_old = sum(lp for a, lp in cur.log_densities.items() if a in new.values) + cur.scores
    back = {a: cur.values[a] for a in proposed}
    log_q_back = float(prop.log_density(back, dict(new.values), *program.args, **program.kwargs))
    log_q_fwd = float(q.log_prior + q.log_likelihood)
    log_alpha = w_new - w_old + log_q_back - log_q_fwd
    ok, prob = _accept(rng, log_alpha)
    return (new if ok else cur), prob


def _eager_init(program: Dynamic, key) -> _Traced:
    for k in jax.random.split(key, INIT_TRIES):
        tr, _ = _replay(program, k, 0, {}, lambda a: True, checked=True)
        if math.isfinite(tr.log_joint):
            return tr
    raise ModelError(f"MH found no starting point with nonzero probability in {INIT_TRIES} draws from the prior",
                     hint="Check that the observations are possible under the model.")


def _run_eager(method: MH, program: Dynamic, key) -> Result:
    if method.proposal is not None and not hasattr(method.proposal, "simulate"):
        raise ModelError("MH(proposal=...) must be a model with simulate and log_density")
    n, warm, thin = int(method.num_samples), int(method.num_warmup), int(method.thin)
    traces, returns, probs, logps = [], [], [], []
    sampled: set = set()  # the random choices (not the deterministic records) of the kept draws
    for chain_key in jax.random.split(key, int(method.num_chains)):
        k_init, k_run = jax.random.split(chain_key)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(k_run)).ravel().tolist())
        cur = _eager_init(program, k_init)
        moves = 1 if (method.selection is not None or method.proposal is not None) else max(1, len(cur.values))
        chain_traces, chain_returns, chain_probs, chain_logps = [], [], [], []
        count = 0
        for it in range(warm + n * thin):
            total = 0.0
            for _ in range(moves):
                count += 1
                cur, p = _eager_move(method, program, k_run, count, rng, cur)
                total += p
            if it >= warm and (it - warm + 1) % thin == 0:
                chain_traces.append({**cur.values, **cur.records})
                sampled.update(cur.values)
                chain_returns.append(cur.retval)
                chain_probs.append(total / moves)
                chain_logps.append(cur.log_joint)
        traces += chain_traces
        returns.append(chain_returns)
        probs.append(chain_probs)
        logps.append(chain_logps)
    chains = int(method.num_chains)
    flat = stack_draws(traces)
    samples = {a: v.reshape((chains, n) + v.shape[1:]) for a, v in flat.items()}
    result = Result(
        samples=samples,
        returns=_stack_returns(returns),
        method="MH",
        engine="eager",
        chains=True,
        sample_stats={"accept_prob": np.asarray(probs, dtype=np.float64),
                      "log_density": np.asarray(logps, dtype=np.float64)},
    )
    checks.check_result(result, min_acceptance=checks.MIN_ACCEPTANCE, sites=sorted(sampled))
    return result


def _stack_returns(returns):
    try:
        arr = np.asarray([[np.asarray(r) for r in chain] for chain in returns])
        if arr.dtype != object:
            return arr
    except (ValueError, TypeError):
        pass
    return returns

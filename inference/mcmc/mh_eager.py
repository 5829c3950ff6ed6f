"""MH on dynamic programs, in the eager engine: the traced representation of a program.

Each move re-runs the model with a handler (``_Replay``) that replays the kept
addresses and draws the others from the prior (fresh addresses), scoring
stale ones in the reverse move (see ``mh`` for the ratio).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference._common import annotate, stack_draws
from ppl.inference.mcmc import checks
from ppl.inference.result import Result
from ppl.semantics import compile as C
from ppl.semantics import effects
from ppl.semantics.interpret.free import sample_log_density, site_score
from ppl.semantics.program import Dynamic
from ppl.stdlib.distributions.subsample import SubsampleIndices
from ppl.stdlib.errors import AddressError, ModelError, PPLError

__all__ = ["run_eager"]

INIT_TRIES = 64

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
            if isinstance(site.dist, SubsampleIndices):  # its rows would be a latent site, as in _run_compiled
                raise effects.subsampling_refused(site.address, site.span, "MH")
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


def _eager_move(method, program: Dynamic, key, move: int, rng, cur: _Traced):
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


def _eager_proposal_move(method, program: Dynamic, key, rng, cur: _Traced):
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


def run_eager(method, program: Dynamic, key) -> Result:
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

"""Gibbs sampling for discrete sites, with Metropolis-within-Gibbs for the others.

One iteration visits every latent site in program order and replaces its
value by a draw from a kernel that leaves ``p(site | rest)`` invariant:

- a discrete site with a finite support: its **full conditional**, computed
  exactly by enumerating its values. Only the terms that read the site are
  evaluated — the site's own term and its children's (``graph.factors_of``
  from ``semantics.graph``); the rest of the joint is constant in it (and is
  dead code under ``jit``).
- a continuous site: a **Gaussian random walk** in unconstrained space
  (``u' = u + s eps``, the log-Jacobian of the site's bijector included),
  accepted by Metropolis. The scale ``s`` of each site is adapted during
  warm-up towards acceptance 0.44 (one coordinate) or 0.3 (a block), then
  fixed.
- a discrete site with infinite support (Poisson, Geometric): a symmetric
  random walk of +-1, accepted by Metropolis (values outside the support
  have density zero and are rejected).

Elements of a site are updated *in parallel* along the axes where they are
conditionally independent given the rest: the site's plates, and the steps
of a loop that does not carry the site — provided every term that reads the
site keeps that axis. A mixture's assignments ``z[n]`` thus cost ``O(N K)``
per sweep. Other elements are updated one at a time (discrete sites) or as
one block (random walks); a hidden Markov chain's states are updated one
step at a time, each conditional evaluated on the whole chain.

Discrete sites inside ``If`` branches are supported: while a branch does not
run, its sites follow a uniform reference distribution over their support
(the target's marginal over the present sites is the posterior); the draws
record NaN there, as every method does for a site its run did not make.
Continuous sites inside branches are not (use MH). Dynamic models are not
supported (use MH, which runs them eagerly).

Static programs only. A sweep is one transition of a kernel (the contract of
``kernel``): ``GibbsFamily(log_scale) -> GibbsKernel`` with ``init(choices)`` and
``step(key, state)``; the random walks' log-scales are the family's parameters,
tuned during warm-up by ``warmup.Scales`` (``_Kernel.adaptation``). The chains
run in the one MCMC driver (``trace_chains``): all chains ``vmap``-ed, one
``jit``. ``sample_stats["accept_prob"]`` is the mean acceptance of the
Metropolis updates of an iteration (1 when every site is Gibbs-updated).

Law (every update preserves the posterior): checked in
``tests/test_gibbs.py`` against exact enumeration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.marginalize import (
    SiteAxes,
    element_log_densities,
    site_axes,
    site_layout,
    site_supports,
)
from ppl.inference.marginalize.independence import crossed_labels
from ppl.inference.mcmc import trace_chains, warmup
from ppl.inference.result import Result
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics.cache import cached
from ppl.semantics.graph import dependency_graph
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import ModelError

__all__ = ["Gibbs", "GibbsState", "GibbsInfo", "GibbsKernel", "GibbsFamily"]

SEQUENTIAL_LIMIT = 1 << 14  # most elements of one site updated one at a time


class GibbsState(NamedTuple):
    choices: dict
    log_density: Any
    record: Any  # every site's value (deterministic ones included) and the return value
    present: dict  # for sites inside branches: whether their branch ran (absent draws read NaN)

    @property
    def position(self) -> dict:
        return self.choices


class GibbsInfo(NamedTuple):
    """What one sweep did: the mean acceptance of its Metropolis updates (1 when every site is
    Gibbs-updated), and each random walk's acceptance (what ``warmup.Scales`` adapts on)."""

    accept_prob: Any
    scale_accept: dict


@dataclass(frozen=True, kw_only=True)
class Gibbs:
    """Gibbs sampling over discrete sites, Metropolis-within-Gibbs elsewhere (see the module docstring)."""

    num_samples: int = 1000
    num_warmup: int = 500
    num_chains: int = 4
    thin: int = 1

    name = "Gibbs"

    def run(self, program, args, key) -> Result:
        for field in ("num_samples", "num_chains", "thin"):
            if int(getattr(self, field)) < 1:
                raise ModelError(f"Gibbs needs {field} >= 1, not {getattr(self, field)}")
        if int(self.num_warmup) < 0:
            raise ModelError(f"Gibbs needs num_warmup >= 0, not {self.num_warmup}")
        if isinstance(program, Dynamic):
            raise ModelError(
                f"Gibbs needs a static model, and {program.describe()}",
                span=program.span,
                hint="Use ppl.MH(), which runs dynamic models in the eager engine.")
        return _run(self, program, args, key)


# ---------------------------------------------------------------------------
# Per-site update plans


@dataclass(frozen=True)
class _Update:
    address: str
    kind: str  # "gibbs" | "walk" | "step"
    axes: SiteAxes
    parallel: tuple  # labels updated in parallel
    parallel_axes: tuple  # their value axes
    sequential_axes: tuple  # every other value axis
    terms: tuple  # sites whose terms read this one
    values: Any = None  # the support (gibbs)
    target: float = 0.44  # acceptance aimed at in warm-up (walks)

    @property
    def sequential_size(self) -> int:
        return int(np.prod([self.axes.shape[i] for i in self.sequential_axes], dtype=np.int64))

    def to_blocks(self, x):
        """(parallel dims..., sequential elements) from a full value."""
        perm = list(self.parallel_axes) + list(self.sequential_axes)
        y = jnp.transpose(x, perm)
        p = tuple(self.axes.shape[i] for i in self.parallel_axes)
        return y.reshape(p + (-1,))

    def from_blocks(self, y):
        perm = list(self.parallel_axes) + list(self.sequential_axes)
        shape = tuple(self.axes.shape[i] for i in perm)
        return jnp.transpose(y.reshape(shape), np.argsort(perm))

    def expand_parallel(self, p):
        """Broadcast a parallel-shaped array onto the full value shape."""
        shape = [1] * len(self.axes.shape)
        for i, ax in enumerate(self.parallel_axes):
            shape[ax] = self.axes.shape[ax]
        return jnp.broadcast_to(jnp.reshape(p, shape), self.axes.shape)


class _Kernel:
    def __init__(self, program: ir.Program, args):
        self.program = program
        self.latent = program.latent_sites()
        if not self.latent:
            raise ModelError("Gibbs needs at least one latent random choice; this model has none",
                             hint="Use Enumerate or Importance to evaluate a model with no latent sites.")
        self.graph = dependency_graph(program)
        self.layout = site_layout(program, args)
        supports = site_supports(program, args, raise_errors=False)
        self.branch_discrete = {}
        for a, node in self.graph.nodes.items():
            if node.kind == "sample" and node.in_branch:
                if not self.latent[a].is_discrete:
                    raise ModelError(
                        f"the continuous random choice '{a}' is inside a branch on a random value; Gibbs "
                        "does not handle that", span=self.latent[a].span, hint="Use ppl.MH() for this model.")
                if a not in supports:
                    raise ModelError(
                        f"the discrete random choice '{a}' is inside a branch on a random value and has "
                        "infinitely many values; Gibbs does not handle that", span=self.latent[a].span,
                        hint="Use ppl.MH() for this model.")
                per_step = int(np.prod(self.latent[a].shape, dtype=np.int64))
                self.branch_discrete[a] = -per_step * math.log(len(supports[a]))
        self.updates = [self._plan(a, supports.get(a), args) for a in self.latent]

    def _plan(self, a, support, args) -> _Update:
        info = self.latent[a]
        axes = site_axes(self.program, self.layout, a)
        terms = tuple(sorted(self.graph.factors_of(a)))
        labels = self.layout.labels
        carried = self.graph.is_carried(a)
        node = self.graph.nodes[a]
        parallel = []
        for lab in axes.labels:
            if lab in node.loops and carried:
                continue
            if all(lab in labels.get(t, ()) for t in terms):
                parallel.append(lab)
        if parallel:  # a plate whose terms read other elements of the site: its elements one at a time
            crossed = crossed_labels(self.program, args, a, terms, support)
            parallel = [lab for lab in parallel if lab not in crossed]
        parallel_axes = tuple(ax for lab, ax in zip(axes.labels, axes.label_axes) if lab in parallel)
        sequential = tuple(i for i in range(len(axes.shape)) if i not in parallel_axes)
        if info.is_discrete and support is not None:
            update = _Update(a, "gibbs", axes, tuple(parallel), parallel_axes, sequential, terms,
                             jnp.asarray(support, info.dtype))
            if update.sequential_size > SEQUENTIAL_LIMIT:
                raise ModelError(f"the discrete random choice '{a}' has {update.sequential_size} elements that "
                                 "are not independent along a plate; Gibbs updates them one at a time, which is "
                                 "too slow here", span=info.span, hint="Put independent elements in a ppl.plate.")
            return update
        kind = "step" if info.is_discrete else "walk"
        update = _Update(a, kind, axes, tuple(parallel), parallel_axes, sequential, terms)
        block = update.sequential_size
        return _Update(a, kind, axes, tuple(parallel), parallel_axes, sequential, terms,
                       target=0.44 if block == 1 else 0.3)

    # -- conditionals ----------------------------------------------------------------
    def _local(self, update: _Update, choices, args, mode=None, key=None):
        """Sum of the terms that read the site, per parallel element."""
        terms, trace = element_log_densities(self.program, choices, args, mode, key)
        total = jnp.zeros(tuple(update.axes.shape[i] for i in update.parallel_axes), jnp.result_type(float))
        for t in update.terms:
            if t not in terms:
                continue
            term = terms[t]
            if t in self.branch_discrete:
                term = jnp.where(trace.present[t], term, self.branch_discrete[t])
            total = total + _to_parallel(term, self.layout.labels.get(t, ()), update.parallel)
        return total, trace

    def gibbs(self, update: _Update, key, choices, args):
        x0 = choices[update.address]
        values = update.values

        def element(m, carry):
            x, key = carry
            key, sub = jax.random.split(key)

            def logit(v):
                blocks = update.to_blocks(x)
                cand = update.from_blocks(blocks.at[..., m].set(v))
                total, _ = self._local(update, {**choices, update.address: cand}, args)
                return total

            logits = jax.vmap(logit)(values)  # (K, parallel dims...)
            logits = jnp.where(jnp.isnan(logits), -jnp.inf, logits)
            pick = jax.random.categorical(sub, logits, axis=0)
            blocks = update.to_blocks(x)
            x = update.from_blocks(blocks.at[..., m].set(values[pick]))
            return x, key

        n = update.sequential_size
        if n == 1:
            x, _ = element(0, (x0, key))
        else:
            x, _ = jax.lax.fori_loop(0, n, element, (x0, key))
        return x, None

    def walk(self, update: _Update, key, choices, log_scale, args):
        a = update.address
        x = choices[a]
        k_step, k_accept = jax.random.split(key)
        if update.kind == "walk":
            cur, _ = self._local(update, choices, args, _Shifted(a, 0.0))
            new, trace = self._local(update, choices, args, _Shifted(a, jnp.exp(log_scale)), key=k_step)
            proposal = trace.choices[a]
        else:
            step = jnp.where(jax.random.bernoulli(k_step, 0.5, x.shape), 1, -1).astype(x.dtype)
            proposal = x + step
            cur, _ = self._local(update, choices, args)
            new, _ = self._local(update, {**choices, a: proposal}, args)
        log_alpha = new - cur
        log_alpha = jnp.where(jnp.isnan(log_alpha), -jnp.inf, log_alpha)
        prob = jnp.minimum(1.0, jnp.exp(log_alpha))
        accept = jax.random.uniform(k_accept, prob.shape) < prob
        out = jnp.where(update.expand_parallel(accept), proposal, x)
        return out, jnp.mean(prob)

    # -- an iteration -----------------------------------------------------------------------
    def sweep(self, key, state: GibbsState, args, log_scale: dict) -> tuple[GibbsState, GibbsInfo]:
        """One sweep over the sites, the random walks at scales ``exp(log_scale)``."""
        choices = dict(state.choices)
        probs, walks = [], {}
        for update, k in zip(self.updates, jax.random.split(key, len(self.updates))):
            if update.kind == "gibbs":
                choices[update.address], _ = self.gibbs(update, k, choices, args)
            else:
                scale = log_scale.get(update.address, jnp.zeros(()))
                choices[update.address], p = self.walk(update, k, choices, scale, args)
                probs.append(p)
                if update.kind == "walk":
                    walks[update.address] = p
        prob = jnp.mean(jnp.stack(probs)) if probs else jnp.ones((), jnp.result_type(float))
        return self.state_at(choices, args), GibbsInfo(prob, walks)

    def state_at(self, choices: dict, args) -> GibbsState:
        trace = C.run(self.program, C.Given(), args, inputs=choices)
        return GibbsState(dict(choices), trace.log_joint, (trace.choices, trace.retval), dict(trace.present))

    def family(self, args) -> "GibbsFamily":
        return GibbsFamily(self, list(args))

    def adaptation(self) -> warmup.Scales:
        """Robbins–Monro on each random walk's log-scale, towards its target acceptance."""
        targets = tuple((u.address, u.target) for u in self.updates if u.kind == "walk")
        return warmup.Scales(targets, np.dtype(jnp.result_type(float)))


class GibbsKernel(NamedTuple):
    """One Gibbs sweep at fixed random-walk scales (the contract of ``kernel``); positions are
    dicts of the latent sites' values."""

    sweeps: _Kernel
    args: list
    log_scale: dict

    def init(self, position: dict) -> GibbsState:
        return self.sweeps.state_at(position, self.args)

    def step(self, key, state: GibbsState) -> tuple[GibbsState, GibbsInfo]:
        return self.sweeps.sweep(key, state, self.args, self.log_scale)


class GibbsFamily(NamedTuple):
    """``family(log_scale) -> GibbsKernel``: the random walks' log-scales are the tuned parameters."""

    sweeps: _Kernel
    args: list

    def __call__(self, log_scale: dict) -> GibbsKernel:
        return GibbsKernel(self.sweeps, self.args, log_scale)


def _to_parallel(term, labels, parallel):
    """Sum a term over its labels other than ``parallel``, and order its axes as ``parallel``."""
    drop = tuple(i for i, lab in enumerate(labels) if lab not in parallel)
    if drop:
        term = jnp.sum(term, axis=drop)
    kept = [lab for lab in labels if lab in parallel]
    order = [lab for lab in parallel if lab in kept]
    term = jnp.transpose(term, [kept.index(lab) for lab in order])
    return jnp.reshape(term, [term.shape[order.index(lab)] if lab in order else 1 for lab in parallel])


class _Shifted(C.Mode):
    """The site ``address`` moved by a Gaussian step of size ``scale`` in its unconstrained space
    (log-Jacobian included; no step without a key); every other site takes its given value."""

    def __init__(self, address, scale):
        self.address = address
        self.scale = scale

    def sample(self, stmt, dist, inputs, key):
        value = jnp.asarray(inputs[stmt.address], dtype=stmt.out.dtype)
        if stmt.address != self.address:
            return value, dist.log_density(value), True
        from ppl.stdlib.bijectors import biject_to

        bij = biject_to(dist.support)
        u = bij.inverse(value)
        if key is not None:
            noise = jax.random.normal(jax.random.fold_in(key, C.address_hash(stmt.address)), jnp.shape(u), u.dtype)
            u = u + self.scale * noise
        x = bij.forward(u)
        return x, dist.log_density(x) + bij.log_det_jacobian(u), True


# ---------------------------------------------------------------------------
# Running chains

def _run(method: Gibbs, program: ir.Program, args, key) -> Result:
    from ppl.inference.marginalize import refuse_subsampling

    refuse_subsampling(program, "Gibbs")  # its rows would be a latent site: p(theta, rows | y) is not the posterior
    sweeps = cached(program, "gibbs-analysis", lambda: _Kernel(program, args))  # its adaptation keys the program
    return trace_chains.run("Gibbs", ("gibbs",), lambda: sweeps, sweeps.adaptation(), program, args, key,
                            num_chains=method.num_chains, num_warmup=method.num_warmup,
                            num_samples=method.num_samples, thin=method.thin)

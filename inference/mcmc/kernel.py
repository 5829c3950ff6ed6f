"""The kernel contract: what every MCMC transition in ppl is, and the laws it keeps.

A **kernel** is an object with two pure functions (BlackJAX's contract)::

    init(position) -> State
    step(key, state) -> (State, Info)

``position`` is a point of the target (a pytree: a flat vector, a dict of
sites, a trace's choices); ``State`` is a pytree that holds the position and
whatever the kernel keeps beside it (log density, gradient, ...); ``Info`` is
a pytree describing the transition. Kernels are built inside a compiled
program and vectorised over chains with ``vmap``, so both functions must be
jittable and free of Python side effects.

Kernels whose step depends on tuned parameters come as a **family**,
``family(params) -> Kernel`` (as ``blackjax.nuts(logdensity, step_size,
inverse_mass_matrix)``): HMC and NUTS take ``hmc.Params(step_size, metric)``,
Gibbs takes the log-scales of its random walks, MH takes ``None``. Warm-up is
a separate **adaptation** object (``warmup``) that the driver asks for
``params`` before each transition and feeds each transition's ``(State,
Info)`` after it; the kernel itself never adapts.

Optional fast path: a family may also offer ``stepwise() -> Stepwise``, its
transition as a state machine over single integration steps (see
``hmc.Stepwise``: ``start``, ``advance``, ``is_done``, ``finish``), and
``value_and_grad``, the flat log density and its gradient that ``advance``
integrates. The driver (``driver``) then advances every chain one step at a
time (``stepwise_driver``), so vectorised chains never wait for the longest
trajectory among them. A family without it runs one whole transition per
loop iteration. Both give every chain the same Markov chain.

Laws (checked for every kernel by ``tests/test_kernel_contract.py``):

1. *Invariance*: for fixed ``params``, if ``state.position`` is distributed
   as the target then so is ``step(key, state)[0].position``, for a key
   independent of the state.
2. *Determinism*: ``init`` draws nothing; ``step`` draws only from ``key``,
   so the same key and state give the same result.
3. *Info*: carries ``accept_prob`` in [0, 1] (the Metropolis acceptance
   probability, or the mean of it over the transition's proposals; 1 for an
   exact conditional draw). It may carry ``diverging``, ``num_steps``,
   ``tree_depth``, ``energy`` and ``nonfinite``, which the driver records and
   the post-run checks (``checks``) read.
4. *State*: ``init(state.position)`` equals ``state`` up to the kernel's own
   scratch values (it is the state of the point, not of the history).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax

__all__ = [
    "Kernel",
    "Family",
    "Adaptation",
    "STAT_FIELDS",
    "standard_stats",
    "accept_prob",
    "run",
]

Array = Any


@runtime_checkable
class Kernel(Protocol):
    """A Markov transition kernel: ``init(position) -> State``, ``step(key, state) -> (State, Info)``."""

    def init(self, position: Any) -> Any: ...

    def step(self, key: Array, state: Any) -> tuple[Any, Any]: ...


class Family(Protocol):
    """Kernels indexed by tuned parameters: ``family(params) -> Kernel``.

    May offer the fast path: ``stepwise() -> hmc.Stepwise`` and ``value_and_grad``.
    """

    def __call__(self, params: Any) -> Kernel: ...


class Adaptation(Protocol):
    """Warm-up over all chains at once; every array has a leading chain axis.

    ``init(key, states) -> A``; ``params(A)``: what ``family`` takes, per chain;
    ``update(A, t, active, states, infos) -> A``: after transition ``t`` (per chain) of
    the chains where ``active``; ``stats(A)``: values recorded with each draw
    (e.g. ``step_size``); ``summary(A)``: what the run reports about its warm-up.
    """

    def init(self, key: Array, states: Any) -> Any: ...

    def params(self, adapt: Any) -> Any: ...

    def update(self, adapt: Any, t: Array, active: Array, states: Any, infos: Any) -> Any: ...

    def stats(self, adapt: Any) -> dict: ...

    def summary(self, adapt: Any) -> dict: ...


# Names of per-transition statistics, and the names kernels (ours, BlackJAX's) give them.
STAT_FIELDS = {
    "diverging": ("diverging", "is_divergent"),
    "accept_prob": ("accept_prob", "acceptance_rate"),
    "num_steps": ("num_steps", "num_integration_steps"),
    "tree_depth": ("tree_depth", "num_trajectory_expansions"),
    "energy": ("energy",),
    "nonfinite": ("nonfinite",),
}


def standard_stats(info: Any) -> dict:
    """The statistics an ``Info`` carries, under ppl's names (BlackJAX's aliases understood)."""
    stats = {}
    for name, aliases in STAT_FIELDS.items():
        for alias in aliases:
            if hasattr(info, alias):
                stats[name] = getattr(info, alias)
                break
    return stats


def accept_prob(info: Any) -> Array:
    """The acceptance probability of a transition (law 3)."""
    stats = standard_stats(info)
    if "accept_prob" not in stats:
        raise TypeError(f"a kernel's Info must carry accept_prob; {type(info).__name__} does not")
    return stats["accept_prob"]


def run(kernel: Kernel, key: Array, position: Any, num_steps: int) -> tuple[Any, Any]:
    """``num_steps`` transitions of ``kernel`` from ``position``, keys ``split(key, num_steps)``:
    ``(final state, infos stacked over steps)``. The plainest driver of the contract."""

    def body(state, k):
        return kernel.step(k, state)

    return jax.lax.scan(body, kernel.init(position), jax.random.split(key, num_steps))


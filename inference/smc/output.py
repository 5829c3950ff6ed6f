"""What one run of the compiled filter computes, and how it reaches the host.

Trajectories: each step emits the particles' choices and the ancestor indices
of its resampling; the final particles' paths are read backwards through the
ancestors afterwards (``O(N T)``, instead of copying ``N x T`` paths at every
resampling). With rejuvenation the paths are part of the particle state, since
the kernel's density reads them.

Transfer: each output array costs one, so a run's outputs leave the device as
few arrays as can be (``pack``; ``unpack`` reads them back on the host). Where
nothing after the loop uses the paths, the backtrack can wait until the samples
are first read (``deferred``): the loop's records stay on the device with the
ancestor indices.

>>> import jax.numpy as jnp
>>> anc = jnp.array([[0, 0], [1, 1]])  # step 0: both from 0; step 1: both from 1
>>> backtrack(anc, {}, [jnp.array([[10, 11], [20, 21]])], False, 2)[1][0].tolist()
[[10, 10], [21, 21]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference import sharding

__all__ = ["Output", "take", "backtrack", "pack", "unpack", "returns_of", "deferred"]


class Output(NamedTuple):
    """What one run computes (NumPy arrays from ``Filter.__call__``, traced ones inside ``Filter.at``;
    see ``Filter`` for the particle axes)."""

    log_weights: Any  # (N,) final weights
    log_evidence: Any  # ()
    samples: dict  # address -> array; its particle axis is Filter.sample_axes[address]
    returns: list  # flat return values; particle axes in Filter.return_axes (None: shared)
    ess: Any  # (T,) ESS after each step's weighting
    resampled: Any  # (T,) whether the population was resampled after the step
    ess_init: Any  # () ESS after the statements before the loop
    resampled_init: Any
    moved: Any  # (T,) fraction of particles the rejuvenation kernel moved (0 where none ran)
    valid: Any  # every distribution's parameters were inside their domains, in every particle
    # ``Filter.__call__`` when the paths are read on demand (``Filter.defers_paths``): ``samples`` and
    # ``returns`` are None and ``paths()`` gives them (the backtrack runs then); None otherwise.
    # Inside ``_run`` with ``defer``: the ancestor indices ``(T, N)``, the loop's records not read back.
    paths: Any = None


def take(idx):
    """``a[idx]`` along the particle axis, for ancestor indices: in range and non-decreasing.

    Every scheme draws its ancestors in increasing order (``semantics.resampling``), an island's
    within its own block, and a composition of such maps (the backtrack) is again one; saying so
    spares the gather its bounds handling (about a third of its time on CPU).
    """
    return lambda a: a.at[idx].get(mode="promise_in_bounds", indices_are_sorted=True)


def backtrack(anc, choices, ys, reverse, n):
    """The final particles' paths: ``idx <- anc_t[idx]; x_t = choices_t[idx]``, last step first."""

    def back(idx, inp):
        anc_t, ch_t, ys_t = inp
        idx = take(idx)(anc_t)
        gather = take(idx)
        return idx, (jax.tree.map(gather, ch_t), [gather(y) for y in ys_t])

    _, (choices, ys) = jax.lax.scan(back, jnp.arange(n, dtype=jnp.int32), (anc, choices, ys),
                                    reverse=not reverse)
    return choices, ys


def pack(out: Output, with_moved: bool):
    """``out`` as few arrays as can be: ``((head, samples, own returns, paths), aliases, columns)``.

    The final log weights, the scalars and the per-step statistics (a ``(T, columns)`` array,
    flattened) go in one vector, ``head``; a return value that is one of the samples (a loop's
    ``return x, x``) is not sent twice: its alias is the sample's index (None for the others).
    """
    values = list(out.samples.values())
    aliases = [next((i for i, v in enumerate(values) if v is r), None) for r in out.returns]
    own = [r for r, a in zip(out.returns, aliases) if a is None]
    dtype = out.log_weights.dtype
    scalars = jnp.stack([jnp.asarray(v, dtype) for v in
                         (out.log_evidence, out.valid, out.ess_init, out.resampled_init)])
    stats = [out.ess, out.resampled] + ([out.moved] if with_moved else [])
    per_step = jnp.stack([jnp.asarray(v, dtype) for v in stats], axis=-1)
    head = jnp.concatenate([out.log_weights, scalars, per_step.reshape(-1)])
    return (head, out.samples, own, out.paths), aliases, len(stats)


def returns_of(samples: dict, own, aliases) -> list:
    """The return values in order: a sample where the alias says so, else the next of ``own``."""
    values, it = list(samples.values()), iter(own)
    return [next(it) if a is None else values[a] for a in aliases]


def unpack(head, n: int, columns: int, samples, returns, paths=None) -> Output:
    """The ``Output`` of the fetched vector of weights, scalars and per-step statistics."""
    log_w, scalars = head[:n], head[n:n + 4]
    per_step = head[n + 4:].reshape(-1, columns)
    moved = per_step[:, 2] if per_step.shape[1] > 2 else np.zeros(per_step.shape[0], per_step.dtype)
    return Output(log_w, scalars[0], samples, returns, per_step[:, 0], per_step[:, 1] != 0, scalars[2],
                  scalars[3] != 0, moved, bool(scalars[1]), paths)


def deferred(head, samples, own, read: Callable, aliases, sample_axes, return_axes, to_output) -> Output:
    """The run's numbers fetched now; the loop's records stay on the device, and ``Output.paths()``
    reads them back when the samples are wanted: ``read(records)`` backtracks them (on the device).

    ``to_output(head, samples, returns, paths)`` builds the ``Output`` (``unpack`` with the layout).
    """
    own_returns = [j for j, a in enumerate(aliases) if a is None]
    loop_sites = [a for a in samples if sample_axes[a] == 1]
    loop_own = [i for i, j in enumerate(own_returns) if return_axes[j] == 1]
    records = [samples[a] for a in loop_sites] + [own[i] for i in loop_own]
    head, kept, kept_own = jax.device_get(sharding.fetch(
        (head, {a: v for a, v in samples.items() if a not in loop_sites},
         [v for i, v in enumerate(own) if i not in loop_own])))

    def paths():
        it = iter(jax.device_get(sharding.fetch(read(records))))
        full = {a: next(it) if a in loop_sites else kept[a] for a in samples}
        mine = iter(kept_own)
        own_full = [next(it) if i in loop_own else next(mine) for i in range(len(own))]
        return full, returns_of(full, own_full, aliases)

    return to_output(head, None, None, paths)

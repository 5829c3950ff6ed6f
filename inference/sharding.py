"""Where a run's work lies: chains, particles, samples and data placed on a mesh of devices.

A run has two kinds of independent work that a ``jax.sharding.Mesh`` can split:

- a *batch* axis: MCMC chains, SMC particles, importance samples (the leading
  axis of every per-chain or per-particle array);
- a *data* axis: the rows of a plate over observations marked
  ``ppl.plate(..., shard=True)``, or of a large one (``automatic_plates``:
  at least ``auto_shard_rows()`` rows, not marked ``shard=False``): each
  device evaluates its slice of the likelihood; the sum over rows is
  finished by a collective.

A ``Placement`` names the mesh and which of its axes carries each. The
compiled program is jitted with the batch axis of its outputs sharded
(``place``), data arrays are handed to it already sharded (``put_data``), and
XLA's partitioner gives each device its share of the one compiled program
(``N`` chains on ``D`` devices: ``N/D`` per device). The MCMC driver goes one
step further (``driver.on_devices``): each device runs the loop of its own
chains under ``shard_map``, so the loop conditions are not collectives.

Law: placement changes where a value is computed, never what: a program run
on a mesh computes the same function of its key and data as on one device
(``jax_threefry_partitionable`` makes random bits independent of the layout).
The draws agree up to the order of floating-point reductions (a sum split
over devices adds in another order), which is the only difference the tests
allow. SMC's resampling stays global: the resampler is the same function of
all weights, and XLA gathers what it needs; island resampling (per device)
is an explicit option of ``SMC`` with its own evidence estimate.

With several processes (``ppl.distributed.initialize``) the mesh spans every
process's devices; ``fetch`` gathers the sharded results on every process
(``multihost_utils.process_allgather``) so that each builds the whole Posterior.
"""

from __future__ import annotations

import contextlib
import math
from contextvars import ContextVar
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ppl.stdlib.errors import ModelError

__all__ = ["Placement", "resolve", "placed", "current", "for_batch", "place", "constrain", "put_data",
           "fetch", "describe", "default_mesh", "set_default", "auto_shard_rows", "set_auto_shard_rows",
           "automatic_plates", "for_program", "BATCH", "DATA", "AUTO_SHARD_ROWS"]

BATCH = "batch"  # the axis name of meshes ppl builds: chains, particles, samples
DATA = "data"


class Placement(NamedTuple):
    """A mesh and the names of its axes for the batch (chains, particles) and for sharded data.

    ``batch_axis``/``data_axis`` of None: that kind of work is not split (every device holds all of it).
    ``explicit``: the user chose the devices, so a count that does not fit is an error, not a fallback.
    """

    mesh: Mesh
    batch_axis: str | None
    data_axis: str | None
    explicit: bool = False

    @property
    def num_devices(self) -> int:
        return int(self.mesh.devices.size)

    def axis_size(self, axis: str | None) -> int:
        return 1 if axis is None else int(self.mesh.shape[axis])


class Used:
    """What the drivers of one run placed (``for_batch`` records each batch it split)."""

    def __init__(self):
        self.batches: list = []

    def effective(self, placement: Placement | None) -> Placement | None:
        """The placement the run used: the batch's, else the data's, else None (one device)."""
        for p in reversed(self.batches):
            if p is not None:
                return p
        if placement is not None and placement.data_axis is not None:
            return placement
        return None


_current: ContextVar[Placement | None] = ContextVar("ppl_placement", default=None)
_used: ContextVar[Used | None] = ContextVar("ppl_placement_used", default=None)
# A plate over observations with at least this many rows is split over the devices without being
# marked (``automatic_plates``); ``ppl.config(auto_shard_rows=...)`` changes it, None turns it off.
AUTO_SHARD_ROWS = 100_000
_default: dict = {"devices": None, "auto_shard_rows": AUTO_SHARD_ROWS}


def set_default(devices) -> None:
    """The devices ``ppl.infer`` uses when its call names none (``ppl.config(devices=...)``)."""
    if devices is not None and not isinstance(devices, (Mesh, int, str)) and not _is_device_list(devices):
        raise ModelError(f"devices={devices!r}: give a number of devices, a list of devices, a "
                         "jax.sharding.Mesh, 'all' or None")
    _default["devices"] = devices


def set_auto_shard_rows(rows) -> None:
    """The size from which plates over observations are split automatically (None: never)."""
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1):
        raise ModelError(f"auto_shard_rows={rows!r}: give a number of rows (at least 1), or None to split "
                         "only the plates marked shard=True")
    _default["auto_shard_rows"] = None if rows is None else int(rows)


def auto_shard_rows():
    """What ``ppl.config(auto_shard_rows=...)`` set (default ``AUTO_SHARD_ROWS``)."""
    return _default["auto_shard_rows"]


def default_mesh():
    """What ``ppl.config(devices=...)`` set (None: every device, when there are several)."""
    return _default["devices"]


def _is_device_list(x) -> bool:
    return isinstance(x, (list, tuple)) and bool(x) and all(hasattr(d, "platform") for d in x)


def resolve(devices=None, *, batch_axis: str | None = None, data_axis: str | None = None,
            shard_data: bool = False) -> Placement | None:
    """The placement for ``devices``; None for one device.

    ``devices``: None (the default set by ``ppl.config``, else every device of the default backend),
    ``'all'``, a number of devices (the first ones), a list of devices, or a ``jax.sharding.Mesh``
    (its axes are used by name: ``batch_axis`` for chains and particles, ``data_axis`` for sharded
    plates; by default ``'batch'`` and ``'data'``, or the mesh's only axis).
    ``shard_data``: the model has plates marked ``shard=``; on a one-axis mesh that ppl builds, the
    data take the axis and the chains are not split (each device runs every chain on its rows).
    """
    explicit = devices is not None
    if devices is None:
        devices = _default["devices"]
        explicit = devices is not None
    if devices is None or devices == "all":
        devs = jax.devices()
    elif isinstance(devices, Mesh):
        return _from_mesh(devices, batch_axis, data_axis, shard_data)
    elif isinstance(devices, bool):
        raise ModelError(f"devices={devices!r}: give a number of devices, a list of devices or a Mesh")
    elif isinstance(devices, (int, np.integer)):
        available = jax.devices()
        if devices < 1 or devices > len(available):
            raise ModelError(f"devices={devices}: this process sees {len(available)} device(s) "
                             f"({available[0].platform})",
                             hint=f"Use a number from 1 to {len(available)}, or leave devices= out to use all.")
        devs = available[:int(devices)]
    elif _is_device_list(devices):
        devs = list(devices)
    else:
        raise ModelError(f"devices={devices!r}: give a number of devices, a list of devices, a "
                         "jax.sharding.Mesh, 'all' or None")
    if len(devs) == 1:
        return None
    mesh = Mesh(np.array(devs), (DATA,) if shard_data else (BATCH,))
    if shard_data:
        return Placement(mesh, None, DATA, explicit)
    return Placement(mesh, BATCH, None, explicit)


def _from_mesh(mesh: Mesh, batch_axis, data_axis, shard_data) -> Placement:
    names = tuple(mesh.axis_names)
    for given, what in ((batch_axis, "batch_axis"), (data_axis, "data_axis")):
        if given is not None and given not in names:
            raise ModelError(f"{what}={given!r} is not an axis of the mesh, whose axes are {names}",
                             hint=f"Name one of {names}, or build the mesh with an axis named {given!r}.")
    if batch_axis is None:
        batch_axis = BATCH if BATCH in names else None
    if data_axis is None:
        data_axis = DATA if DATA in names else None
    if len(names) == 1 and batch_axis is None and data_axis is None:
        (only,) = names
        if shard_data:
            data_axis = only
        else:
            batch_axis = only
    if batch_axis is None and data_axis is None:
        raise ModelError(f"the mesh's axes {names} name neither '{BATCH}' (for chains, particles and samples) "
                         f"nor '{DATA}' (for the rows of sharded plates), so ppl would split nothing over it",
                         hint=f"Build the mesh with an axis named '{BATCH}' or '{DATA}' (e.g. "
                              f"Mesh(devices, ('{BATCH}', '{DATA}'))), or mark a plate shard='<axis>'.")
    return Placement(mesh, batch_axis, data_axis, True)


@contextlib.contextmanager
def placed(placement: Placement | None):
    """Run the block with ``placement`` in force (what the drivers read through ``current()``)."""
    token = _current.set(placement)
    used = Used()
    token_used = _used.set(used)
    try:
        yield used
    finally:
        _used.reset(token_used)
        _current.reset(token)


def current() -> Placement | None:
    return _current.get()


def for_batch(n: int, what: str = "chains", placement: Placement | None = None) -> Placement | None:
    """The placement for a batch of ``n`` (chains, particles, samples), checked.

    ``n`` must divide evenly over the batch axis. When the user named the devices this is an error
    saying what to change; with the automatic default, the batch goes on the largest number of
    devices that divides it (one device: no placement).
    """
    p = current() if placement is None else placement
    got = _for_batch(p, n, what)
    used = _used.get()
    if used is not None:
        used.batches.append(got)
    return got


def _for_batch(p: Placement | None, n: int, what: str) -> Placement | None:
    if p is None or p.batch_axis is None:
        return p
    d = p.axis_size(p.batch_axis)
    if n % d == 0:
        return p
    if p.explicit or jax.process_count() > 1:
        smaller = max(k for k in range(1, d + 1) if n % k == 0)
        raise ModelError(
            f"{n} {what} cannot be split evenly over the {d} devices of mesh axis '{p.batch_axis}'",
            hint=f"Use a number of {what} that is a multiple of {d} (e.g. {math.ceil(n / d) * d}), or "
                 f"devices={smaller}.")
    k = max(k for k in range(1, d + 1) if n % k == 0)
    if k == 1:
        return None
    devs = np.asarray(p.mesh.devices).reshape(-1)[:k]
    return Placement(Mesh(devs, (p.batch_axis,)), p.batch_axis, None, False)


def _sharding(placement: Placement, spec: PartitionSpec) -> NamedSharding:
    return NamedSharding(placement.mesh, spec)


def _leaf_sharding(placement: Placement, n: int, leaf) -> NamedSharding:
    shape = getattr(leaf, "shape", ())
    if len(shape) >= 1 and shape[0] == n:
        return _sharding(placement, PartitionSpec(placement.batch_axis))
    return _sharding(placement, PartitionSpec())


def place(fn: Callable, placement: Placement | None, n: int, *args, compiler_options: dict | None = None) -> Callable:
    """``fn`` (jitted or not) compiled with every output whose leading axis has length ``n`` sharded
    along the batch axis (the rest replicated); ``fn`` itself when nothing is placed.
    ``compiler_options``: XLA's options for that compilation (those of a jitted ``fn`` do not carry
    over to a program that calls it).

    The partitioner carries the batch sharding back through the program (loops included), so each
    device computes its ``n / D`` members. Cached per (fn, placement, argument shapes).
    """
    if placement is None or placement.batch_axis is None:
        return fn
    leaves, treedef = jax.tree.flatten(args)
    key = (placement, n, treedef, tuple((np.shape(x), str(getattr(x, "dtype", type(x)))) for x in leaves))
    table = getattr(fn, "_ppl_placed", None)
    if table is None:
        # kept on ``fn`` itself (a cycle fn -> table -> jit(fn) -> fn the collector frees with fn),
        # not in a module-level table whose values would hold fn, and its model, forever
        table = {}
        try:
            fn._ppl_placed = table
        except (AttributeError, TypeError):  # fn takes no attributes: no cache
            pass
    got = table.get(key)
    if got is None:
        shapes = jax.eval_shape(fn, *args)
        out_shardings = jax.tree.map(lambda leaf: _leaf_sharding(placement, n, leaf), shapes)
        got = table[key] = jax.jit(fn, out_shardings=out_shardings, compiler_options=compiler_options)
    return got


def constrain(tree: Any, n: int, placement: Placement | None = None) -> Any:
    """Inside a traced function: leaves whose leading axis has length ``n`` sharded along the batch axis."""
    p = current() if placement is None else placement
    if p is None or p.batch_axis is None:
        return tree
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, _leaf_sharding(p, n, x)), tree)


def put_data(leaves: Sequence, sizes: dict, placement: Placement | None, spans: dict | None = None) -> list:
    """Arrays whose leading axis is the size of a sharded plate, split along the data axis.

    ``sizes``: plate name -> size of the plates marked ``shard=``. A plate whose size does not divide
    over the data axis is an error naming it (at its line, from ``spans``).
    """
    if placement is None or placement.data_axis is None or not sizes:
        return list(leaves)
    d = placement.axis_size(placement.data_axis)
    for name, size in sizes.items():
        if size % d:
            raise ModelError(
                f"plate '{name}' has {size} rows, which cannot be split evenly over the {d} devices of mesh "
                f"axis '{placement.data_axis}'",
                span=(spans or {}).get(name),
                hint=f"Pad or trim the data to a multiple of {d} rows (e.g. {size - size % d}), or run on "
                     f"devices={max(k for k in range(1, d + 1) if size % k == 0)}.")
    rows = set(sizes.values())
    sharded = _sharding(placement, PartitionSpec(placement.data_axis))
    replicated = _sharding(placement, PartitionSpec())
    out = []
    for x in leaves:
        shape = np.shape(x)
        if not hasattr(x, "shape") and not isinstance(x, (list, tuple)):
            out.append(x)
            continue
        arr = np.asarray(x) if not isinstance(x, jax.Array) else x
        target = sharded if (len(shape) >= 1 and shape[0] in rows) else replicated
        out.append(_global_array(arr, target))
    return out


def _global_array(x, sharding: NamedSharding):
    """``x`` (the same value on every process) as one array laid out by ``sharding``."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return x
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def fetch(tree: Any) -> Any:
    """The values of ``tree`` on this process: gathered from every process when several run."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return x

    return jax.tree.map(get, tree)


def describe(placement: Placement | None) -> list:
    """The devices a run used (for ``Posterior.devices``)."""
    if placement is None:
        return [jax.devices()[0]]
    return list(np.asarray(placement.mesh.devices).reshape(-1))


def for_program(program, leaves: Sequence, devices=None) -> tuple:
    """``(placement, leaves, notes)`` for a run of ``program`` on ``leaves`` (its flat arguments).

    The placement comes from ``devices`` (see ``resolve``); the data of plates marked ``shard=``, and
    of large plates over observations (``automatic_plates``), go on its data axis, split by rows
    (``put_data``). A plate's ``shard='name'`` must name an axis of the mesh. ``notes``: what the run
    should tell the user (a large plate left whole because its rows do not divide).
    """
    plates = tuple(p for p in (getattr(program, "sharded_plates", ()) or ()) if p[2] is not False)
    axes = {s for (_, _, s, _) in plates if isinstance(s, str)}
    if len(axes) > 1:
        raise ModelError(f"the model's plates ask for different mesh axes {sorted(axes)}: ppl splits data over "
                         "one axis", span=plates[0][3], hint="Give every sharded plate the same axis name.")
    notes: list = []
    if not plates:
        plates, notes = _automatic(program, devices)
    placement = resolve(devices, shard_data=bool(plates))
    if placement is None or not plates:
        return placement, list(leaves), notes
    if axes:
        (axis,) = axes
        names = tuple(placement.mesh.axis_names)
        if axis not in names:
            span = next(sp for (_, _, s, sp) in plates if s == axis)
            raise ModelError(f"a plate asks for mesh axis '{axis}', but the mesh has axes {names}",
                             span=span,
                             hint=f"Use shard=True, or pass devices=Mesh(..., axis_names=('{axis}', ...)) "
                                  f"to ppl.infer.")
        placement = placement._replace(data_axis=axis,
                                       batch_axis=None if placement.batch_axis == axis else placement.batch_axis)
    elif placement.data_axis is None:
        name, _, _, span = plates[0]
        raise ModelError(f"plate '{name}' is marked shard=True, but the mesh's axes {tuple(placement.mesh.axis_names)} "
                         f"include no '{DATA}' axis to split its rows over", span=span,
                         hint=f"Name a mesh axis '{DATA}', or give the plate the axis: shard='<axis name>'.")
    sizes = {name: size for (name, size, _, _) in plates}
    spans = {name: sp for (name, _, _, sp) in plates}
    return placement, put_data(leaves, sizes, placement, spans), notes


def automatic_plates(program, threshold: int | None) -> tuple:
    """``(name, rows, None, span)`` of the plates split without being marked: a plate at the top of the
    model (not inside a loop, a branch or another plate; sub-model calls are entered) with at least
    ``threshold`` rows, that observes data and was not marked ``shard=False``. None: no plate."""
    from ppl.semantics import ir

    if threshold is None or not hasattr(program, "block"):
        return ()
    found: dict = {}

    def visit(stmts):
        for s in stmts:
            if isinstance(s, ir.Call):
                visit(s.stmts)
            elif (isinstance(s, ir.Plate) and s.shard is None and s.subsampled_from is None
                  and s.size >= threshold and any(isinstance(t, ir.Observe) for t in ir.walk(s.stmts))):
                found.setdefault(s.name, (s.name, int(s.size), None, s.span))

    visit(program.block.stmts)
    return tuple(found.values())


def _automatic(program, devices) -> tuple:
    """The automatic plates that divide over the devices ``devices`` gives (none on one device or on a
    user's mesh without a data axis), and a note for each one that does not divide (left whole)."""
    plates = automatic_plates(program, auto_shard_rows())
    if not plates:
        return (), []
    placement = resolve(devices, shard_data=True)
    if placement is None or placement.data_axis is None:
        return (), []
    d = placement.axis_size(placement.data_axis)
    keep = tuple(p for p in plates if p[1] % d == 0)
    notes = [f"plate '{name}' has {rows} rows, at least {auto_shard_rows()}, but they cannot be split evenly over "
             f"the {d} devices, so every device holds all of them (pad the data to a multiple of {d} rows to "
             f"split it, or mark the plate shard=False to keep it whole without this note)"
             for (name, rows, _, _) in plates if rows % d]
    return keep, notes

"""Several processes (hosts) as one run: JAX's multi-controller runtime (``jax.distributed``).

Every process runs the same Python program. ``ppl.distributed.initialize()`` joins them
through a coordinator (process 0 listens on ``coordinator_address``); from then on
``jax.devices()`` lists the devices of every process, so the mesh ``ppl.infer`` builds
spans them all, chains and particles are split over every device of every host, and
the results are gathered so that each process holds the whole Posterior (process 0
usually writes it out: ``ppl.distributed.is_main()``).

The three settings come from the arguments or from the environment:

====================  ==========================  =======================
argument              environment variable        example
====================  ==========================  =======================
coordinator_address   ``PPL_COORDINATOR``         ``10.0.0.1:4321``
num_processes         ``PPL_NUM_PROCESSES``       ``2``
process_id            ``PPL_PROCESS_ID``          ``0`` on the coordinator
====================  ==========================  =======================

On CPUs the processes exchange data through gloo (JAX's CPU collectives); on GPUs
through NCCL. Nothing else carries data between processes.

A process that cannot reach the coordinator within ``timeout`` seconds raises
``DistributedError`` saying which address it tried and what to check; it never waits
forever. (It checks that the coordinator's port answers before handing over to JAX,
whose runtime ends the process without a Python exception when it cannot connect.
The coordinator itself waits ``timeout`` seconds for the others, then JAX's runtime
stops it with a "DEADLINE_EXCEEDED" message.)
"""

from __future__ import annotations

import os
import socket
import time

import jax

from ppl.stdlib.errors import PPLError

__all__ = ["initialize", "is_main", "process_index", "process_count", "DistributedError"]

ENV_COORDINATOR = "PPL_COORDINATOR"
ENV_NUM_PROCESSES = "PPL_NUM_PROCESSES"
ENV_PROCESS_ID = "PPL_PROCESS_ID"


class DistributedError(PPLError):
    """The processes of a multi-host run could not be joined."""


def _setting(value, env: str, what: str, convert=str):
    if value is None:
        value = os.environ.get(env)
    if value is None or value == "":
        raise DistributedError(f"ppl.distributed.initialize needs {what}: pass it, or set ${env}",
                               hint=f"e.g. {env}=" + ("10.0.0.1:4321" if convert is str else "0"))
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise DistributedError(f"{what} must be {'a whole number' if convert is int else 'text'}, "
                               f"not {value!r} (from ${env} or the argument)") from None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout: int = 60, local_device_ids=None) -> dict:
    """Join this process to a run of ``num_processes`` processes; call it first, before any JAX work.

    Returns ``{"process_id", "num_processes", "local_devices", "devices"}``. ``timeout``
    (seconds) bounds the wait for the coordinator and the other processes.
    """
    address = _setting(coordinator_address, ENV_COORDINATOR, "the coordinator's address (host:port)")
    count = _setting(num_processes, ENV_NUM_PROCESSES, "the number of processes", int)
    pid = _setting(process_id, ENV_PROCESS_ID, "this process's id (0 .. number of processes - 1)", int)
    if count < 1 or not 0 <= pid < count:
        raise DistributedError(f"process id {pid} is not one of 0 .. {count - 1} (the run has {count} processes)")
    if ":" not in address:
        raise DistributedError(f"the coordinator's address {address!r} needs a port: host:port",
                               hint="e.g. 10.0.0.1:4321; every process must give the same address")
    if pid != 0:  # JAX's runtime aborts the process when it cannot connect: find out first, in words
        _wait_for_coordinator(address, pid, count, timeout)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(address, count, pid, local_device_ids=local_device_ids,
                                   initialization_timeout=int(timeout))
    except RuntimeError as err:  # the JAX runtime reports an unreachable coordinator this way, after timeout
        raise DistributedError(
            f"process {pid} of {count} could not join the run through the coordinator at {address} within "
            f"{timeout} s: {str(err).splitlines()[0][:300]}",
            hint="Start process 0 (the coordinator) first or at the same time, check that every process "
                 "gives the same address and process count, and that the port is open between hosts.") from None
    return {"process_id": jax.process_index(), "num_processes": jax.process_count(),
            "local_devices": jax.local_devices(), "devices": jax.devices()}


def _wait_for_coordinator(address: str, pid: int, count: int, timeout: float) -> None:
    """Return once the coordinator's port accepts connections; ``DistributedError`` after ``timeout`` s."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + float(timeout)
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except (OSError, ValueError) as err:
            last = err
            time.sleep(0.2)
    raise DistributedError(
        f"process {pid} of {count} could not reach the coordinator at {address} within {timeout:g} s ({last})",
        hint="Start process 0 (the coordinator) too, check that every process gives the same address "
             f"(${ENV_COORDINATOR}) and that the port is open between the hosts; timeout= waits longer.")


def is_main() -> bool:
    """Whether this is process 0 (the one that should print and save results)."""
    return jax.process_index() == 0


def process_index() -> int:
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()

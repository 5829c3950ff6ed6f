"""One of two processes of a multi-host run on 127.0.0.1 (started by test_devices.py).

Each process holds 2 virtual CPU devices; ``ppl.distributed.initialize`` joins them (settings from
the environment: PPL_COORDINATOR, PPL_NUM_PROCESSES, PPL_PROCESS_ID), so ``ppl.infer`` runs the
NUTS chains, SMC particles and importance samples of ``devices_check.multihost_results`` over the 4
devices of both processes, gathers them into one Posterior on each process, and prints them; the
test compares them with the one-process run on 4 devices.
"""

from __future__ import annotations

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ.setdefault("PPL_CACHE", "off")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ppl.distributed  # noqa: E402

info = ppl.distributed.initialize(timeout=int(os.environ.get("PPL_TEST_TIMEOUT", "60")))

import jax  # noqa: E402

from devices_check import multihost_results  # noqa: E402

results = multihost_results()
print("RESULT " + json.dumps({"process": info["process_id"], "devices": len(jax.devices()),
                              "local_devices": len(jax.local_devices()), **results}))
sys.stdout.flush()

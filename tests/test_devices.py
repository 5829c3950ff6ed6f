"""Chains, particles and data on several devices and processes (issue 11), on virtual CPU devices.

JAX fixes its device count when it starts, so each check runs in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (``devices_check.py``: one process, many
checks, one JSON result), and the multi-host test starts two processes of 2 devices each on
127.0.0.1 (``devices_multihost.py``), joined by ``ppl.distributed.initialize`` over gloo.

What "the same" means here (float64 throughout):
- importance samples and SMC particles: identical draws, weights and evidence on 1 and 4 devices
  (every random bit is the same; resampling is global);
- NUTS with a plate's rows split over devices, and on a 2-D mesh: the same draws to 1e-6 (the
  split sum adds in another order, a few ulps);
- NUTS with chains split over devices: the same chains up to floating-point reassociation (each
  device compiles the program for its 2 chains, which vectorises reductions differently), which
  Hamiltonian dynamics amplify over a run: agreement to 1e-2 on a posterior whose sd is ~0.3;
- islands: a different algorithm, checked against the exact (Kalman) evidence.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def _env(**extra):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PPL_CACHE"] = "off"
    env.update(extra)
    return env


def _result(text: str) -> dict:
    lines = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
    assert lines, text[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def _check(mode: str) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / "devices_check.py"), mode], capture_output=True, text=True,
                          timeout=1500, env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return _result(proc.stdout)


@pytest.fixture(scope="module")
def checked():
    return _check("lean")


def test_chains_particles_and_samples_are_split_with_the_same_draws(checked):
    assert checked["num_devices"] == 4
    assert checked["nuts_devices"] == [4, 1] and checked["nuts_shape"] == [8, 20]
    assert checked["nuts_max_diff"] < 1e-2
    assert checked["smc_devices"] == [4, 1] and checked["importance_devices"] == [4, 1]
    assert checked["smc_max_diff"] == 0.0 and checked["importance_max_diff"] == 0.0
    a, b = checked["smc_log_z"]
    assert abs(a - b) < 1e-9


def test_plate_rows_are_split_over_devices(checked):
    # the compiled density on rows split over the 4 devices (NUTS on them: the slow test below)
    assert checked["density_data_sharded"] == "P('data',)"
    d4, d1 = checked["density"]
    assert abs(d4 - d1) < 1e-9


@pytest.mark.slow
def test_longer_runs_hmc_a_2d_mesh_and_the_automatic_fallback():
    full = _check("full")
    assert full["nuts_max_diff"] < 1e-2 and full["smc_max_diff"] == 0.0
    assert full["data_devices"] == [4, 1] and full["data_max_diff"] < 1e-6
    np.testing.assert_allclose(*full["data_mean"], atol=1e-6)
    assert full["mesh2d_devices"] == 4 and full["mesh2d_max_diff"] < 1e-6
    # HMC on split rows: a few ulps can flip an acceptance in a long run, so the same distribution:
    # posterior means within 0.15 (about 4 Monte Carlo standard errors of 80 draws with sd ~0.13)
    np.testing.assert_allclose(*full["hmc_data_mean"], atol=0.15)
    # six chains do not divide over four devices: the automatic default uses three
    assert full["auto_odd_devices"] == 3


def test_island_resampling_estimates_the_evidence(checked):
    exact = checked["kalman_log_z"]
    assert checked["island_devices"] == 4
    # mean of exp(log Z - exact) is 1 (unbiased), within 4 standard errors of the runs
    ratio = np.exp(np.asarray(checked["island_log_z_small"]) - exact)
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std(ddof=1) / np.sqrt(ratio.size)


def test_bad_placements_are_clear_errors(checked):
    assert "6 chains cannot be split evenly over the 4 devices" in checked["error_chains"]
    assert "multiple of 4" in checked["error_chains"] and "devices=3" in checked["error_chains"]
    assert "mesh axis 'rows'" in checked["error_axis"] and 'shard="rows"' in checked["error_axis"]
    assert "'chains' is not an axis of the mesh" in checked["error_mesh_axis"]
    assert "398 rows, which cannot be split evenly" in checked["error_rows"]
    assert "e.g. 396" in checked["error_rows"] and "devices=2" in checked["error_rows"]
    assert "devices=9: this process sees 4 device(s)" in checked["error_devices"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_give_the_draws_of_one():
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(HERE / "devices_multihost.py")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=_env(PPL_COORDINATOR=f"127.0.0.1:{port}", PPL_NUM_PROCESSES="2",
                                       PPL_PROCESS_ID=str(i)))
             for i in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-4000:]
        outs.append(_result(out))
    # the same program on the same 4-device mesh, in one process: the same draws (measured equal)
    reference = np.asarray(_check("reference")["multihost_reference"])
    for r in outs:
        assert r["devices"] == 4 and r["local_devices"] == 2
        np.testing.assert_allclose(np.asarray(r["draws"]), reference, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(outs[0]["draws"], outs[1]["draws"])


def test_a_process_without_its_coordinator_fails_in_time():
    code = ("import ppl.distributed as d\n"
            "try:\n"
            f"    d.initialize('127.0.0.1:{_free_port()}', 2, 1, timeout=2)\n"
            "except d.DistributedError as e:\n"
            "    print('RESULT', __import__('json').dumps(str(e)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    assert "RESULT " in proc.stdout, proc.stderr[-3000:]
    message = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert "could not reach the coordinator at 127.0.0.1:" in message and "within 2 s" in message
    assert "Start process 0" in message

"""Chains, particles and data on several devices and processes (issue 11), on virtual CPU devices.

JAX fixes its device count when it starts, so each check runs in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (``devices_check.py``: one process, many
checks, one JSON result), and the multi-host test starts two processes of 2 devices each on
127.0.0.1 (``devices_multihost.py``), joined by ``ppl.distributed.initialize`` over gloo: NUTS,
SMC, importance sampling and VI on a split plate give, on each process, what one process with 4
devices gives.

What "the same" means here (float64 throughout):
- importance samples, SMC particles and enumerated outcomes: identical draws, weights and evidence
  on 1 and 4 devices (every random bit is the same; resampling is global);
- NUTS, HMC, MH and Gibbs with chains split over devices (each device runs the loop of its own
  chains): the chains start from the same points with the same keys, so the draws are the same
  (measured identical in these short runs); a device compiles the program for its 2 chains,
  which may vectorise a reduction differently, so the bound is 1e-6 rather than 0 (long NUTS runs
  can amplify such ulps into different but equally distributed chains: benchmarks/chain_loops.py);
- NUTS with a plate's rows split over devices (marked, or automatic for a large plate), and on a
  2-D mesh: the same draws to 1e-6 (the split sum adds in another order, a few ulps);
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
    assert checked["nuts_max_diff"] < 1e-6
    assert checked["mh_devices"] == 4 and checked["mh_shape"] == [8, 10] and checked["mh_finite"]
    assert checked["smc_devices"] == [4, 1] and checked["importance_devices"] == [4, 1]
    assert checked["smc_max_diff"] == 0.0 and checked["importance_max_diff"] == 0.0
    a, b = checked["smc_log_z"]
    assert abs(a - b) < 1e-9


def test_a_dropped_model_frees_its_placed_programs(checked):
    assert checked["dropped_freed"] == [True, True]  # SMC, importance on 4 devices


def test_enumeration_splits_its_outcomes(checked):
    assert checked["enumerate_devices"] == [4, 1] and checked["enumerate_max_diff"] == 0.0
    # exact: p = 0.3 * (0.1 * 0.1 + 0.9) + 0.7 * (0.4 * 0.1 + 0.6)
    np.testing.assert_allclose(checked["enumerate_log_z"], np.log(0.3 * 0.91 + 0.7 * 0.64), rtol=0, atol=1e-12)


def test_large_plates_are_split_automatically(checked):
    # 400 rows with the threshold at 200: split over the data axis, the same log density
    assert checked["auto_spec"] == "P('data',)" and checked["auto_axes"] == [None, "data"]
    d4, d1 = checked["auto_density"]
    assert abs(d4 - d1) < 1e-6
    # below the threshold, or marked shard=False: the chains take the devices, the rows stay whole
    assert checked["auto_small_axes"] == ["batch", None] and checked["auto_off_axes"] == ["batch", None]
    # 398 rows do not divide over 4 devices: left whole, and the posterior says so
    assert checked["auto_odd_axes"] == ["batch", None]
    (note,) = checked["auto_odd_notes"]
    assert "plate 'obs' has 398 rows" in note and "multiple of 4" in note and "shard=False" in note
    assert note in checked["auto_odd_posterior_notes"]


def test_plate_rows_are_split_over_devices(checked):
    # the compiled density on rows split over the 4 devices (NUTS on them: the slow test below)
    assert checked["density_data_sharded"] == "P('data',)"
    d4, d1 = checked["density"]
    assert abs(d4 - d1) < 1e-9


@pytest.mark.slow
def test_longer_runs_hmc_mh_gibbs_a_2d_mesh_and_automatic_plates():
    full = _check("full")
    assert full["nuts_max_diff"] < 1e-6 and full["smc_max_diff"] == 0.0
    assert full["hmc_max_diff"] < 1e-6 and full["mh_max_diff"] < 1e-6
    assert full["gibbs_devices"] == [4, 1] and full["gibbs_max_diff"] < 1e-6
    # NUTS on a large plate split automatically: the same draws to 1e-6 (measured: identical)
    assert full["auto_nuts_devices"] == [4, 1] and full["auto_nuts_max_diff"] < 1e-6
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
    assert "name neither 'batch'" in checked["error_mesh_names"] and "('x', 'y')" in checked["error_mesh_names"]
    assert "plate 'rows' is marked shard=True" in checked["error_no_data_axis"]
    assert "no 'data' axis" in checked["error_no_data_axis"] and "devices_check.py" in checked["error_no_data_axis"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_give_the_draws_of_one(tmp_path):
    port = _free_port()
    procs, logs = [], []
    for i in range(2):  # output to files: a pipe nobody reads while waiting for the other would block it
        out, err = open(tmp_path / f"out{i}", "w+"), open(tmp_path / f"err{i}", "w+")
        logs.append((out, err))
        procs.append(subprocess.Popen([sys.executable, str(HERE / "devices_multihost.py")], stdout=out, stderr=err,
                                      text=True,
                                      env=_env(PPL_COORDINATOR=f"127.0.0.1:{port}", PPL_NUM_PROCESSES="2",
                                               PPL_PROCESS_ID=str(i),
                                               # the wait for the other process, at the start and at the
                                               # final barrier: on a loaded machine one may lag a minute
                                               PPL_TEST_TIMEOUT="300")))
    outs = []
    for p, (out, err) in zip(procs, logs):
        p.wait(timeout=900)
        out.seek(0)
        err.seek(0)
        text, messages = out.read(), err.read()
        out.close()
        err.close()
        assert p.returncode == 0, messages[-4000:]
        outs.append(_result(text))
    # the same programs on the same 4-device mesh, in one process: the same draws (measured equal)
    reference = _check("reference")["multihost_reference"]
    for r in outs:
        assert r["devices"] == 4 and r["local_devices"] == 2
        for what in ("nuts", "smc", "importance", "vi"):
            assert r[f"{what}_devices"] == 4
            np.testing.assert_allclose(np.asarray(r[what]), np.asarray(reference[what]), rtol=0, atol=1e-9)
        for what in ("smc_log_weights", "importance_log_weights", "vi_history"):
            np.testing.assert_allclose(np.asarray(r[what]), np.asarray(reference[what]), rtol=1e-9, atol=1e-6)
        assert abs(r["smc_log_z"] - reference["smc_log_z"]) < 1e-6
    for what in ("nuts", "smc", "importance", "vi"):  # every process holds the whole, gathered result
        np.testing.assert_array_equal(outs[0][what], outs[1][what])


def test_a_process_without_its_coordinator_fails_in_time():
    # then, in the same process, a run of one process starts: importing ppl must not have started
    # JAX's backend (jax.distributed.initialize refuses to run after it), and initialize gives the mesh
    code = ("import json, ppl, ppl.distributed as d\n"
            "try:\n"
            f"    d.initialize('127.0.0.1:{_free_port()}', 2, 1, timeout=2)\n"
            "except d.DistributedError as e:\n"
            "    print('RESULT', json.dumps(str(e)))\n"
            f"info = d.initialize('127.0.0.1:{_free_port()}', 1, 0, timeout=20)\n"
            "print('JOINED', json.dumps([info['num_processes'], len(info['devices']), d.is_main()]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    assert "RESULT " in proc.stdout, proc.stderr[-3000:]
    message = json.loads(proc.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert "could not reach the coordinator at 127.0.0.1:" in message and "within 2 s" in message
    assert "Start process 0" in message
    assert "JOINED " in proc.stdout, proc.stderr[-3000:]
    assert json.loads(proc.stdout.split("JOINED ", 1)[1]) == [1, 2, True]


def test_which_plates_are_split_automatically():
    # in this process (one device): which plates the rule picks, from the model's structure alone
    import jax.numpy as jnp

    import ppl
    from ppl import dist
    from ppl.inference import sharding

    @ppl.model
    def model(y, z):
        mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
        with ppl.plate("obs", y.shape[0]):  # observes, large: picked
            ppl.observe("y", dist.Normal(mu, 1.0), y)
        with ppl.plate("kept", z.shape[0], shard=False):  # marked shard=False: never
            ppl.observe("z", dist.Normal(mu, 1.0), z)
        with ppl.plate("latent", y.shape[0]):  # no observation inside: not data
            ppl.sample("eps", dist.Normal(0.0, 1.0))
        with ppl.plate("outer", 2):
            with ppl.plate("inner", y.shape[0]):  # inside another plate: left alone
                ppl.observe("w", dist.Normal(mu, 1.0), jnp.zeros((y.shape[0], 2)))

    program, leaves = model.program(jnp.zeros(300), jnp.zeros(300))
    assert [p[:3] for p in sharding.automatic_plates(program, 200)] == [("obs", 300, None)]
    assert sharding.automatic_plates(program, 301) == () and sharding.automatic_plates(program, None) == ()
    # one device: nothing is placed, no note
    assert sharding.for_program(program, leaves, None)[0::2] == (None, [])

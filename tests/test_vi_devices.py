"""VI on a plate sharded over 4 virtual CPU devices (``vi_devices_check.py``, in a subprocess: JAX fixes
its device count when it starts): the same objective history as on one device (float64; a split sum
changes only the order of additions), the step's row sum an all-reduce across the devices, each device
holding a quarter of the rows; also with a subsampled sharded plate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.slow
def test_sharded_vi_gives_the_objective_history_of_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", PPL_CACHE="off")
    proc = subprocess.run([sys.executable, str(HERE / "vi_devices_check.py")], capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:]
    got = json.loads(lines[-1][len("RESULT "):])
    for case in ("sharded", "subsampled"):
        assert got[case]["devices"] == [4, 1]
        assert got[case]["max_rel"] < 1e-5, got[case]
    assert got["all_reduce"] and got["x_shards"] == 4 and got["x_shard_rows"] == 100

"""Sampler programs kept on disk (inference/mcmc/export_cache.py).

A run whose program is on disk loads it instead of tracing the driver, and draws the same bits; a
changed density, shape or option is another key; a corrupt file is replaced. In one process, a
"later process" is a new log density function (the in-memory programs are kept per function).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl.inference.mcmc import base, export_cache, hmc
from ppl.stdlib import jax_compat
from ppl.stdlib.errors import ModelError

jax.config.update("jax_platforms", "cpu")


def density(scale):
    """A new function each call (a new in-memory program), computing the same numbers for one scale."""

    def logdensity(x, y):
        return -0.5 * jnp.sum((x["m"] - y) ** 2) / scale**2

    return logdensity


def run(fn, y, num_warmup=20, steps=3):
    out = base.run_chains(jax.random.key(0), fn, {"m": jnp.zeros((2, 3))}, hmc.Builder(num_integration_steps=steps),
                          num_warmup=num_warmup, num_samples=10, args=(y,), progress=False, warn=False)
    return np.asarray(out.positions["m"])


Y = jnp.array([0.5, -1.0, 2.0])


def test_a_later_run_loads_the_program_and_draws_the_same_bits_and_a_corrupt_file_is_replaced(program_dir):
    folder, exports = program_dir
    first = run(density(1.0), Y)
    assert len(exports) == 1 and len(list(folder.glob("*.bin"))) == 1
    again = run(density(1.0), Y)  # a new function: no in-memory program, so from disk
    assert len(exports) == 1, "the second run traced the driver instead of loading it"
    np.testing.assert_array_equal(first, again)
    other = run(density(1.0), Y + 1.0)  # new data of the same shapes: the same program
    assert len(exports) == 1 and not np.array_equal(other, first)
    (path,) = folder.glob("*.bin")
    path.write_bytes(path.read_bytes()[:200])  # truncated
    np.testing.assert_array_equal(run(density(1.0), Y), first)
    assert len(exports) == 2  # compiled afresh ...
    run(density(1.0), Y)  # ... and the rewritten file serves the next run
    assert len(exports) == 2
    path.write_bytes(b"not a program")  # a foreign file
    np.testing.assert_array_equal(run(density(1.0), Y), first)
    assert len(exports) == 3


def test_keys_differ_with_the_density_the_shapes_and_the_description():
    def key(fn, x, y, description="spec"):
        return export_cache.fingerprint(jax.value_and_grad(lambda u, v: fn({"m": u}, v)), x, (y,), description)

    x = jnp.zeros(3)
    k = key(density(1.0), x, Y)
    assert k == key(density(1.0), x, Y * 3.0)  # new values of the same shapes: the same program
    assert k != key(density(2.0), x, Y)  # another constant in the density
    assert k != key(lambda p, y: -jnp.sum(jnp.abs(p["m"] - y)), x, Y)  # another density
    assert k != key(density(1.0), x, Y.reshape(3, 1))  # another shape of the data
    assert k != key(density(1.0), x, Y.astype(jnp.int32))  # another dtype
    assert k != key(density(1.0), x, Y, "spec'")  # another option


@pytest.fixture
def threefry_flipped():
    """``jax_threefry_partitionable`` set to the other value for the test, restored after."""
    before = bool(jax.config.jax_threefry_partitionable)
    yield not before
    jax.config.update("jax_threefry_partitionable", before)


def test_a_jax_setting_that_changes_the_trace_is_another_program(program_dir, threefry_flipped, monkeypatch):
    folder, exports = program_dir
    fn = density(1.0)  # one function: the in-memory table is asked first, then the disk
    first = run(fn, Y)
    key = export_cache.fingerprint(lambda x: (x, x), jnp.zeros(2), (), "spec")
    jax.config.update("jax_threefry_partitionable", threefry_flipped)
    assert export_cache.fingerprint(lambda x: (x, x), jnp.zeros(2), (), "spec") != key
    flipped = run(fn, Y)
    assert len(exports) == 2 and len(list(folder.glob("*.bin"))) == 2  # traced anew, stored beside the first
    monkeypatch.setenv("PPL_PROGRAM_CACHE", "off")
    fresh = run(density(1.0), Y)  # a fresh trace under the flipped setting, no cache of any kind
    np.testing.assert_array_equal(flipped, fresh)
    assert not np.array_equal(flipped, first)  # the other random streams: other draws


@pytest.mark.slow
def test_a_changed_density_shape_or_option_is_another_program(program_dir):
    folder, exports = program_dir
    run(density(1.0), Y)
    run(density(2.0), Y)  # the density's constants differ
    run(density(1.0), np.asarray(Y) * 3.0)  # new data of the same shape and dtype: the same program
    assert len(exports) == 2
    run(density(1.0), Y.reshape(3, 1))  # another shape of the data
    run(density(1.0), Y, num_warmup=30)  # another option
    run(density(1.0), Y, steps=4)  # another kernel option
    assert len(exports) == 5 and len(list(folder.glob("*.bin"))) == 5


def test_off_switch_and_unkeyable_descriptions(program_dir, monkeypatch):
    assert export_cache.directory() == program_dir[0]
    monkeypatch.setenv("PPL_PROGRAM_CACHE", "off")
    assert export_cache.directory() is None
    # a description naming an object by its address differs between processes: never a key
    assert export_cache.fingerprint(lambda x: (x, x), jnp.zeros(2), (), "<object at 0x7f00>") is None


# modules the driver imports that cannot change a traced program: error classes, the in-memory
# program tables, the post-run diagnostics, the digests the keys are made of
OUTSIDE_THE_KEY = {"ppl.stdlib.errors", "ppl.semantics.ir", "ppl.semantics.cache", "ppl.inference.diagnostics",
                   "ppl.semantics.ir_digest"}


def test_the_source_digest_covers_every_module_the_driver_imports():
    import ast
    import importlib

    def covered(name):
        return any(name == s or name.startswith(s + ".") for s in export_cache.DRIVER_SOURCES)

    seen, todo = set(), ["ppl.inference.mcmc.base"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse(Path(importlib.import_module(name).__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ppl"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("ppl")]
            else:
                continue
            for t in targets:
                try:
                    importlib.import_module(t)
                except ImportError:
                    continue  # a name imported from a module, not a module
                if t in OUTSIDE_THE_KEY or t in ("ppl", "ppl.inference", "ppl.stdlib", "ppl.semantics"):
                    continue
                assert covered(t), f"{name} imports {t}, which the program cache's source digest leaves out"
                todo.append(t)


def _files_of(folder, sizes_and_ages):
    """Fake program files: name -> (bytes, seconds since last use)."""

    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for name, (size, age) in sizes_and_ages.items():
        path = folder / name
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age, now - age))


def test_eviction_keeps_the_most_recently_used_programs_within_the_bound(tmp_path):
    folder = tmp_path / "ppl-programs"
    _files_of(folder, {"a.bin": (400, 50), "b.bin": (300, 40), "c.bin": (200, 30), "d.bin": (100, 10),
                       ".tmp-old": (50, 7200), ".tmp-live": (50, 5), "notes.txt": (999, 9999)})
    export_cache.evict(folder, 650)  # d + c + b = 600 fit; a would make 1000
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-live", "b.bin", "c.bin", "d.bin", "notes.txt"]
    export_cache.evict(folder, 299)  # d + c = 300 > 299: only d; the newest first, stopping at the first misfit
    assert sorted(p.name for p in folder.glob("*.bin")) == ["d.bin"]
    export_cache.evict(folder, 0)
    assert list(folder.glob("*.bin")) == []
    export_cache.evict(tmp_path / "missing", 0)  # no folder: nothing to do


def test_the_bound_is_configured_by_ppl_config_or_the_environment(monkeypatch):
    monkeypatch.delenv("PPL_PROGRAM_CACHE_MAX_MB", raising=False)
    assert export_cache.max_mb() == export_cache.DEFAULT_MAX_MB == 256.0
    monkeypatch.setenv("PPL_PROGRAM_CACHE_MAX_MB", "0.5")
    assert export_cache.max_bytes() == 512 * 1024
    try:
        assert ppl.config(program_cache_max_mb=2)["program_cache_max_mb"] == 2.0  # the setting wins
        assert export_cache.max_bytes() == 2 * 1024 * 1024
        for bad in (-1, "lots", True, float("nan")):
            with pytest.raises(ModelError, match="program_cache_max_mb"):
                ppl.config(program_cache_max_mb=bad)
    finally:
        ppl.config(program_cache_max_mb=None)
    assert export_cache.max_mb() == 0.5
    monkeypatch.setenv("PPL_PROGRAM_CACHE_MAX_MB", "much")
    with pytest.raises(ModelError, match="PPL_PROGRAM_CACHE_MAX_MB"):
        export_cache.max_bytes()


def test_a_tiny_bound_keeps_only_the_programs_last_used(program_dir, monkeypatch):
    folder, exports = program_dir
    run(density(1.0), Y)
    (first,) = folder.glob("*.bin")
    size = first.stat().st_size
    monkeypatch.setenv("PPL_PROGRAM_CACHE_MAX_MB", str(2.5 * size / 2**20))  # room for two programs
    run(density(2.0), Y)
    run(density(1.0), Y)  # loaded from disk: a use, so density 2 is now the least recently used
    assert len(exports) == 2 and len(list(folder.glob("*.bin"))) == 2
    run(density(3.0), Y)  # a third program: the one used longest ago goes
    assert len(exports) == 3
    assert first.exists() and len(list(folder.glob("*.bin"))) == 2
    run(density(2.0), Y)  # evicted, so traced and exported again
    assert len(exports) == 4


_LAPACK_SCRIPT = """
import sys, json
import jax, jax.numpy as jnp, numpy as np
from ppl.inference.mcmc import adaptation, base, nuts

def logdensity(x):
    return -0.5 * jnp.sum(x["m"] ** 2) - 0.5 * jnp.sum((x["m"][1:] - 0.5 * x["m"][:-1]) ** 2)

def run(metric):
    out = base.run_chains(jax.random.key(1), logdensity, {"m": jnp.zeros((2, 3))}, nuts.Builder(),
                          adapt=adaptation.Adaptation(metric=metric), num_warmup=60, num_samples=5,
                          progress=False, warn=False)
    return np.asarray(out.positions["m"]).ravel().tolist()

diag = run("diag")
linalg_after_diag = "scipy.linalg" in sys.modules
dense = run("dense")
print(json.dumps(dict(diag=diag, dense=dense, linalg_after_diag=linalg_after_diag)))
"""


def test_a_loaded_program_initialises_lapack_only_when_it_calls_lapack(tmp_path):
    """A second process loads a diagonal-metric program without importing scipy.linalg (JAX's LAPACK
    set-up, ~0.3 s), and a dense-metric program, whose Cholesky factorisation calls LAPACK, still runs
    there and draws the first process's bits."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PPL_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("PPL_PROGRAM_CACHE", None)
    env.pop("PPL_CACHE", None)
    outs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _LAPACK_SCRIPT], check=False, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first, second = outs
    assert len(list((tmp_path / "cache").rglob("*.bin"))) == 2
    assert second["diag"] == first["diag"] and second["dense"] == first["dense"]
    assert not second["linalg_after_diag"]


def test_which_exported_programs_call_linear_algebra_routines():
    spec = jax.ShapeDtypeStruct((3, 3), jnp.float32)
    assert jax_compat.uses_lapack(bytes(jax.export.export(jax.jit(jnp.linalg.cholesky))(spec).serialize()))
    assert not jax_compat.uses_lapack(bytes(jax.export.export(jax.jit(lambda a: 2.0 * a))(spec).serialize()))

"""``import ppl`` changes no global JAX setting, except the documented persistent compilation
cache (docs/api.md), which ``PPL_CACHE=off`` leaves off."""

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, jax
names = sorted(n for n in jax.config.values if not n.startswith("jax_pmap"))
before = {n: repr(jax.config.values[n]) for n in names}
import ppl  # noqa: F401
after = {n: repr(jax.config.values[n]) for n in names}
print(json.dumps(sorted(n for n in names if before[n] != after[n])))
"""

CACHE_SETTINGS = {"jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                  "jax_persistent_cache_min_entry_size_bytes"}


def changed_by_import(tmp_path, **env) -> set:
    full = {**os.environ, "PPL_CACHE_DIR": str(tmp_path / "cache"), **env}
    full.pop("PPL_CACHE", None) if "PPL_CACHE" not in env else None
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("cache", ["on", "off"])
def test_import_changes_only_the_documented_cache_settings(tmp_path, cache):
    if cache == "off":
        assert changed_by_import(tmp_path, PPL_CACHE="off") == set()
    else:
        changed = changed_by_import(tmp_path)
        assert changed and changed <= CACHE_SETTINGS

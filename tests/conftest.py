import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
# The suite runs without the persistent XLA cache (subprocesses inherit this): a test checks
# behaviour, not the cache, and a warm or half-written user cache must neither hide a compilation
# that a test counts nor break a run. tests/test_persistent_cache.py checks the cache itself.
os.environ["PPL_CACHE"] = "off"

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Each compiled CPU program holds memory mappings of its own; the whole suite in one
    process compiles thousands, and Linux's default limit of 65,530 mappings per process
    (vm.max_map_count) was reached about three quarters of the way through, where XLA
    aborted. Clearing the caches between modules keeps the count bounded.
    """
    yield
    import gc

    jax.clear_caches()
    gc.collect()


@pytest.fixture
def program_dir(tmp_path, monkeypatch):
    """The compilation cache (and so the program cache) in a fresh folder; exports counted."""
    from ppl.inference.mcmc import export_cache

    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "xla"))
    monkeypatch.delenv("PPL_PROGRAM_CACHE", raising=False)
    exports = []
    original = export_cache._export
    monkeypatch.setattr(export_cache, "_export", lambda *a: exports.append(1) or original(*a))
    yield tmp_path / "xla" / "ppl-programs", exports
    jax.config.update("jax_compilation_cache_dir", before)

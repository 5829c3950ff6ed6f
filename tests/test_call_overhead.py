"""What ``ppl.infer`` does per call, kept small: float arguments converted once per value, the free
memory read at most once a second for small runs, and SMC's ancestral paths read back on first use
(issue 11). Each saving must leave the answers exactly as they were."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist, memory
from ppl.inference.smc import SMC, compiled
from ppl.semantics import program as P
from test_smc import linear_gaussian as walk  # the linear-Gaussian state-space model



YS = np.asarray([0.3, -0.2, 1.1, 0.8, 0.1, -0.5, 0.4, 0.9], dtype=np.float32)


def test_float_arguments_are_converted_once_per_value():
    a = P._to_array(0.9)
    assert P._to_array(0.9) is a                       # the same number: the same array
    assert a.dtype == jnp.result_type(float) and a.weak_type and float(a) == np.float32(0.9)
    neg, pos = P._to_array(-0.0), P._to_array(0.0)     # equal as numbers, different bits
    assert np.signbit(np.asarray(neg)) and not np.signbit(np.asarray(pos))
    strong = P._to_array(np.float32(0.9))               # a NumPy scalar keeps its own (strong) type
    assert strong is not a and not strong.weak_type and strong.dtype == np.float32
    ys = np.ones(3, np.float32)
    assert P._to_array(ys) is not P._to_array(ys)       # arrays are mutable: converted every time
    leaves, rebuild = P.split_args((YS, 0.9, 1.0), {})
    assert leaves[1] is a and [str(v.dtype) for v in leaves] == ["float32"] * 3


def test_the_free_memory_is_read_again_when_it_matters(monkeypatch):
    calls = []

    def reader():
        calls.append(1)
        return 10**9

    monkeypatch.setattr(memory, "available_bytes", reader)
    monkeypatch.setattr(memory, "_last_reading", [None, -np.inf, None])
    assert memory._recently_available(1000) == 10**9 and len(calls) == 1
    assert memory._recently_available(1000) == 10**9 and len(calls) == 1   # a small run: the recent reading
    memory._recently_available(2 * 10**8)                                   # near the limit: read again
    assert len(calls) == 2
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**6)           # another reader: read it
    assert memory._recently_available(1000) == 10**6
    monkeypatch.setattr(memory, "_READING_FRESH_S", 0.0)                     # an old reading: read again
    monkeypatch.setattr(memory, "available_bytes", reader)
    memory._recently_available(1000)
    memory._recently_available(1000)
    assert len(calls) == 4


@pytest.mark.parametrize("threshold, scheme", [(1.0, "systematic"), (0.5, "stratified")])
def test_smc_paths_read_on_first_use_equal_the_backtrack_in_the_run(threshold, scheme):
    method = SMC(num_particles=64, ess_threshold=threshold, resampling=scheme)
    post = ppl.infer(walk, YS, 0.9, 1.0, 0.5, method=method, seed=3)
    assert post.result.deferred is not None                 # nothing read back yet
    x = post.samples["x"]
    assert post.result.deferred is None and x.shape == (64, len(YS))
    assert np.array_equal(post.returns, x)                  # the loop's ``return x, x``: the same paths

    program, leaves = walk.program(YS, 0.9, 1.0, 0.5)
    eager = compiled.Filter(compiled.get_filter(program, method.options).cut, method.options)
    eager.defers_paths = False                              # the backtrack inside the run, as before
    out = eager(jax.random.key(3), leaves)
    assert out.paths is None
    assert np.array_equal(np.moveaxis(out.samples["x"], 1, 0), x)
    assert np.array_equal(out.log_weights, post.log_weights) and float(out.log_evidence) == post.log_evidence


def test_smc_with_statements_after_the_loop_backtracks_in_the_run():
    @ppl.model
    def walk_then(ys):
        def step(x, y):
            x = ppl.sample("x", dist.Normal(0.9 * x, 1.0))
            ppl.observe("y", dist.Normal(x, 0.5), y)
            return x, x

        last, xs = ppl.scan(step, 0.0, ys)
        ppl.observe("z", dist.Normal(last, 1.0), 0.5)
        return xs

    program, leaves = walk_then.program(YS)
    method = SMC(num_particles=32)
    assert not compiled.get_filter(program, method.options).defers_paths
    post = ppl.infer(walk_then, YS, method=method, seed=1)
    assert post.result.deferred is None and post.samples["x"].shape == (32, len(YS))


@ppl.model
def walk_scaled(ys, cs):
    def step(x, inp):
        y, c = inp
        x = ppl.sample("x", dist.Normal(0.9 * x, jnp.exp(x) - c))   # scale < 0 where x < log c
        ppl.observe("y", dist.Normal(x, 0.5), y)
        return x, x

    _, xs = ppl.scan(step, 0.0, (ys, cs))
    return xs


def test_smc_finds_a_parameter_outside_its_domain_at_a_late_step_in_some_particles():
    """Validity is kept per slot through the loop and reduced once: a particle invalid at one step
    (and resampled away after it) still fails the run. The bootstrap weights never read the
    transition's density, so only the domain check sees it."""
    method = SMC(num_particles=200, ess_threshold=1.0)
    fine = np.zeros(len(YS), np.float32)
    post = ppl.infer(walk_scaled, YS, fine, method=method, seed=0)
    assert np.isfinite(post.log_evidence)
    late = fine.copy()
    late[5] = 1.0                                                      # at step 5, every particle with x < 0
    program, leaves = walk_scaled.program(YS, late)
    out = compiled.get_filter(program, method.options)(jax.random.key(0), leaves)
    assert not out.valid and np.all(np.isfinite(out.log_weights))
    with pytest.raises(ppl.ModelError):
        ppl.infer(walk_scaled, YS, late, method=method, seed=0)


def test_an_smc_result_pickles_with_its_paths():
    import pickle

    post = ppl.infer(walk, YS, 0.9, 1.0, 0.5, method=SMC(num_particles=32), seed=2)
    assert post.result.deferred is not None
    back = pickle.loads(pickle.dumps(post.result))
    assert back.deferred is None and np.array_equal(back.samples["x"], post.samples["x"])
    assert back.log_evidence == post.log_evidence and np.array_equal(back.returns, post.returns)

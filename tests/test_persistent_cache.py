"""The persistent compilation cache: on by default, filled by one process, reused by the next."""

import json
import os
import subprocess
import sys

SCRIPT = """
import json, jax, ppl
from ppl import dist
from ppl.inference.mcmc import export_cache
exports = []
_export = export_cache._export
export_cache._export = lambda *a: exports.append(1) or _export(*a)
@ppl.model
def m(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("n", len(y)):
        ppl.observe("y", dist.Normal(mu, 1.0), y)
    return mu
post = ppl.infer(m, jax.numpy.array([0.5, 1.5]), method=ppl.NUTS(num_warmup=50, num_samples=50, num_chains=1,
                                                                   progress=False))
print(json.dumps({"cache": str(jax.config.jax_compilation_cache_dir), "mean": float(post.mean("mu")),
                  "exports": len(exports)}))
"""


def _run(env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(__file__))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cache_is_filled_by_one_process_and_reused_by_the_next(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PPL_CACHE"}
    env["PPL_CACHE_DIR"] = str(tmp_path / "xla")
    first = _run(env)
    assert first["cache"] == str(tmp_path / "xla")
    entries = set(os.listdir(tmp_path / "xla"))
    assert entries, "the first process stored nothing"
    second = _run(env)
    assert second["mean"] == first["mean"]  # same seed, same program, read back from the cache
    # the sampler program and the map back to the model's coordinates were not traced again
    assert first["exports"] == 2 and second["exports"] == 0
    assert set(os.listdir(tmp_path / "xla")) == entries  # nothing new had to be compiled


def test_ppl_cache_off_turns_it_off(tmp_path):
    env = dict(os.environ, PPL_CACHE="off", PPL_CACHE_DIR=str(tmp_path / "xla"))
    assert _run(env)["cache"] in ("None", "")
    assert not (tmp_path / "xla").exists()

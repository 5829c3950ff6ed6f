"""VI with a plate sharded over 4 virtual CPU devices, against the same fit on one device (run by
test_vi_devices.py in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``).

Prints ``RESULT {json}``: the largest relative difference between the two objective histories, the
devices each run used, whether the compiled step sums the plate's rows with a collective
(``all-reduce`` in its optimised HLO) and how the sharded data lie, and the same for a subsampled
sharded plate.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("PPL_CACHE", "off")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import ppl  # noqa: E402

ppl.config(x64=True)  # float64: a split sum changes a few ulps, far below the tolerance
from ppl import dist  # noqa: E402
from ppl.inference import sharding  # noqa: E402
from ppl.inference.vi.guides import bind_guide  # noqa: E402
from ppl.inference.vi.method import compiled  # noqa: E402

N, D = 400, 3
rng = np.random.default_rng(0)
X = rng.normal(size=(N, D))
Y = (rng.uniform(size=N) < 1 / (1 + np.exp(-X @ np.array([1.0, -2.0, 0.5])))).astype(np.int32)


def logreg(shard, subsample=None):
    @ppl.model
    def model(X, y):
        beta = ppl.sample("beta", dist.Normal(jnp.zeros(D), 1.0))
        with ppl.plate("rows", X.shape[0], shard=shard, subsample_size=subsample) as idx:
            rows = idx if subsample else slice(None)
            ppl.observe("y", dist.Bernoulli(logits=X[rows] @ beta), y[rows])
    return model


METHOD = ppl.VI(guide=ppl.AutoNormal(), objective=ppl.ELBO(4), optimizer=optax.adam(1e-2), num_steps=100,
                num_samples=20, progress=False)


def compare(subsample=None) -> dict:
    sharded = ppl.infer(logreg(True, subsample), X, Y, method=METHOD, seed=0)
    whole = ppl.infer(logreg(None, subsample), X, Y, method=METHOD, seed=0, devices=jax.devices()[:1])
    rel = np.abs(sharded.history - whole.history) / np.abs(whole.history)
    return {"max_rel": float(rel.max()), "devices": [len(sharded.devices), len(whole.devices)],
            "final": [float(sharded.history[-1]), float(whole.history[-1])]}


def collective() -> dict:
    """The compiled VI step on the sharded data: its rows' sum is an all-reduce across the devices."""
    model = logreg(True)
    program, leaves = model.program(X, Y)
    placement, leaves, _ = sharding.for_program(program, leaves)
    guide = bind_guide(ppl.AutoNormal(), program, leaves)
    phi = guide.init(jax.random.key(0))
    opt = optax.adam(1e-2)
    state = (phi, opt.init(phi), jnp.zeros(()), jnp.zeros((), jnp.int32), jax.random.key(0))
    text = compiled(program, METHOD, guide, opt).chunk(2).lower(state, leaves).compile().as_text()
    return {"all_reduce": "all-reduce" in text, "x_shards": len(leaves[0].sharding.device_set),
            "x_shard_rows": int(leaves[0].addressable_shards[0].data.shape[0])}


if __name__ == "__main__":
    out = {"sharded": compare(), "subsampled": compare(subsample=40), **collective()}
    print("RESULT " + json.dumps(out))

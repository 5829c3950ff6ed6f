"""The IR digest (semantics/ir_digest.py): one program, one digest, in any process; another number
anywhere in the program, another digest; what it cannot read completely, no digest. And the sampler
cache keys a ppl program's density by it, with no trace of the density in a later process."""

import subprocess
import sys
from pathlib import Path

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference.mcmc import export_cache
from ppl.semantics import ir_digest

jax.config.update("jax_platforms", "cpu")

ROOT = Path(__file__).resolve().parents[1]
SCHOOLS = ROOT / "examples" / "posteriordb" / "eight_schools_noncentered.ppl"
Y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
SIGMA = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]


def schools_digest():
    model = ppl.load(SCHOOLS).eight_schools_noncentered
    return ir_digest.digest(model.program(8, Y, SIGMA)[0])


def test_one_program_has_one_digest_in_two_processes():
    here = schools_digest()
    assert here is not None and len(here) == 64
    code = ("import sys; sys.path.insert(0, %r); import test_ir_digest as t; print(t.schools_digest())"
            % str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"JAX_PLATFORMS": "cpu", "PPL_CACHE": "off", "PATH": ""}, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == here
    assert schools_digest() == here  # a second load: new variables, the same digest


WEIGHTS = np.linspace(0.0, 1.0, 1000)
SCALE = {"prior": 5.0}


@ppl.model
def regression(x, y):
    beta = ppl.sample("beta", dist.Normal(0.0, SCALE["prior"]))
    mean = beta * x + jnp.sum(WEIGHTS)  # a constant read from a global array
    with ppl.plate("rows", x.shape[0]):
        ppl.observe("y", dist.Normal(mean, 1.0), y)


def regression_digest(n=4, data=0.0):
    x = jnp.arange(n, dtype=jnp.float32)
    return ir_digest.digest(regression.program(x, x + data)[0])


def test_every_number_in_the_program_is_in_its_digest(monkeypatch):
    base = regression_digest()
    assert base is not None
    assert regression_digest(data=1.0) == base  # data values are arguments, not part of the program
    assert regression_digest(n=5) != base  # its shapes are
    original = WEIGHTS
    changed = original.copy()
    changed[500] += 1e-6  # one element in the middle of a long constant
    monkeypatch.setattr(sys.modules[__name__], "WEIGHTS", changed)
    assert regression_digest() != base
    monkeypatch.setattr(sys.modules[__name__], "WEIGHTS", original)
    assert regression_digest() == base
    monkeypatch.setitem(SCALE, "prior", 5.000001)  # a prior's scale
    assert regression_digest() != base


@jax.custom_jvp
def soft(x):
    return jnp.log1p(jnp.exp(x))


soft.defjvp(lambda primals, tangents: (soft(primals[0]), tangents[0] * jax.nn.sigmoid(primals[0])))


@ppl.model
def with_a_rule(y):
    z = ppl.sample("z", dist.Normal(0.0, 1.0))
    ppl.observe("y", dist.Normal(soft(z), 1.0), y)


class Shifted(dist.Normal):
    """A distribution from outside ppl: its code is not in ppl's source digest."""

    def _log_density(self, value):
        return super()._log_density(value - 1.0)


@ppl.model
def with_own_distribution(y):
    z = ppl.sample("z", dist.Normal(0.0, 1.0))
    ppl.observe("y", Shifted(z, 1.0), y)


class Normal(dist.Normal):
    """A user's class named like ppl's own, met only inside one of ppl's distributions."""

    def _log_density(self, value):
        return super()._log_density(value) - value**2


@ppl.model
def with_own_component(y):
    z = ppl.sample("z", dist.Normal(0.0, 1.0))
    ppl.observe("y", dist.Mixture(jnp.array([0.5, 0.5]), [Normal(z, 1.0), dist.Normal(z, 3.0)]), y)


@ppl.model
def with_own_truncated_base(y):
    z = ppl.sample("z", dist.Normal(0.0, 1.0))
    ppl.observe("y", dist.Truncated(Normal(z, 1.0), low=-5.0), y)


double_p = jax.extend.core.Primitive("double")  # a user's own primitive: its rules are in no digest
double_p.def_impl(lambda x: 2 * x)
double_p.def_abstract_eval(lambda x: x)


@ppl.model
def with_own_primitive(y):
    z = ppl.sample("z", dist.Normal(0.0, 1.0))
    ppl.observe("y", dist.Normal(double_p.bind(z), 1.0), y)


@pytest.mark.parametrize("model", [with_a_rule, with_own_distribution, with_own_component, with_own_truncated_base,
                                   with_own_primitive],
                         ids=["custom_jvp rule", "own class", "own mixture component", "own truncated base",
                              "own primitive"])
def test_what_the_digest_cannot_read_completely_gets_no_digest(model):
    program, _ = model.program(jnp.float32(0.5))
    assert ir_digest.digest(program) is None


@pytest.mark.filterwarnings("ignore::ppl.SamplingWarning")  # short chains: only the cache is under test
def test_a_later_run_of_a_ppl_program_loads_its_sampler_without_tracing_the_density(program_dir, monkeypatch):
    folder, exports = program_dir
    method = ppl.NUTS(num_warmup=30, num_samples=20, num_chains=2, progress=False)
    source = SCHOOLS.read_text()
    first = ppl.infer(ppl.loads(source).eight_schools_noncentered, 8, Y, SIGMA, method=method, seed=3)
    # the sampler and the map back to the model's coordinates, each kept on disk
    assert len(exports) == 2 and len(list(folder.glob("*.bin"))) == 2

    def traced(*args, **kwargs):
        raise AssertionError("the density was traced to key the program")

    monkeypatch.setattr(export_cache, "fingerprint", traced)
    # a new model object: a new program, nothing in memory, so the program comes from disk
    again = ppl.infer(ppl.loads(source).eight_schools_noncentered, 8, Y, SIGMA, method=method, seed=3)
    assert len(exports) == 2, "a later run traced the sampler or the map instead of loading them"
    for name in first.samples:
        np.testing.assert_array_equal(np.asarray(again.samples[name]), np.asarray(first.samples[name]))
    # another prior scale: another program, kept beside the first
    other = source.replace("mu ~ normal(0, 5)", "mu ~ normal(0, 6)")
    assert other != source
    ppl.infer(ppl.loads(other).eight_schools_noncentered, 8, Y, SIGMA, method=method, seed=3)
    assert len(exports) == 4 and len(list(folder.glob("*.bin"))) == 4

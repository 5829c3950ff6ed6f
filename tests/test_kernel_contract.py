"""The kernel contract (``ppl.inference.mcmc.kernel``): every MCMC kernel in ppl is an object with
``init(position) -> State`` and ``step(key, state) -> (State, Info)``, and leaves its target invariant.

Each kernel — HMC, NUTS, trace MH (single-site and block), Gibbs, SMC's rejuvenation moves and PMMH's —
is driven here by the same few lines that know only ``init`` and ``step``. Every chain starts at
an exact draw of the target and takes a few transitions; if the kernel leaves the target
invariant its final positions are again exact, independent draws, so their means and variances
match the target's within Monte Carlo error (z-scores below 4, fixed seeds).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference.mcmc import chees, hmc, nuts
from ppl.inference.mcmc.gibbs import _Kernel as GibbsSweeps
from ppl.inference.mcmc.kernel import Kernel, accept_prob
from ppl.inference.mcmc.mh import MH
from ppl.inference.mcmc.mh_kernel import TraceMH
from ppl.inference.smc import NUTSMove, RandomWalk

Z = 4.0
CHAINS = 1000
MEAN = np.array([1.0, -2.0])
COV = np.array([[1.0, 0.6], [0.6, 0.5]])
PREC = np.linalg.inv(COV)


def gaussian(p):
    d = p["x"] - MEAN
    return -0.5 * d @ PREC @ d


def drive(kernel, key, positions, num_steps):
    """The generic driver: ``init`` at each start, then ``num_steps`` of ``step``; vmapped over chains.
    Returns the final positions, every transition's acceptance probability, the final state's
    log density and that of ``init`` at its position (law 4: a state is that of its point)."""

    def chain(key, position):
        state = kernel.init(position)

        def body(state, k):
            state, info = kernel.step(k, state)
            return state, accept_prob(info)

        state, accept = jax.lax.scan(body, state, jax.random.split(key, num_steps))
        return state.position, accept, state.log_density, kernel.init(state.position).log_density

    run = jax.jit(jax.vmap(chain))
    keys = jax.random.split(key, CHAINS)
    end, accept, log_density, again = run(keys, positions)
    np.testing.assert_allclose(again, log_density, rtol=1e-5, atol=1e-5)
    # law 2: the same keys give the same transitions
    jax.tree.map(np.testing.assert_array_equal, run(keys, positions)[0], end)
    return end, accept


def assert_invariant(start, end, mean, var, accept):
    """``end`` has the target's mean and variance (per coordinate), and the kernel moved."""
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    n = end.shape[0]
    z_mean = (end.mean(0) - mean) / np.sqrt(var / n)
    sq = (end - mean) ** 2
    z_var = (sq.mean(0) - var) / (sq.std(0) / np.sqrt(n))
    assert np.all(np.abs(z_mean) < Z), z_mean
    assert np.all(np.abs(z_var) < Z), z_var
    accept = np.asarray(accept)
    assert np.all((accept >= 0) & (accept <= 1))
    assert np.mean(np.all(end == start, axis=tuple(range(1, end.ndim)))) < 0.9  # it is not the identity


def exact_draws(seed):
    return {"x": jax.random.multivariate_normal(jax.random.PRNGKey(seed), MEAN, COV, (CHAINS,), dtype=jnp.float32)}


DENSITY_KERNELS = {
    "hmc": lambda: hmc.Builder(num_integration_steps=5)(gaussian, 0.3, jnp.ones(2)),
    "nuts": lambda: nuts.Builder()(gaussian, 0.3, jnp.ones(2)),
    "chees": lambda: chees.Builder()(gaussian, 0.3, jnp.ones(2), 1.5),  # jittered HMC, T = 1.5
    "smc_random_walk": lambda: RandomWalk(step_size=0.8).kernel(gaussian),
    "smc_nuts_move": lambda: NUTSMove(step_size=0.3).kernel(gaussian),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "smc_nuts_move" else n
                                  for n in DENSITY_KERNELS])  # NUTSMove is the NUTS kernel above, at a unit metric
def test_density_kernels_leave_a_gaussian_invariant(name):
    kernel = DENSITY_KERNELS[name]()
    assert isinstance(kernel, Kernel)
    start = exact_draws(1)
    end, accept = drive(kernel, jax.random.PRNGKey(2), start, 3)
    assert_invariant(start["x"], end["x"], MEAN, np.diag(COV), accept)


# --------------------------------------------------------------------------- kernels on programs

Y = jnp.array([0.5, 1.5, 1.0])  # a ~ N(0, 1), y_i ~ N(a, 1): a | y ~ N(sum y / 4, 1 / 4); b likewise
POST_MEAN = np.array([3.0 / 4.0, -3.0 / 4.0])
POST_VAR = np.array([1.0 / 4.0, 1.0 / 4.0])


@ppl.model
def two_means(y):
    a = ppl.sample("a", dist.Normal(0.0, 1.0))
    b = ppl.sample("b", dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("ya", dist.Normal(a, 1.0), y)
        ppl.observe("yb", dist.Normal(b, 1.0), -y)


def program_kernels():
    program, args = two_means.program(Y)
    return {
        "mh_single_site": TraceMH(MH(), program, args).family(args)(None),
        "mh_block": TraceMH(MH(selection=["a", "b"]), program, args).family(args)(None),
        "gibbs": GibbsSweeps(program, args).family(args)({"a": jnp.zeros(()), "b": jnp.zeros(())}),
    }


@pytest.mark.parametrize("name", ["mh_single_site", "mh_block", "gibbs"])
def test_trace_kernels_leave_a_conjugate_posterior_invariant(name):
    kernel = program_kernels()[name]
    assert isinstance(kernel, Kernel)
    z = jax.random.normal(jax.random.PRNGKey(4), (CHAINS, 2))
    start = {"a": POST_MEAN[0] + np.sqrt(POST_VAR[0]) * z[:, 0], "b": POST_MEAN[1] + np.sqrt(POST_VAR[1]) * z[:, 1]}
    end, accept = drive(kernel, jax.random.PRNGKey(5), start, 3)
    stack = lambda p: jnp.stack([p["a"], p["b"]], axis=1)
    assert_invariant(stack(start), stack(end), POST_MEAN, POST_VAR, accept)


# --------------------------------------------------------------------------- PMMH's kernel


@ppl.model
def mean_in_a_loop(y):
    a = ppl.sample("a", dist.Normal(0.0, 1.0))

    def step(c, y_t):
        ppl.observe("y", dist.Normal(a, 1.0), y_t)
        return c, c

    ppl.scan(step, 0.0, y)


@pytest.mark.slow  # compiling the filter vmapped over 1000 chains, twice: about 45 s on the loaded 2-core machine
def test_pmmh_kernel_leaves_the_posterior_invariant():
    """PMMH's kernel (``pmmh_kernel``) on a model whose filter is exact (its steps draw nothing, so
    every particle has the same weight and ``Z(a) = p(a) p(y | a)``): the kernel is then an exact
    random-walk Metropolis chain on ``a | y ~ N(3/4, 1/4)``, and its points are exact draws."""
    from ppl.inference.smc import compiled
    from ppl.inference.smc import pmmh_kernel as PK

    program, args = mean_in_a_loop.program(Y)
    f = compiled.get_filter(program, compiled.Options(4, "systematic", 0.5))
    estimate = PK.estimator(f, lambda flat: {"a": flat[0]})
    kernel = PK.PMMHFamily(estimate, list(args))(jnp.asarray(0.8))
    assert isinstance(kernel, Kernel)
    u = POST_MEAN[0] + np.sqrt(POST_VAR[0]) * jax.random.normal(jax.random.PRNGKey(6), (CHAINS, 1))
    keys = jax.random.split(jax.random.PRNGKey(7), CHAINS)
    start = jax.jit(jax.vmap(lambda k, x: PK.point(estimate, k, list(args), x)))(keys, u)
    end, accept = drive(kernel, jax.random.PRNGKey(8), start, 3)
    assert_invariant(start.u, end.u, POST_MEAN[:1], POST_VAR[:1], accept)


def _key_free(x):
    return np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)


def _read_parts(traj):
    """The trajectory's arrays, less NUTS's scratch checkpoint slot (written by every odd or held
    step, read by none)."""
    if isinstance(traj, nuts.Trajectory):
        traj = traj._replace(checkpoints=traj.checkpoints[:, :-1])
    return [_key_free(x) for x in jax.tree.leaves(traj)]


@pytest.mark.parametrize("machine", [nuts.stepwise(max_tree_depth=6), hmc.stepwise(num_integration_steps=5)],
                         ids=["nuts", "hmc"])
def test_advancing_an_ended_trajectory_leaves_it_as_it_is(machine):
    """The ``Stepwise`` law the step-at-a-time driver relies on (it steps every chain, ended or not):
    once ``is_done``, ``advance`` changes nothing that is read, and ``finish`` gives the same."""
    from ppl.inference.mcmc.counter_rng import key_words

    def value_and_grad(x):
        return jax.value_and_grad(lambda y: gaussian({"x": y}))(x)

    m = hmc.metric(jnp.array([1.0, 0.5]))
    x = jnp.array([0.3, -1.0])
    log_density, grad = value_and_grad(x)
    for seed in range(5):
        traj = machine.start(key_words(jax.random.key(seed)), hmc.FlatState(x, log_density, grad), m, 0.4)
        traj = jax.lax.while_loop(lambda t: ~machine.is_done(t), lambda t: machine.advance(t, value_and_grad, m), traj)
        again = traj
        for _ in range(3):
            again = machine.advance(again, value_and_grad, m)
        for a, b in zip(_read_parts(traj), _read_parts(again)):
            np.testing.assert_array_equal(a, b)
        (state, info), (state_again, info_again) = machine.finish(traj), machine.finish(again)
        for a, b in zip(jax.tree.leaves((state, info)), jax.tree.leaves((state_again, info_again))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

"""Stochastic VI with ``ppl.plate(name, N, subsample_size=B)`` (``inference/vi/subsample.py``).

Gaussian conjugate model: mu ~ Normal(0, 1), y_i ~ Normal(mu, 1), i < N; guide mu ~ Normal(m, s).
The ELBO with fresh rows at every estimate is unbiased for the full data's ELBO, whose closed form is
``E[log p(mu, y)] + log(s sqrt(2 pi e))``, and so is its gradient; a fit reaches the exact posterior.
Tolerances: 4 standard errors of the mean of the estimates (fixed seeds).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ppl
from ppl import dist
from ppl.inference.vi.guides import bind_guide
from ppl.inference.vi.method import context

N, B = 200, 20
Y = np.random.default_rng(3).normal(1.0, 1.0, N).astype(np.float32)
POST_MEAN, POST_SD = float(Y.astype(np.float64).sum() / (N + 1)), 1 / math.sqrt(N + 1)


@ppl.model
def subsampled(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0], subsample_size=B) as idx:
        ppl.observe("y", dist.Normal(mu, 1.0), y[idx])


@ppl.model
def guide():
    m = ppl.param("m", 0.8)
    s = ppl.param("s", 0.2, constraint=ppl.constraints.positive)
    ppl.sample("mu", dist.Normal(m, s))


def elbo_exact(m, s):
    y = jnp.asarray(Y, jnp.float32)
    e_log_p = (-0.5 * (N + 1) * math.log(2 * math.pi) - 0.5 * (m**2 + s**2) - 0.5 * jnp.sum((y - m) ** 2)
               - 0.5 * N * s**2)
    return e_log_p + jnp.log(s * math.sqrt(2 * math.pi)) + 0.5


def assert_unbiased(samples, exact, z=4.0):
    samples = np.asarray(samples, np.float64)
    mean, se = samples.mean(), samples.std(ddof=1) / math.sqrt(samples.size)
    assert abs(mean - float(exact)) <= z * se, (mean, float(exact), se)


def elbo_estimates(g, phi, program, leaves, n=20000):
    """``n`` independent ELBO(1) estimates at ``phi`` and their gradients (keys from key(1))."""
    def one(key):
        def s(p):
            value, surrogate = ppl.ELBO(1)(context(g, p, program, leaves), key)
            return surrogate, value
        (_, value), grad = jax.value_and_grad(s, has_aux=True)(phi)
        return value, grad

    return jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(1), n))


@pytest.mark.parametrize("which", ["program", "auto"])
def test_the_subsampled_elbo_and_its_gradient_are_unbiased(which):
    program, leaves = subsampled.program(jnp.asarray(Y))
    g = bind_guide(guide if which == "program" else ppl.AutoNormal(init_loc={"mu": 0.8}, init_scale=0.2),
                   program, leaves)
    phi = g.init(jax.random.key(0))

    values, grads = elbo_estimates(g, phi, program, leaves)
    assert_unbiased(values, elbo_exact(0.8, 0.2))
    dm, ds = jax.grad(elbo_exact, (0, 1))(0.8, 0.2)
    if which == "program":  # phi: m and u = log s
        assert_unbiased(grads["m"], dm)
        assert_unbiased(grads["s"], ds * 0.2)
    else:
        assert_unbiased(grads["loc"]["mu"], dm)
        assert_unbiased(grads["log_scale"]["mu"], ds * 0.2)


@pytest.mark.slow
def test_a_conjugate_model_fits_with_subsampling():
    """Fresh rows each step: the fitted guide is the exact posterior, up to the optimiser's noise (Adam,
    decaying to 1e-4: its last steps move the location by about 1e-4 each, far below 0.2 posterior sds)."""
    method = ppl.VI(guide=ppl.AutoNormal(), objective=ppl.ELBO(4), num_steps=3000, num_samples=4000,
                    optimizer=optax.adam(optax.exponential_decay(2e-2, 3000, 0.005)), progress=False)
    post = ppl.infer(subsampled, jnp.asarray(Y), method=method, seed=0)
    assert abs(float(post.params["loc"]["mu"]) - POST_MEAN) < 0.2 * POST_SD
    assert abs(float(post.params["scale"]["mu"]) / POST_SD - 1) < 0.2
    draws = np.asarray(post.samples["mu"])
    assert abs(draws.mean() - POST_MEAN) < 0.2 * POST_SD + 4 * POST_SD / math.sqrt(draws.size)
    rows = np.asarray(post.samples["data"])  # each posterior draw has rows of its own
    assert rows.shape == (4000, B) and len({tuple(r) for r in rows[:50]}) == 50


def test_the_posterior_rows_follow_the_seed():
    """Each posterior draw's rows come from the run's key (they came from a fixed key(0), the same rows
    whatever the seed): the same seed gives the same rows, another seed other rows in every draw."""
    method = ppl.VI(guide=ppl.AutoNormal(), objective=ppl.ELBO(1), num_steps=10, num_samples=50,
                    optimizer=optax.adam(1e-2), progress=False)
    rows = [np.asarray(ppl.infer(subsampled, jnp.asarray(Y), method=method, seed=s).samples["data"])
            for s in (0, 1, 0)]
    assert rows[0].shape == (50, B) and rows[0].min() >= 0 and rows[0].max() < N
    assert all(len(set(r)) == B for r in rows[0])  # distinct rows within a draw
    np.testing.assert_array_equal(rows[0], rows[2])
    assert np.all(np.any(np.sort(rows[0], 1) != np.sort(rows[1], 1), axis=1))  # every draw's rows differ


def test_nuts_says_to_use_vi():
    with pytest.raises(ppl.PPLError, match="subsample_size=.*NUTS cannot use") as err:
        ppl.infer(subsampled, jnp.asarray(Y), method=ppl.NUTS(num_warmup=10, num_samples=10))
    assert "ppl.VI" in str(err.value) and "summed out" not in str(err.value)


def test_autodelta_fits_a_subsampled_model_its_objective_unbiased():
    """AutoDelta (MAP) with fresh rows each estimate: ELBO(1) at a point is log p(mu, y) estimated from B
    rows, unbiased for the full data's, and so is its gradient (was: 'SubsampleIndices has no finite
    support to enumerate', from the guide's Jacobian run)."""
    program, leaves = subsampled.program(jnp.asarray(Y))
    g = bind_guide(ppl.AutoDelta(init_loc={"mu": 0.8}), program, leaves)
    phi = g.init(jax.random.key(0))

    values, grads = elbo_estimates(g, phi, program, leaves)
    y = Y.astype(np.float64)
    log_joint = stats_norm_logpdf(0.8, 0.0) + stats_norm_logpdf(y, 0.8).sum()
    assert_unbiased(values, log_joint)
    assert_unbiased(grads["mu"], -0.8 + (y - 0.8).sum())


def stats_norm_logpdf(x, loc):
    return -0.5 * math.log(2 * math.pi) - 0.5 * (np.asarray(x, np.float64) - loc) ** 2


@pytest.mark.parametrize("guide_", [ppl.AutoNormal(init_loc="map"), ppl.AutoMultivariateNormal(init_loc="map"),
                                    ppl.AutoLaplace()], ids=["normal-map", "mvn-map", "laplace"])
def test_the_full_data_mode_is_refused_under_subsampling_at_the_plate(guide_):
    """The mode and the curvature need the full data's density, which a subsampled plate never computes: a
    clear error at the plate's line (was: "no value was given for the random choice 'data'")."""
    program, leaves = subsampled.program(jnp.asarray(Y))
    with pytest.raises(ppl.PPLError, match="plate 'data' subsamples its rows") as err:
        bind_guide(guide_, program, leaves)
    assert err.value.span is not None and "subsample_size=B" in err.value.span.source_line(err.value.span.line)


@pytest.mark.parametrize("method", [ppl.MH(num_warmup=10, num_samples=10), ppl.Gibbs(num_warmup=10, num_samples=10),
                                    ppl.SMC(num_particles=10), ppl.Importance(num_particles=10),
                                    ppl.Enumerate(), ppl.Pathfinder(), ppl.PMMH(num_samples=10)],
                         ids=["MH", "Gibbs", "SMC", "Importance", "Enumerate", "Pathfinder", "PMMH"])
def test_samplers_that_need_the_exact_density_say_to_use_vi(method):
    """MH, Gibbs and SMC would treat the rows as a latent site and sample p(mu, rows | y), whose mu-marginal
    is not the posterior (they ran and returned it, silently). Importance did too: its weights were the exp
    of the subsample's estimate of the log-likelihood (mu's mean came out near -0.1 where the posterior's is
    near 1), and Pathfinder said "no value was given for the random choice 'data'"."""
    name = type(method).__name__
    with pytest.raises(ppl.PPLError, match=f"subsample_size=.*{name} cannot use") as err:
        ppl.infer(subsampled, jnp.asarray(Y), method=method)
    assert "ppl.VI" in str(err.value)
    assert err.value.span is not None and "subsample_size=B" in err.value.span.source_line(err.value.span.line)


@ppl.model
def subsampled_dynamic(y):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    if float(mu) > 100.0:  # Python control flow on a draw: the model runs in the eager engine
        mu = mu - 1.0
    with ppl.plate("data", y.shape[0], subsample_size=B) as idx:
        ppl.observe("y", dist.Normal(mu, 1.0), y[idx])


@ppl.model
def subsampled_dynamic_discrete(y):
    z = ppl.sample("z", dist.Bernoulli(0.5))
    mu = 1.0 if int(z) == 1 else 0.0  # Python control flow on a draw
    with ppl.plate("data", y.shape[0], subsample_size=B) as idx:
        ppl.observe("y", dist.Normal(mu, 1.0), y[idx])


@pytest.mark.parametrize("method, says", [(ppl.Importance(num_particles=10), "the eager engine"),
                                          (ppl.SMC(num_particles=10), "the eager engine"),
                                          (ppl.MH(num_warmup=5, num_samples=5), "MH"),
                                          (ppl.Enumerate(), "Enumerate")],
                         ids=["Importance", "SMC", "MH", "Enumerate"])
def test_the_eager_engine_refuses_a_subsampled_plate(method, says):
    """A dynamic model runs as Python, its plate met while it runs: the same refusal, at the plate's line
    (Importance, SMC and MH ran such a model and returned a wrong posterior, silently; Enumerate offered
    to enumerate the rows' first K subsets as a random choice)."""
    model = subsampled_dynamic_discrete if isinstance(method, ppl.Enumerate) else subsampled_dynamic
    with pytest.raises(ppl.PPLError, match=f"subsample_size=.*{says} .*cannot use") as err:
        ppl.infer(model, jnp.asarray(Y), method=method)
    assert err.value.span is not None and "subsample_size=B" in err.value.span.source_line(err.value.span.line)


@ppl.model
def subsampled_then_steps(y, xs):
    mu = ppl.sample("mu", dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0], subsample_size=B) as idx:
        ppl.observe("y", dist.Normal(mu, 1.0), y[idx])

    def step(x, obs):
        x = ppl.sample("x", dist.Normal(x + mu, 1.0))
        ppl.observe("o", dist.Normal(x, 1.0), obs)
        return x, x

    return ppl.scan(step, 0.0, xs)


def test_pmmh_says_to_use_vi():
    """PMMH's filter estimate exp((N / B) sum_rows l) is not unbiased for the likelihood, so its chain
    does not target the posterior (it ran, silently)."""
    with pytest.raises(ppl.PPLError, match="subsample_size=.*PMMH cannot use") as err:
        ppl.infer(subsampled_then_steps, jnp.asarray(Y), jnp.zeros(5),
                  method=ppl.PMMH(num_warmup=5, num_samples=5, num_particles=8))
    assert "ppl.VI" in str(err.value)


def test_smc_in_the_eager_engine_says_to_use_vi_too():
    with pytest.raises(ppl.PPLError, match="subsample_size=.*SMC cannot use"):
        ppl.infer(subsampled, jnp.asarray(Y), method=ppl.SMC(num_particles=10, engine="eager"))

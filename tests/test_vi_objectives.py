"""The library objectives and the blocks they are written with, against exact answers.

- VIMCO and the IWELBO (leave-one-out baselines) are unbiased for the gradient of the IWELBO_K,
  computed exactly by summing over every joint draw of a Bernoulli guide; the leave-one-out
  baselines lower the variance of REINFORCE.
- RWS's surrogate has the expected gradient its definition gives (exact sum over the draws).
- ``marginal`` (SIR): HVI's value and gradient match their closed forms on a Gaussian
  hierarchical guide; SIR(5) lies between HVI and the ELBO of the exact marginal.
- Nested ``sim``: ``E_z[E_z'[g]]`` composes.

Tolerances are 4 standard errors of the estimates' mean (fixed seeds).
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import ppl
from ppl.inference.vi.guides import bind_guide
from ppl.inference.vi.objectives import Context, leave_one_out, log_mean_exp
from ppl.stdlib.errors import ModelError

N = 20000
Y = 1.5


@ppl.model
def switch(y):
    z = ppl.sample("z", ppl.dist.Bernoulli(probs=0.3))
    ppl.observe("y", ppl.dist.Normal(2.0 * z, 1.0), y)


@ppl.model
def coin_guide():
    q = ppl.param("q", 0.35, constraint=ppl.constraints.unit_interval)
    ppl.sample("z", ppl.dist.Bernoulli(probs=q), estimator="reinforce")


def bound(model, guide, *args):
    program, leaves = model.program(*args)
    g = bind_guide(guide, program, leaves)
    return program, leaves, g, g.init(jax.random.key(0))


def surrogate_grads(model, guide, args, objective, n=N, seed=1):
    """``n`` gradient estimates of ``objective`` at the guide's initial parameters, and the value estimates."""
    program, leaves, g, phi = bound(model, guide, *args)

    def surrogate(p, key):
        value, s = objective(Context(g, p, program, leaves), key)
        return s, value

    def one(key):
        (_, value), grad = jax.value_and_grad(surrogate, has_aux=True)(phi, key)
        return grad, value

    grads, values = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), n))
    return phi, grads, values


def assert_unbiased(samples, exact, z=4.0):
    samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
    exact = np.ravel(np.asarray(exact, np.float64))
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - exact) <= z * se + 1e-7), (mean, exact, se)


def log_joint(z):
    return jnp.log(jnp.where(z == 1, 0.3, 0.7)) + jax.scipy.stats.norm.logpdf(Y, 2.0 * z, 1.0)


def log_q(z, u):
    q = jax.nn.sigmoid(u)
    return jnp.log(jnp.where(z == 1, q, 1 - q))


def exact_over_draws(K, fn):
    """``sum over z in {0,1}^K of prod_k q(z_k) fn(z)`` as a function of the guide's unconstrained q."""

    def total(u):
        out = 0.0
        for zs in itertools.product([0, 1], repeat=K):
            z = jnp.array(zs)
            out = out + jnp.exp(jnp.sum(log_q(z, u))) * fn(z, u)
        return out

    return total


def iwelbo_exact(K):
    return exact_over_draws(K, lambda z, u: log_mean_exp(log_joint(z) - log_q(z, u)))


# ---------------------------------------------------------------------------
# VIMCO and IWELBO: unbiased for grad IWELBO_K, and the baselines help


def plain_iwelbo(K):
    """The IWELBO_K with no baseline at all (for comparison)."""
    def objective(ctx, key):
        def f(zs, log_qs):
            return log_mean_exp(jax.vmap(ctx.density)(zs) - log_qs)
        return ctx.sim_many(jax.random.split(key, K), f, baseline=0.0)
    return objective


def test_multi_sample_objectives_are_unbiased_and_leave_one_out_helps():
    exact = jax.grad(iwelbo_exact(3))
    var = {}
    for name, objective in [("vimco", ppl.VIMCO(3)), ("iwelbo", ppl.IWELBO(3)), ("plain", plain_iwelbo(3))]:
        phi, grads, values = surrogate_grads(switch, coin_guide, (Y,), objective)
        assert_unbiased(grads["q"], exact(phi["q"]))
        assert_unbiased(values, iwelbo_exact(3)(phi["q"]))
        var[name] = float(np.var(grads["q"]))
    assert var["vimco"] < 0.5 * var["plain"] and var["iwelbo"] < 0.5 * var["plain"], var


def test_a_hand_written_elbo_is_the_library_one():
    def my_elbo(ctx, key):
        return ctx.sim(key, lambda z, log_q: ctx.density(z) - log_q)

    # both unbiased for the exact ELBO's value and gradient (a sum over the Bernoulli's two values)
    elbo = exact_over_draws(1, lambda z, u: jnp.sum(log_joint(z) - log_q(z, u)))
    _, g1, v1 = surrogate_grads(switch, coin_guide, (Y,), my_elbo)
    phi, g2, v2 = surrogate_grads(switch, coin_guide, (Y,), ppl.ELBO(1))
    for g, v in ((g1, v1), (g2, v2)):
        assert_unbiased(g["q"], jax.grad(elbo)(phi["q"]))
        assert_unbiased(v, elbo(phi["q"]))


def test_an_objective_that_calls_others_is_unbiased():
    """0.3 ELBO + 0.7 IWELBO_3, each called inside: unbiased for the same mixture of exact gradients."""
    def mixed(ctx, key):
        k1, k2 = jax.random.split(key)
        (v1, s1), (v2, s2) = ppl.ELBO(1)(ctx, k1), ppl.IWELBO(3)(ctx, k2)
        return 0.3 * v1 + 0.7 * v2, 0.3 * s1 + 0.7 * s2

    elbo = exact_over_draws(1, lambda z, u: jnp.sum(log_joint(z) - log_q(z, u)))
    phi, grads, values = surrogate_grads(switch, coin_guide, (Y,), mixed)
    u = phi["q"]
    assert_unbiased(grads["q"], 0.3 * jax.grad(elbo)(u) + 0.7 * jax.grad(iwelbo_exact(3))(u))
    assert_unbiased(values, 0.3 * elbo(u) + 0.7 * iwelbo_exact(3)(u))


def test_leave_one_out_baselines():
    log_w = jnp.array([0.3, -1.2, 2.0, 0.1])
    arith = leave_one_out(log_w, "arithmetic")
    geo = leave_one_out(log_w, "geometric")
    for k in range(4):
        others = np.delete(np.asarray(log_w), k)
        assert float(arith[k]) == pytest.approx(float(np.log(np.mean(np.exp(others)))), rel=1e-5)
        filled = np.insert(others, k, others.mean())
        assert float(geo[k]) == pytest.approx(float(np.log(np.mean(np.exp(filled)))), rel=1e-5)


def test_vimco_needs_two_draws():
    with pytest.raises(ModelError, match="VIMCO needs K >= 2"):
        surrogate_grads(switch, coin_guide, (Y,), ppl.VIMCO(1), n=2)


# ---------------------------------------------------------------------------
# RWS: the expected wake-q update, by an exact sum over the draws


def test_rws_wake_q_has_its_expected_gradient():
    K = 3

    def wake_q(z, u):
        w = jax.nn.softmax(jax.lax.stop_gradient(log_joint(z) - log_q(z, u)))
        return jnp.sum(w * log_q(z, u))  # its gradient in u at fixed weights: sum_k wbar_k grad log q(z_k)

    def expected(u):  # E_z[sum_k wbar_k grad_u log q(z_k)], the draws' own law not differentiated
        total = 0.0
        for zs in itertools.product([0, 1], repeat=K):
            z = jnp.array(zs)
            p = jnp.exp(jnp.sum(log_q(z, jax.lax.stop_gradient(u))))
            total = total + p * wake_q(z, u)
        return total

    phi, grads, values = surrogate_grads(switch, coin_guide, (Y,), ppl.RWS(K))
    assert_unbiased(grads["q"], jax.grad(expected)(phi["q"]))
    assert_unbiased(values, iwelbo_exact(K)(phi["q"]))


# ---------------------------------------------------------------------------
# marginal (SIR): a Gaussian hierarchical guide, whose marginal is known


YS = np.array([0.3, 1.2, -0.4, 2.0, 0.9], np.float32)


@ppl.model
def normal_mean(y):
    mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", ppl.dist.Normal(mu, 1.0), y)


A0, B0, S0 = 0.4, 0.8, 0.5


@ppl.model
def hierarchical():
    a = ppl.param("a", A0)
    b = ppl.param("b", B0)
    s = ppl.param("s", S0, constraint=ppl.constraints.positive)
    u = ppl.sample("u", ppl.dist.Normal(0.0, 1.0))
    ppl.sample("mu", ppl.dist.Normal(a + b * u, s))


def expected_log_joint(a, v):
    """E[log p(mu, y)] for mu ~ Normal(a, sqrt(v))."""
    n = YS.size
    return (-0.5 * (n + 1) * math.log(2 * math.pi) - 0.5 * (a**2 + v)
            - 0.5 * jnp.sum((YS - a) ** 2) - 0.5 * n * v)


def hvi_exact(theta):
    """HVI (SIR(1)): E[log p(mu, y) - log q(mu | u)] = E[log p] + log(s sqrt(2 pi)) + 1/2."""
    a, b, log_s = theta
    s = jnp.exp(log_s)
    return expected_log_joint(a, b**2 + s**2) + jnp.log(s * math.sqrt(2 * math.pi)) + 0.5


def elbo_of_the_marginal(a, b, s):
    v = b**2 + s**2
    return float(expected_log_joint(a, v)) + 0.5 * math.log(2 * math.pi * v) + 0.5


def test_hvi_value_and_gradient_match_the_closed_form():
    guide = ppl.marginal(hierarchical, over="u", K=1)
    phi, grads, values = surrogate_grads(normal_mean, guide, (YS,), ppl.ELBO(1))
    theta = jnp.array([phi["a"], phi["b"], phi["s"]])
    assert_unbiased(values, hvi_exact(theta))
    g = np.stack([np.asarray(grads["a"]), np.asarray(grads["b"]), np.asarray(grads["s"])], axis=1)
    assert_unbiased(g, jax.grad(hvi_exact)(theta))


@pytest.mark.slow
def test_sir_tightens_towards_the_marginal_elbo():
    hvi = float(hvi_exact(jnp.array([A0, B0, math.log(S0)])))
    top = elbo_of_the_marginal(A0, B0, S0)
    _, _, values = surrogate_grads(normal_mean, ppl.marginal(hierarchical, over="u", K=5), (YS,), ppl.ELBO(1))
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert values.mean() - hvi > 4 * se  # SIR(5) is tighter than SIR(1) ...
    assert values.mean() <= top + 4 * se  # ... and still below the ELBO with the exact marginal


def test_marginal_refuses_a_bad_guide():
    @ppl.model
    def late():
        mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
        ppl.sample("u", ppl.dist.Normal(mu, 1.0))

    with pytest.raises(ModelError, match=r"'u' depends on 'mu', a site the guide keeps"):
        surrogate_grads(normal_mean, ppl.marginal(late, over="u"), (YS,), ppl.ELBO(1), n=2)
    with pytest.raises(ModelError, match=r"names 'v', which is not a random choice of the guide"):
        surrogate_grads(normal_mean, ppl.marginal(hierarchical, over="v"), (YS,), ppl.ELBO(1), n=2)
    with pytest.raises(ModelError, match=r"names 'mu', a latent site of the model"):
        surrogate_grads(normal_mean, ppl.marginal(hierarchical, over=("u", "mu")), (YS,), ppl.ELBO(1), n=2)


# ---------------------------------------------------------------------------
# Nested expectations: E_z[E_z'[(z + z')^2]] with z, z' iid Bernoulli(q): 2q + 2q^2


def test_nested_sim_composes():
    def nested(ctx, key):
        k1, k2 = jax.random.split(key)
        return ctx.sim(k1, lambda z, _: ctx.sim(k2, lambda z2, _: 1.0 * (z["z"] + z2["z"]) ** 2)[1])

    phi, grads, values = surrogate_grads(switch, coin_guide, (Y,), nested)
    q = float(jax.nn.sigmoid(phi["q"]))
    assert_unbiased(values, 2 * q + 2 * q**2)
    assert_unbiased(grads["q"], (2 + 4 * q) * q * (1 - q))  # d/du through q = sigmoid(u)


@pytest.mark.slow
def test_nested_program_is_the_tower_property():
    """A sub-model called inside an expectation's program: its choices join the measure."""

    @ppl.model
    def inner(p):
        return ppl.sample("b", ppl.dist.Bernoulli(probs=p), estimator="enum")

    def outer(p):
        a = ppl.sample("a", ppl.dist.Bernoulli(probs=p), estimator="enum")
        return 1.0 * (a + inner(p * 0.5)) ** 2  # E = E_a[E_b[(a + b)^2]]

    p = 0.4
    E = ppl.expectation(outer)

    def exact(p):
        q = p * 0.5
        return p + q + 2 * p * q

    assert float(E.estimate(jax.random.key(0), p)) == pytest.approx(exact(p), rel=1e-5)
    assert float(E.grad(jax.random.key(0), p)) == pytest.approx(float(jax.grad(exact)(p)), rel=1e-5)


# ---------------------------------------------------------------------------
# Loops and plates: a guide set at the exact posterior makes every ELBO estimate log p(y)


def test_loops_and_plates_at_the_exact_posterior():
    """Model and guide with a plate and a scan. With the guide's parameters at the exact posterior,
    log p(z, y) - log q(z) = log p(y) for every draw z: a check of every address, shape and term."""
    from scipy.stats import multivariate_normal

    mean, cov = _chain_posterior(full=True)
    n = W.size
    c = np.zeros(n)
    a = np.zeros(n)
    b = np.zeros(n)
    for t in range(n):  # x_t | x_{t-1} under the posterior (a Gauss-Markov chain: only x_{t-1} matters)
        if t == 0:
            a[t], b[t] = mean[0], math.sqrt(cov[0, 0])
            continue
        c[t] = cov[t, t - 1] / cov[t - 1, t - 1]
        a[t] = mean[t] - c[t] * mean[t - 1]
        b[t] = math.sqrt(cov[t, t] - c[t] * cov[t - 1, t])
    g_mean, g_sd = G / 2, np.full(3, math.sqrt(0.5))

    @ppl.model
    def exact_guide():
        m = ppl.param("m", g_mean)
        s = ppl.param("s", g_sd, constraint=ppl.constraints.positive)
        with ppl.plate("groups", 3):
            ppl.sample("mu", ppl.dist.Normal(m, s))

        def step(prev, t):
            return ppl.sample("x", ppl.dist.Normal(jnp.asarray(a)[t] + jnp.asarray(c)[t] * prev,
                                                   jnp.asarray(b)[t])), None

        ppl.scan(step, 0.0, jnp.arange(n))

    prior = np.array([[0.5 ** abs(i - j) * (1 - 0.25 ** (min(i, j) + 1)) / 0.75 for j in range(n)] for i in range(n)])
    log_z = (multivariate_normal(np.zeros(3), 2 * np.eye(3)).logpdf(G)
             + multivariate_normal(np.zeros(n), prior + np.eye(n)).logpdf(W))
    _, _, values = surrogate_grads(loops_and_plates, exact_guide, (G, W), ppl.ELBO(1), n=32)
    np.testing.assert_allclose(np.asarray(values, np.float64), log_z, rtol=0, atol=2e-4)


# ---------------------------------------------------------------------------
# Fits: each objective, and compositions of them, against exact posteriors. Each fits with
# several seeds and allows 4 standard errors of their scatter (the optimiser's noise), with a
# floor of 2% of the posterior sd for the bias a finite number of steps leaves.


def _schedule(lr=2e-2, steps=3000):
    import optax

    return optax.adam(optax.exponential_decay(lr, steps // 4, 0.3))


def _agree(values, exact, sd):
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert abs(values.mean() - exact) <= max(4 * se, 0.02 * sd), (values, exact, se)


N_Y = YS.size
POST_MEAN, POST_SD = float(YS.sum() / (N_Y + 1)), math.sqrt(1 / (N_Y + 1))


def _log_z():
    from scipy.stats import multivariate_normal

    return multivariate_normal(np.zeros(N_Y), np.eye(N_Y) + np.ones((N_Y, N_Y))).logpdf(YS)


@ppl.model
def normal_guide():
    m = ppl.param("m", 0.0)
    s = ppl.param("s", 1.0, constraint=ppl.constraints.positive)
    ppl.sample("mu", ppl.dist.Normal(m, s))


@pytest.mark.slow
def test_hvi_fits_the_posterior_through_its_marginal():
    """The hierarchical guide's marginal N(a, sqrt(b^2 + s^2)) contains the posterior; HVI's bound is
    tight only where u says nothing about mu (b -> 0), so the fit finds the posterior and the bound
    reaches log p(y)."""
    method = ppl.VI(guide=ppl.marginal(hierarchical, over="u", K=1), objective=ppl.ELBO(16),
                    optimizer=_schedule(2e-2, 4000), num_steps=4000, num_final=400)
    posts = [ppl.infer(normal_mean, YS, method=method, seed=s) for s in (0, 1)]
    _agree([p.params["a"] for p in posts], POST_MEAN, POST_SD)
    _agree([math.sqrt(p.params["b"] ** 2 + p.params["s"] ** 2) for p in posts], POST_SD, POST_SD)
    for p in posts:
        se = p.result.log_evidence_se
        assert -4 * se <= _log_z() - p.log_evidence <= 4 * se + 5e-3


@pytest.mark.slow
def test_an_objective_that_calls_others_fits():
    """Half the ELBO plus half the IWELBO_4: both are maximised by the exact posterior (in the family),
    so their mixture is too."""

    def mixed(ctx, key):
        k1, k2 = jax.random.split(key)
        (v1, s1), (v2, s2) = ppl.ELBO(8)(ctx, k1), ppl.IWELBO(4, num_particles=2)(ctx, k2)
        return 0.5 * (v1 + v2), 0.5 * (s1 + s2)

    method = ppl.VI(guide=normal_guide, objective=mixed, optimizer=_schedule(), num_steps=3000)
    posts = [ppl.infer(normal_mean, YS, method=method, seed=s) for s in (0, 1)]
    _agree([p.params["m"] for p in posts], POST_MEAN, POST_SD)
    _agree([p.params["s"] for p in posts], POST_SD, POST_SD)


G = np.array([0.8, -1.1, 2.3], np.float32)   # one observation per group (plate)
W = np.array([1.7, 0.2, -0.6, 1.0], np.float32)  # one observation per step (loop)


@ppl.model
def loops_and_plates(g, w):
    with ppl.plate("groups", g.shape[0]):
        mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
        ppl.observe("g", ppl.dist.Normal(mu, 1.0), g)

    def step(prev, wt):
        x = ppl.sample("x", ppl.dist.Normal(0.5 * prev, 1.0))
        ppl.observe("w", ppl.dist.Normal(x, 1.0), wt)
        return x, None

    ppl.scan(step, 0.0, w)


@ppl.model
def loops_and_plates_guide():
    m = ppl.param("m", jnp.zeros(3))
    s = ppl.param("s", jnp.ones(3), constraint=ppl.constraints.positive)
    a = ppl.param("a", jnp.zeros(4))
    b = ppl.param("b", jnp.full(4, 0.5), constraint=ppl.constraints.positive)
    c = ppl.param("c", jnp.zeros(4))
    with ppl.plate("groups", 3):
        ppl.sample("mu", ppl.dist.Normal(m, s))

    def step(prev, t):  # x_t | x_{t-1} ~ Normal(a_t + c_t x_{t-1}, b_t): contains the Gauss-Markov posterior
        x = ppl.sample("x", ppl.dist.Normal(a[t] + c[t] * prev, b[t]))
        return x, None

    ppl.scan(step, 0.0, jnp.arange(4))


def _chain_posterior(full=False):
    """The exact posterior of the loop's x (a Gaussian): mean and sd per step (or the covariance)."""
    n = W.size
    prec = np.zeros((n, n))
    for t in range(n):  # prior x_t - 0.5 x_{t-1} ~ N(0, 1), plus the observation
        row = np.zeros(n)
        row[t] = 1.0
        if t:
            row[t - 1] = -0.5
        prec += np.outer(row, row)
    prec += np.eye(n)
    cov = np.linalg.inv(prec)
    return (cov @ W, cov) if full else (cov @ W, np.sqrt(np.diag(cov)))


@pytest.mark.slow
def test_guide_and_model_with_loops_and_plates():
    method = ppl.VI(guide=loops_and_plates_guide, objective=ppl.ELBO(8), optimizer=_schedule(3e-2, 3000),
                    num_steps=3000, num_samples=4000)
    posts = [ppl.infer(loops_and_plates, G, W, method=method, seed=s) for s in (0, 1)]
    for i in range(3):
        _agree([p.params["m"][i] for p in posts], G[i] / 2, math.sqrt(0.5))
        _agree([p.params["s"][i] for p in posts], math.sqrt(0.5), math.sqrt(0.5))
    mean, sd = _chain_posterior()
    for t in range(4):  # the guide's marginals, from its draws (Monte Carlo error added to the scatter)
        draws = [float(np.mean(p.samples["x"][:, t])) for p in posts]
        assert all(abs(d - mean[t]) <= 4 * sd[t] / math.sqrt(4000) + 0.05 * sd[t] for d in draws), (draws, mean[t])


@ppl.model
def learned_prior(y):
    mu = ppl.param("mu", 0.0)
    z = ppl.sample("z", ppl.dist.Normal(mu, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", ppl.dist.Normal(z, 1.0), y)


@pytest.mark.parametrize("objective", [ppl.RWS(8), ppl.ELBO(8)], ids=["rws", "elbo"])
@pytest.mark.slow
def test_model_parameters_reach_maximum_likelihood(objective):
    """y ~ Normal(mu 1, I + 1 1^T) marginally: log p_mu(y) is largest at mu = mean(y). RWS's wake-p and
    the ELBO (with a guide family holding the posterior) both find it; the guide fits p(z | y, mu)."""
    method = ppl.VI(guide=normal_guide_z, objective=objective, optimizer=_schedule(3e-2, 4000), num_steps=4000)
    posts = [ppl.infer(learned_prior, YS, method=method, seed=s) for s in (0, 1)]
    ml = float(YS.mean())
    _agree([p.params["model"]["mu"] for p in posts], ml, 1.0)
    _agree([p.params["guide"]["m"] for p in posts], (ml + YS.sum()) / (N_Y + 1), POST_SD)
    _agree([p.params["guide"]["s"] for p in posts], POST_SD, POST_SD)


@ppl.model
def normal_guide_z():
    m = ppl.param("m", 0.0)
    s = ppl.param("s", 1.0, constraint=ppl.constraints.positive)
    ppl.sample("z", ppl.dist.Normal(m, s))


@pytest.mark.slow
def test_rws_fits_a_discrete_posterior():
    """RWS's wake-q on the Bernoulli switch: q -> p(z = 1 | y), the family holding the posterior."""
    joint = np.array([0.7 * norm.pdf(Y, 0, 1), 0.3 * norm.pdf(Y, 2, 1)])
    exact = joint[1] / joint.sum()
    method = ppl.VI(guide=coin_guide, objective=ppl.RWS(8), optimizer=_schedule(5e-2, 2000), num_steps=2000)
    posts = [ppl.infer(switch, np.float32(Y), method=method, seed=s) for s in (0, 1)]
    _agree([float(p.params["q"]) for p in posts], exact, math.sqrt(exact * (1 - exact)))
    assert all(abs(p.log_evidence - math.log(joint.sum())) < 4 * p.result.log_evidence_se + 1e-3 for p in posts)


# ---------------------------------------------------------------------------
# Bad input names the site and its line


def _line_of(text):
    """The line of this file holding ``text`` (once)."""
    import pathlib

    lines = pathlib.Path(__file__).read_text(encoding="utf-8").splitlines()
    found = [i + 1 for i, line in enumerate(lines) if text in line and "_line_of" not in line]
    assert len(found) == 1, (text, found)
    return found[0]


@ppl.model
def two_sites(y):
    mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
    sigma = ppl.sample("sigma", ppl.dist.HalfNormal(1.0))  # the positive site
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", ppl.dist.Normal(mu, sigma), y)


def test_bad_guides_name_the_site_and_the_line():
    @ppl.model
    def lacks_sigma():
        ppl.sample("mu", ppl.dist.Normal(ppl.param("m", 0.0), 1.0))

    with pytest.raises(ModelError, match=rf"no random choice 'sigma'.*\(line {_line_of('# the positive site')}\)"):
        ppl.infer(two_sites, YS, method=ppl.VI(guide=lacks_sigma, num_steps=1))

    @ppl.model
    def normal_on_positive():
        ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
        ppl.sample("sigma", ppl.dist.Normal(1.0, 0.1))  # real line: not inside (0, inf)

    with pytest.raises(ModelError, match=rf"'sigma' from Normal on real.*\(line {_line_of('# the positive site')}\)") \
            as info:
        ppl.infer(two_sites, YS, method=ppl.VI(guide=normal_on_positive, num_steps=1))
    assert info.value.span.line == _line_of("# real line: not inside")

    @ppl.model
    def extra_site():
        ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
        ppl.sample("sigma", ppl.dist.LogNormal(0.0, 1.0))
        ppl.sample("tau", ppl.dist.Normal(0.0, 1.0))  # not in the model

    with pytest.raises(ModelError, match=r"random choice 'tau' is not a latent site") as info:
        ppl.infer(two_sites, YS, method=ppl.VI(guide=extra_site, num_steps=1))
    assert info.value.span.line == _line_of("# not in the model")

    @ppl.model
    def enum_on_normal():
        ppl.sample("mu", ppl.dist.Normal(0.0, 1.0), estimator="enum")  # continuous
        ppl.sample("sigma", ppl.dist.LogNormal(0.0, 1.0))

    with pytest.raises(ModelError, match=r"'mu' \(Normal\) has a support that is continuous") as info:
        ppl.infer(two_sites, YS, method=ppl.VI(guide=enum_on_normal, num_steps=1))
    assert info.value.span.line == _line_of("# continuous")

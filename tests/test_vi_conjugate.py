"""``ppl.VI`` on conjugate models: the fitted guide against the exact posterior and evidence.

Tolerances. The fitted parameters are the end of a stochastic optimisation, so
they scatter around the optimum; each test fits with several seeds and allows
4 standard errors of that scatter (the optimiser's noise), with a floor of 2% of
the posterior sd for the bias left by a finite number of steps. The final ELBO
is an average of ``num_final`` independent estimates (standard error reported);
where the family contains the posterior, the ELBO at the optimum equals
``log p(y)``, so it must lie within 4 standard errors of it (and not above it,
beyond noise: it is a lower bound), allowing 2e-3 nats of KL left by the fit.
"""

import math

import jax
import numpy as np
import optax
import pytest
from scipy.special import betaln, gammaln
from scipy.stats import multivariate_normal

import ppl
from ppl.stdlib.errors import ModelError

Y = np.array([0.3, 1.2, -0.4, 2.0, 0.9, 1.1, 0.5, 1.7, 0.2, 1.4], np.float32)


@ppl.model
def normal_normal(y):
    mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", ppl.dist.Normal(mu, 1.0), y)


def _schedule(lr=2e-2, steps=5000):
    return optax.adam(optax.exponential_decay(lr, steps // 4, 0.3))


def _fits(model, data, method, seeds=(0, 1, 2)):
    return [ppl.infer(model, data, method=method, seed=s) for s in seeds]


def _agree(values, exact, sd):
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert abs(values.mean() - exact) <= max(4 * se, 0.02 * sd), (values, exact, se)


def _bound_matches(post, log_z):
    se = post.result.log_evidence_se
    assert -4 * se <= log_z - post.log_evidence <= 4 * se + 2e-3, (post.log_evidence, log_z, se)


def test_normal_normal_autonormal():
    n = Y.size
    mean, sd = Y.sum() / (1 + n), math.sqrt(1 / (1 + n))
    log_z = multivariate_normal(np.zeros(n), np.eye(n) + np.ones((n, n))).logpdf(Y)
    method = ppl.VI(guide=ppl.AutoNormal(), objective=ppl.ELBO(16), optimizer=_schedule(), num_steps=5000)
    posts = _fits(normal_normal, Y, method)
    _agree([p.params["loc"]["mu"] for p in posts], mean, sd)
    _agree([p.params["scale"]["mu"] for p in posts], sd, sd)
    for p in posts:
        _bound_matches(p, log_z)
        assert p.history.shape == (5000,)
        assert p.samples["mu"].shape == (1000,)
    # the draws are the fitted guide's: their mean and sd within Monte Carlo error of its parameters
    p = posts[0]
    assert abs(p.mean("mu") - p.params["loc"]["mu"]) <= 4 * p.params["scale"]["mu"] / math.sqrt(1000)
    assert p.method == "VI" and "lower bound" in p.notes[0]
    # the objective improved from the start
    assert p.history[-100:].mean() > p.history[:10].mean()


X = np.array([1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1], np.int32)


@ppl.model
def beta_bernoulli(x):
    p = ppl.sample("p", ppl.dist.Beta(2.0, 2.0))
    with ppl.plate("data", x.shape[0]):
        ppl.observe("x", ppl.dist.Bernoulli(probs=p), x)


@ppl.model
def beta_guide():
    a = ppl.param("a", 1.0, constraint=ppl.constraints.positive)
    b = ppl.param("b", 1.0, constraint=ppl.constraints.positive)
    ppl.sample("p", ppl.dist.Beta(a, b), estimator="implicit")


def test_beta_bernoulli_implicit_reparameterisation():
    k, n = int(X.sum()), X.size
    a, b = 2 + k, 2 + n - k
    log_z = betaln(a, b) - betaln(2, 2)
    method = ppl.VI(guide=beta_guide, objective=ppl.ELBO(16), optimizer=_schedule(3e-2, 6000), num_steps=6000)
    posts = _fits(beta_bernoulli, X, method, seeds=(0, 1))
    mean, sd = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    fitted = [(float(p.params["a"]), float(p.params["b"])) for p in posts]
    _agree([fa / (fa + fb) for fa, fb in fitted], mean, sd)
    _agree([math.sqrt(fa * fb / ((fa + fb) ** 2 * (fa + fb + 1))) for fa, fb in fitted], sd, sd)
    for p in posts:
        _bound_matches(p, log_z)


@ppl.model
def gamma_poisson(y):
    rate = ppl.sample("rate", ppl.dist.Gamma(3.0, 1.0))
    with ppl.plate("data", y.shape[0]):
        ppl.observe("y", ppl.dist.Poisson(rate), y)


def test_autonormal_on_a_positive_site():
    """AutoNormal maps the positive site through exp: a log-normal fit of the Gamma posterior, whose
    mean is within 2% of the exact one; its ELBO is below log p(y) by the (small) KL."""
    y = np.array([4, 2, 5, 3, 6, 4, 3, 5], np.int32)
    a, b = 3.0 + y.sum(), 1.0 + y.size
    log_z = (3.0 * math.log(1.0) - gammaln(3.0) + gammaln(a) - a * math.log(b)
             - float(np.sum(gammaln(y + 1.0))))
    post = ppl.infer(gamma_poisson, y, method=ppl.VI(objective=ppl.ELBO(16), optimizer=_schedule(), num_steps=4000))
    assert np.all(post.samples["rate"] > 0)
    assert abs(post.mean("rate") - a / b) <= 0.02 * a / b
    assert log_z - 0.05 <= post.log_evidence <= log_z + 4 * post.result.log_evidence_se


@ppl.model
def gamma_guide():
    a = ppl.param("a", 2.0, constraint=ppl.constraints.positive)
    b = ppl.param("b", 1.0, constraint=ppl.constraints.positive)
    ppl.sample("rate", ppl.dist.Gamma(a, b))  # "implicit" by default


@pytest.mark.slow
def test_gamma_poisson_with_a_gamma_guide():
    """The Gamma guide holds the exact posterior Gamma(3 + sum y, 1 + n): its mean and sd match, and the
    ELBO at the optimum is log p(y) within Monte Carlo error (implicit reparameterisation)."""
    y = np.array([4, 2, 5, 3, 6, 4, 3, 5], np.int32)
    a, b = 3.0 + y.sum(), 1.0 + y.size
    log_z = -gammaln(3.0) + gammaln(a) - a * math.log(b) - float(np.sum(gammaln(y + 1.0)))
    method = ppl.VI(guide=gamma_guide, objective=ppl.ELBO(16), optimizer=_schedule(5e-2, 5000), num_steps=5000,
                    num_final=400)
    posts = _fits(gamma_poisson, y, method, seeds=(0, 1))
    fitted = [(float(p.params["a"]), float(p.params["b"])) for p in posts]
    sd = math.sqrt(a) / b
    _agree([fa / fb for fa, fb in fitted], a / b, sd)
    _agree([math.sqrt(fa) / fb for fa, fb in fitted], sd, sd)
    for p in posts:
        _bound_matches(p, log_z)


def test_autodelta_is_map():
    """Normal-normal: the MAP is the posterior mean; draws are the one point."""
    post = ppl.infer(normal_normal, Y, method=ppl.VI(guide=ppl.AutoDelta(), objective=ppl.ELBO(1),
                                                     optimizer=_schedule(5e-2, 3000), num_steps=3000))
    assert float(post.params["mu"]) == pytest.approx(Y.sum() / (1 + Y.size), abs=1e-3)
    assert np.ptp(post.samples["mu"]) == 0
    # its objective is log p(y, mu_MAP), above log p(y) here: no evidence, not a false bound
    mu = Y.sum() / (1 + Y.size)
    log_joint = -0.5 * mu ** 2 - 0.5 * np.sum((Y - mu) ** 2) - 0.5 * (1 + Y.size) * math.log(2 * math.pi)
    log_z = multivariate_normal(np.zeros(Y.size), np.eye(Y.size) + 1.0).logpdf(Y)
    assert log_joint > log_z + 0.2  # exactly: -12.93 against -13.21
    assert post.log_evidence is None and post.result.log_evidence_se is None
    assert any("MAP estimation" in n and f"{log_joint:.2f}" in n for n in post.notes), post.notes


def test_iwelbo_is_a_tighter_bound():
    """With a deliberately poor guide (a fixed wide normal), IWELBO_K >= ELBO and <= log p(y)."""
    @ppl.model
    def wide():
        ppl.sample("mu", ppl.dist.Normal(ppl.param("m", 0.0), 1.0))

    n = Y.size
    log_z = multivariate_normal(np.zeros(n), np.eye(n) + np.ones((n, n))).logpdf(Y)
    few = dict(optimizer=optax.sgd(0.0), num_steps=1, num_final=400)
    elbo = ppl.infer(normal_normal, Y, method=ppl.VI(guide=wide, objective=ppl.ELBO(1), **few))
    iw = ppl.infer(normal_normal, Y, method=ppl.VI(guide=wide, objective=ppl.IWELBO(20), **few))
    se = math.hypot(elbo.result.log_evidence_se, iw.result.log_evidence_se)
    assert iw.log_evidence - elbo.log_evidence > 4 * se
    assert iw.log_evidence <= log_z + 4 * iw.result.log_evidence_se


# ---------------------------------------------------------------------------
# Bad input: each a clear error naming the site


def test_guide_missing_a_latent_site():
    @ppl.model
    def two(y):
        mu = ppl.sample("mu", ppl.dist.Normal(0.0, 1.0))
        s = ppl.sample("s", ppl.dist.HalfNormal(1.0))
        with ppl.plate("data", y.shape[0]):
            ppl.observe("y", ppl.dist.Normal(mu, s), y)

    @ppl.model
    def only_mu():
        ppl.sample("mu", ppl.dist.Normal(ppl.param("m", 0.0), 1.0))

    with pytest.raises(ModelError, match=r"guide 'only_mu' has no random choice 's'"):
        ppl.infer(two, Y, method=ppl.VI(guide=only_mu, num_steps=1))


def test_guide_with_a_site_the_model_lacks():
    @ppl.model
    def extra():
        ppl.sample("mu", ppl.dist.Normal(ppl.param("m", 0.0), 1.0))
        ppl.sample("tau", ppl.dist.Normal(0.0, 1.0))

    with pytest.raises(ModelError, match=r"random choice 'tau' is not a latent site") as info:
        ppl.infer(normal_normal, Y, method=ppl.VI(guide=extra, num_steps=1))
    assert info.value.span is not None and info.value.span.file == __file__


def test_normal_guide_on_a_positive_site():
    @ppl.model
    def normal_guide():
        ppl.sample("rate", ppl.dist.Normal(ppl.param("m", 1.0), 1.0))

    with pytest.raises(ModelError, match=r"'rate' from Normal on real.*lives on nonnegative") as info:
        ppl.infer(gamma_poisson, np.array([1, 2], np.int32), method=ppl.VI(guide=normal_guide, num_steps=1))
    assert info.value.span.file == __file__ and "LogNormal" in info.value.hint


def test_nan_objective_names_the_site():
    """A non-finite objective stops the fit; one draw is replayed eagerly, checked, to name the site."""
    with pytest.raises(ppl.SupportError, match=r"observed value at 'y' is outside the support"):
        ppl.infer(normal_normal, Y * np.nan, method=ppl.VI(num_steps=2))

    @ppl.model
    def bad_guide():
        s = ppl.param("s", -1.0)  # a scale with no constraint, starting negative
        ppl.sample("mu", ppl.dist.Normal(0.0, s))

    with pytest.raises(ppl.ParameterError, match=r"at 'mu': Normal's scale must be a positive") as info:
        ppl.infer(normal_normal, Y, method=ppl.VI(guide=bad_guide, num_steps=2))
    assert info.value.span.file == __file__


def test_param_outside_vi_takes_its_init():
    @ppl.model
    def m():
        s = ppl.param("s", 2.5, constraint=ppl.constraints.positive)
        return ppl.sample("x", ppl.dist.Normal(0.0, s))

    assert float(m.ir().block.stmts[0].op.bind(3.0)[0]) == 3.0
    draws = np.asarray(jax.vmap(lambda k: m.simulate(k).retval)(jax.random.split(jax.random.key(0), 4000)))
    assert abs(draws.std() - 2.5) <= 4 * 2.5 / math.sqrt(2 * 4000)


# ---------------------------------------------------------------------------
# A discrete latent: the guide's Bernoulli trained with each discrete estimator


@ppl.model
def switch(y):
    z = ppl.sample("z", ppl.dist.Bernoulli(probs=0.3))
    ppl.observe("y", ppl.dist.Normal(2.0 * z, 1.0), y)


def _switch_guide(estimator):
    @ppl.model
    def guide():
        q = ppl.param("q", 0.5, constraint=ppl.constraints.unit_interval)
        ppl.sample("z", ppl.dist.Bernoulli(probs=q), estimator=estimator)

    return guide


@pytest.mark.parametrize("estimator", ["enum", "reinforce", "mvd"])
def test_discrete_guide_fits_the_exact_posterior(estimator):
    from scipy.stats import norm

    y = 1.5
    joint = np.array([0.7 * norm.pdf(y, 0, 1), 0.3 * norm.pdf(y, 2, 1)])
    exact, log_z = joint[1] / joint.sum(), math.log(joint.sum())
    method = ppl.VI(guide=_switch_guide(estimator), objective=ppl.ELBO(8), optimizer=_schedule(5e-2, 3000),
                    num_steps=3000)
    posts = _fits(switch, np.float32(y), method)
    _agree([float(p.params["q"]) for p in posts], exact, math.sqrt(exact * (1 - exact)))
    for p in posts:
        _bound_matches(p, log_z)
    assert set(np.unique(posts[0].samples["z"])) == {0, 1}


def test_autonormal_refuses_a_model_whose_sites_are_all_discrete():
    """Discrete sites are summed out of an automatic guide's target (tests/test_vi_guides.py); with no
    continuous site left there is nothing to fit, and the error says to enumerate."""
    @ppl.model
    def mixed(y):
        k = ppl.sample("k", ppl.dist.Bernoulli(probs=0.5))
        ppl.observe("y", ppl.dist.Normal(1.0 * k, 1.0), y)

    with pytest.raises(ModelError, match=r"no continuous latent site for an automatic guide") as info:
        ppl.infer(mixed, 0.3, method=ppl.VI(num_steps=1))
    assert info.value.span.file == __file__

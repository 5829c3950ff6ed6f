"""Every ``.ppl`` example runs and checks its answer (the Python examples, which check
themselves, run in ``test_scripts.py``, a file of its own so that two test workers share them).

Each ``.ppl`` example is loaded and run here, and its answer compared with an
exact one (enumeration, a closed form, a grid, the forward algorithm, the
Kalman filter) or a reference posterior, with Monte Carlo tolerances as
z-scores.
"""

import json
import math
import pathlib
import runpy

import jax.numpy as jnp
import numpy as np
import pytest

import ppl

HERE = pathlib.Path(__file__).parent
PPL_FILES = sorted(HERE.glob("*.ppl"))


def load(name):
    return ppl.load(HERE / f"{name}.ppl")


def weighted_z(post, name, exact):
    w = post.weights
    x = np.asarray(post.samples[name], dtype=np.float64)
    m = float(np.sum(w * x))
    se = math.sqrt(float(np.sum(w**2 * (x - m) ** 2)))
    return (m - exact) / se


def mcmc_z(post, name, exact):
    from ppl.inference.diagnostics import ess_bulk

    x = np.asarray(post.samples[name], dtype=np.float64)
    ess = float(np.min(ess_bulk(x)))
    return (float(np.mean(x)) - exact) / (float(np.std(x)) / math.sqrt(ess))


def test_every_ppl_example_is_checked():
    assert {p.stem for p in PPL_FILES} <= set(CHECKS), "add a check for each .ppl example"
    assert len(PPL_FILES) >= 12


def check_coin():
    m = load("coin")
    post = ppl.infer(m.coin, m.flips, method=ppl.Importance(num_particles=20_000), seed=0)
    assert abs(weighted_z(post, "p", 8 / 12)) < 4
    assert abs(post.log_evidence - math.log(1 / 1320)) < 0.02


def check_medical():
    m = load("medical")
    post = ppl.infer(m.diagnosis, m.positive)
    assert post.method == "Enumerate"
    assert abs(post.mean() - 0.0095 / (0.0095 + 0.99 * 0.08)) < 1e-6


def check_sprinkler():
    m = load("sprinkler")
    assert abs(ppl.infer(m.garden, m.wet).mean() - 0.16038 / (0.16038 + 0.288)) < 1e-6
    assert abs(ppl.infer(m.garden_seen).mean() - 0.002 / 0.322) < 1e-6
    assert abs(ppl.infer(m.garden_do).mean() - 0.2) < 1e-6
    # the same surgery from Python, on the model with the wet grass observed
    done = ppl.infer(m.garden.do({"sprinkler": 1}), 1)
    assert abs(done.mean() - 0.2 * 0.99 / (0.2 * 0.99 + 0.8 * 0.9)) < 1e-6


def check_tug_of_war():
    m = load("tug_of_war")
    post = ppl.infer(m.tug_of_war, method=ppl.Importance(num_particles=20_000), seed=0)
    assert post.engine == "compiled"
    twin = runpy.run_path(str(HERE / "tug_of_war.py"))["tug_of_war"]
    other = ppl.infer(twin, method=ppl.Importance(num_particles=20_000), seed=1)
    a, b = post.mean(), other.mean()
    ra = np.asarray(post.returns, dtype=np.float64)
    rb = np.asarray(other.returns, dtype=np.float64)
    se = math.sqrt(np.sum(post.weights**2 * (ra - a) ** 2) + np.sum(other.weights**2 * (rb - b) ** 2))
    assert abs(a - b) / se < 4


def check_geometric():
    m = load("geometric")
    assert m.p == 0.5
    post = ppl.infer(m.tails, m.p, method=ppl.Enumerate(max_depth=20))
    assert post.engine == "eager"
    kept = 1 - 0.5**20
    for n, p in post.probs().items():
        assert abs(p - 0.5 ** (n + 1) / kept) < 1e-9


def check_dice():
    m = load("dice")
    assert abs(ppl.infer(m.two_dice).probs()[7] - 1 / 6) < 1e-6
    table = ppl.infer(m.first_given_sum, m.total).probs()
    assert table == pytest.approx({3: 0.25, 4: 0.25, 5: 0.25, 6: 0.25}, abs=1e-6)


def forward_log_evidence(ys):
    from scipy.stats import norm

    trans = np.array([[0.7, 0.3], [0.2, 0.8]])  # from z = 0 / z = 1 to (0, 1)
    alpha = np.array([1.0, 0.0])
    for y in ys:
        alpha = (alpha @ trans) * norm.pdf(y, loc=[-1.0, 1.0], scale=1.0)
    return math.log(alpha.sum())


def check_hmm():
    m = load("hmm")
    post = ppl.infer(m.weather, m.readings, method=ppl.Enumerate())
    assert abs(post.log_evidence - forward_log_evidence(np.asarray(m.readings))) < 1e-5


def grid_posterior_means(logp, axes):
    mesh = np.meshgrid(*axes, indexing="ij")
    lp = logp(*mesh)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    return [float(np.sum(w * g)) for g in mesh]


def check_linear_regression():
    from scipy.stats import halfnorm, norm

    m = load("linear_regression")
    x, y = np.asarray(m.x, np.float64), np.asarray(m.y, np.float64)

    def logp(a, b, s):
        lp = norm.logpdf(a, 0, 10) + norm.logpdf(b, 0, 10) + halfnorm.logpdf(s, scale=5)
        r = y[None, None, None, :] - (a[..., None] + b[..., None] * x)
        return lp + np.sum(norm.logpdf(r, 0, s[..., None]), axis=-1)

    exact = grid_posterior_means(logp, [np.linspace(-0.5, 2.5, 90), np.linspace(1.5, 2.5, 90),
                                        np.linspace(0.1, 1.5, 90)])
    post = ppl.infer(m.regression, m.x, m.y, method=ppl.NUTS(num_warmup=400, num_samples=1000, num_chains=2))
    for name, e in zip(("alpha", "beta", "sigma"), exact):
        assert abs(mcmc_z(post, name, e)) < 4, name


def check_eight_schools():
    m = load("eight_schools")
    ref = json.loads((HERE.parent / "tests" / "data" / "posteriordb" /
                      "eight_schools-eight_schools_noncentered.reference.json").read_text())["parameters"]
    post = ppl.infer(m.schools, m.y, m.sigma, method=ppl.NUTS(num_warmup=500, num_samples=500, num_chains=2,
                                                               target_accept=0.95))
    for name in ("mu", "tau"):
        assert abs(mcmc_z(post, name, ref[name]["mean"])) < 4, name


def check_gaussian_mixture():
    from scipy.stats import beta, halfnorm, norm

    m = load("gaussian_mixture")
    ys = np.asarray(m.ys, np.float64)

    def logp(m1, m2, s, t):
        lp = norm.logpdf(m1, 0, 5) + norm.logpdf(m2, 0, 5) + halfnorm.logpdf(s, scale=2) + beta.logpdf(t, 2, 2)
        lp = np.where(m1 < m2, lp, -np.inf)
        log_t, log_1mt = np.log(t), np.log1p(-t)
        for y in ys:  # one point at a time: a (grid, points) array would be 36^4 x 20 floats
            lp = lp + np.logaddexp(log_t + norm.logpdf(y, m1, s), log_1mt + norm.logpdf(y, m2, s))
        return lp

    exact = grid_posterior_means(logp, [np.linspace(-3.2, -1.0, 36), np.linspace(1.4, 2.8, 36),
                                        np.linspace(0.1, 0.9, 36), np.linspace(0.05, 0.7, 36)])
    post = ppl.infer(m.mixture, m.ys, method=ppl.NUTS(num_warmup=400, num_samples=400, num_chains=2))
    mu = np.asarray(post.samples["mu"], np.float64)
    for j, e in enumerate(exact[:2]):
        from ppl.inference.diagnostics import ess_bulk

        x = mu[..., j]
        z = (x.mean() - e) / (x.std() / math.sqrt(float(ess_bulk(x))))
        assert abs(z) < 4
    assert abs(mcmc_z(post, "sigma", exact[2])) < 4
    assert abs(mcmc_z(post, "theta", exact[3])) < 4


def kalman_log_evidence(ys, a=0.9, q=1.0, r=0.5):
    m, p, total = 0.0, 0.0, 0.0
    for y in ys:
        m, p = a * m, a * a * p + q * q
        s = p + r * r
        total += -0.5 * (math.log(2 * math.pi * s) + (y - m) ** 2 / s)
        k = p / s
        m, p = m + k * (y - m), (1 - k) * p
    return total


def check_kalman():
    m = load("kalman")
    exact = kalman_log_evidence(np.asarray(m.ys, np.float64))
    method = ppl.SMC(num_particles=2000)
    estimates = [ppl.infer(m.ssm, m.ys, method=method, seed=s).log_evidence for s in range(5)]
    z = np.exp(np.asarray(estimates) - exact)  # unbiased in the evidence: mean 1
    assert abs(z.mean() - 1) < 4 * max(z.std(ddof=1), 1e-3) / math.sqrt(len(z))


def check_random_function():
    m = load("random_function")
    post = ppl.infer(m.which, m.xs, m.ys, method=ppl.Importance(num_particles=2000), seed=1)
    assert post.engine == "eager"
    assert post.mean() > 0.99


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_ppl_example(name):
    CHECKS[name]()

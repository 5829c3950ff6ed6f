"""NUTS against posteriordb's reference posteriors.

Each of the 17 posteriors in ``tests/data/posteriordb`` (copied from posteriordb; see its README) is written in .ppl in
``examples/posteriordb/<model>.ppl``; this module samples it with
``ppl.NUTS`` (fixed seeds) and compares every reported parameter with the
reference (``posteriordb_util.check_parameter``: the mean's
``z = (mean - ref) / sqrt(sd^2 / ESS + mcse_ref^2)`` with ``|z| < 4``, and
5% / 50% / 95% quantile coverage). A run must also be clean: no
``SamplingWarning`` (divergences, tree-depth saturation, low E-BFMI, low
ESS), except for the centred eight schools, whose divergences are the point
of the test; R-hat's 1.01 guideline is reported, and R-hat >= 1.05 fails.

The default suite runs ``FAST`` (a few cheap posteriors with fewer draws);
``python -m pytest -m slow tests/test_posteriordb.py`` runs all 17 with
Stan's default 1000 warm-up and 1000 draws on each of 4 chains.

Measured with ``-m slow`` on the 2-core development machine (shared with
other jobs; wall time of ``ppl.infer`` including tracing, with a warm
compilation cache; a cold one adds a few seconds each; min ESS is the
smallest bulk or tail ESS over the reported parameters, of 4000 draws). All
17 pass; the whole run took 116 s.

=======================================  ======  =======  =====================================
posterior                                time s  min ESS  settings (besides 4 x (1000 + 1000))
=======================================  ======  =======  =====================================
kilpisjarvi_mod-kilpisjarvi                 7.5     1115  dense metric
sblrc-blr                                   4.8      777
mesquite-logmesquite_logvolume              4.2     1897
kidiq-kidscore_momiq                        4.8     1270
kidiq-kidscore_interaction                  1.8     3165  dense metric
mesquite-logmesquite                        5.6     1499
nes2000-nes                                 8.1     1754
eight_schools-eight_schools_noncentered     5.5     1680  target_accept 0.9
eight_schools-eight_schools_centered        1.6      108  target_accept 0.95; warns (expected)
arK-arK                                     6.4     2473
arma-arma11                                 7.9     2590
garch-garch11                               6.0     1976
low_dim_gauss_mix-low_dim_gauss_mix         7.4     2834
hmm_example-hmm_example                     8.5     2002
gp_pois_regr-gp_pois_regr                  14.4     1415  x64, target_accept 0.99, tree depth 12
gp_pois_regr-gp_regr                        5.5     2653
hudson_lynx_hare-lotka_volterra            14.1      995  (ODE: ppl/ode.py)
=======================================  ======  =======  =====================================

Notes on the settings (what a Stan user would do on the same warnings):

* ``kilpisjarvi``: corr(alpha, beta) = -0.99999; with a diagonal metric
  half the transitions hit the maximum tree depth (10) and warn, so it uses
  a dense metric (the reference itself needed max_treedepth 15).
* ``kidscore_interaction``: coefficients correlated up to |r| = 0.99; with a
  diagonal metric the ESS is ~900 and R-hat can cross 1.01, so a dense metric.
* ``eight_schools_noncentered``: target_accept=0.9; at 0.8 an occasional
  divergence remains (as in Stan).
* ``gp_pois_regr``: the kernel matrix (jitter 1e-10) has a condition number
  near 1e10 at the posterior's typical (rho, alpha), beyond float32: its
  Cholesky factor is NaN there and NUTS diverges on half the transitions.
  Stan computes in double, so this posterior runs with x64, and with
  target_accept=0.99 and max_tree_depth=12 (at 0.95 / 10: one divergence
  and a few saturated trees in 4000).
* ``eight_schools_centered``: the funnel. ppl must warn (divergences); the
  test asserts the warning and checks the means of mu and theta, which the
  neck of the funnel barely moves; tau's check is printed but not asserted,
  because a sampler that cannot enter the neck is biased for tau (its 5%
  quantile is never reached: F(q05) = 0).
* ``lotka_volterra``: ``ode_rk45`` (ppl/ode.py) is checked against SciPy at
  the reference mean below (solution, log density and gradient). With the
  earlier solver (jax.experimental.ode.odeint, no step limit) one seed's
  warm-up visited parameters where the prey overflow float32 and the solve
  never returned; ppl/ode.py stops such solves with NaN.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import jax
import numpy as np
import pytest

import ppl
from ppl.inference.mcmc.base import SamplingWarning

RHAT_LIMIT = 1.05  # gross non-convergence; see _assert_clean_and_close

from posteriordb_util import (
    EXAMPLES, check_posterior, format_checks, load_data, load_reference, model_args, split_name,
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One posterior and how to sample it."""

    posterior: str                     # posteriordb name: NAME.data.json, NAME.reference.json
    model: str                         # examples/posteriordb/<model>.ppl defines model <model>
    seed: int = 0
    num_warmup: int = 1000
    num_samples: int = 1000
    num_chains: int = 4
    target_accept: float = 0.8
    dense_mass: bool = False
    max_tree_depth: int = 10
    x64: bool = False
    returned: str | None = None        # the reported quantity the model returns (not a site)
    auxiliary: tuple[str, ...] = ()    # sampled sites the reference does not report

    def method(self, **overrides) -> ppl.NUTS:
        opts = dict(num_warmup=self.num_warmup, num_samples=self.num_samples, num_chains=self.num_chains,
                    target_accept=self.target_accept, dense_mass=self.dense_mass,
                    max_tree_depth=self.max_tree_depth)
        opts.update(overrides)
        return ppl.NUTS(**opts)


CASES = {c.posterior: c for c in [
    Case("kilpisjarvi_mod-kilpisjarvi", "kilpisjarvi", seed=1, dense_mass=True),
    Case("sblrc-blr", "blr", seed=2),
    Case("mesquite-logmesquite_logvolume", "logmesquite_logvolume", seed=3),
    Case("kidiq-kidscore_momiq", "kidscore_momiq", seed=4),
    Case("kidiq-kidscore_interaction", "kidscore_interaction", seed=5, dense_mass=True),
    Case("mesquite-logmesquite", "logmesquite", seed=6),
    Case("nes2000-nes", "nes", seed=7),
    Case("eight_schools-eight_schools_noncentered", "eight_schools_noncentered", seed=8, target_accept=0.9,
         returned="theta", auxiliary=("theta_trans",)),
    Case("eight_schools-eight_schools_centered", "eight_schools_centered", seed=9, target_accept=0.95),
    Case("arK-arK", "arK", seed=10),
    Case("arma-arma11", "arma11", seed=11),
    Case("garch-garch11", "garch11", seed=12),
    Case("low_dim_gauss_mix-low_dim_gauss_mix", "low_dim_gauss_mix", seed=13),
    Case("hmm_example-hmm_example", "hmm_example", seed=14),
    Case("gp_pois_regr-gp_pois_regr", "gp_pois_regr", seed=15, x64=True, target_accept=0.99,
         max_tree_depth=12,
         returned="f", auxiliary=("f_tilde",)),
    Case("gp_pois_regr-gp_regr", "gp_regr", seed=16),
    Case("hudson_lynx_hare-lotka_volterra", "lotka_volterra", seed=17),
]}

#: the default suite's subset, with fewer draws (every one still well above the ESS floor of 400)
FAST = {
    "eight_schools-eight_schools_noncentered": dict(num_warmup=500, num_samples=500),
    "kidiq-kidscore_momiq": dict(num_warmup=500, num_samples=1000),  # correlated: ESS ~0.25 per draw
    "mesquite-logmesquite": dict(num_warmup=500, num_samples=500),
}

CENTRED = "eight_schools-eight_schools_centered"


def _precision(x64: bool):
    """A context computing in float64 when ``x64`` (as Stan does), else the default float32."""
    return jax.enable_x64(True) if x64 else jax.enable_x64(False)


def _load(case: Case):
    return getattr(ppl.load(EXAMPLES / f"{case.model}.ppl"), case.model)


def run_case(case: Case, **overrides):
    """Sample one posterior; returns (posterior, reference, draws by array name, warnings, seconds)."""
    data, reference = load_data(case.posterior), load_reference(case.posterior)
    with _precision(case.x64):
        model = _load(case)
        args = model_args(model, data)
        start = time.perf_counter()
        # record SamplingWarnings (to report them with the checks); any other warning stays an error
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SamplingWarning)
            post = ppl.infer(model, *args, method=case.method(**overrides), seed=case.seed)
        seconds = time.perf_counter() - start
    sampling = [w for w in caught if issubclass(w.category, SamplingWarning)]
    assert len(sampling) == len(caught), [str(w.message) for w in caught]

    # the reported names are the model's sites, plus the returned quantity, less the auxiliary sites
    reported = {split_name(n)[0] for n in reference["parameter_names"]}
    sites = set(post.samples)
    assert sites - set(case.auxiliary) == reported - {case.returned}, (sites, reported)
    assert set(case.auxiliary) <= sites
    arrays = dict(post.samples)
    if case.returned is not None:
        arrays[case.returned] = np.asarray(post.returns)
    return post, reference, arrays, sampling, seconds


def _report(case: Case, checks, seconds: float) -> str:
    ess = min(min(c.ess_bulk, c.ess_tail) for c in checks)
    return f"{case.posterior}: {seconds:.1f} s, min ESS {ess:.0f}\n{format_checks(checks)}"


def _assert_clean_and_close(case: Case, **overrides):
    post, reference, arrays, sampling, seconds = run_case(case, **overrides)
    checks = check_posterior(arrays, reference)
    report = _report(case, checks, seconds)
    print(report)
    # R-hat's 1.01 warning line is a guideline that a sound chain of ~1000 ESS crosses now and then by
    # chance (seen at 1.011 under jax 0.12, whose random streams differ): it is reported, and the test
    # fails on gross non-convergence (R-hat >= 1.05) or on any other warning.
    hard = [w for w in sampling if not str(w.message).startswith("R-hat above")]
    assert not hard, "\n".join(str(w.message) for w in hard) + "\n" + report
    assert all(c.rhat < RHAT_LIMIT for c in checks), report
    assert all(c.ok for c in checks), report
    return post, arrays


def _check_derived(case: Case, post, arrays):
    """The returned quantity is the documented function of the same draw's sites."""
    s = post.samples
    if case.model == "eight_schools_noncentered":
        want = s["mu"][..., None] + s["tau"][..., None] * s["theta_trans"]
    elif case.model == "gp_pois_regr":
        x = np.asarray(load_data(case.posterior)["x"], np.float64)
        d2 = (x[:, None] - x[None, :]) ** 2
        rho, alpha = s["rho"][..., None, None], s["alpha"][..., None, None]
        cov = alpha ** 2 * np.exp(-d2 / (2 * rho ** 2)) + 1e-10 * np.eye(len(x))
        want = np.einsum("...ij,...j->...i", np.linalg.cholesky(cov), s["f_tilde"])
    else:
        return
    np.testing.assert_allclose(arrays[case.returned], want, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------- the default suite


@pytest.mark.parametrize("name", sorted(FAST))
def test_fast_posteriors_match_reference(name):
    case = CASES[name]
    post, arrays = _assert_clean_and_close(case, **FAST[name])
    _check_derived(case, post, arrays)


# ------------------------------------------------------------------------- all 17 (-m slow)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in CASES if n != CENTRED])
def test_posterior_matches_reference(name):
    case = CASES[name]
    post, arrays = _assert_clean_and_close(case)
    _check_derived(case, post, arrays)


@pytest.mark.slow
def test_centred_eight_schools_warns_and_gets_what_it_can():
    case = CASES[CENTRED]
    post, reference, arrays, sampling, seconds = run_case(case)
    checks = check_posterior(arrays, reference)
    report = _report(case, checks, seconds)
    print(report)
    # the funnel: ppl must say that the draws are not trustworthy
    assert any("divergent" in str(w.message) for w in sampling), report
    assert not any("divergent" in n for n in post.notes), post.notes  # said once, by the warning
    # mu and theta are estimated well enough despite the funnel; tau (the neck) is not asserted
    bad = [c.name for c in checks if c.name != "tau" and not c.mean_ok]
    assert not bad, report


# ------------------------------------------------------------------------- the ODE solve


LOTKA = "hudson_lynx_hare-lotka_volterra"
LOTKA_SOLVE = "ode_rk45(dz_dt, z_init, 0.0, ts, theta, 1e-6, 1e-5)"


def _lotka_reference_solution(theta, z0, ts):
    """SciPy's high-order solver at tolerances far below float32's: the "exact" trajectory."""
    from scipy.integrate import solve_ivp

    def rates(t, z):
        return [(theta[0] - theta[1] * z[1]) * z[0], (-theta[2] + theta[3] * z[0]) * z[1]]

    sol = solve_ivp(rates, (0.0, float(ts[-1])), z0, t_eval=ts, method="DOP853", rtol=1e-12, atol=1e-12)
    assert sol.success
    return sol.y.T


def _lotka_log_density(v, ts, y_init, y):
    """MODELS.md's log density (truncation constants dropped, as in the .ppl) written with SciPy."""
    from scipy import stats

    theta, z0, sigma = v[:4], v[4:6], v[6:]
    z = _lotka_reference_solution(theta, z0, ts)

    def lognormal(x, m, s):
        return stats.norm.logpdf(np.log(x), m, s) - np.log(x)

    return float(stats.norm.logpdf(theta, [1, 0.05, 1, 0.05], [0.5, 0.05, 0.5, 0.05]).sum()
                 + lognormal(z0, np.log(10), 1).sum() + lognormal(sigma, -1, 1).sum()
                 + lognormal(y_init, np.log(z0), sigma).sum() + lognormal(y, np.log(z), sigma).sum())


def test_lotka_volterra_ode_solve_is_accurate():
    """At the reference mean, the .ppl's ODE solution, log density and gradient match SciPy's."""
    path = EXAMPLES / "lotka_volterra.ppl"
    source = path.read_text()
    assert LOTKA_SOLVE in source  # the solve checked below is the model's own
    data, ref = load_data(LOTKA), load_reference(LOTKA)["parameters"]
    ts = np.asarray(data["ts"], np.float64)
    y_init, y = np.asarray(data["y_init"], np.float64), np.asarray(data["y"], np.float64)
    point = {base: np.array([ref[f"{base}[{i}]"]["mean"] for i in range(1, n + 1)])
             for base, n in (("theta", 4), ("z_init", 2), ("sigma", 2))}
    exact = _lotka_reference_solution(point["theta"], point["z_init"], ts)

    # the solution itself, through the language: a model that returns the same solve
    extra = f"\nmodel solve(z_init: real[2], ts: real[N], theta: real[4], N: int) {{\n  return {LOTKA_SOLVE}\n}}\n"
    module = ppl.loads(source + extra, str(path))
    ours = np.asarray(module.solve.simulate(jax.random.key(0), point["z_init"], ts, point["theta"], len(ts)).retval)
    assert ours.shape == exact.shape == (len(ts), 2)
    assert np.max(np.abs(ours - exact) / exact) < 1e-4  # the reference solver used rtol 1e-5

    # the log density and its gradient (the adjoint of the solve), as NUTS sees them
    model = module.lotka_volterra
    logp = model.log_density_function(*model_args(model, data))
    at = {k: jax.numpy.asarray(v, jax.numpy.float32) for k, v in point.items()}
    flat = np.concatenate([point["theta"], point["z_init"], point["sigma"]])
    assert abs(float(logp(at)) - _lotka_log_density(flat, ts, y_init, y)) < 1e-2
    grad = jax.grad(logp)(at)
    ours_grad = np.concatenate([np.asarray(grad[k], np.float64) for k in ("theta", "z_init", "sigma")])
    steps = np.eye(flat.size) * flat * 1e-5
    numeric = np.array([(_lotka_log_density(flat + h, ts, y_init, y) - _lotka_log_density(flat - h, ts, y_init, y))
                        / (2 * h[i]) for i, h in enumerate(steps)])
    np.testing.assert_allclose(ours_grad, numeric, rtol=1e-3)

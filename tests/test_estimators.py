"""IPW, AIPW and the Bayesian route (fit, then surgery) against a known effect on simulated data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl
from ppl import dist

TAU = 1.5  # the true average effect


def simulate(n, seed, propensity_squared=False):
    """Confounded data: z drives both the treatment and the outcome (through z and z**2)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    logits = 0.3 + 1.2 * z + (0.5 * z**2 if propensity_squared else 0.0)
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-logits))).astype(float)
    y = 0.5 + TAU * t + 2.0 * z + z**2 + rng.normal(size=n)
    return {"z": z, "z2": z**2, "t": t, "y": y}


def test_ipw_and_aipw_recover_the_effect_that_naive_comparison_misses():
    data = simulate(4000, 0)
    naive = data["y"][data["t"] == 1].mean() - data["y"][data["t"] == 0].mean()
    assert naive - TAU > 1.0  # confounding: the treated have larger z
    for est in (ppl.ipw(data, treatment="t", outcome="y", covariates=["z"]),
                ppl.aipw(data, treatment="t", outcome="y", covariates=["z", "z2"])):
        assert abs(est.ate - TAU) < 4 * est.se, est
    full = ppl.aipw(data, treatment="t", outcome="y", covariates=["z", "z2"])
    assert full.se < ppl.ipw(data, treatment="t", outcome="y", covariates=["z"]).se  # the outcome model helps


def test_aipw_is_doubly_robust():
    data = simulate(20000, 1)
    naive = data["y"][data["t"] == 1].mean() - data["y"][data["t"] == 0].mean()  # the no-covariate plug-in
    # the outcome model wrong (no covariates), the propensity right: still consistent
    est = ppl.aipw(data, treatment="t", outcome="y", propensity_covariates=["z"], outcome_covariates=[])
    assert abs(est.ate - TAU) < 4 * est.se and abs(naive - TAU) > 10 * est.se, (est, naive)
    # the propensity wrong (constant), the outcome model right: still consistent
    est = ppl.aipw(data, treatment="t", outcome="y", propensity_covariates=[], outcome_covariates=["z", "z2"])
    assert abs(est.ate - TAU) < 4 * est.se, est
    # both wrong: biased
    est = ppl.aipw(data, treatment="t", outcome="y", covariates=[])
    assert abs(est.ate - TAU) > 10 * est.se


def test_bad_columns_are_named():
    data = simulate(50, 2)
    with pytest.raises(ppl.ModelError, match="the covariate 'w' is not a column"):
        ppl.ipw(data, treatment="t", outcome="y", covariates=["w"])
    with pytest.raises(ppl.ModelError, match="the treatment 'z' must be binary"):
        ppl.aipw(data, treatment="z", outcome="y", covariates=["t"])
    with pytest.raises(ppl.ModelError, match="the outcome 'out' is not a column"):
        ppl.aipw(data, treatment="t", outcome="out")


def test_a_stratum_without_controls_is_a_positivity_error_not_a_biased_effect():
    """Every unit with c = 1 treated: the logistic fit stopped at a propensity of 1 - 1.8e-8, under the
    old check (e >= 1), and IPW gave 3.98 +- 0.09 and AIPW 3.48 +- 0.05 for a true effect of 2."""
    rng = np.random.default_rng(0)
    c = (rng.uniform(size=2000) < 0.5).astype(float)
    t = np.where(c == 1, 1.0, (rng.uniform(size=2000) < 0.5).astype(float))
    data = {"c": c, "t": t, "y": 1 + 2 * t + 3 * c + rng.normal(size=2000)}
    for estimate in (ppl.ipw, ppl.aipw):
        with pytest.raises(ppl.ModelError, match="do not overlap"):
            estimate(data, treatment="t", outcome="y", covariates=["c"])
    est = ppl.ipw(data, treatment="t", outcome="y", covariates=["c"], clip=0.01)  # trimmed, on request
    assert np.isfinite(est.ate)


def test_columns_of_other_lengths_shapes_or_with_nan_are_named():
    """Were NumPy's concatenation error (the length check ran after it) and an ATE of nan +- nan."""
    data = simulate(50, 3)
    with pytest.raises(ppl.ModelError, match="different lengths"):
        ppl.ipw({**data, "z": data["z"][:40]}, treatment="t", outcome="y", covariates=["z"])
    with pytest.raises(ppl.ModelError, match=r"the column 'z' has shape \(25, 2\)"):
        ppl.ipw({**data, "z": data["z"].reshape(25, 2)}, treatment="t", outcome="y", covariates=["z"])
    y = data["y"].copy()
    y[7] = np.nan
    with pytest.raises(ppl.ModelError, match=r"the column 'y' holds NaN or infinite values at rows \[7\]"):
        ppl.aipw({**data, "y": y}, treatment="t", outcome="y", covariates=["z"])


@ppl.model
def study(z, t, y):
    """The observed model: propensity and outcome mechanisms with unknown coefficients."""
    a, b = ppl.sample("a", dist.Normal(0.0, 5.0)), ppl.sample("b", dist.Normal(0.0, 5.0))
    c, tau = ppl.sample("c", dist.Normal(0.0, 5.0)), ppl.sample("tau", dist.Normal(0.0, 5.0))
    d, d2 = ppl.sample("d", dist.Normal(0.0, 5.0)), ppl.sample("d2", dist.Normal(0.0, 5.0))
    s = ppl.sample("s", dist.HalfNormal(5.0))
    with ppl.plate("units", z.shape[0]):
        treated = ppl.observe("t", dist.Bernoulli(logits=a + b * z), t)
        mean = c + tau * treated + d * z + d2 * z**2
        ppl.observe("y", dist.Normal(mean, s), y)
    return jnp.mean(mean)  # the average outcome over these units


@pytest.mark.slow
def test_the_bayesian_route_fit_then_surgery_agrees_with_ipw_and_aipw():
    data = simulate(1000, 3)
    args = (jnp.asarray(data["z"], jnp.float32), jnp.asarray(data["t"], jnp.int32),
            jnp.asarray(data["y"], jnp.float32))
    post = ppl.infer(study, *args, method=ppl.NUTS(num_warmup=400, num_samples=400, num_chains=1))
    n = len(data["z"])
    treated, control = study.do({"t": jnp.ones(n, jnp.int32)}), study.do({"t": jnp.zeros(n, jnp.int32)})
    effects = []
    for i in range(0, 400, 4):  # surgery at each posterior draw: E[y | do(t=1)] - E[y | do(t=0)]
        draw = {k: jnp.asarray(np.asarray(v)[0, i]) for k, v in post.samples.items()}
        key = jax.random.key(i)
        one = treated.generate(key, *args, constraints=draw)[0].retval
        zero = control.generate(key, *args, constraints=draw)[0].retval
        effects.append(float(one - zero))
    bayes, bayes_sd = float(np.mean(effects)), float(np.std(effects))
    ipw = ppl.ipw(data, treatment="t", outcome="y", covariates=["z"])
    aipw = ppl.aipw(data, treatment="t", outcome="y", covariates=["z", "z2"])
    assert abs(bayes - TAU) < 4 * bayes_sd
    assert abs(bayes - aipw.ate) < 4 * np.hypot(bayes_sd, aipw.se)
    assert abs(ipw.ate - TAU) < 4 * ipw.se

"""``Posterior.summary()``: the numbers in the table are the diagnostics of the draws."""

from __future__ import annotations

import re

import numpy as np
import pytest

import ppl
from ppl import dist
from ppl.inference import diagnostics


@ppl.model
def normal_mean(ys):
    mu = ppl.sample("mu", dist.Normal(0.0, 10.0))
    with ppl.plate("data", ys.shape[0]):
        ppl.observe("y", dist.Normal(mu, 1.0), ys)
    return mu


YS = np.array([0.3, 1.2, -0.4, 0.8, 1.9], np.float32)


def row(text: str, site: str) -> list[float]:
    line = next(ln for ln in text.splitlines() if re.match(rf"^\W*{re.escape(site)}\s", ln.strip("│ ") + " "))
    return [float(c) for c in line.replace("│", " ").split()[1:]]


@pytest.mark.filterwarnings("ignore::ppl.SamplingWarning")
def test_mcmc_summary_shows_mcse_ess_rhat_divergences_and_acceptance():
    # The table is checked against the diagnostics of whatever draws came out; with 2 x 300 draws the
    # R-hat of this run sits near the 1.01 warning line (1.0095 or 1.014 as rounding moves the chains),
    # and whether it warns is not what this test is about.
    post = ppl.infer(normal_mean, YS, method=ppl.NUTS(num_warmup=200, num_samples=300, num_chains=2), seed=3)
    text = post.summary()
    header = next(ln for ln in text.splitlines() if "site" in ln)
    assert header.split("┃")[1:-1] and [c.strip() for c in header.split("┃")[1:-1]] == [
        "site", "mean", "std", "5%", "50%", "95%", "mcse", "ess_bulk", "ess_tail", "r_hat"]
    values = row(text, "mu")
    x = np.asarray(post.samples["mu"], np.float64)
    assert values[0] == float(f"{x.mean():.4g}")
    assert values[5] == float(f"{diagnostics.mcse_mean(x):.4g}")
    assert values[6] == float(f"{diagnostics.ess_bulk(x):.4g}")
    assert values[8] == float(f"{diagnostics.split_rhat(x):.4g}")
    n_div = int(np.sum(post.sample_stats["diverging"]))
    assert f"divergences: {n_div} of 600 transitions after warm-up" in text
    assert f"mean acceptance: {float(np.mean(post.sample_stats['accept_prob'])):.3f}" in text


def test_weighted_summary_has_no_chain_columns_and_reports_the_evidence():
    post = ppl.infer(normal_mean, YS, method=ppl.Importance(num_particles=2000), seed=0)
    text = post.summary()
    assert "r_hat" not in text and "mcse" not in text
    assert f"log evidence: {post.log_evidence:.6g}" in text
    assert "effective sample size:" in text

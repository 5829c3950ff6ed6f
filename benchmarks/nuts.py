"""NUTS side by side: ppl, NumPyro and hand-written BlackJAX, on CPU in float32.

Two problems, each 4 chains x (1000 warm-up + 1000 draws), chains vectorised:

- eight schools, non-centred (posteriordb data): mu ~ Normal(0, 5),
  tau ~ HalfCauchy(5), theta_trans ~ Normal(0, 1)[8],
  y ~ Normal(mu + tau * theta_trans, sigma);
- Bayesian logistic regression, N=5000, D=25: X ~ Normal(0, 1) (seed 0),
  beta_true ~ Normal(0, 1), y ~ Bernoulli(logit = X beta), beta ~ Normal(0, 1).

Every sampler starts each repeat from the same initial points (uniform in
(-2, 2) on the unconstrained scale) and uses Stan's warm-up (dual averaging to
0.8, diagonal metric, windows 75 / 25... / 50).

Reported per sampler (medians over ``--repeats``): time to first draw (the
first call in a fresh compilation cache: tracing + compilation + warm-up +
sampling, until the draws are on the host), warm wall time (the median of
``--warm-runs`` further calls with new seeds, nothing recompiled), the smallest
bulk ESS over all coordinates (its mean over those calls: one run's minimum over
coordinates varies by about 10% from seed to seed, as much as the differences
measured), and that ESS per warm second. NumPyro is timed twice: its plain
second ``mcmc.run`` (which re-traces and recompiles) and ``mcmc.run`` wrapped in
``jax.jit``.

    python benchmarks/nuts.py --repeats 3

``ppl_logdensity(problem)`` is the one place that says what ppl samples.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("PPL_CACHE", "off")  # "cold" means compiled from scratch here; first_draw.py times the cache

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

import blackjax  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

from ppl.inference import diagnostics  # noqa: E402
from ppl.inference.mcmc import base, nuts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "posteriordb" / "eight_schools-eight_schools_noncentered.data.json"


# --------------------------------------------------------------------------- problems


class Problem:
    """A model as each sampler needs it: a NumPyro model, a hand-written log density
    on the unconstrained scale (keys = NumPyro's site names), one chain's template,
    and the ppl model with its arguments (what a user hands ``ppl.infer``)."""

    def __init__(self, name, numpyro_model, logdensity, template, ppl_model=None, ppl_args=()):
        self.name = name
        self.numpyro_model = numpyro_model
        self.logdensity = logdensity
        self.template = template
        self.ppl_model = ppl_model
        self.ppl_args = ppl_args


def eight_schools() -> Problem:
    data = json.loads(DATA.read_text())
    y = jnp.asarray(data["y"], jnp.float32)
    sigma = jnp.asarray(data["sigma"], jnp.float32)

    def model():
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
        theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0).expand([8]))
        numpyro.sample("y", dist.Normal(mu + tau * theta_trans, sigma), obs=y)

    log_norm = 0.5 * jnp.log(2 * jnp.pi)

    def logdensity(p):
        mu, log_tau, theta_trans = p["mu"], p["tau"], p["theta_trans"]
        tau = jnp.exp(log_tau)
        lp = -0.5 * (mu / 5.0) ** 2 - jnp.log(5.0) - log_norm
        lp += jnp.log(2.0 / (jnp.pi * 5.0)) - jnp.log1p((tau / 5.0) ** 2) + log_tau  # HalfCauchy + log-Jacobian
        lp += jnp.sum(-0.5 * theta_trans**2 - log_norm)
        z = (y - mu - tau * theta_trans) / sigma
        lp += jnp.sum(-0.5 * z**2 - jnp.log(sigma) - log_norm)
        return lp

    template = {"mu": jnp.zeros(()), "tau": jnp.zeros(()), "theta_trans": jnp.zeros(8)}
    import ppl

    source = ROOT / "examples" / "posteriordb" / "eight_schools_noncentered.ppl"
    ppl_model = ppl.load(source).eight_schools_noncentered
    return Problem("eight schools (non-centred)", model, logdensity, template,
                   ppl_model, (data["J"], data["y"], data["sigma"]))


def logistic_regression(n: int = 5000, d: int = 25) -> Problem:
    k_x, k_beta, k_y = jax.random.split(jax.random.PRNGKey(0), 3)
    X = jax.random.normal(k_x, (n, d), jnp.float32)
    beta_true = jax.random.normal(k_beta, (d,), jnp.float32)
    y = jax.random.bernoulli(k_y, jax.nn.sigmoid(X @ beta_true)).astype(jnp.float32)

    def model():
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([d]))
        numpyro.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)

    def logdensity(p):
        beta = p["beta"]
        logits = X @ beta
        prior = jnp.sum(-0.5 * beta**2) - 0.5 * d * jnp.log(2 * jnp.pi)
        return prior + jnp.sum(y * logits - jax.nn.softplus(logits))

    import ppl

    @ppl.model
    def ppl_model(X, y):
        beta = ppl.sample("beta", ppl.dist.Normal(jnp.zeros(X.shape[1]), 1.0))
        with ppl.plate("data", X.shape[0]):
            ppl.observe("y", ppl.dist.Bernoulli(logits=X @ beta), y)

    return Problem(f"logistic regression (N={n}, D={d})", model, logdensity, {"beta": jnp.zeros(d)},
                   ppl_model, (X, y))


def hierarchical(groups: int = 50, per_group: int = 20) -> Problem:
    """The hierarchical normal model of ``first_draw.py`` (50 groups x 20 observations, centred),
    written in ``.ppl`` as a Stan user would: a loop over groups observing one row each."""
    import first_draw
    import numpy as np

    data = first_draw.hierarchical_data(groups, per_group)
    y = jnp.asarray(np.asarray(data["y"], np.float32))

    def model():
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", dist.HalfNormal(5.0))
        sigma = numpyro.sample("sigma", dist.HalfNormal(5.0))
        with numpyro.plate("groups", groups, dim=-2):
            theta = numpyro.sample("theta", dist.Normal(mu, tau))
            with numpyro.plate("obs", per_group, dim=-1):
                numpyro.sample("y", dist.Normal(theta, sigma), obs=y)

    log_norm = 0.5 * jnp.log(2 * jnp.pi)
    half_normal_const = jnp.log(2.0) - jnp.log(5.0) - log_norm

    def logdensity(p):
        mu, log_tau, log_sigma, theta = p["mu"], p["tau"], p["sigma"], p["theta"][:, 0]
        tau, sigma = jnp.exp(log_tau), jnp.exp(log_sigma)
        lp = -0.5 * (mu / 5.0) ** 2 - jnp.log(5.0) - log_norm
        lp += half_normal_const - 0.5 * (tau / 5.0) ** 2 + log_tau  # HalfNormal + log-Jacobian
        lp += half_normal_const - 0.5 * (sigma / 5.0) ** 2 + log_sigma
        lp += jnp.sum(-0.5 * ((theta - mu) / tau) ** 2 - log_tau - log_norm)
        z = (y - theta[:, None]) / sigma
        lp += jnp.sum(-0.5 * z**2) - y.size * (log_sigma + log_norm)
        return lp

    template = {"mu": jnp.zeros(()), "tau": jnp.zeros(()), "sigma": jnp.zeros(()), "theta": jnp.zeros((groups, 1))}
    import ppl

    ppl_model = ppl.loads(first_draw.HIERARCHICAL_PPL).hierarchical
    return Problem(f"hierarchical normal ({groups} groups x {per_group})", model, logdensity, template,
                   ppl_model, (groups, per_group, np.asarray(data["y"], np.float32)))


def ppl_logdensity(problem: Problem):
    """The hand-written density, for the row that times ppl's chain driver alone."""
    return problem.logdensity


# --------------------------------------------------------------------------- samplers


def initial_positions(problem: Problem, chains: int, seed: int):
    flat, unravel = jax.flatten_util.ravel_pytree(problem.template)
    x = jax.random.uniform(jax.random.PRNGKey(1000 + seed), (chains, flat.size), flat.dtype, -2.0, 2.0)
    return jax.vmap(unravel)(x)


def fresh_compilation():
    jax.clear_caches()
    base.clear_compiled_programs()


def to_host(tree):
    return jax.tree.map(np.asarray, jax.block_until_ready(tree))


def min_bulk_ess(samples) -> float:
    """Smallest bulk ESS over all coordinates; leaves have shape (chains, draws, ...)."""
    return min(float(np.min(diagnostics.ess_bulk(np.asarray(x)))) for x in jax.tree.leaves(samples))


def timed(fn, *args):
    start = time.perf_counter()
    out = to_host(fn(*args))
    return time.perf_counter() - start, out


def warm_runs(fn, seed: int, runs: int) -> tuple[float, float]:
    """``fn(s)`` for ``runs`` new seeds after the first call: (median wall time, mean min bulk ESS)."""
    times, ess = [], []
    for r in range(runs):
        t, draws = timed(fn, 100 + 1000 * r + seed)
        times.append(t)
        ess.append(min_bulk_ess(draws))
    return statistics.median(times), statistics.fmean(ess)


def run_ppl(problem, cfg, seed):
    """``ppl.infer`` on the ppl model: tracing, compiled density, warm-up, sampling, constraining
    the draws and building the Posterior are all timed, as a user pays for them."""
    import ppl

    method = ppl.NUTS(num_warmup=cfg.warmup, num_samples=cfg.samples, num_chains=cfg.chains, progress=False)

    def sample(s):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = ppl.infer(problem.ppl_model, *problem.ppl_args, method=method, seed=s)
        return {k: v for k, v in post.samples.items() if k in problem.template}

    fresh_compilation()
    # compiled functions live on the traced program (ppl.semantics.cache): dropping the model's
    # programs drops them too, so the first call pays for tracing and compiling again
    problem.ppl_model._programs.clear()
    problem.ppl_model._compiled.clear()
    cold, _ = timed(sample, seed)
    return {"ppl": (cold, *warm_runs(sample, seed, cfg.warm_runs))}


def run_ppl_driver(problem, cfg, seed):
    """ppl's chain driver and NUTS kernel on the hand-written density (no model, no Posterior)."""
    density = ppl_logdensity(problem)
    init = initial_positions(problem, cfg.chains, seed)

    def sample(key):
        result = base.run_chains(
            key,
            density,
            init,
            nuts.Builder(),
            num_warmup=cfg.warmup,
            num_samples=cfg.samples,
            warn=False,
            progress=False,
        )
        return result.positions

    fresh_compilation()
    cold, _ = timed(sample, jax.random.PRNGKey(seed))
    return {"ppl driver, hand density": (cold, *warm_runs(lambda s: sample(jax.random.PRNGKey(s)), seed,
                                                          cfg.warm_runs))}


def blackjax_sampler(problem, cfg):
    """BlackJAX's window adaptation then NUTS, chains vmapped, as one jitted ``sample(key, init)``."""
    density = problem.logdensity
    chains, warmup, samples = cfg.chains, cfg.warmup, cfg.samples

    @jax.jit
    def sample(key, init):
        key_warm, key_sample = jax.random.split(key)
        adaptation = blackjax.window_adaptation(blackjax.nuts, density)
        (states, params), _ = jax.vmap(lambda k, x: adaptation.run(k, x, warmup))(
            jax.random.split(key_warm, chains), init
        )

        def one_step(k, state, p):
            return blackjax.nuts(density, **p).step(k, state)

        def body(states, k):
            states, _ = jax.vmap(one_step)(jax.random.split(k, chains), states, params)
            return states, states.position

        _, positions = jax.lax.scan(body, states, jax.random.split(key_sample, samples))
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), positions)

    return sample


def run_blackjax(problem, cfg, seed):
    init = initial_positions(problem, cfg.chains, seed)
    sample = blackjax_sampler(problem, cfg)
    fresh_compilation()
    cold, _ = timed(sample, jax.random.PRNGKey(seed), init)
    return {"BlackJAX": (cold, *warm_runs(lambda s: sample(jax.random.PRNGKey(s), init), seed, cfg.warm_runs))}


def numpyro_mcmc(problem, cfg):
    return MCMC(
        NUTS(problem.numpyro_model),
        num_warmup=cfg.warmup,
        num_samples=cfg.samples,
        num_chains=cfg.chains,
        chain_method="vectorized",
        progress_bar=False,
    )


def numpyro_jitted(problem, cfg):
    """NumPyro's whole ``mcmc.run`` inside ``jax.jit``: ``sample(key, init)``; a second call reuses the executable."""
    mcmc = numpyro_mcmc(problem, cfg)

    @jax.jit
    def sample(key, init):
        mcmc.run(key, init_params=init)
        return mcmc.get_samples(group_by_chain=True)

    return sample


def run_numpyro(problem, cfg, seed):
    init = initial_positions(problem, cfg.chains, seed)

    def make():
        return numpyro_mcmc(problem, cfg)

    # Plain: a first and a second ``mcmc.run`` on one MCMC object.
    fresh_compilation()
    mcmc = make()

    def plain(key):
        mcmc.run(key, init_params=init)
        return mcmc.get_samples(group_by_chain=True)

    cold_plain, _ = timed(plain, jax.random.PRNGKey(seed))
    warm_plain = warm_runs(lambda s: plain(jax.random.PRNGKey(s)), seed, cfg.warm_runs)

    # Jitted: the whole ``mcmc.run`` inside ``jax.jit``, so a second call reuses the executable.
    fresh_compilation()
    jitted = numpyro_jitted(problem, cfg)
    cold_jit, _ = timed(jitted, jax.random.PRNGKey(seed), init)
    warm_jit = warm_runs(lambda s: jitted(jax.random.PRNGKey(s), init), seed, cfg.warm_runs)
    return {
        "NumPyro (plain rerun)": (cold_plain, *warm_plain),
        "NumPyro (jitted)": (cold_jit, *warm_jit),
    }


RUNNERS = {"ppl": run_ppl, "driver": run_ppl_driver, "blackjax": run_blackjax, "numpyro": run_numpyro}
PROBLEMS = {"eight_schools": eight_schools, "logistic": logistic_regression, "hierarchical": hierarchical}


# --------------------------------------------------------------------------- report


def summarise(runs: list[dict]) -> dict:
    """Median over repeats of (cold, warm, min ESS, ESS/s) per sampler."""
    table = {}
    for name in runs[0]:
        cold = statistics.median(r[name][0] for r in runs)
        warm = statistics.median(r[name][1] for r in runs)
        ess = statistics.median(r[name][2] for r in runs)
        rate = statistics.median(r[name][2] / r[name][1] for r in runs)
        table[name] = (cold, warm, ess, rate)
    return table


def render(results: dict, cfg) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    for problem, table in results.items():
        ppl = table.get("ppl")
        t = Table(title=f"{problem}: {cfg.chains} chains x ({cfg.warmup} warm-up + {cfg.samples} draws), "
                  f"median of {cfg.repeats} repeats x {cfg.warm_runs} warm runs")
        for column in ("sampler", "first draw (s)", "warm (s)", "min bulk ESS", "min ESS/s",
                       "ppl/x ESS/s", "ppl/x first draw"):
            t.add_column(column, justify="left" if column == "sampler" else "right")
        for name, (cold, warm, ess, rate) in table.items():
            ratio_rate = f"{ppl[3] / rate:.2f}" if ppl and name != "ppl" else ""
            ratio_cold = f"{ppl[0] / cold:.2f}" if ppl and name != "ppl" else ""
            t.add_row(name, f"{cold:.2f}", f"{warm:.3f}", f"{ess:.0f}", f"{rate:.0f}", ratio_rate, ratio_cold)
        console.print(t)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--warm-runs", type=int, default=4,
                        help="warm calls per repeat, each with a new seed (median time, mean min ESS)")
    parser.add_argument("--problems", default="eight_schools,logistic")
    parser.add_argument("--samplers", default="ppl,driver,numpyro,blackjax")
    parser.add_argument("--json", help="also write the medians to this file")
    cfg = parser.parse_args(argv)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, numpyro {numpyro.__version__}, "
          f"blackjax {blackjax.__version__}; {os.cpu_count()} CPU cores", file=sys.stderr)
    results = {}
    for key in cfg.problems.split(","):
        problem = PROBLEMS[key]()
        runs = []
        for seed in range(cfg.repeats):
            row = {}
            for sampler in cfg.samplers.split(","):
                row.update(RUNNERS[sampler](problem, cfg, seed))
            runs.append(row)
            print(f"{problem.name} repeat {seed}: " + ", ".join(
                f"{k}: cold {v[0]:.2f}s warm {v[1]:.3f}s ESS {v[2]:.0f}" for k, v in row.items()),
                file=sys.stderr)
        results[problem.name] = summarise(runs)
    render(results, cfg)
    if cfg.json:
        Path(cfg.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

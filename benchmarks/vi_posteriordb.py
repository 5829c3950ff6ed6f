"""Variational inference on every posteriordb posterior the suite carries: how far each guide's means are.

For each of the 17 posteriors (tests/data/posteriordb, models in examples/posteriordb), fits
``ppl.AutoNormal`` (mean-field) and ``ppl.AutoMultivariateNormal`` with the ELBO and reports, over the
reference's parameters, the distance of the guide's posterior mean from the reference mean in units of
the reference posterior sd: ``|mean_vi - mean_ref| / sd_ref`` (median and max), the ratio of the guide's
sd to the reference sd (median), and the final ELBO. VI is approximate: this reports, it does not judge.

    python benchmarks/vi_posteriordb.py [--steps 5000] [--only NAME ...] [--guides normal mvn] [--init-loc map|zero]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import warnings

import numpy as np
import optax

import ppl

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from posteriordb_util import load_data, load_reference, model_args, reported_draws  # noqa: E402
from test_posteriordb import CASES, _load, _precision  # noqa: E402

GUIDES = {"normal": ppl.AutoNormal, "mvn": ppl.AutoMultivariateNormal}


def fit(case, guide, steps: int, seed: int = 0, num_samples: int = 2000, init_loc: str = "map"):
    """``(posterior, arrays by name (1, draws, ...), seconds)`` for one posterior and one guide."""
    data = load_data(case.posterior)
    with _precision(case.x64):
        model = _load(case)
        args = model_args(model, data)
        method = ppl.VI(guide=GUIDES[guide](init_loc=init_loc), objective=ppl.ELBO(4), num_steps=steps, num_samples=num_samples,
                        optimizer=optax.adam(optax.exponential_decay(1e-2, steps, 0.1)), progress=False)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = ppl.infer(model, *args, method=method, seed=seed)
        seconds = time.perf_counter() - start
    arrays = {a: np.asarray(v)[None] for a, v in post.samples.items()}
    if case.returned is not None:
        arrays[case.returned] = np.asarray(post.returns)[None]
    return post, arrays, seconds


def distances(arrays, reference) -> dict:
    names = reference["parameter_names"]
    draws = reported_draws(arrays, names)
    z, ratio = [], []
    for n in names:
        ref = reference["parameters"][n]
        x = draws[n].ravel()
        z.append(abs(x.mean() - ref["mean"]) / ref["sd"])
        ratio.append(x.std() / ref["sd"])
    return {"median_z": float(np.median(z)), "max_z": float(np.max(z)), "sd_ratio": float(np.median(ratio)),
            "worst": names[int(np.argmax(z))]}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--guides", nargs="*", default=list(GUIDES))
    parser.add_argument("--init-loc", default="map", choices=["map", "zero"],
                        help="where the guides' location starts (the mode by L-BFGS, or 0)")
    opts = parser.parse_args(argv)
    rows = []
    print(f"{'posterior':44s} {'guide':7s} {'ELBO':>11s} {'med |dz|':>9s} {'max |dz|':>9s} {'sd ratio':>9s} "
          f"{'s':>6s}  worst")
    for name, case in CASES.items():
        if opts.only and name not in opts.only:
            continue
        reference = load_reference(name)
        for guide in opts.guides:
            try:
                post, arrays, seconds = fit(case, guide, opts.steps, init_loc=opts.init_loc)
                d = distances(arrays, reference)
                row = dict(posterior=name, guide=guide, elbo=post.log_evidence, seconds=seconds, **d)
                print(f"{name:44s} {guide:7s} {post.log_evidence:11.2f} {d['median_z']:9.3f} {d['max_z']:9.3f} "
                      f"{d['sd_ratio']:9.3f} {seconds:6.1f}  {d['worst']}", flush=True)
            except Exception as err:  # report, do not stop: the table is the point
                row = dict(posterior=name, guide=guide, error=f"{type(err).__name__}: {err}")
                print(f"{name:44s} {guide:7s} ERROR {row['error'][:120]}", flush=True)
            rows.append(row)
    ok = [r for r in rows if "error" not in r]
    if ok:
        for guide in opts.guides:
            z = [r["median_z"] for r in ok if r["guide"] == guide]
            if z:
                print(f"{guide}: median over posteriors of the median |dz| = {np.median(z):.3f} "
                      f"({len(z)} posteriors, {sum(1 for r in rows if r['guide'] == guide and 'error' in r)} errors)")
    return rows


if __name__ == "__main__":
    main()

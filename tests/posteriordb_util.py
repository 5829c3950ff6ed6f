"""Helpers for checking ppl's posteriors against posteriordb's reference posteriors.

The reference set (17 posteriors: data and reference statistics) is copied
under ``tests/data/posteriordb`` (see its README.md for the source: posteriordb
at a named commit, and MODELS.md for the models in words), so that a fresh
clone, with nothing beside it, runs these tests too;
the models, written in the .ppl language, in ``examples/posteriordb``, one
file per posterior named after posteriordb's model name (``garch11.ppl``
defines ``model garch11``). Data follow Stan's convention: a model's argument
names are the keys of ``NAME.data.json``.

The checks (``check_parameter``), per flattened reported parameter ``p``
(``theta[3]`` in posteriordb's 1-based names is ``theta[..., 2]`` here):

* **Mean.** ``z = (mean - ref_mean) / sqrt(sd_ref^2 / ESS + mcse_ref^2)``
  with ``ESS`` the bulk ESS of our draws (``ess_bulk`` on (chains, draws))
  and ``mcse_ref`` the reference's own Monte Carlo error; pass if ``|z| < 4``.
* **Quantile coverage.** For each reference quantile ``q_ref`` at level ``a``
  (0.05, 0.5, 0.95), ``F = `` the fraction of our draws at or below ``q_ref``.
  If both samplers target the same distribution, ``F - a`` has standard error
  ``se = sqrt(a (1 - a) (1 / ESS_tail + 1 / ESS_ref))``: a binomial error with
  our tail ESS (ArviZ's ``ess_tail`` is the ESS of exactly these 5% / 95%
  indicators; for the median the bulk ESS), plus the error of the reference
  quantile itself (itself estimated from ``ESS_ref`` reference draws).
  Pass if ``|F - a| < 4 se`` *and* ``F`` lies in the band the issue asks for:
  the reference q05 inside our 0-15% quantiles, q95 inside our 85-100%, the
  median inside our 35-65%. With ESS >= 200 the ``4 se`` limit is the tighter
  one (4 se = 0.062 at a = 0.05), so the band only bites for tiny ESS.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import warnings
from typing import Any

import numpy as np
import pytest

from ppl.inference import diagnostics

__all__ = [
    "REPO", "EXAMPLES", "POSTERIORDB", "posteriordb_dir", "require_posteriordb", "load_data", "load_reference",
    "load_index", "model_args", "split_name", "reported_draws", "ParamCheck", "check_parameter",
    "check_posterior", "format_checks", "Z_LIMIT", "BANDS",
]

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "posteriordb"
Z_LIMIT = 4.0
#: the quantile levels checked and the band of our quantiles each reference quantile must fall in
BANDS = {"q05": (0.05, 0.0, 0.15), "q50": (0.5, 0.35, 0.65), "q95": (0.95, 0.85, 1.0)}


POSTERIORDB = REPO / "tests" / "data" / "posteriordb"


def posteriordb_dir() -> pathlib.Path | None:
    """``tests/data/posteriordb`` if it holds ``index.json``, else None."""
    return POSTERIORDB if (POSTERIORDB / "index.json").is_file() else None


def require_posteriordb() -> pathlib.Path:
    """The reference folder; a missing copy fails the calling test (it ships with the repository)."""
    path = posteriordb_dir()
    if path is None:
        pytest.fail(f"the posteriordb reference set is not at {POSTERIORDB}")
    return path


def _read(name: str, kind: str) -> dict:
    path = require_posteriordb() / f"{name}.{kind}.json"
    if not path.is_file():
        pytest.fail(f"{path.name} is missing from the posteriordb reference set at {path.parent}")
    return json.loads(path.read_text())


def load_data(name: str) -> dict:
    """The data of posterior ``name`` (e.g. ``"garch-garch11"``) as a dict."""
    return _read(name, "data")


def load_reference(name: str) -> dict:
    """The reference statistics of posterior ``name`` (see the folder's README.md)."""
    return _read(name, "reference")


def load_index() -> dict:
    """``index.json``: the posteriors' names, tiers, parameters and hints."""
    return json.loads((require_posteriordb() / "index.json").read_text())


def model_args(model, data: dict) -> list:
    """The data in the model's argument order: each argument name is a key of ``data``."""
    missing = [p for p in model.param_names if p not in data]
    if missing:
        raise KeyError(f"the data have no field(s) {missing} for the model's arguments {model.param_names}")
    return [data[p] for p in model.param_names]


def split_name(flat: str) -> tuple[str, tuple[int, ...]]:
    """posteriordb's 1-based flat name -> (array name, 0-based index): ``theta[3]`` -> ``('theta', (2,))``."""
    if "[" not in flat:
        return flat, ()
    base, rest = flat.split("[", 1)
    return base, tuple(int(i) - 1 for i in rest.rstrip("]").split(","))


def reported_draws(arrays: dict[str, Any], names: list[str]) -> dict[str, np.ndarray]:
    """For each reference name, our draws of shape (chains, draws).

    ``arrays`` maps an array name to draws of shape (chains, draws, *shape)
    (``posterior.samples``, plus any derived quantity computed by the caller).
    """
    out = {}
    for flat in names:
        base, idx = split_name(flat)
        if base not in arrays:
            raise KeyError(f"the posterior has no '{base}' (for '{flat}'); it has {sorted(arrays)}")
        x = np.asarray(arrays[base], dtype=np.float64)
        if x.ndim != 2 + len(idx):
            raise ValueError(f"'{base}' has draws of shape {x.shape}, which does not fit '{flat}'")
        out[flat] = x[(slice(None), slice(None)) + idx]
    return out


@dataclasses.dataclass(frozen=True)
class ParamCheck:
    """The comparison of one flattened parameter with its reference."""

    name: str
    mean: float
    ref_mean: float
    sd: float
    ref_sd: float
    ess_bulk: float
    ess_tail: float
    rhat: float
    z: float
    coverage: dict  # level name -> (F, se, band ok, |F - a| / se)

    @property
    def mean_ok(self) -> bool:
        return bool(np.isfinite(self.z) and abs(self.z) < Z_LIMIT)

    @property
    def coverage_ok(self) -> bool:
        return all(ok and zc < Z_LIMIT for (_, _, ok, zc) in self.coverage.values())

    @property
    def ok(self) -> bool:
        return self.mean_ok and self.coverage_ok

    @property
    def worst_coverage_z(self) -> float:
        return max(zc for (_, _, _, zc) in self.coverage.values())


def check_parameter(name: str, draws: np.ndarray, ref: dict) -> ParamCheck:
    """Compare draws of shape (chains, draws) with one parameter's reference statistics."""
    x = np.asarray(draws, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ess_b = float(diagnostics.ess_bulk(x))
        ess_t = float(diagnostics.ess_tail(x))
        rhat = float(diagnostics.split_rhat(x))
    flat = x.reshape(-1)
    mean, sd = float(flat.mean()), float(flat.std(ddof=1))
    se = math.sqrt(ref["sd"] ** 2 / ess_b + ref["mcse_mean"] ** 2)
    z = (mean - ref["mean"]) / se
    coverage = {}
    for key, (a, lo, hi) in BANDS.items():
        f = float(np.mean(flat <= ref[key]))
        ours = ess_b if key == "q50" else ess_t
        theirs = ref["ess_bulk"] if key == "q50" else ref["ess_tail"]
        se_f = math.sqrt(a * (1 - a) * (1.0 / ours + 1.0 / theirs))
        coverage[key] = (f, se_f, lo <= f <= hi, abs(f - a) / se_f)
    return ParamCheck(name, mean, ref["mean"], sd, ref["sd"], ess_b, ess_t, rhat, z, coverage)


def check_posterior(arrays: dict[str, Any], reference: dict, names: list[str] | None = None) -> list[ParamCheck]:
    """Check every reported parameter (or ``names``) of ``reference`` against ``arrays``."""
    names = list(reference["parameter_names"]) if names is None else list(names)
    draws = reported_draws(arrays, names)
    return [check_parameter(n, draws[n], reference["parameters"][n]) for n in names]


def format_checks(checks: list[ParamCheck]) -> str:
    """A table of the checks, one line per parameter, failures marked."""
    lines = [f"{'parameter':<12} {'mean':>10} {'ref':>10} {'z':>6} {'ess_b':>7} {'ess_t':>7} {'rhat':>6} "
             f"{'F(q05)':>7} {'F(q50)':>7} {'F(q95)':>7}"]
    for c in checks:
        cov = " ".join(f"{c.coverage[k][0]:>7.3f}" for k in BANDS)
        mark = "" if c.ok else "  <-- FAIL" + ("" if c.mean_ok else " (mean)") + \
            ("" if c.coverage_ok else " (coverage)")
        lines.append(f"{c.name:<12} {c.mean:>10.4g} {c.ref_mean:>10.4g} {c.z:>6.2f} {c.ess_bulk:>7.0f} "
                     f"{c.ess_tail:>7.0f} {c.rhat:>6.3f} {cov}{mark}")
    return "\n".join(lines)

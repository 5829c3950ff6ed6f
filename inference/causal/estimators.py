"""Effect estimators from data for a binary treatment: inverse-probability weighting and AIPW.

With covariates ``Z`` that block every back-door path from the treatment
``T`` to the outcome ``Y`` (``identify`` says which), the average effect
``E[Y | do(T=1)] - E[Y | do(T=0)]`` is estimated from rows of data:

- **IPW** (Horvitz–Thompson): ``mean(T Y / e(Z) - (1 - T) Y / (1 - e(Z)))``,
  with the propensity ``e(Z) = P(T = 1 | Z)`` fitted by logistic regression.
  Consistent when the propensity model is right.
- **AIPW** (doubly robust): ``mean(m1 - m0 + T (Y - m1) / e - (1 - T)(Y - m0) / (1 - e))``
  with outcome regressions ``m_t(Z) = E[Y | T = t, Z]`` fitted in each arm
  (logistic for a 0/1 outcome, least squares otherwise). Consistent when
  either the propensity model or the outcome model is right.

Both are means of per-row terms (their influence functions), so the standard
error is the terms' standard deviation over ``sqrt(n)`` (treating the fitted
models as known, the usual large-sample approximation). The regressions are
linear in the covariate columns given; pass transformed columns (squares,
one-hot codes) for richer models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppl.stdlib.errors import ModelError

__all__ = ["Effect", "ipw", "aipw", "logistic_fit"]


@dataclass(frozen=True)
class Effect:
    """An average treatment effect estimate: ``ate`` with standard error ``se``, and both arms' means."""

    ate: float
    se: float
    treated: float
    control: float
    method: str

    def __str__(self) -> str:
        return f"{self.method}: ATE = {self.ate:.4f} ± {self.se:.4f} (E[Y|do(T=1)] = {self.treated:.4f}, " \
               f"E[Y|do(T=0)] = {self.control:.4f})"


def _columns(data, treatment, outcome, covariates):
    names = list(data)
    for role, name in (("treatment", treatment), ("outcome", outcome)):
        if name not in data:
            raise ModelError(f"the {role} '{name}' is not a column of the data; its columns are {names}")
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    for c in covariates:
        if c not in data:
            raise ModelError(f"the covariate '{c}' is not a column of the data; its columns are {names}")
    columns = {name: np.asarray(data[name], dtype=float) for name in [treatment, outcome, *covariates]}
    for name, col in columns.items():
        if col.ndim > 1 and col.size != col.shape[0]:
            raise ModelError(f"the column '{name}' has shape {col.shape}; each column holds one value per row",
                             hint="Pass each covariate as its own column (a dict of 1-D arrays).")
    lengths = {name: col.size for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ModelError(f"the treatment, outcome and covariate columns have different lengths: {lengths}")
    for name, col in columns.items():
        if not np.all(np.isfinite(col)):
            raise ModelError(f"the column '{name}' holds NaN or infinite values at rows "
                             f"{np.flatnonzero(~np.isfinite(col.reshape(-1)))[:6].tolist()}",
                             hint="Drop those rows, or impute them before estimating the effect.")
    t, y = columns[treatment].reshape(-1), columns[outcome].reshape(-1)
    if not np.isin(t, (0.0, 1.0)).all():
        raise ModelError(f"the treatment '{treatment}' must be binary (0 or 1) for IPW/AIPW; it takes the values "
                         f"{np.unique(t)[:6].tolist()}")
    z = np.column_stack([np.ones_like(t)] + [columns[c].reshape(-1) for c in covariates])
    return t, y, z


def logistic_fit(x: np.ndarray, y: np.ndarray, iters: int = 50) -> np.ndarray:
    """Logistic-regression coefficients by Newton's method (a tiny ridge keeps separable data finite)."""
    beta = np.zeros(x.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        grad = x.T @ (y - p) - 1e-6 * beta
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


OVERLAP = 1e-5  # a fitted propensity this close to 0 or 1 means the arms do not overlap


def _propensity(t, z, clip):
    e = 1.0 / (1.0 + np.exp(-(z @ logistic_fit(z, t))))
    if clip:
        e = np.clip(e, clip, 1 - clip)
    # separated data drive the logistic fit's logits without bound (the ridge stops them near 18, a
    # propensity of 1e-8): any propensity within OVERLAP of 0 or 1 is such a stratum, where one arm
    # has no units and the weights 1 / e would rest on no data
    if np.any((e <= OVERLAP) | (e >= 1 - OVERLAP)):
        raise ModelError("the fitted propensity is 0 or 1 for some rows: treated and untreated units do not "
                         "overlap there", hint="Pass clip=0.01 to trim the propensity, or use fewer covariates "
                                               "(a covariate that decides the treatment, such as the treatment "
                                               "itself, leaves no overlap).")
    return e


def _arm_mean(t, y, z, arm):
    rows = t == arm
    if rows.sum() < z.shape[1]:
        raise ModelError(f"too few rows with treatment {arm} to fit the outcome regression")
    if np.isin(y, (0.0, 1.0)).all():
        beta = logistic_fit(z[rows], y[rows])
        return 1.0 / (1.0 + np.exp(-(z @ beta)))
    beta, *_ = np.linalg.lstsq(z[rows], y[rows], rcond=None)
    return z @ beta


def _effect(terms1, terms0, method) -> Effect:
    diff = terms1 - terms0
    n = len(diff)
    return Effect(float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(n)), float(terms1.mean()),
                  float(terms0.mean()), method)


def ipw(data: dict, *, treatment: str, outcome: str, covariates=(), clip: float = 0.0) -> Effect:
    """Inverse-probability-weighted (Horvitz–Thompson) average effect of the binary ``treatment``."""
    t, y, z = _columns(data, treatment, outcome, covariates)
    e = _propensity(t, z, clip)
    return _effect(t * y / e, (1 - t) * y / (1 - e), "IPW")


def aipw(data: dict, *, treatment: str, outcome: str, covariates=(), clip: float = 0.0,
         propensity_covariates=None, outcome_covariates=None) -> Effect:
    """Augmented IPW (doubly robust) average effect of the binary ``treatment``.

    ``covariates`` feed both models; ``propensity_covariates`` / ``outcome_covariates``
    give either model its own columns."""
    pz = covariates if propensity_covariates is None else propensity_covariates
    oz = covariates if outcome_covariates is None else outcome_covariates
    t, y, z = _columns(data, treatment, outcome, pz)
    e = _propensity(t, z, clip)
    z = _columns(data, treatment, outcome, oz)[2]
    m1, m0 = _arm_mean(t, y, z, 1.0), _arm_mean(t, y, z, 0.0)
    return _effect(m1 + t * (y - m1) / e, m0 + (1 - t) * (y - m0) / (1 - e), "AIPW")

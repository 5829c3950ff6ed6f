"""``Posterior``: what ``ppl.infer`` returns — draws or an exact table, with summaries."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ppl.inference.result import Result
from ppl.stdlib.errors import ModelError

__all__ = ["Posterior"]

#: the fewest equally weighted draws ``to_arviz`` makes of a weighted posterior
ARVIZ_DRAWS = 4000

_RETURN = "<return>"


class Posterior:
    """The result of inference on a model.

    ``samples``: address -> array with a leading draw axis (``(chains, draws)``
    for MCMC). ``returns``: the model's return values, one per draw — a model
    denotes a distribution over what it returns, so ``mean()``, ``std()`` and
    ``quantile()`` without a name refer to them. ``log_weights``: set by
    weighted methods (importance, enumeration); every statistic uses the
    normalised weights. ``log_evidence``: where the method estimates it.
    ``engine``: ``"compiled"`` or ``"eager"``, and ``dynamic_reason`` says why
    a model ran eagerly.
    """

    def __init__(self, result: Result, model_name: str, dynamic_reason: str | None = None):
        self.result = result
        self.model_name = model_name
        self.dynamic_reason = dynamic_reason
        self.log_weights = result.log_weights
        self.log_evidence = result.log_evidence
        self.method = result.method
        self.engine = result.engine
        self.sample_stats = result.sample_stats
        self.notes = list(result.notes)
        #: variational inference: the fitted guide's parameters (constrained) and the objective per step
        self.params = getattr(result, "params", None)
        self.history = getattr(result, "history", None)
        #: the devices the run used (``ppl.infer`` sets it; see docs/devices.md)
        self.devices: list = []
        if dynamic_reason:
            self.notes.insert(0, dynamic_reason)

    # -- draws (SMC's paths are read back on first use: Result.deferred) -----------
    @property
    def samples(self) -> dict[str, np.ndarray]:
        self.result.materialize()
        return self.result.samples

    @samples.setter
    def samples(self, value) -> None:
        self.result.materialize()
        self.result.samples = value

    @property
    def returns(self):
        self.result.materialize()
        return self.result.returns

    @returns.setter
    def returns(self, value) -> None:
        self.result.materialize()
        self.result.returns = value

    # -- weights ----------------------------------------------------------------
    @property
    def weights(self) -> np.ndarray | None:
        """Normalised weights of the draws (None for equally weighted draws)."""
        if self.log_weights is None:
            return None
        lw = np.asarray(self.log_weights, dtype=np.float64)
        m = np.max(lw)
        w = np.exp(lw - m)
        return w / w.sum()

    @property
    def ess(self) -> float:
        """Effective sample size of the weights (Kish); the number of draws when unweighted."""
        w = self.weights
        if w is None:
            return float(self._flat(self._values(None)).shape[0])
        return float(1.0 / np.sum(w**2))

    def _values(self, name: str | None):
        if name is None or name == _RETURN:
            vals = self.returns
            if isinstance(vals, list):
                try:
                    vals = np.asarray([np.asarray(v, dtype=np.float64) for v in vals])
                except (TypeError, ValueError):
                    raise ModelError("the model's return values are not numbers; use posterior.probs() "
                                     "for a table of return values") from None
            if vals is None or (isinstance(vals, tuple) and not vals):
                raise ModelError("the model returns nothing; name a random choice: posterior.mean('x')",
                                 hint=f"Its random choices are {sorted(self.samples)}")
            if not isinstance(vals, np.ndarray):
                vals = jax.tree.leaves(vals)
                if len(vals) != 1:
                    raise ModelError("the model returns a structure; name a random choice instead, "
                                     "or return one array")
                vals = np.asarray(vals[0])
            return vals
        if name not in self.samples:
            raise ModelError(f"no random choice is named {name!r}; the posterior has {sorted(self.samples)}")
        return np.asarray(self.samples[name])

    def _flat(self, vals):
        if self.result.chains:
            vals = vals.reshape((-1,) + vals.shape[2:])
        return vals

    # -- statistics ---------------------------------------------------------------
    def mean(self, name: str | None = None):
        """Posterior mean of a site (or of the return value when no name is given)."""
        x = self._flat(self._values(name)).astype(np.float64)
        w = self.weights
        if w is None:
            return np.nanmean(x, axis=0)
        return _wmean(x, w)

    def var(self, name: str | None = None):
        x = self._flat(self._values(name)).astype(np.float64)
        w = self.weights
        if w is None:
            return np.nanvar(x, axis=0, ddof=1)
        m = _wmean(x, w)
        return _wmean((x - m) ** 2, w)

    def std(self, name: str | None = None):
        """Posterior standard deviation."""
        return np.sqrt(self.var(name))

    def quantile(self, name: str | None = None, q=0.5):
        """Posterior quantile(s) ``q`` (weighted where the draws are weighted)."""
        if not isinstance(name, (str, type(None))):
            name, q = None, name
        x = self._flat(self._values(name)).astype(np.float64)
        w = self.weights
        qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if w is None:
            out = np.nanquantile(x, qs, axis=0)
        else:
            out = np.stack([_wquantile(x, w, qq) for qq in qs])
        return out[0] if np.ndim(q) == 0 else out

    def probs(self, name: str | None = None) -> dict:
        """The distribution of a discrete site (or of the return value) as {value: probability}."""
        if name is None and isinstance(self.returns, list):
            vals = [_hashable(v) for v in self.returns]
        else:
            arr = self._flat(self._values(name))
            vals = [_hashable(v) for v in arr]
        w = self.weights
        if w is None:
            w = np.full(len(vals), 1.0 / len(vals))
        table: dict = {}
        for v, p in zip(vals, w):
            table[v] = table.get(v, 0.0) + float(p)
        return dict(sorted(table.items(), key=lambda kv: _sort_key(kv[0])))

    def prob(self, predicate, name: str | None = None) -> float:
        """Posterior probability that ``predicate(value)`` holds (for a site made in some runs only:
        that it is made and the predicate holds; ``probs`` gives the runs without it under None)."""
        return float(sum(p for v, p in self.probs(name).items() if v is not None and predicate(v)))

    def resample(self, num: int | None = None, seed: int = 0) -> dict:
        """Equally weighted draws (systematic resampling of weighted ones)."""
        from ppl.semantics.interpret.population import resample_indices

        n_draws = len(next(iter(self.samples.values()))) if self.samples else 0
        if self.weights is None:
            return {k: self._flat(np.asarray(v)) for k, v in self.samples.items()}
        num = num or n_draws
        idx = resample_indices(jax.random.key(seed), self.log_weights, "systematic", num)
        return {k: np.asarray(v)[idx] for k, v in self.samples.items()}

    # -- reports ------------------------------------------------------------------
    def summary(self, names=None) -> str:
        """A table of means, standard deviations and 5%/50%/95% quantiles per site."""
        from ppl.summary import summary_table

        return summary_table(self, names)

    def __repr__(self) -> str:
        return self.summary()

    def plot(self, kind: str = "trace", var_names=None, path: str | None = None):
        """A trace, posterior or pair plot through ArviZ (``kind``), saved to ``path`` if given;
        returns the matplotlib figure (see ``ppl.plot``)."""
        from ppl.plot import plot

        return plot(self, kind=kind, var_names=var_names, path=path)

    def to_arviz(self):
        """ArviZ data (``InferenceData``, or a ``DataTree`` with ArviZ >= 1.0).

        Weighted draws are resampled to equal weights first, to at least ``ARVIZ_DRAWS``
        draws (systematic resampling: each value's count is within one of its weight times
        the draws, so ArviZ's means and quantiles are the weighted ones; an exact posterior of
        three outcomes resampled to three draws could show one value only); a sub-model's site
        ``'sub/x'`` is named ``'sub.x'`` (ArviZ names may not contain '/').
        """
        import arviz as az

        keep_chains = self.result.chains and self.weights is None
        if keep_chains:
            draws = self.samples
        else:
            rows = len(next(iter(self.samples.values()))) if self.samples else 0
            draws = self.resample(max(rows, ARVIZ_DRAWS)) if self.weights is not None else self.resample()
            if self.weights is not None:  # systematic resampling keeps the draws in order: mix them
                order = np.random.default_rng(0).permutation(len(next(iter(draws.values()))))
                draws = {k: np.asarray(v)[order] for k, v in draws.items()}
        posterior = {}
        for k, v in draws.items():
            v = np.asarray(v)
            if v.dtype == object:
                continue
            # ArviZ names may not contain '/': a sub-model site 'sub/x' becomes 'sub.x'
            posterior[k.replace("/", ".")] = v if keep_chains else v[None]
        groups = {"posterior": posterior}
        stats = {k: np.asarray(v) for k, v in self.sample_stats.items() if not k.startswith("_")}
        if stats:
            groups["sample_stats"] = stats
        if int(az.__version__.split(".")[0]) >= 1:  # a dict of groups, returning a DataTree
            return az.from_dict(groups)
        return az.from_dict(**groups)  # ArviZ < 1.0: groups as keywords, returning InferenceData


def _wmean(x, w):
    """Weighted mean over the draws where the site exists (not NaN); NaN where those weigh nothing."""
    w = w.reshape((-1,) + (1,) * (x.ndim - 1))
    mask = ~np.isnan(x)
    ww = np.where(mask, w, 0.0)
    total = np.sum(ww, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.sum(np.where(mask, x, 0.0) * ww, axis=0) / np.where(total > 0, total, 1.0),
                        np.nan)


def _wquantile(x, w, q):
    flat = x.reshape(x.shape[0], -1)
    out = np.empty(flat.shape[1])
    for j in range(flat.shape[1]):
        col = flat[:, j]
        ok = ~np.isnan(col)
        order = np.argsort(col[ok])
        cw = np.cumsum(w[ok][order])
        if cw.size == 0 or not cw[-1] > 0:  # the site exists only in draws of weight zero
            out[j] = np.nan
            continue
        cw /= cw[-1]
        out[j] = col[ok][order][min(np.searchsorted(cw, q), len(cw) - 1)]
    return out.reshape(x.shape[1:])


def _hashable(v):
    """A dictionary key for a value: numbers as Python numbers, arrays as tuples, and None for a
    draw where the site was not made (NaN: one key for all of them, as NaN != NaN)."""
    a = np.asarray(v) if not isinstance(v, (str, bool, int, float, tuple)) else v
    if isinstance(a, float) and a != a:
        return None
    if isinstance(a, np.ndarray):
        if a.shape == ():
            item = a.item()
            if isinstance(item, float) and item != item:
                return None
            return int(item) if isinstance(item, float) and item.is_integer() and a.dtype.kind in "iub" else item
        return tuple(_hashable(x) for x in a)
    return a


def _sort_key(v):
    return (0, v) if isinstance(v, (int, float, bool)) else (1, str(v))

"""``identify``: an interventional distribution as a formula in observational ones.

``identify(model, treatment=..., outcome=..., observed=[...])`` reads the
model's diagram (``semantics.graph``), projects the latent sites out
(:mod:`.admg`), and runs the complete ID algorithm (:mod:`.id_algorithm`).
The result is an :class:`Estimand`: ``.formula`` (text), ``.expression``
(the tree), ``.evaluate(data, weights=None)`` (a plug-in estimate from rows
of the observed sites, or from a probability/count table given as weighted
rows). Where no formula exists, :class:`NotIdentifiable` names the hedge,
the hidden confounding paths behind it, and which latent sites, if
observed, would make the effect identifiable.

Law (tests/test_identify.py): for a finite model, ``evaluate`` on the exact
observational marginal of the observed sites equals exact enumeration of
``model.do({treatment: t})``'s marginal of the outcome, for every ``t``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from ppl.inference.causal.admg import ADMG, latent_projection
from ppl.inference.causal.expr import evaluate as evaluate_expr
from ppl.inference.causal.expr import Prob, Prod, Sum, format_expr
from ppl.inference.causal.id_algorithm import Hedge, identify_effect
from ppl.semantics.graph import dependency_graph
from ppl.semantics.program import Dynamic
from ppl.stdlib.errors import AddressError, ModelError

__all__ = ["identify", "Estimand", "NotIdentifiable", "causal_dag"]

_RANDOM = ("sample", "observe")


class NotIdentifiable(ModelError):
    """The interventional distribution asked for has no formula in the observational one:
    two models agree on every observation but not on the effect. Carries ``hedge`` (``(F, F')``),
    ``paths`` (the confounding paths through latent sites) and ``remedies`` (latent sites whose
    observation would make the effect identifiable)."""

    kind = "Not identifiable"

    def __init__(self, message, hedge=None, paths=(), remedies=(), hint=None):
        self.hedge, self.paths, self.remedies = hedge, tuple(paths), tuple(remedies)
        super().__init__(message, hint=hint)


def _names(x, what: str) -> tuple[str, ...]:
    if isinstance(x, str):
        return (x,)
    try:
        out = tuple(x)
    except TypeError:
        raise ModelError(f"{what}= must be a site name or a list of site names, not {x!r}") from None
    if not all(isinstance(v, str) for v in out):
        raise ModelError(f"{what}= must name sites by their addresses (strings), got {list(out)!r}")
    return out


def causal_dag(model, *args, **kwargs) -> tuple[tuple[str, ...], dict, object]:
    """The model's random sites in program (topological) order, their parents, and the program."""
    program, _ = model.program(*args, **kwargs)
    if isinstance(program, Dynamic):
        raise ModelError(
            f"the causal diagram of '{program.name}' is not static: {program.reason}",
            span=program.span,
            hint="identify() needs a fixed set of sites and dependencies; write the model with ppl.cond "
                 "and ppl.scan (or as a .ppl file) so that it compiles.",
        )
    graph = dependency_graph(program)
    order = []
    for a, node in graph.nodes.items():
        if node.kind == "factor":
            raise ModelError(
                f"the model '{program.name}' has a factor at '{a}': it conditions the model (a selection), "
                "and identification is defined for the generative structure only",
                span=program.sites[a].span,
                hint="Remove the factor, or identify on the model without it.")
        if node.kind in _RANDOM:
            order.append(a)
    parents = {a: frozenset(p for p in graph.nodes[a].parents if p in graph.nodes) for a in order}
    return tuple(order), parents, program


def _check_node(name, nodes, program, role):
    if name in nodes:
        return
    close = difflib.get_close_matches(name, list(nodes), n=1, cutoff=0.6)
    hint = f"Did you mean '{close[0]}'? " if close else ""
    raise AddressError(f"{role} '{name}' is not a random choice of the model '{program.name}'; its sites "
                       f"are {list(nodes)}", hint=hint + "Name sites by their addresses ('sub/x' in a sub-model).")


def identify(model, *args, treatment, outcome, observed, **kwargs) -> "Estimand":
    """An :class:`Estimand` for ``P(outcome | do(treatment))`` from the joint of the ``observed`` sites."""
    xs, ys, obs = _names(treatment, "treatment"), _names(outcome, "outcome"), _names(observed, "observed")
    order, parents, program = causal_dag(model, *args, **kwargs)
    for role, group in (("treatment", xs), ("outcome", ys), ("observed site", obs)):
        for v in group:
            _check_node(v, order, program, role)
    for role, group in (("treatment", xs), ("outcome", ys)):
        for v in group:
            if v not in obs:
                raise ModelError(f"the {role} '{v}' is not in observed={list(obs)}",
                                 span=program.sites[v].span,
                                 hint=f"Add '{v}' to observed=: identification uses only observed sites.")
    both = set(xs) & set(ys)
    if both:
        raise ModelError(f"'{sorted(both)[0]}' is both a treatment and an outcome")
    for v in obs:
        info = program.sites[v]
        if info.loop_lengths:
            raise ModelError(f"the observed site '{v}' is inside a loop (ppl.scan): each step is a variable "
                             "of its own, so the diagram has no single node for it", span=info.span,
                             hint="identify() takes models with one value per site (plates of i.i.d. units "
                                  "are fine); write the steps as separate sites.")
        if info.in_branch:
            raise ModelError(f"the observed site '{v}' is inside a branch: it exists in some runs only, "
                             "so the diagram is not static", span=info.span,
                             hint="Make the site unconditional (branch on its parameters instead).")
    for v, ps in parents.items():
        if v in ps:
            raise ModelError(f"the site '{v}' depends on itself (through a loop carry): the diagram is cyclic",
                             span=program.sites[v].span)
    G = latent_projection(order, parents, obs)
    try:
        expr = identify_effect(G, ys, xs)
    except Hedge as h:
        raise _not_identifiable(h, G, order, parents, obs, xs, ys) from None
    return Estimand(G.sorted(xs), G.sorted(ys), G.order, expr, G)


def _not_identifiable(h: Hedge, G: ADMG, order, parents, obs, xs, ys) -> NotIdentifiable:
    f, fp = G.sorted(h.f), G.sorted(h.f_prime)
    paths = []
    for e in sorted(h.graph.bidirected, key=lambda e: G.sorted(e)):
        w = G.witness.get(e)
        if w is not None:
            paths.append(w)
    latents = [v for v in order if v not in obs and any(v in p for p, _ in paths)]
    remedies = []
    for u in [v for v in order if v not in obs]:
        try:
            identify_effect(latent_projection(order, parents, set(obs) | {u}), ys, xs)
            remedies.append(u)
        except Hedge:
            pass
    query = f"P({','.join(G.sorted(ys))} | do({','.join(G.sorted(xs))}))"
    shown = "; ".join(_path_text(p) for p in paths)
    backdoor = [w for w in paths if w[0][0] in xs or w[0][-1] in xs]
    msg = (f"{query} is not identifiable from the observed sites {list(G.order)}: the sites {list(f)} are all "
           f"joined by hidden confounders (a hedge, with F' = {list(fp)}): {shown}")
    if backdoor:
        msg += f". The back-door path {_path_text(backdoor[0])} runs through a latent site and no observed site blocks it"
    if remedies:
        hint = ("Observing " + " or ".join(f"'{u}'" for u in remedies)
                + " (adding it to observed=) would make the effect identifiable.")
    elif latents:
        hint = ("No single latent site would fix it; observe more of " + ", ".join(f"'{u}'" for u in latents)
                + ", or find a mediator that carries the whole effect (the front-door criterion).")
    else:
        hint = None
    return NotIdentifiable(msg, hedge=(f, fp), paths=paths, remedies=remedies, hint=hint)


def _path_text(witness) -> str:
    """``x <- u -> y``: a confounding path, from one end through its latent source to the other."""
    path, root = witness
    out = path[0]
    for i in range(1, len(path)):
        out += (" <- " if i <= root else " -> ") + path[i]
    return out


@dataclass(frozen=True)
class Estimand:
    """``P(outcome | do(treatment))`` as an expression in the observational distribution."""

    treatment: tuple[str, ...]
    outcome: tuple[str, ...]
    observed: tuple[str, ...]
    expression: object
    graph: ADMG

    @property
    def query(self) -> str:
        return f"P({','.join(self.outcome)} | do({','.join(self.treatment)}))"

    @property
    def formula(self) -> str:
        """The formula, in terms of observational conditionals of the observed sites."""
        return format_expr(self.expression, self.observed)

    def __str__(self) -> str:
        return f"{self.query} = {self.formula}"

    def __repr__(self) -> str:
        return f"<ppl.Estimand {self}>"

    def evaluate(self, data: dict, weights=None) -> dict:
        """The plug-in estimate from rows of the observed sites.

        ``data``: site name -> array of values (one row per unit); ``weights``:
        a weight per row (counts, or the probabilities of a table's rows), all
        ones by default. Returns ``{t: {y: probability}}``: for each treatment
        value seen in the data (a tuple for several treatments), the
        distribution of the outcome (a tuple for several outcomes).
        """
        joint, values = _joint_table(data, weights, self.observed)
        full = self._table(joint, values, np)
        kx = len(self.treatment)
        out = {}
        for ti in np.ndindex(*full.shape[:kx]):
            dist = full[ti]
            total = float(dist.sum())
            t = _key([values[v][i] for v, i in zip(self.treatment, ti)])
            if not np.isclose(total, 1.0, atol=1e-6):
                raise ModelError(
                    f"the data cannot estimate {self.query} at {', '.join(self.treatment)} = {t}: the formula "
                    f"{self.formula} needs strata that no row (or weight) shows, so the estimate is undefined "
                    f"(its mass is {total:.4g}, not 1)",
                    hint="Positivity fails: give data with every combination the formula conditions on, or "
                         "ask only about treatment values the data support.")
            out[t] = {_key([values[v][i] for v, i in zip(self.outcome, yi)]): float(dist[yi])
                      for yi in np.ndindex(*dist.shape)}
        return out


    def _table(self, joint, values, xp):
        """The formula on ``joint`` as an array with one axis per treatment, then per outcome site."""
        names, table = evaluate_expr(self.expression, joint, self.observed, xp)
        want = self.treatment + self.outcome
        extra = tuple(v for v in names if v not in want)
        if extra:  # the formula holds for any value of these: average them under their marginal P(extra)
            names, table = evaluate_expr(_averaged(self.expression, extra), joint, self.observed, xp)
        idx = [want.index(v) for v in names]
        arr = xp.transpose(table, [int(i) for i in np.argsort(idx)]) if names else table
        shape = [len(values[v]) if v in names else 1 for v in want]
        return xp.ones([len(values[v]) for v in want]) * xp.reshape(arr, shape)

    def program(self, data: dict, weights=None, prior: float = 1.0):
        """The estimand as a model function, with the data's uncertainty: wrap it with ``ppl.model``.

        The joint table of the observed sites gets a Dirichlet posterior (a
        symmetric Dirichlet(``prior``) prior updated by the rows' weights as
        counts); the site ``"joint"`` is a draw from it, and the model returns
        (and records as ``"effect"``) the formula evaluated on that draw: an
        array with one axis per treatment site and then per outcome site, over
        the values seen in the data, in sorted order. Any sampling method of
        ``ppl.infer`` runs it; its mean tends to :meth:`evaluate` as the counts grow.
        """
        import jax.numpy as jnp

        from ppl.semantics import effects
        from ppl.stdlib import distributions as D

        if not prior > 0:
            raise ModelError(f"prior= must be positive (a Dirichlet concentration), not {prior!r}")
        counts, values = _joint_table(data, weights, self.observed, normalise=False)
        alpha = jnp.asarray(counts.ravel() + prior)
        shape = counts.shape

        def estimand():
            theta = effects.sample("joint", D.Dirichlet(alpha))
            return effects.deterministic("effect", self._table(jnp.reshape(theta, shape), values, jnp))

        estimand.__name__ = f"estimand_{'_'.join(self.outcome)}"
        return estimand


def _averaged(expression, extra):
    """``Σ_extra P(extra) · expression``: the estimand is the same for every value of ``extra`` (sites the
    algorithm intervened on because they cannot matter), so a plug-in estimate averages over them."""
    return Sum(frozenset(extra), Prod((Prob(frozenset(extra)), expression)))


def _key(vals):
    vals = [v.item() if hasattr(v, "item") else v for v in vals]
    return vals[0] if len(vals) == 1 else tuple(vals)


def _joint_table(data, weights, observed, normalise=True):
    if not isinstance(data, dict):
        raise ModelError(f"evaluate() takes a dict of site name -> array of values, not {type(data).__name__}")
    missing = [v for v in observed if v not in data]
    if missing:
        raise ModelError(f"the data have no column for the observed site '{missing[0]}'",
                         hint=f"Give one array per observed site: {list(observed)}.")
    cols = {}
    n = None
    for v in observed:
        col = np.asarray(data[v])
        if col.ndim != 1:
            raise ModelError(f"the data for '{v}' have shape {col.shape}; give one value per row (a 1-d array)")
        if n is not None and col.shape[0] != n:
            raise ModelError(f"the data for '{v}' have {col.shape[0]} rows, but other columns have {n}")
        n = col.shape[0]
        cols[v] = col
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ModelError(f"weights= must have one entry per row ({n}), not shape {w.shape}")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ModelError("weights= must be finite, non-negative and not all zero")
    values, index = {}, []
    for v in observed:
        uniq, inv = np.unique(cols[v], return_inverse=True)
        values[v] = uniq
        index.append(inv)
    joint = np.zeros([len(values[v]) for v in observed])
    np.add.at(joint, tuple(index), w)
    return (joint / joint.sum() if normalise else joint), values

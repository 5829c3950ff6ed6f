"""Counterfactuals as a program transformation: the twin network of a program, IR -> IR.

``twin_program(program, observed, do)`` is one program holding two worlds
that share their exogenous noise (:mod:`.exogenous`):

- the **factual** world is the program with the ``observed`` sites
  conditioned on their values (abduction: inference on the result gives the
  posterior over the factual world, hence over the noise);
- the **counterfactual** world is the program after the surgery ``do``
  (action), run on the same noise (prediction).

Only what differs between the worlds is built twice. A site is *split*
when it is intervened on or reads (through any chain of operations) a
value that differs; every other site is *shared*: one statement, its own
address, the same value in both worlds. A split site ``x`` appears twice:
its factual statement at ``"factual/x"`` (observed there if ``x`` is in
``observed``) and its counterfactual value at ``"x"``, computed from the
counterfactual parents and the noise ``x`` shares with ``factual/x``. The
counterfactual intervened site is the constant (or the new mechanism), as
in ``do``; one intervened element (``"x[3]"``) sets that element, the others
being the site's own mechanism on the shared noise (at ``"x.natural"``). A factor is evidence about the factual world and stays there.

So the result's sites are the counterfactual world's, its return value the
counterfactual return value, and ``factual/...`` are the abduction's
latents. Loops and branches (``ppl.scan``, ``ppl.cond``) that touch a split
site or an observed one are refused with an error.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.causal import exogenous as X
from ppl.inference.causal import surgery as S
from ppl.inference.causal.ops import emit, lit
from ppl.inference.causal.transform import element_intervention, resolve_read, stacked_value
from ppl.semantics import ir
from ppl.stdlib.distributions.continuous import Uniform
from ppl.stdlib.distributions.discrete import Categorical
from ppl.stdlib.errors import ModelError

__all__ = ["twin_program", "FACTUAL"]

FACTUAL = "factual/"


def twin_program(program: ir.Program, observed: dict, do: dict) -> ir.Program:
    """The twin network of ``program``: factual world given ``observed``, counterfactual after ``do``."""
    sites = program.sites
    missing = [a for a in observed if a not in sites]
    if missing:
        raise S.unknown_site_error(program.name, missing, list(sites))
    if not do:
        raise ModelError("counterfactual() needs at least one intervention (do={site: value})")
    obs = {}
    for a, v in observed.items():
        info = sites[a]
        if info.kind not in ("sample", "deterministic") or (info.kind == "deterministic" and not info.is_discrete):
            raise ModelError(f"counterfactual() observes '{a}', a {info.kind} site: observed= names random choices "
                             "and discrete deterministic sites (a site the model already observes carries its data; "
                             "a continuous deterministic value is seen with probability zero)", span=info.span)
        value = stacked_value(info, v, "counterfactual() observes")
        obs[a] = value
    ivs, masks = {}, {}
    for a, spec in do.items():
        info = sites.get(a)
        if info is None:
            continue  # one element of a site ("x[3]"): below, once the whole sites are known
        iv = S.parse(a, spec)
        if info.kind == "factor" or (iv.kind == "dist" and info.kind == "deterministic"):
            raise ModelError(f"counterfactual() cannot intervene on the {info.kind} site '{a}' with "
                             f"{'a distribution' if iv.kind == 'dist' else 'a value'}", span=info.span)
        if iv.kind == "value":
            iv = S.Intervention("value", ir.Lit(stacked_value(info, spec)))
        ivs[a] = iv
    for a, spec in do.items():  # x[i] = v: x is where(mask, values, its natural counterfactual value)
        if a not in sites:
            element_intervention(program, a, spec, ivs, masks)
    twin = _Twin(obs, ivs, masks)
    stmts = twin.stmts(program.block.stmts)
    block = dataclasses.replace(program.block, stmts=stmts, returns=tuple(twin.cf(a) for a in program.block.returns))
    return dataclasses.replace(program, block=block, name=program.name)


class _Twin:
    def __init__(self, observed, ivs, masks):
        self.observed, self.ivs, self.masks = observed, ivs, masks
        self.f: dict = {}  # Var -> its factual atom, where substituted (an observed value)
        self.c: dict = {}  # Var -> its counterfactual atom, where the worlds differ
        self.by_addr: dict = {}  # address -> counterfactual atom (what new mechanisms read)

    def fa(self, a):
        return self.f.get(a, a) if isinstance(a, ir.Var) else a

    def cf(self, a):
        return self.c[a] if isinstance(a, ir.Var) and a in self.c else self.fa(a)

    def differs(self, atoms) -> bool:
        return any(isinstance(a, ir.Var) and a in self.c for a in atoms)

    def stmts(self, stmts) -> tuple:
        out = []
        for s in stmts:
            out.extend(self.stmt(s))
        return tuple(out)

    def stmt(self, s) -> list:
        if isinstance(s, ir.Prim):
            factual = dataclasses.replace(s, args=tuple(self.fa(a) for a in s.args))
            if not self.differs(s.args):
                return [factual]
            outs = tuple(ir.Var(o.shape, o.dtype) for o in s.outs)
            self.c.update(zip(s.outs, outs))
            return [factual, dataclasses.replace(s, outs=outs, args=tuple(self.cf(a) for a in s.args))]
        if isinstance(s, ir.Sample):
            return self.sample(s)
        if isinstance(s, ir.Observe):
            return self.observe(s)
        if isinstance(s, ir.Deterministic):
            return self.deterministic(s)
        if isinstance(s, ir.Factor):
            return [dataclasses.replace(s, log_weight=self.fa(s.log_weight))]
        if isinstance(s, (ir.Plate, ir.Call)):
            return [dataclasses.replace(s, stmts=self.stmts(s.stmts))]
        return [self.opaque(s)]

    def opaque(self, s):
        """A loop, branch or function: kept whole where it touches neither world's differences."""
        inside = [t for t in ir.walk([s]) if getattr(t, "address", None) is not None]
        named = [t.address for t in inside if t.address in self.observed or t.address in self.ivs]
        args = [a for field in ("args", "captured") for a in getattr(s, field, ())]
        if isinstance(s, ir.If):
            args.append(s.index)
        if named or self.differs(args):
            what = f"the site '{named[0]}'" if named else "a value that differs between the worlds"
            raise ModelError(f"counterfactual() reaches {what} inside a loop or branch (ppl.scan/ppl.cond): the "
                             "twin network is built for straight-line models (plates and sub-models are fine)",
                             span=s.span, hint="Write the loop's steps as separate sites.")
        if isinstance(s, ir.If):
            return dataclasses.replace(s, index=self.fa(s.index), args=tuple(self.fa(a) for a in s.args))
        if isinstance(s, ir.Lambda):
            return dataclasses.replace(s, captured=tuple(self.fa(a) for a in s.captured))
        return dataclasses.replace(s, args=tuple(self.fa(a) for a in s.args))

    # -- random sites -------------------------------------------------------------------
    def sample(self, s: ir.Sample) -> list:
        a = s.address
        fargs = tuple(self.fa(x) for x in s.args)
        split = a in self.ivs or self.differs(s.args)
        name = FACTUAL + a if split else a
        if a in self.observed:
            value = lit(self.observed[a], like=s.out)
            factual = ir.Observe(s.span, name, s.dist_type, s.treedef, fargs, value, s.plates)
            self.f[s.out] = value
        else:
            factual = dataclasses.replace(s, address=name, args=fargs)
        if not split:
            self.by_addr[a] = self.fa(s.out)
            return [factual]
        return [factual] + self.counterfactual(s, s.out, self.fa(s.out))

    def observe(self, s: ir.Observe) -> list:
        split = s.address in self.ivs or self.differs(s.args)
        factual = dataclasses.replace(s, args=tuple(self.fa(x) for x in s.args), value=self.fa(s.value))
        if not split:
            self.by_addr[s.address] = self.fa(s.value)
            return [factual]
        if not isinstance(s.value, ir.Var):
            raise ModelError(f"counterfactual() splits the observed site '{s.address}', whose data is a constant "
                             "written in the model (its readers hold copies of it)", span=s.span,
                             hint="Pass the observed data to the model as an argument.")
        factual = dataclasses.replace(factual, address=FACTUAL + s.address)
        return [factual] + self.counterfactual(s, s.value, self.fa(s.value))

    def deterministic(self, s: ir.Deterministic) -> list:
        a = s.address
        split = a in self.ivs or self.differs([s.value])
        factual = [dataclasses.replace(s, value=self.fa(s.value), address=FACTUAL + a if split else a)]
        if a in self.observed:  # seen in the factual world: a hard constraint, and its readers see the value
            value = lit(self.observed[a], like=s.out)
            prim, (w,) = emit(lambda v, o: jnp.where(jnp.all(v == o), 0.0, -jnp.inf), (self.fa(s.value), value),
                              f"observed[{a}]", s.span)
            factual += [prim, ir.Factor(s.span, factual[0].address + ".observed", w)]
            self.f[s.out] = value
        if not split:
            self.by_addr[a] = self.fa(s.out)
            return factual
        out = ir.Var(s.out.shape, s.out.dtype)
        self.c[s.out] = out
        iv = self.ivs.get(a)
        if iv is None or iv.kind == "value":
            self.by_addr[a] = out
            return factual + [ir.Deterministic(s.span, out, a, self.cf(s.value) if iv is None else iv.payload)]
        if iv.kind == "mask":
            return factual + self.masked(s, self.cf(s.value), out)
        return factual + self.new_mechanism(s, iv, self.cf(s.value), out)

    def counterfactual(self, s, var: ir.Var, xf) -> list:
        """The counterfactual value of the split site ``s`` (factual value ``xf``), bound to ``c[var]``."""
        iv = self.ivs.get(s.address)
        out = ir.Var(tuple(var.shape), var.dtype)
        self.c[var] = out
        if iv is None:
            return self.coupled(s, xf, out)
        if iv.kind == "value":
            self.c[var] = self.by_addr[s.address] = iv.payload
            return []
        if iv.kind == "dist":
            leaves, treedef = jax.tree.flatten(iv.payload.expand(tuple(var.shape)[: len(var.shape) -
                                                                              len(iv.payload.event_shape)]))
            self.by_addr[s.address] = out
            return [ir.Sample(s.span, out, s.address, type(iv.payload), treedef,
                              tuple(ir.Lit(np.asarray(x)) for x in leaves), s.plates)]
        if iv.kind == "mask":  # the other elements: the site's own mechanism on the shared noise
            natural = ir.Var(tuple(var.shape), var.dtype)
            return self.coupled(s, xf, natural, address=s.address + ".natural") + self.masked(s, natural, out)
        natural = xf
        pre = []
        if S.leaf(s.address) in iv.params and self.differs(s.args):
            natural = ir.Var(tuple(var.shape), var.dtype)
            pre = self.coupled(s, xf, natural, address=s.address + ".natural")
        return pre + self.new_mechanism(s, iv, natural, out)

    def masked(self, s, natural, out) -> list:
        """``out := where(mask, values, natural)``: the intervened elements set, the others natural."""
        mask, vals = self.masks[s.address]
        prim, (y,) = emit(lambda m, v, n: jnp.where(m, v.astype(n.dtype), n), (lit(mask), lit(vals), natural),
                          f"do[{s.address}]", s.span)
        self.by_addr[s.address] = out
        return [prim, ir.Deterministic(s.span, out, s.address, y)]

    def new_mechanism(self, s, iv, natural, out) -> list:
        own = S.leaf(s.address)
        args = [natural if p == own else self.by_addr[resolve_read(p, s.address, self.by_addr, s.span)]
                for p in iv.params]

        def call(*xs):
            y = jnp.asarray(iv.payload(**dict(zip(iv.params, xs))))
            return jnp.broadcast_to(y, out.shape).astype(out.dtype)

        prim, (y,) = emit(call, args, f"do[{s.address}]", s.span)
        self.by_addr[s.address] = out
        return [prim, ir.Deterministic(s.span, out, s.address, y)]

    def coupled(self, s, xf, out: ir.Var, address=None) -> list:
        """``out``: the site's value under the counterfactual parameters and the factual noise."""
        address = address or s.address
        fargs = tuple(self.fa(x) for x in s.args)
        cargs = tuple(self.cf(x) for x in s.args)
        n = len(fargs)
        kind = _kind(s.treedef, fargs)
        if address == s.address:
            self.by_addr[s.address] = out

        def worlds(xs):
            return jax.tree.unflatten(s.treedef, xs[:n]), jax.tree.unflatten(s.treedef, xs[n:2 * n])

        if kind == "finite":
            prim, (probs,) = emit(lambda *xs: X.finite_coupling(*worlds(xs), xs[-1]), fargs + cargs + (xf,),
                                  f"couple[{address}]", s.span)
            treedef = jax.tree.flatten(Categorical(probs=np.ones(probs.shape) / probs.shape[-1]))[1]
            return [prim, ir.Sample(s.span, out, address, Categorical, treedef, (probs,), s.plates)]
        if kind == "discrete":
            prim, (lo, hi) = emit(lambda *xs: X.noise_interval(jax.tree.unflatten(s.treedef, xs[:n]), xs[-1]),
                                  fargs + (xf,),
                                  f"noise[{address}]", s.span)
            u = ir.Var(lo.shape, lo.dtype)
            treedef = jax.tree.flatten(Uniform(np.zeros(lo.shape), np.ones(lo.shape)))[1]
            noise = ir.Sample(s.span, u, address + ".noise", Uniform, treedef, (lo, hi), s.plates)
            q, (y,) = emit(lambda *xs: X.quantile(worlds(xs)[1], xs[-1]).astype(out.dtype), fargs + cargs + (u,),
                           f"quantile[{address}]", s.span)
            return [prim, noise, q, ir.Deterministic(s.span, out, address, y)]
        if kind == "continuous":
            prim, (y,) = emit(lambda *xs: X.continuous_coupling(*worlds(xs), xs[-1]).astype(out.dtype),
                              fargs + cargs + (xf,), f"couple[{address}]", s.span)
            return [prim, ir.Deterministic(s.span, out, address, y)]
        raise ModelError(f"counterfactual() has no exogenous form for the multivariate site '{address}' "
                         f"({s.dist_type.__name__})", span=s.span,
                         hint="Write it as univariate sites (a multivariate normal as loc + L @ standard normals).")


def _kind(treedef, args) -> str:
    """The exogenous form of a site (:func:`exogenous.kind_of`), probed with stand-in parameter values;
    a finite support whose size depends on a run-time value (a Binomial's count) counts as unbounded."""
    kinds, sizes = set(), set()
    for fill in (1.0, 2.0):
        leaves = [np.asarray(a.value) if isinstance(a, ir.Lit) else np.full(a.shape, fill, np.dtype(a.dtype))
                  for a in args]
        d = jax.tree.unflatten(treedef, leaves)
        kinds.add(X.kind_of(d))
        sizes.add(np.shape(_support(d)))
    return kinds.pop() if len(kinds) == 1 and len(sizes) == 1 else "discrete"


def _support(d):
    try:
        return np.asarray(d.enumerate_support())
    except Exception:
        return np.zeros(0)

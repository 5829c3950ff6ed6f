"""``do`` as a program transformation: IR -> IR surgery, for every kind of intervention.

``do_program(program, {address: spec})`` returns the program after the
interventions; ``Model.do`` is this function applied to the model's IR.
Every statement not named keeps its meaning; what each intervention does
(``x`` the intervened site, ``v`` its variable):

- **value** on ``Sample x``: the statement is removed and every later use
  of ``v`` reads the value (a literal; inside a loop, the value's step slice,
  passed to the loop as one more ``xs`` input). No density term, no latent.
- **value** on ``Observe y``: the statement is removed (no likelihood), and
  every later reader of the observed data reads the intervened value.
- **value** on ``Deterministic s``: it records the value, its readers see it.
- **distribution** on ``Sample x`` (or ``Observe y``): the statement draws
  from the new distribution, whose parameters are literals (the old parents
  are cut); an observed site becomes a random choice its readers see.
- **function** ``f(a, b, x)``: the statement ``x := f(a, b, natural)`` (one
  ``Prim`` whose operation calls ``f``; :mod:`.ops`) recorded as a
  deterministic site at ``x``. Arguments name the sites made before ``x``
  (in the same sub-model first); an argument named as ``x`` itself receives
  the *natural* value: a draw from the old mechanism at ``"x.natural"``
  (for an observed site, its data; for a deterministic one, its old value).
- **one element** ``"x[i]"`` (``"x[i][j]"``): the first axes of the site's
  stacked value (loop steps, then plate dimensions) are indexed. ``x`` is
  recorded as ``where(mask, values, natural)``: the intervened elements are
  the values, the others the natural draw at ``"x.natural"``. The natural
  draws of the intervened elements are read by nothing, so they change no
  distribution (their density integrates to one).

Laws (tests/test_surgery.py, under exact enumeration): the result equals
the truncated factorisation ``Π_{v ≠ x} P(v | pa(v))`` with ``x`` fixed;
``do`` on a root is conditioning on it; non-descendants keep their
marginals; ``do(x=a)`` twice is ``do(x=a)``; distinct sites commute; a
hard-intervened site contributes no density and no latent.
"""

from __future__ import annotations

import dataclasses
import difflib
import re

import jax
import jax.numpy as jnp
import numpy as np

from ppl.inference.causal import surgery as S
from ppl.inference.causal.ops import emit
from ppl.semantics import ir
from ppl.stdlib.errors import AddressError, ModelError, ShapeError, SupportError

__all__ = ["do_program", "resolve_read", "stacked_value", "check_static_support", "element_intervention"]

_INDEXED = re.compile(r"(.+?)((?:\[\d+\])+)")


def do_program(program: ir.Program, table: dict) -> ir.Program:
    """``program`` after the interventions in ``table`` (address -> value, distribution or function)."""
    sites = program.sites
    specs, values = {}, {}
    for address, spec in table.items():
        info = sites.get(address)
        if info is None:
            element_intervention(program, address, spec, specs, values)
            continue
        if info.kind == "factor":
            raise ModelError(f"do() on '{address}', a factor: a factor is evidence, not a mechanism",
                             span=info.span, hint="Intervene on the sites the factor reads instead.")
        iv = S.parse(address, spec)
        if iv.kind == "dist" and info.kind == "deterministic":
            raise ModelError(f"do() gives the deterministic site '{address}' a distribution; give it a value "
                             "or a function", span=info.span)
        if iv.kind == "value":
            values[address] = (stacked_value(info, spec),)
        specs[address] = iv
    rewrite = _Rewrite(specs, program.name)
    block = rewrite.block(program.block, {a: tuple(ir.Lit(x) for x in v) for a, v in values.items()})
    return dataclasses.replace(program, block=block)


def stacked_value(info: ir.SiteInfo, spec, what: str = "do() sets") -> np.ndarray:
    """``spec`` as the site's stacked value (broadcast, its dtype), checked against a fixed support."""
    value = np.asarray(spec)
    if value.shape != tuple(info.stacked_shape):
        try:
            value = np.broadcast_to(value, info.stacked_shape)
        except ValueError:
            steps = " (the leading axis: one row per loop step)" if info.loop_lengths else ""
            raise ShapeError(f"do() gives '{info.address}' a value of shape {value.shape}, but the site has "
                             f"shape {tuple(info.stacked_shape)}{steps}", span=info.span) from None
    if info.kind == "sample":
        check_static_support(info, value, what)
    dtype = info.dtype if info.dtype is not None else value.dtype
    return np.array(value, dtype=dtype)


def element_intervention(program, address, spec, specs, values):
    """``"x[3]"``: one element of the stacked site ``x``, merged into one masked intervention on ``x``
    (``specs[x]``, with ``values[x] = (mask, values)``)."""
    m = _INDEXED.fullmatch(address)
    info = program.sites.get(m.group(1)) if m else None
    if info is None:
        raise S.unknown_site_error(program.name, [address], list(program.sites))
    base = info.address
    index = tuple(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    if info.kind == "factor" or S.parse(address, spec).kind != "value":
        raise ModelError(f"do() on '{address}', one element of '{base}', takes a value (a new mechanism for one "
                         "element is not supported)", span=info.span,
                         hint=f"Give '{base}' a function of its natural value instead (lambda {S.leaf(base)}: ...).")
    if info.kind == "observe":
        raise ModelError(f"do() on '{address}', one element of the observed site '{base}', is not supported",
                         span=info.span, hint=f"Intervene on all of '{base}' (an array of values).")
    shape = tuple(info.stacked_shape)
    if len(index) > len(shape) or any(i >= n for i, n in zip(index, shape)):
        raise AddressError(f"do() names '{address}', but the site '{base}' has shape {shape}", span=info.span,
                           hint="Index the site's stacked value: loop steps first, then plate dimensions.")
    value = np.asarray(spec)
    if info.kind == "sample":
        check_static_support(info, value)
    old = specs.get(base)
    if old is not None and old.kind != "mask":
        raise ModelError(f"do() names both '{base}' and its element '{address}'", span=info.span)
    mask, vals = values.get(base, (np.zeros(shape, bool), np.zeros(shape, np.dtype(info.dtype or value.dtype))))
    mask, vals = mask.copy(), vals.copy()
    try:
        vals[index] = value
    except ValueError:
        raise ShapeError(f"do() gives '{address}' a value of shape {value.shape}, but that element has shape "
                         f"{vals[index].shape}", span=info.span) from None
    mask[index] = True
    specs[base] = S.Intervention("mask", address)
    values[base] = (mask, vals)


def check_static_support(info: ir.SiteInfo, value, what: str = "do() sets"):
    """The support check where the support does not depend on the parameters (Bernoulli, Poisson, ...)."""
    support = getattr(info.dist_type, "__dict__", {}).get("support")
    if support is None or isinstance(support, property) or not hasattr(support, "check_now"):
        return
    try:
        ok = support.check_now(value)
    except Exception:
        return
    if not np.all(ok):
        raise SupportError(
            f"{what} '{info.address}' to {np.asarray(value).tolist()!r}, which is outside the support of its "
            f"distribution {info.dist_type.__name__} ({support})", span=info.span,
            hint="Give a value the site could take.")


def resolve_read(name: str, address: str, by_addr: dict, span) -> str:
    """The address a new mechanism for ``address`` means by its parameter ``name``."""
    scope = address.rsplit("/", 1)[0] + "/" if "/" in address else ""
    for key in (scope + name, name):
        if key in by_addr:
            return key
    close = difflib.get_close_matches(name, [a.rsplit("/", 1)[-1] for a in by_addr], n=1)
    raise AddressError(
        f"the new mechanism for '{address}' reads '{name}', but no site of that name is made before it",
        span=span, hint=(f"Did you mean '{close[0]}'? " if close else "")
        + "Its parameters name the sites it reads (made earlier in the model, in the same loop step).")


def _shaped_fn(fn, names, out: ir.Var, address, span):
    """``fn`` taking its arguments positionally, its result cast and broadcast to the site's value."""

    def call(*xs):
        y = jnp.asarray(fn(**dict(zip(names, xs))))
        try:
            y = jnp.broadcast_to(y, out.shape)
        except ValueError:
            raise ShapeError(f"the new mechanism for '{address}' returns shape {y.shape}, but the site has shape "
                             f"{out.shape}", span=span) from None
        return y.astype(out.dtype)

    return call


class _Rewrite:
    def __init__(self, specs, name):
        self.specs = specs
        self.name = name
        self.env: dict = {}  # Var -> the atom that replaces it
        self.by_addr: dict = {}  # address -> the atom its readers see (for function interventions)
        self.watched: dict = {}  # intervened observations whose data are inlined constants

    def atom(self, a):
        if isinstance(a, ir.Var):
            return self.env.get(a, a)
        for address, (value, span) in self.watched.items():
            if np.shape(a.value) == np.shape(value) and np.array_equal(np.asarray(a.value), value):
                raise ModelError(
                    f"do() on the observed site '{address}', whose data is a constant written in the model: a later "
                    f"statement reads a constant equal to it ({value.tolist()!r}), and JAX inlines such constants, so "
                    "surgery cannot tell whether it is the observed value (which must become the intervened one)",
                    span=span, hint="Pass the observed data to the model as an argument.")
        return a

    def atoms(self, xs):
        return tuple(self.atom(a) for a in xs)

    def block(self, block: ir.Block, values: dict) -> ir.Block:
        stmts = self.stmts(block.stmts, values)
        return dataclasses.replace(block, stmts=stmts, returns=self.atoms(block.returns))

    def stmts(self, stmts, values):
        out = []
        for s in stmts:
            out.extend(self.stmt(s, values))
        return tuple(out)

    def stmt(self, s, values) -> list:
        if isinstance(s, (ir.Sample, ir.Observe, ir.Deterministic)):
            return self.site(s, values)
        if isinstance(s, ir.Factor):
            return [dataclasses.replace(s, log_weight=self.atom(s.log_weight))]
        if isinstance(s, ir.Prim):
            return [dataclasses.replace(s, args=self.atoms(s.args))]
        if isinstance(s, (ir.Plate, ir.Call)):
            return [dataclasses.replace(s, stmts=self.stmts(s.stmts, values))]
        if isinstance(s, ir.If):
            return [dataclasses.replace(s, index=self.atom(s.index), args=self.atoms(s.args),
                                        branches=tuple(self.block(b, values) for b in s.branches))]
        if isinstance(s, ir.For):
            return [self.for_(s, values)]
        if isinstance(s, ir.Lambda):
            return [dataclasses.replace(s, captured=self.atoms(s.captured), body=self.block(s.body, values))]
        raise TypeError(f"unknown IR statement {type(s).__name__}")  # pragma: no cover

    # -- the intervened sites ---------------------------------------------------------
    def site(self, s, values) -> list:
        iv = self.specs.get(s.address)
        if iv is None:
            return [self.unchanged(s)]
        if isinstance(s, ir.Sample):
            return self.sample(s, iv, values)
        if isinstance(s, ir.Observe):
            return self.observe(s, iv, values)
        return self.deterministic(s, iv, values)

    def unchanged(self, s):
        if isinstance(s, ir.Sample):
            self.by_addr[s.address] = s.out
            return dataclasses.replace(s, args=self.atoms(s.args))
        if isinstance(s, ir.Observe):
            self.by_addr[s.address] = self.atom(s.value)
            return dataclasses.replace(s, args=self.atoms(s.args), value=self.atom(s.value))
        self.by_addr[s.address] = s.out
        return dataclasses.replace(s, value=self.atom(s.value))

    def sample(self, s: ir.Sample, iv, values) -> list:
        if iv.kind == "value":
            self.env[s.out] = self.by_addr[s.address] = values[s.address][0]
            return []
        if iv.kind == "dist":
            self.by_addr[s.address] = s.out
            return [self.new_distribution(s, s.out, iv.payload)]
        natural = ir.Var(s.out.shape, s.out.dtype)
        draw = dataclasses.replace(s, out=natural, address=s.address + ".natural", args=self.atoms(s.args))
        need_natural = iv.kind == "mask" or S.leaf(s.address) in iv.params
        return ([draw] if need_natural else []) + self.new_value(s, iv, natural, s.out, values)

    def observe(self, s: ir.Observe, iv, values) -> list:
        data = self.atom(s.value)
        if isinstance(s.value, ir.Lit):  # its readers hold copies of the constant: refuse if any follows
            self.watched[s.address] = (np.asarray(s.value.value), s.span)
        if iv.kind == "value":
            new = values[s.address][0]
            self.by_addr[s.address] = new
            if isinstance(s.value, ir.Var):  # later readers of the data see the intervened value
                self.env[s.value] = new
            return []
        if iv.kind == "dist":
            dtype = jax.eval_shape(lambda: iv.payload.sample(jax.random.key(0))).dtype
            out = ir.Var(tuple(data.shape), dtype)
            if isinstance(s.value, ir.Var):
                self.env[s.value] = out
            self.by_addr[s.address] = out
            stmt = ir.Sample(s.span, out, s.address, s.dist_type, s.treedef, s.args, s.plates)
            return [self.new_distribution(stmt, out, iv.payload)]
        out = ir.Var(tuple(data.shape), data.dtype if isinstance(data, ir.Var) else np.asarray(data.value).dtype)
        if isinstance(s.value, ir.Var):
            self.env[s.value] = out
        return self.new_value(s, iv, data, out, values)

    def deterministic(self, s: ir.Deterministic, iv, values) -> list:
        if iv.kind == "value":
            self.by_addr[s.address] = s.out
            return [dataclasses.replace(s, value=values[s.address][0])]
        return self.new_value(s, iv, self.atom(s.value), s.out, values)

    def new_value(self, s, iv, natural, out: ir.Var, values) -> list:
        """``out := f(reads..., natural)`` recorded at the site's address (a function or an element mask)."""
        if iv.kind == "mask":
            mask, vals = values[s.address]
            prim, (y,) = emit(lambda m, v, n: jnp.where(m, v.astype(n.dtype), n), (mask, vals, natural),
                              f"do[{iv.payload}]", s.span)
        else:
            own = S.leaf(s.address)
            args = [natural if p == own else self.by_addr[resolve_read(p, s.address, self.by_addr, s.span)]
                    for p in iv.params]
            prim, (y,) = emit(_shaped_fn(iv.payload, iv.params, out, s.address, s.span), args,
                              f"do[{s.address}]", s.span)
        self.by_addr[s.address] = out
        return [prim, ir.Deterministic(s.span, out, s.address, y)]

    def new_distribution(self, s: ir.Sample, out: ir.Var, new):
        event = tuple(new.event_shape)
        batch = tuple(out.shape[: len(out.shape) - len(event)])
        if tuple(new.batch_shape) != batch:
            try:
                new = new.expand(batch)
            except Exception:
                raise ShapeError(f"do() gives '{s.address}' a distribution of batch shape {tuple(new.batch_shape)}, "
                                 f"but the site has batch shape {batch}", span=s.span) from None
        leaves, treedef = jax.tree.flatten(new)
        return dataclasses.replace(s, out=out, dist_type=type(new), treedef=treedef,
                                   args=tuple(ir.Lit(np.asarray(x)) for x in leaves))

    # -- loops ----------------------------------------------------------------------------
    def for_(self, s: ir.For, values):
        inside = [t for t in ir.walk(s.body.stmts) if getattr(t, "address", None) is not None]
        stacked = sorted({t.address for t in inside if t.address in values})
        extra_args, extra_params, step_values = [], [], dict(values)
        for a in stacked:  # leading axis: this loop's steps
            params = tuple(ir.Var(tuple(np.shape(_value(x))[1:]), _dtype(x)) for x in values[a])
            extra_args.extend(values[a])
            extra_params.extend(params)
            step_values[a] = params
        consts, const_params = self.outer_reads(s, inside)
        outer = dict(self.by_addr)
        self.by_addr.update(const_params)
        body = self.block(s.body, step_values)
        self.by_addr = outer
        c = s.num_consts
        params = tuple(const_params.values()) + body.params + tuple(extra_params)
        body = dataclasses.replace(body, params=params)
        return dataclasses.replace(s, args=tuple(consts) + self.atoms(s.args) + tuple(extra_args), body=body,
                                   num_consts=c + len(consts))

    def outer_reads(self, s: ir.For, inside):
        """Sites made before the loop that a new mechanism inside it reads: passed in as loop constants."""
        local = {t.address for t in inside}
        consts, params = [], {}
        for t in inside:
            iv = self.specs.get(t.address)
            if iv is None or iv.kind != "function":
                continue
            for p in iv.reads(S.leaf(t.address)):
                scope = t.address.rsplit("/", 1)[0] + "/" if "/" in t.address else ""
                if scope + p in local or p in local:
                    continue
                key = resolve_read(p, t.address, self.by_addr, t.span)
                if key not in params:
                    atom = self.by_addr[key]
                    consts.append(atom)
                    params[key] = ir.Var(tuple(atom.shape), _dtype(atom))
        return consts, params


def _value(atom):
    return atom.value if isinstance(atom, ir.Lit) else np.zeros(atom.shape)


def _dtype(atom):
    return atom.dtype if isinstance(atom, ir.Var) else np.asarray(atom.value).dtype

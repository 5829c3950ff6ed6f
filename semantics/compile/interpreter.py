"""The compiled engine's interpreter: one walk of a static IR program with JAX values.

The interpreter runs while JAX traces (under ``jit``, ``vmap``, ``grad``): the
computation it leaves behind contains the model's arithmetic and nothing else.
It has one *rule* per IR node kind (the table ``Interpreter.rules``); what it
does at a random choice is delegated to a *mode* (:class:`~.modes.Mode`), so a
new way of running a program is a new mode, not a new interpreter.

Each run accumulates, for the block it walks:

- ``choices``: the value of every latent and deterministic site (stacked by step in loops);
- ``log_prior``: the sum of the terms the mode returns at random choices;
- ``log_given``: the part of ``log_prior`` from sites the mode marks as *given*;
- ``log_likelihood``: observations and factors;
- ``valid``: every distribution's parameters inside their domains and every checked
  index inside its array;
- ``present``: for sites inside branches, whether their branch ran.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from ppl.stdlib import constraints
from ppl.stdlib.constraint_base import nan_unless  # re-exported: the compiled density NaN off its domain
from ppl.stdlib import jax_compat as jc
from ppl.semantics import index_check, ir
from ppl.semantics.compile import data_only

if TYPE_CHECKING:  # the modes module imports this one
    from ppl.semantics.compile.modes import Mode

__all__ = ["Trace", "Accumulator", "Interpreter", "run", "address_hash", "sum_terms", "params_ok"]


class Trace(NamedTuple):
    """One execution: values of latent (and deterministic) sites, weights, return value."""

    choices: dict
    log_prior: Any
    log_likelihood: Any
    log_given: Any  # prior terms of the sites whose values were given (generate)
    retval: Any
    present: dict  # for sites inside branches: whether the branch ran
    valid: Any = True  # every distribution's parameters were inside their domains

    @property
    def log_joint(self):
        return self.log_prior + self.log_likelihood


def address_hash(address: str) -> int:
    return zlib.crc32(address.encode()) & 0x7FFFFFFF


def sum_terms(x):
    return jnp.sum(jnp.asarray(x, dtype=jnp.result_type(float)))


def params_ok(dist):
    """Whether every parameter of ``dist`` lies in its domain (a traced boolean)."""
    own = getattr(dist, "params_ok", None)  # a distribution built of others (Truncated, Mixture) says itself
    if callable(own):
        return jnp.asarray(own())
    # Only the parameters the distribution was given are checked: one derived from another is
    # valid when its source is, though it may leave its own domain (Bernoulli(probs=1.0) has logits +inf)
    given = getattr(dist, "__dict__", {}).get("_params")
    ok = jnp.asarray(True)
    for name, constraint in getattr(type(dist), "arg_constraints", {}).items():
        if constraint is constraints.real:
            continue  # a NaN or infinite real parameter already makes the log density NaN or -inf
        if given is not None:
            value = given.get(name)
        else:
            try:
                value = getattr(dist, name)
            except AttributeError:
                continue
        if value is None:
            continue
        ok = ok & jnp.all(constraint.check(value))
    return ok


# ---------------------------------------------------------------------------
# Which loops run side by side

#: the most memory a vectorised loop's steps may hold at once (their values side by side, for one
#: run of the program: a method's own ``vmap`` over chains, particles or draws multiplies it, so
#: it is kept small); a loop past it runs step by step, as a scan
VECTORISED_LOOP_BYTES = 2**20


def _block_bytes(stmts) -> int:
    """The bytes of the values one run of ``stmts`` defines (a nested loop's body counted once per step)."""
    total = 0
    for st in stmts:
        for v in list(getattr(st, "outs", ())) + [getattr(st, "out", None)]:
            if isinstance(v, ir.Var):
                size = 1
                for d in v.shape:
                    size *= int(d)
                total += size * jnp.dtype(v.dtype).itemsize
        if isinstance(st, ir.For):
            total += st.length * _block_bytes(st.body.stmts)
        elif isinstance(st, (ir.Plate, ir.Call)):
            total += _block_bytes(st.stmts)
        elif isinstance(st, ir.If):
            total += sum(_block_bytes(b.stmts) for b in st.branches)
        elif isinstance(st, ir.Lambda):
            total += _block_bytes(st.body.stmts)
    return total


def _has_branches(block: ir.Block) -> bool:
    """An ``if`` (or a ``cond`` of the model's own JAX code): under ``vmap`` both branches run and
    are selected between, and a branch not taken can put a NaN into the gradient."""
    return any(isinstance(st, ir.If) or (isinstance(st, ir.Prim) and getattr(st.op, "name", "") == jc.COND)
               for st in ir.walk(block.stmts))


def loop_vectorizes(s: ir.For) -> bool:
    """Whether the compiled engine runs the loop ``s`` as ``vmap`` over its steps: no carry (the
    steps are independent), at least one step, no branches, and its steps' values together within
    :data:`VECTORISED_LOOP_BYTES`. The meaning is the scan's; the sums of the steps' terms are
    taken at once rather than in order (the same value up to rounding)."""
    return (s.num_carry == 0 and s.length >= 1 and not _has_branches(s.body)
            and s.length * _block_bytes(s.body.stmts) <= VECTORISED_LOOP_BYTES)


# ---------------------------------------------------------------------------
# The interpreter


class Accumulator:
    """Accumulators threaded through one block (Python-side, holding JAX values)."""

    def __init__(self):
        zero = jnp.zeros((), jnp.result_type(float))
        self.log_prior = zero
        self.log_likelihood = zero
        self.log_given = zero
        self.choices: dict[str, Any] = {}
        self.present: dict[str, Any] = {}
        self.terms: dict[str, Any] = {}
        self.valid = jnp.asarray(True)


class Interpreter:
    """Walks blocks of IR; ``mode`` decides each random choice, ``inputs`` are the mode's values
    (by address) and ``key`` its randomness (``None`` for deterministic modes). ``trusted``: the
    data-only checks this run skips (:mod:`.data_only`; None: every check is made); ``products``: the
    program's draw-major products (``DataOnly.products``), evaluated as ``v @ A^T``."""

    #: run loops without a carry as ``vmap`` over their steps (:func:`loop_vectorizes`); an
    #: interpreter that keeps per-step state of its own between steps turns it off
    vectorize_loops = True

    def __init__(self, mode: Mode, inputs: dict, key, record_terms: bool = False,
                 trusted: data_only.DataOnly | None = None, products=frozenset()):
        self.mode = mode
        self.record_terms = record_terms
        self.trusted = trusted
        self.products = products
        self.rules = {
            ir.Prim: self.prim,
            ir.Sample: self.sample,
            ir.Observe: self.observe,
            ir.Factor: self.factor,
            ir.Deterministic: self.deterministic,
            ir.For: self.for_,
            ir.If: self.if_,
            ir.Plate: self.group,
            ir.Call: self.group,
        }
        self.inputs = inputs
        self.key = key

    # -- blocks ---------------------------------------------------------------
    def run_block(self, block: ir.Block, args, env=None, acc=None, inputs=None, key=None):
        env = {} if env is None else env
        acc = Accumulator() if acc is None else acc
        for p, a in zip(block.params, args):
            env[p] = a
        saved = (self.inputs, self.key)
        if inputs is not None:
            self.inputs = inputs
        if key is not None:
            self.key = key
        try:
            self.run_stmts(block.stmts, env, acc)
            out = [self.read(env, r) for r in block.returns]
        finally:
            self.inputs, self.key = saved
        return out, acc

    def run_stmts(self, stmts, env, acc):
        for s in stmts:
            self.rules[type(s)](s, env, acc)

    @staticmethod
    def read(env, atom):
        if isinstance(atom, ir.Lit):
            return atom.value
        return env[atom]

    def _dist(self, stmt, env):
        return jax.tree.unflatten(stmt.treedef, [self.read(env, a) for a in stmt.args])

    # -- rules, one per node kind ---------------------------------------------
    def prim(self, s: ir.Prim, env, acc):
        args = [self.read(env, a) for a in s.args]
        if s.check_index and not (self.trusted is not None and self.trusted.skips_index(s)):
            # an index outside its array: JAX would clamp it; the run's density is NaN instead
            # (and the trace invalid), which the methods report by replaying the draw eagerly
            ok = index_check.in_range(jnp, s.op.name, s.params, args)
            acc.valid = acc.valid & ok
            acc.log_prior = nan_unless(ok, acc.log_prior)
            acc.log_likelihood = nan_unless(ok, acc.log_likelihood)
        outs = data_only.draw_major(s, args) if s in self.products else jc.bind(s.op, args, s.params)
        for v, o in zip(s.outs, outs):
            env[v] = o

    def group(self, s, env, acc):
        self.run_stmts(s.stmts, env, acc)

    def sample(self, s: ir.Sample, env, acc):
        dist = self._dist(s, env)
        acc.valid = acc.valid & params_ok(dist)
        value, lp, given = self.mode.sample(s, dist, self.inputs, self.key)
        env[s.out] = value
        acc.choices[s.address] = value
        acc.log_prior = acc.log_prior + lp
        if given:
            acc.log_given = acc.log_given + lp
        if self.record_terms:
            acc.terms[s.address] = lp

    def observe(self, s: ir.Observe, env, acc):
        dist = self._dist(s, env)
        acc.valid = acc.valid & params_ok(dist)
        value = self.read(env, s.value)
        if self.trusted is not None and self.trusted.skips_observe(s, dist):
            ll = sum_terms(dist.log_density_in_support(value))  # the data was checked before the run
        else:
            ll = sum_terms(dist.log_density(value))
        acc.log_likelihood = acc.log_likelihood + ll
        if self.record_terms:
            acc.terms[s.address] = ll

    def factor(self, s: ir.Factor, env, acc):
        lw = sum_terms(self.read(env, s.log_weight))
        acc.log_likelihood = acc.log_likelihood + lw
        if self.record_terms:
            acc.terms[s.address] = lw

    def deterministic(self, s: ir.Deterministic, env, acc):
        value = self.read(env, s.value)
        env[s.out] = value
        acc.choices[s.address] = value

    def for_(self, s: ir.For, env, acc):
        args = [self.read(env, a) for a in s.args]
        c, k = s.num_consts, s.num_carry
        consts, carry0, xs = args[:c], args[c:c + k], args[c + k:]
        body_sites = [info.address for info in ir.sites_of(s.body)]
        site_inputs = {a: self.inputs[a] for a in body_sites if a in self.inputs}
        one_step = self._loop_step(s, consts)
        if self.vectorize_loops and self.mode.vectorizes() and loop_vectorizes(s):
            # no carry: the steps are independent, so they run side by side (``vmap``); step ``i``
            # sees what the scan's step ``i`` sees, its key folded with its place in the scan's order
            steps = jnp.arange(s.length, dtype=jnp.int32)
            order = (s.length - 1 - steps) if s.reverse else steps
            ys, inner = jax.vmap(lambda t, x, si: one_step(t, [], x, si))(order, list(xs), site_inputs)
            self._merge_loop(s, env, acc, ys, jnp.sum(inner[0]), jnp.sum(inner[1]), jnp.sum(inner[2]),
                             jnp.all(inner[3]), *inner[4:])
            return
        zero = jnp.zeros((), jnp.result_type(float))

        def step(state, x):
            carry, lp, ll, lg, t, ok = state
            out, (s_lp, s_ll, s_lg, s_ok, *records) = one_step(t, carry, *x)
            return (out[:k], lp + s_lp, ll + s_ll, lg + s_lg, t + 1, ok & s_ok), (out[k:], *records)

        state0 = (list(carry0), zero, zero, zero, jnp.zeros((), jnp.int32), jnp.asarray(True))
        (carry, lp, ll, lg, _, ok), (ys, *records) = jax.lax.scan(
            step, state0, (list(xs), site_inputs), length=s.length, reverse=s.reverse)
        self._merge_loop(s, env, acc, list(carry) + list(ys), lp, ll, lg, ok, *records)

    def _loop_step(self, s: ir.For, consts):
        """``step(t, carry, x, step_inputs) -> (outs, (log_prior, log_likelihood, log_given, valid,
        choices, present, terms))``: one step of ``s``, with the run's key folded with ``t``."""
        outer_inputs, key = self.inputs, self.key

        def step(t, carry, user_x, step_inputs):
            step_key = None if key is None else jax.random.fold_in(key, t)
            inputs = dict(outer_inputs)
            inputs.update(step_inputs)
            out, inner = self.run_block(s.body, list(consts) + list(carry) + list(user_x),
                                        inputs=inputs, key=step_key)
            terms = inner.terms if self.record_terms else {}
            return out, (inner.log_prior, inner.log_likelihood, inner.log_given, inner.valid,
                         inner.choices, inner.present, terms)

        return step

    @staticmethod
    def _merge_loop(s: ir.For, env, acc, outs, lp, ll, lg, ok, choices, present, terms):
        for v, o in zip(s.outs, outs):
            env[v] = o
        acc.log_prior = acc.log_prior + lp
        acc.log_likelihood = acc.log_likelihood + ll
        acc.log_given = acc.log_given + lg
        acc.valid = acc.valid & ok
        acc.choices.update(choices)
        acc.present.update(present)
        acc.terms.update(terms)

    def if_(self, s: ir.If, env, acc):
        index = jnp.asarray(self.read(env, s.index), jnp.int32)
        ops = [self.read(env, a) for a in s.args]
        # the union of the branches' sites, with shapes, so every branch returns the same structure
        shapes = {}
        for b in s.branches:
            for info in ir.sites_of(b):
                if info.kind in ("sample", "deterministic"):
                    shapes[info.address] = (info.stacked_shape, info.dtype)
        term_names = [info.address for b in s.branches for info in ir.sites_of(b)]

        def make(branch):
            def run(ops):
                out, inner = self.run_block(branch, ops)
                choices = {a: inner.choices.get(a, jnp.zeros(sh, dt)) for a, (sh, dt) in shapes.items()}
                present = {a: jnp.asarray(a in inner.choices) for a in shapes}
                present.update({a: jnp.logical_and(p, present.get(a, True)) for a, p in inner.present.items()})
                terms = {}
                if self.record_terms:
                    zero = jnp.zeros((), jnp.result_type(float))
                    terms = {a: inner.terms.get(a, zero) for a in dict.fromkeys(term_names)}
                return (out, inner.log_prior, inner.log_likelihood, inner.log_given, choices, present, terms,
                        inner.valid)

            return run

        out, lp, ll, lg, choices, present, terms, ok = jax.lax.switch(index, [make(b) for b in s.branches], ops)
        acc.valid = acc.valid & ok
        for v, o in zip(s.outs, out):
            env[v] = o
        acc.log_prior = acc.log_prior + lp
        acc.log_likelihood = acc.log_likelihood + ll
        acc.log_given = acc.log_given + lg
        acc.choices.update(choices)
        acc.present.update(present)
        acc.terms.update(terms)


def run(program: ir.Program, mode: Mode, args, inputs=None, key=None, record_terms=False) -> Trace:
    """Run ``program`` on ``args`` in ``mode``: the :class:`Trace` (and, with ``record_terms``, each
    site's log-density term, stacked by step in loops). Inside ``data_only.trusting(program)`` the run
    skips the program's data-only checks."""
    interp = Interpreter(mode, dict(inputs or {}), key, record_terms, data_only.trusted(program),
                         data_only.data_only_checks(program).products)
    out, acc = interp.run_block(program.block, list(args))
    retval = jax.tree.unflatten(program.out_tree, out)
    trace = Trace(acc.choices, acc.log_prior, acc.log_likelihood, acc.log_given, retval, acc.present, acc.valid)
    if record_terms:
        return trace, acc.terms
    return trace



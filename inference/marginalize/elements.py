"""Per-element log densities (step 1 of ``inference.marginalize``): the compiled interpreter
recording each site's term per element of its plates and loops, the forward algorithm for a
chain of discrete states, and the modes that read the latent values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics.graph import Graph, dependency_graph
from ppl.stdlib.errors import ModelError

if TYPE_CHECKING:  # the plan module imports this one
    from ppl.inference.marginalize.plan import _Chain


def _float():
    return jnp.result_type(float)


class ElementInterpreter(C.Interpreter):
    """The compiled interpreter, recording each site's term per element of its plates and loops.

    A term is the site's log density with the axes of its plates kept (in
    their order in the value) and every other axis summed; inside a loop the
    steps are stacked in front. ``labels[address]`` names the kept axes:
    the loops (their names in the dependency graph) then the plates. Inside
    a branch of an ``If`` terms are summed to one number per step of the
    enclosing loops (the branch runs or not as a whole).

    The mode's ``sample(stmt, dist, inputs, key)`` returns ``(value, log
    density per element, given)`` — not summed. ``chains`` maps loop names
    to :class:`_Chain` plans, run by the forward algorithm (and, with
    ``sample_chains``, forward filtering backward sampling).
    """

    vectorize_loops = False  # the loop stack above is per step

    def __init__(self, mode, inputs: dict, key, graph: Graph, chains: dict | None = None,
                 sample_chains: bool = False):
        super().__init__(mode, inputs, key, record_terms=True)
        self.graph = graph
        self.loop_names = {loop.stmt: name for name, loop in graph.loops.items()}
        self.loop_stack: list[str] = []
        self.branch_depth = 0
        self.branch_labels: tuple[str, ...] = ()
        self.labels: dict[str, tuple[str, ...]] = {}
        self.sizes: dict[str, int] = {}
        self.chains = chains or {}
        self.sample_chains = sample_chains

    # -- recording ------------------------------------------------------------------
    def record(self, address: str, ld, plates):
        ld = jnp.asarray(ld, dtype=_float())
        if self.branch_depth:
            self.labels[address] = self.branch_labels
            return jnp.sum(ld)
        nd = ld.ndim
        keep = []
        for name, size, dim in plates:
            axis = nd + dim
            if 0 <= axis < nd and ld.shape[axis] == size:
                keep.append((axis, name, size))
        keep.sort()
        axes = [k[0] for k in keep]
        drop = tuple(i for i in range(nd) if i not in axes)
        term = jnp.sum(ld, axis=drop) if drop else ld
        for _, name, size in keep:
            self.sizes[name] = size
        self.labels[address] = tuple(self.loop_stack) + tuple(k[1] for k in keep)
        return term

    # -- rules ----------------------------------------------------------------------
    def sample(self, s: ir.Sample, env, acc):
        dist = self._dist(s, env)
        acc.valid = acc.valid & C.params_ok(dist)
        value, ld, given = self.mode.sample(s, dist, self.inputs, self.key)
        env[s.out] = value
        acc.choices[s.address] = value
        total = C.sum_terms(ld)
        acc.log_prior = acc.log_prior + total
        if given:
            acc.log_given = acc.log_given + total
        acc.terms[s.address] = self.record(s.address, ld, s.plates)

    def observe(self, s: ir.Observe, env, acc):
        dist = self._dist(s, env)
        acc.valid = acc.valid & C.params_ok(dist)
        ld = dist.log_density(self.read(env, s.value))
        acc.log_likelihood = acc.log_likelihood + C.sum_terms(ld)
        acc.terms[s.address] = self.record(s.address, ld, s.plates)

    def factor(self, s: ir.Factor, env, acc):
        lw = jnp.asarray(self.read(env, s.log_weight), dtype=_float())
        acc.log_likelihood = acc.log_likelihood + C.sum_terms(lw)
        acc.terms[s.address] = self.record(s.address, lw, s.plates)

    def if_(self, s: ir.If, env, acc):
        if self.branch_depth == 0:
            self.branch_labels = tuple(self.loop_stack)
        self.branch_depth += 1
        try:
            super().if_(s, env, acc)
        finally:
            self.branch_depth -= 1

    def for_(self, s: ir.For, env, acc):
        name = self.loop_names[s]
        if name in self.chains:
            return self.chain_for(s, env, acc, self.chains[name])
        self.loop_stack.append(name)
        self.sizes[name] = s.length
        try:
            super().for_(s, env, acc)
        finally:
            self.loop_stack.pop()
        if self.branch_depth:
            for a in self.graph.loops[name].sites:
                if a in acc.terms:
                    acc.terms[a] = jnp.sum(acc.terms[a])

    # -- a chain of discrete states: the forward algorithm ---------------------------
    def chain_for(self, s: ir.For, env, acc, chain: "_Chain"):
        args = [self.read(env, a) for a in s.args]
        c, k = s.num_consts, s.num_carry
        consts, carry0, xs = args[:c], args[c:c + k], args[c + k:]
        site_inputs = {a: self.inputs[a] for a in self.graph.loops[chain.loop].sites if a in self.inputs}
        outer_inputs = self.inputs
        states = jnp.arange(chain.size)
        tainted = chain.tainted

        def body(carry, user_x, step_inputs, state):
            inputs = dict(outer_inputs)
            inputs.update(step_inputs)
            for d, table in chain.tables.items():
                inputs[d] = table[state]
            out, inner = self.run_block(s.body, list(consts) + list(carry) + list(user_x), inputs=inputs)
            return inner.log_prior + inner.log_likelihood, out[:k], out[k:], inner.valid

        def step(state, x):
            alpha, by_state, shared, ok = state
            user_x, step_inputs = x

            def pair(prev, new):
                carry = [by_state[i][prev] if tainted[i] else shared[i] for i in range(k)]
                return body(carry, user_x, step_inputs, new)

            lw, new_carry, ys, valid = jax.vmap(jax.vmap(pair, (None, 0)), (0, None))(states, states)
            alpha_new = logsumexp(alpha[:, None] + lw, axis=0)
            by_state = [nc[0] if tainted[i] else by_state[i] for i, nc in enumerate(new_carry)]
            shared = [shared[i] if tainted[i] else nc[0, 0] for i, nc in enumerate(new_carry)]
            ys0 = [y[0, 0] for y in ys]
            return (alpha_new, by_state, shared, ok & jnp.all(valid)), (ys0, lw, alpha_new)

        alpha0 = jnp.full((chain.size,), -jnp.inf, _float()).at[0].set(0.0)
        by_state0 = [jnp.broadcast_to(cv, (chain.size,) + jnp.shape(cv)) if tainted[i] else cv
                     for i, cv in enumerate(carry0)]
        state0 = (alpha0, by_state0, list(carry0), jnp.asarray(True))
        (alpha, by_state, shared, ok), (ys, lws, alphas) = jax.lax.scan(
            step, state0, (list(xs), site_inputs), length=s.length, reverse=s.reverse)
        log_z = logsumexp(alpha)
        final = [by_state[i][0] if tainted[i] else shared[i] for i in range(k)]
        for v, o in zip(s.outs, final + list(ys)):
            env[v] = o
        acc.log_likelihood = acc.log_likelihood + log_z
        acc.valid = acc.valid & ok
        acc.terms[chain.term] = log_z
        self.labels[chain.term] = tuple(self.loop_stack)
        if self.sample_chains:
            path = _backward_sample(self.key, alphas, lws, s.reverse)
            for d, table in chain.tables.items():
                acc.choices[d] = table[path]


def _backward_sample(key, alphas, lws, reverse: bool):
    """Forward filtering, backward sampling: a state path from the filtered ``alphas`` (T, C)
    and the step weights ``lws`` (T, C_prev, C_new), indexed by loop step."""
    if reverse:  # put them in processing order
        alphas, lws = alphas[::-1], lws[::-1]
    n = alphas.shape[0]
    keys = jax.random.split(key, n)
    last = jax.random.categorical(keys[n - 1], alphas[n - 1])

    def back(nxt, x):
        alpha, lw_next, k = x
        s = jax.random.categorical(k, alpha + lw_next[:, nxt])
        return s, s

    if n > 1:
        _, earlier = jax.lax.scan(back, last, (alphas[:-1], lws[1:], keys[:-1]), reverse=True)
        path = jnp.concatenate([earlier, last[None]])
    else:
        path = last[None]
    return path[::-1] if reverse else path


class _GivenElements(C.Mode):
    """Every latent site takes its given (constrained) value."""

    def sample(self, stmt, dist, inputs, key):
        if stmt.address not in inputs:
            return C.Given().sample(stmt, dist, inputs, key)  # raises the AddressError
        value = jnp.asarray(inputs[stmt.address], dtype=stmt.out.dtype)
        return value, dist.log_density(value), True


class _Unconstrained(C.Mode):
    """Discrete sites in ``discrete`` take given values; the others are read in unconstrained space."""

    def __init__(self, discrete):
        self.discrete = discrete

    def sample(self, stmt, dist, inputs, key):
        from ppl.stdlib.bijectors import biject_to

        if stmt.address in self.discrete:
            value = jnp.asarray(inputs[stmt.address], dtype=stmt.out.dtype)
            return value, dist.log_density(value), True
        if getattr(dist, "is_discrete", False):
            raise ModelError(f"the discrete site '{stmt.address}' has no value here", span=stmt.span)
        if stmt.address not in inputs:
            raise ModelError(f"no unconstrained value was given for the random choice '{stmt.address}'",
                             span=stmt.span)
        bij = biject_to(dist.support)
        u = inputs[stmt.address]
        x = bij.forward(u)
        return x, dist.log_density(x) + bij.log_det_jacobian(u), True


def element_log_densities(program: ir.Program, choices: dict, args, mode=None, key=None):
    """Each site's log-density term per element (see :class:`ElementInterpreter`).

    Returns ``(terms, trace)``: ``terms[address]`` an array over the axes
    named by ``site_layout(program, args).labels[address]``, and the trace
    of the run (choices, present flags, validity). ``mode`` decides the
    latent values (by default: given by ``choices``); ``key``, folded with
    the step inside loops, is passed to it.
    """
    graph = dependency_graph(program)
    interp = ElementInterpreter(mode or _GivenElements(), dict(choices), key, graph)
    out, acc = interp.run_block(program.block, list(args))
    retval = jax.tree.unflatten(program.out_tree, out)
    trace = C.Trace(acc.choices, acc.log_prior, acc.log_likelihood, acc.log_given, retval, acc.present, acc.valid)
    return dict(acc.terms), trace

"""Exact marginalisation of discrete latent sites: a transformation of a static program.

For a program with continuous latent sites ``x`` (read in unconstrained
coordinates ``u``, ``x = T(u)``) and discrete latent sites ``d`` with finite
supports::

    marginal_log_density_unconstrained(program, u, args)
        = log  sum_d  p(T(u), d, y)  +  log |det J_T(u)|

    recover_discrete(program, key, u_draws, args)  draws  d ~ p(d | T(u), y)  for each draw of u

How the sum is done without enumerating the product of every support:

1. Each site's log-density term is recorded *per element* of the plates and
   loops around it (:class:`ElementInterpreter`), not summed.
2. A discrete site is one *variable* whose elements along its plates (and
   along the steps of a loop that does not carry it) are independent given
   the rest: the plate is a promise of conditional independence, as in
   Pyro and NumPyro. Its remaining ("free") elements are enumerated jointly.
   Evaluating the program with the site set to each value broadcast over
   the plate gives, in one pass, the term of every element for that value:
   a mixture's per-datum ``z[n]`` costs ``K`` evaluations of ``N`` elements,
   ``O(N K)``, not ``K^N``.
3. Terms are grouped by the discrete variables they read (from the
   dependency graph, ``semantics.graph``); each group is evaluated once on
   the grid of its own variables only (``vmap``), so unrelated variables do
   not multiply the work.
4. The factors are contracted by plated variable elimination (Obermeyer et
   al., *Tensor variable elimination for plated factor graphs*, 2019):
   innermost plates first, each variable summed out (log-sum-exp) where its
   plate is, then the plate's product taken (a sum of logs).
5. A loop whose discrete sites feed later steps through the carry (a hidden
   Markov chain) is summed by the forward algorithm: the joint value of the
   step's discrete sites is the chain's state, and the carried values must be
   a function of the current state (first order). ``O(T C^2)`` for ``C``
   states. Sampling then runs forward filtering, backward sampling.

Law (checked in ``tests/test_marginalize.py``): for every ``u``, the result
equals ``log sum`` over the full grid of discrete values of
``compile.log_density_unconstrained`` with those values given, i.e. exact
enumeration of the discrete sites.

Not supported (a clear error says so): discrete sites with infinite support
(Poisson, Geometric), a discrete site whose value is used outside its plate
or loop (other than as the state of a first-order chain), carried discrete
sites in nested loops or with a state that accumulates over steps, and
chains whose per-step state has more than ``CHAIN_LIMIT`` values.
Continuous sites whose support depends on a discrete site are not
detected; their unconstrained coordinates would change meaning with it.
"""

from __future__ import annotations

import itertools
import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ppl.stdlib import jax_compat as jc
from ppl.semantics import compile as C
from ppl.semantics import ir
from ppl.semantics.graph import Graph, block_flow, dependency_graph
from ppl.stdlib.errors import ModelError

__all__ = [
    "can_marginalize",
    "check_marginalizable",
    "marginal_log_density_unconstrained",
    "recover_discrete",
    "constrain",
    "constrained_trace",
    "has_discrete_latents",
    "continuous_shapes",
    "ElementInterpreter",
    "element_log_densities",
    "Layout",
    "site_layout",
    "site_supports",
    "SiteAxes",
    "site_axes",
    "GRID_LIMIT",
    "CHAIN_LIMIT",
]

GRID_LIMIT = 1 << 16  # most joint values of the variables one group of terms reads
CHAIN_LIMIT = 1024  # most values of one step's discrete state in a chain


def _float():
    return jnp.result_type(float)


# ---------------------------------------------------------------------------
# Per-element log densities


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


# ---------------------------------------------------------------------------
# Layout: which axes each term keeps, and how a site's value splits into them


@dataclass(frozen=True)
class Layout:
    """``labels[address]``: the axes a site's term keeps; ``sizes[label]``: their lengths."""

    labels: dict
    sizes: dict


_layouts: "weakref.WeakKeyDictionary[ir.Program, Layout]" = weakref.WeakKeyDictionary()


def _abstract(x):
    return jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype)


def site_layout(program: ir.Program, args) -> Layout:
    """The term axes of every site (computed once per program, by an abstract run)."""
    got = _layouts.get(program)
    if got is not None:
        return got
    graph = dependency_graph(program)
    latent = program.latent_sites()
    structs = {a: jax.ShapeDtypeStruct(info.stacked_shape, info.dtype) for a, info in latent.items()}
    box = {}

    def run(choices, a):
        interp = ElementInterpreter(_GivenElements(), choices, None, graph)
        _, acc = interp.run_block(program.block, list(a))
        box["labels"], box["sizes"] = dict(interp.labels), dict(interp.sizes)
        return acc.log_prior

    jax.eval_shape(run, structs, [_abstract(x) for x in args])
    layout = Layout(box["labels"], box["sizes"])
    _layouts[program] = layout
    return layout


@dataclass(frozen=True)
class SiteAxes:
    """How a latent site's stacked value splits: axes named by term labels, and free axes."""

    shape: tuple[int, ...]  # the stacked shape
    labels: tuple[str, ...]  # the term's labels, in order
    label_axes: tuple[int, ...]  # the value axis of each label
    free_axes: tuple[int, ...]  # every other axis, in order

    @property
    def free_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[i] for i in self.free_axes)

    @property
    def label_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[i] for i in self.label_axes)

    def assemble(self, per_label):
        """A full value from an array of shape ``label_shape + free_shape``."""
        order = list(self.label_axes) + list(self.free_axes)
        perm = np.argsort(order)
        return jnp.transpose(per_label, perm)

    def split(self, value):
        """The inverse of :meth:`assemble`."""
        return jnp.transpose(value, list(self.label_axes) + list(self.free_axes))


def site_axes(program: ir.Program, layout: Layout, address: str) -> SiteAxes:
    info = program.sites[address]
    graph = dependency_graph(program)
    node = graph.nodes[address]
    labels = layout.labels[address]
    shape = tuple(info.stacked_shape)
    nloops = len(info.loop_lengths)
    plate_dim = {name: dim for name, _, dim in info.plates}
    axes = []
    for lab in labels:
        if lab in node.loops:
            axes.append(node.loops.index(lab))
        else:
            axes.append(nloops + len(info.shape) + plate_dim[lab])
    free = tuple(i for i in range(len(shape)) if i not in axes)
    return SiteAxes(shape, tuple(labels), tuple(axes), free)


# ---------------------------------------------------------------------------
# Supports of the discrete sites


def _support_error(problem: C.SupportProblem) -> ModelError | None:
    """A support problem in the words of summing out (continuous sites are simply not summed)."""
    if problem.why == "continuous":
        return None
    if problem.why == "infinite":
        return ModelError(
            f"the discrete random choice '{problem.address}' ({problem.dist_name}) has infinitely many "
            "values, so it cannot be summed out", span=problem.span,
            hint="Give it a finite support (Categorical, Bernoulli, Binomial), or use a method that "
            "samples it (Gibbs, MH, SMC).")
    if problem.why == "unknown":
        return ModelError(
            f"the support of the discrete random choice '{problem.address}' is not known before the "
            f"program runs ({problem.detail})", span=problem.span,
            hint="Give the distribution's size parameters (e.g. Binomial's total_count) as data.")
    return ModelError(f"the {problem.detail or 'elements'} of the discrete random choice '{problem.address}' have "
                      "different supports", span=problem.span)


def _probe_errors(probe: C.SupportProbe) -> list[ModelError]:
    return [e for e in (_support_error(p) for p in probe.problems.values()) if e is not None]


def site_supports(program: ir.Program, args, raise_errors: bool = True) -> dict[str, np.ndarray]:
    """The values of each finite discrete latent site (one list for all its elements).

    Found by an abstract run (nothing is computed) when the supports depend on shapes only,
    as those of Bernoulli and Categorical do; otherwise by running the program on the
    concrete ``args``.
    """
    probe = C.SupportProbe()

    def go(*a):
        with jax.ensure_compile_time_eval():
            C.run(program, probe, a)
        return 0

    jax.eval_shape(go, *[_abstract(x) for x in args])
    concrete = not any(jc.is_tracer(x) for x in args)
    if _probe_errors(probe) and concrete:
        probe = C.SupportProbe()
        with jax.ensure_compile_time_eval():
            C.run(program, probe, args)
    errors = _probe_errors(probe)
    if raise_errors and errors:
        raise errors[0]
    return {a: _value_table(v) for a, v in probe.supports.items()}


def _value_table(values: np.ndarray) -> np.ndarray:
    """The values one element takes, as a flat table (the supports are the same for every element)."""
    flat = values.reshape(values.shape[0], -1)
    return flat[:, 0] if flat.shape[1] else flat.reshape(values.shape[0])


# ---------------------------------------------------------------------------
# The plan: variables, chains, terms and what each reads


@dataclass(frozen=True)
class _Var:
    """A discrete site summed out element by element along its labels."""

    address: str
    axes: SiteAxes
    table: Any  # (configurations, *free_shape): the joint values of the free elements

    @property
    def labels(self):
        return self.axes.labels

    @property
    def size(self) -> int:
        return int(self.table.shape[0])

    def value(self, index):
        """The site's value when its labelled elements take configurations ``index`` (label-shaped)."""
        index = jnp.broadcast_to(jnp.asarray(index, jnp.int32), self.axes.label_shape)
        return self.axes.assemble(self.table[index])


@dataclass(frozen=True)
class _Chain:
    """A loop whose discrete sites form a first-order Markov chain of joint states."""

    loop: str
    term: str
    tables: dict  # site -> (states, *per-step shape)
    tainted: tuple  # per carry slot: whether it depends on the state
    size: int


def _joint_table(values: np.ndarray, shape: tuple[int, ...]):
    n = int(np.prod(shape, dtype=np.int64))
    count = len(values) ** n
    if count > GRID_LIMIT:
        return None
    combos = np.array(list(itertools.product(range(len(values)), repeat=n)), dtype=np.int64).reshape((count,) + shape)
    return values[combos]


def _site_error(program, address, message, hint=None):
    info = program.sites.get(address)
    return ModelError(message, span=info.span if info else None, hint=hint)


@dataclass(frozen=True)
class _Structure:
    """What the graph says, per program: chains, plain variables, terms and their reads."""

    graph: Graph
    layout: Layout
    discrete: tuple  # every discrete latent site
    chain_loops: dict  # loop -> its discrete sites
    plain: tuple  # discrete sites summed element by element
    terms: dict  # term name -> tuple of plain variables it reads
    chain_terms: dict  # loop -> term name
    tainted: dict  # loop -> tuple of bools


_structures: "weakref.WeakKeyDictionary[ir.Program, _Structure]" = weakref.WeakKeyDictionary()


def _structure(program: ir.Program, args) -> _Structure:
    got = _structures.get(program)
    if got is not None:
        return got
    graph = dependency_graph(program)
    layout = site_layout(program, args)
    latent = program.latent_sites()
    discrete = tuple(a for a, info in latent.items() if info.is_discrete)
    dset = set(discrete)

    # loops whose discrete sites are carried to later steps: chains
    chain_loops: dict[str, list[str]] = {}
    for a in discrete:
        node = graph.nodes[a]
        carried = any(a in graph.nodes[s].carried for s in graph.nodes)
        if not carried:
            continue
        if len(node.loops) != 1:
            raise _site_error(program, a, f"the discrete random choice '{a}' is carried from step to step of "
                              "a loop nested in another loop; summing it out is not supported yet",
                              "Use a method that samples it (Gibbs, MH, SMC), or flatten the loops.")
        chain_loops.setdefault(node.loops[0], [])
    for loop in chain_loops:
        chain_loops[loop] = [a for a in graph.loops[loop].sites if a in dset]
        for a in chain_loops[loop]:
            if len(graph.nodes[a].loops) != 1:
                raise _site_error(program, a, f"the discrete random choice '{a}' is in a loop nested inside a "
                                  "loop that carries discrete values; summing it out is not supported yet",
                                  "Use a method that samples it (Gibbs, MH, SMC).")
    in_chain = {a for sites in chain_loops.values() for a in sites}
    plain = tuple(a for a in discrete if a not in in_chain)
    pset = set(plain)

    terms: dict[str, tuple] = {}
    chain_terms = {}
    tainted = {}
    chain_body = {a for loop in chain_loops for a in graph.loops[loop].sites}
    for a, node in graph.nodes.items():
        if node.kind == "deterministic" or a in chain_body:
            continue
        reads = set(node.parents) & pset
        if a in pset:
            reads.add(a)
        terms[a] = tuple(v for v in plain if v in reads)
    for loop, sites in chain_loops.items():
        body_sites = graph.loops[loop].sites
        name = f"<chain {loop}>"
        chain_terms[loop] = name
        reads = set()
        for s in body_sites:
            reads |= set(graph.nodes[s].parents) & pset
        terms[name] = tuple(v for v in plain if v in reads)
        for d in sites:
            outside = [c for c in graph.children(d) if c not in body_sites]
            if outside:
                raise _site_error(program, d, f"the discrete random choice '{d}' is carried through a loop and "
                                  f"also read after it (by '{outside[0]}'); summing it out is not supported",
                                  "Keep the chain's values inside the loop, or use Gibbs or MH.")
            if layout.labels[d] != (loop,):
                raise _site_error(program, d, f"the discrete random choice '{d}' is carried through a loop "
                                  "inside a plate or branch; summing it out is not supported yet",
                                  "Use Gibbs or MH for it.")
        tainted[loop] = _tainted_slots(program, graph.loops[loop].stmt, set(sites))

    # every variable read by a term must lie inside the term's plates and loops
    for t, reads in terms.items():
        tl = set(layout.labels.get(t, ()))
        for v in reads:
            missing = set(layout.labels[v]) - tl
            if missing:
                raise _site_error(
                    program, v,
                    f"the discrete random choice '{v}' sits inside {sorted(missing)} but "
                    f"'{t}' reads it outside {'that' if len(missing) == 1 else 'those'}; its elements cannot be "
                    "summed out one by one",
                    "Use the values inside the plate (or loop) only, or sample the site with Gibbs or MH.")
    got = _Structure(graph, layout, discrete, {k: tuple(v) for k, v in chain_loops.items()}, plain, terms,
                     chain_terms, tainted)
    _structures[program] = got
    return got


def _tainted_slots(program, stmt: ir.For, chain_sites: set) -> tuple:
    """Per carry slot of a chain loop: whether it depends on the step's discrete state.

    The chain must be first order: a slot that depends on the state may not
    also depend on the previous value of such a slot.
    """
    c, k = stmt.num_consts, stmt.num_carry
    nx = len(stmt.body.params) - c - k
    params = [frozenset()] * c + [frozenset({("slot", i)}) for i in range(k)] + [frozenset()] * nx
    flow = block_flow(stmt.body, params)
    ret = flow.returns[:k]
    tainted = [bool(ret[i] & chain_sites) for i in range(k)]
    changed = True
    while changed:
        changed = False
        for i in range(k):
            if not tainted[i] and any(isinstance(x, tuple) and x[0] == "slot" and tainted[x[1]] for x in ret[i]):
                tainted[i] = changed = True
    for i in range(k):
        if tainted[i] and any(isinstance(x, tuple) and x[0] == "slot" and tainted[x[1]] for x in ret[i]):
            site = sorted(chain_sites)[0]
            raise _site_error(program, site, f"the loop around '{site}' carries a state that accumulates the "
                              "discrete values of several steps; only first-order chains (the carried value "
                              "a function of the current step's discrete values) can be summed out",
                              "Carry the current discrete value only, or use Gibbs or MH.")
    return tuple(tainted)


@dataclass(frozen=True)
class _Plan:
    structure: _Structure
    vars: dict  # address -> _Var
    chains: dict  # loop -> _Chain
    groups: dict  # tuple of variables -> term names


def _plan(program: ir.Program, args) -> _Plan:
    st = _structure(program, args)
    supports = site_supports(program, args) if st.discrete else {}
    variables = {}
    for a in st.plain:
        axes = site_axes(program, st.layout, a)
        table = _joint_table(supports[a], axes.free_shape)
        if table is None:
            raise _site_error(program, a, f"the discrete random choice '{a}' has {len(supports[a])}^"
                              f"{int(np.prod(axes.free_shape))} joint values outside any plate: too many to sum "
                              "out", "Put its independent elements in a ppl.plate, or use Gibbs or MH.")
        variables[a] = _Var(a, axes, jnp.asarray(table, program.sites[a].dtype))
    chains = {}
    for loop, sites in st.chain_loops.items():
        per_site = []
        for d in sites:
            shape = tuple(program.sites[d].shape)
            per_site.append(_joint_table(supports[d], shape))
        sizes = [len(t) if t is not None else GRID_LIMIT + 1 for t in per_site]
        total = int(np.prod(sizes, dtype=np.int64))
        if total > CHAIN_LIMIT:
            raise _site_error(program, sites[0], f"the chain of discrete states in the loop around '{sites[0]}' "
                              f"has {total} states per step; the forward algorithm handles at most {CHAIN_LIMIT}",
                              "Use Gibbs or MH for these sites.")
        grid = np.array(list(itertools.product(*[range(n) for n in sizes])), dtype=np.int64).reshape(total, -1)
        tables = {d: jnp.asarray(per_site[j][grid[:, j]], program.sites[d].dtype) for j, d in enumerate(sites)}
        chains[loop] = _Chain(loop, st.chain_terms[loop], tables, st.tainted[loop], total)
    groups: dict[tuple, list] = defaultdict(list)
    for t, reads in st.terms.items():
        groups[reads].append(t)
    for reads in groups:
        size = int(np.prod([variables[v].size for v in reads], dtype=np.int64))
        if size > GRID_LIMIT:
            raise ModelError(f"summing out the discrete sites {list(reads)} together needs {size} evaluations of "
                             "the model", hint="Use Gibbs or MH for some of them.")
    return _Plan(st, variables, chains, dict(groups))


# ---------------------------------------------------------------------------
# Evaluation of the factors


def _run_terms(plan: _Plan, program, u, args, indices: dict, key=None, sample_chains=False):
    st = plan.structure
    inputs = dict(u)
    for a, var in plan.vars.items():
        inputs[a] = var.value(indices.get(a, 0))
    mode = _Unconstrained(set(st.discrete))
    interp = ElementInterpreter(mode, inputs, key, st.graph, plan.chains, sample_chains)
    out, acc = interp.run_block(program.block, list(args))
    terms = dict(acc.terms)
    # a discrete site in a branch that did not run: count one of its values only
    for a in plan.vars:
        if a in acc.present:
            first = jnp.all(jnp.asarray(indices.get(a, 0)) == 0)
            terms[a] = jnp.where(acc.present[a], terms[a], jnp.where(first, 0.0, -jnp.inf))
    return terms, acc


def _factors(plan: _Plan, program, u, args) -> list:
    """Every term, as (array over (variables, labels), variables, labels)."""
    layout = plan.structure.layout
    out = []
    for reads, names in plan.groups.items():
        def fn(*idx, reads=reads, names=names):
            terms, _ = _run_terms(plan, program, u, args, dict(zip(reads, idx)))
            return [terms[n] for n in names]

        g = fn
        n = len(reads)
        for i in reversed(range(n)):
            axes = [None] * n
            axes[i] = 0
            g = jax.vmap(g, in_axes=tuple(axes))
        arrays = g(*[jnp.arange(plan.vars[v].size) for v in reads])
        for name, arr in zip(names, arrays):
            out.append(_Factor(arr, reads, layout.labels.get(name, ())))
    return out


@dataclass(frozen=True)
class _Factor:
    array: Any
    vars: tuple
    labels: tuple


def _align(f: _Factor, to_vars, to_labels):
    src = [("v", v) for v in f.vars] + [("l", lab) for lab in f.labels]
    dst = [("v", v) for v in to_vars] + [("l", lab) for lab in to_labels]
    perm = [src.index(d) for d in dst if d in src]
    arr = jnp.transpose(f.array, perm)
    shape = []
    it = iter(arr.shape)
    for d in dst:
        shape.append(next(it) if d in src else 1)
    return arr.reshape(shape)


@dataclass(frozen=True)
class _Step:
    """One elimination: ``table`` over (local + remaining variables, labels), before summing."""

    table: Any
    local: tuple
    remaining: tuple
    labels: tuple


def _components(factors, is_local):
    """Groups of factors connected through shared local variables."""
    groups: list[tuple[set, list]] = []
    for f in factors:
        mine = {v for v in f.vars if is_local(v)}
        merged_vars, merged = set(mine), [f]
        keep = []
        for vs, fs in groups:
            if vs & mine:
                merged_vars |= vs
                merged += fs
            else:
                keep.append((vs, fs))
        groups = keep + [(merged_vars, merged)]
    return groups


def _contract(plan: _Plan, factors: list, record: bool = False):
    """log of the sum over every plain variable of the product of the factors (plated elimination)."""
    var_order = list(plan.vars)
    var_labels = {v: frozenset(plan.vars[v].labels) for v in var_order}
    layout = plan.structure.layout
    label_order = _label_order(factors)
    by_ordinal: dict[frozenset, list] = defaultdict(list)
    for f in factors:
        by_ordinal[frozenset(f.labels)].append(f)
    steps: list[_Step] = []
    total = jnp.zeros((), _float())
    while True:
        live = [o for o, fs in by_ordinal.items() if fs and o]
        if not live:
            break
        leaf = max(live, key=len)
        fs = by_ordinal.pop(leaf)
        labels = tuple(lab for lab in label_order if lab in leaf)
        for local, comp in _components(fs, lambda v: var_labels[v] == leaf):
            used = [v for v in var_order if any(v in f.vars for f in comp)]
            loc = tuple(v for v in used if v in local)
            rem = tuple(v for v in used if v not in local)
            vars_ = loc + rem
            table = sum(_align(f, vars_, labels) for f in comp)
            table = jnp.broadcast_to(table, tuple(plan.vars[v].size for v in vars_)
                                     + tuple(layout.sizes[lab] for lab in labels))
            if record and loc:
                steps.append(_Step(table, loc, rem, labels))
            g = logsumexp(table, axis=tuple(range(len(loc)))) if loc else table
            parent = frozenset().union(*[var_labels[v] for v in rem]) if rem else frozenset()
            if parent == leaf:
                raise ModelError(f"the discrete sites {list(rem)} sit in plates that overlap without nesting; "
                                 "they cannot be summed out element by element",
                                 hint="Nest the plates, or use Gibbs or MH.")
            plate_axes = tuple(len(rem) + i for i, lab in enumerate(labels) if lab not in parent)
            g = jnp.sum(g, axis=plate_axes) if plate_axes else g
            by_ordinal[parent].append(_Factor(g, rem, tuple(lab for lab in labels if lab in parent)))
    rest = by_ordinal.get(frozenset(), [])
    for local, comp in _components(rest, lambda v: True):
        vars_ = tuple(v for v in var_order if any(v in f.vars for f in comp))
        table = sum(_align(f, vars_, ()) for f in comp)
        table = jnp.broadcast_to(table, tuple(plan.vars[v].size for v in vars_))
        if record and vars_:
            steps.append(_Step(table, vars_, (), ()))
        total = total + (logsumexp(table) if vars_ else table)
    return total, steps


def _label_order(factors) -> list:
    order: list = []
    for f in factors:
        for lab in f.labels:
            if lab not in order:
                order.append(lab)
    return order


# ---------------------------------------------------------------------------
# Public functions


def check_marginalizable(program: ir.Program, args) -> None:
    """Raise the ``ModelError`` that says why the discrete latent sites cannot be summed out, if they cannot."""
    _plan(program, args)


def can_marginalize(program: ir.Program, args) -> bool:
    """Whether every discrete latent site of the program can be summed out exactly."""
    try:
        _plan(program, args)
    except ModelError:
        return False
    return True


def has_discrete_latents(program: ir.Program) -> bool:
    """Whether any latent site of the program is discrete (and so needs summing out for NUTS)."""
    return any(info.is_discrete for info in program.latent_sites().values())


def continuous_shapes(program: ir.Program, args) -> dict:
    """Unconstrained shapes of the continuous latent sites (stacked in loops)."""
    return {a: s for a, s in C.unconstrained_shapes(program, args).items() if s is not None}


def marginal_log_density_unconstrained(program: ir.Program, u: dict, args):
    """``log sum_d p(T(u), d, y) + log|det J_T(u)|``: the discrete latent sites summed out exactly.

    ``u`` holds the unconstrained values of the continuous latent sites only.
    Pure and differentiable in ``u``; ``jit`` it. Equals
    ``compile.log_density_unconstrained`` when there is no discrete site.
    """
    plan = _plan(program, args)
    total, _ = _contract(plan, _factors(plan, program, u, args))
    return total


def _recover_one(plan: _Plan, program, key, u, args):
    k_vars, k_chain = jax.random.split(key)
    _, steps = _contract(plan, _factors(plan, program, u, args), record=True)
    sampled: dict[str, tuple] = {}
    keys = jax.random.split(k_vars, max(len(steps), 1))
    for step, k in zip(reversed(steps), keys):
        sizes = step.table.shape[len(step.local) + len(step.remaining):]
        index: list = [slice(None)] * len(step.local)
        for v in step.remaining:
            idx, labels = sampled[v]
            index.append(jnp.broadcast_to(_align(_Factor(idx, (), labels), (), step.labels), sizes))
        grids = jnp.meshgrid(*[jnp.arange(n) for n in sizes], indexing="ij") if sizes else []
        table = step.table[tuple(index) + tuple(grids)] if (step.remaining or sizes) else step.table
        # table: (local sizes..., label sizes...)
        nloc = len(step.local)
        moved = jnp.moveaxis(table, tuple(range(nloc)), tuple(range(table.ndim - nloc, table.ndim)))
        flat = moved.reshape(tuple(sizes) + (-1,))
        draw = jax.random.categorical(k, flat, axis=-1)
        local_sizes = tuple(plan.vars[v].size for v in step.local)
        parts = jnp.unravel_index(draw, local_sizes) if local_sizes else ()
        for v, idx in zip(step.local, parts):
            sampled[v] = (idx, step.labels)
    indices = {}
    for v, var in plan.vars.items():
        idx, labels = sampled[v]
        indices[v] = _align(_Factor(idx, (), labels), (), var.labels).reshape(var.axes.label_shape)
    values = {v: plan.vars[v].value(indices[v]) for v in plan.vars}
    if plan.chains:
        _, acc = _run_terms(plan, program, u, args, indices, key=k_chain, sample_chains=True)
        for chain in plan.chains.values():
            for d in chain.tables:
                values[d] = acc.choices[d]
    return values


_recover_cache: "weakref.WeakKeyDictionary[ir.Program, Any]" = weakref.WeakKeyDictionary()


def recover_discrete(program: ir.Program, key, u_draws: dict, args) -> dict:
    """Draw every discrete latent site from ``p(d | T(u), y)``, for each draw of ``u``.

    ``u_draws[a]`` has leading draw axes (any number, e.g. ``(chains, draws)``)
    followed by the unconstrained shape of site ``a``. Returns the discrete
    sites' values with the same leading axes. Draws use independent keys.
    """
    shapes = continuous_shapes(program, args)
    lead = None
    for a, s in shapes.items():
        x = np.shape(u_draws[a])
        here = x[: len(x) - len(s)]
        if lead is not None and here != lead:
            raise ModelError("the draws of the continuous sites have different leading shapes")
        lead = here
    if lead is None:
        raise ModelError("recover_discrete needs the draws' leading shape; the model has no continuous site",
                         hint="Use Enumerate for a model whose latent sites are all discrete.")
    n = int(np.prod(lead, dtype=np.int64))
    flat = {a: jnp.reshape(jnp.asarray(u_draws[a]), (n,) + tuple(shapes[a])) for a in shapes}
    fn = _recover_cache.get(program)
    if fn is None:
        def batch(keys, u, a):
            plan = _plan(program, a)
            return jax.vmap(lambda k, x: _recover_one(plan, program, k, x, a))(keys, u)

        fn = jax.jit(batch)
        _recover_cache[program] = fn
    out = fn(jax.random.split(key, n), flat, list(args))
    return {a: np.asarray(v).reshape(tuple(lead) + tuple(np.shape(v)[1:])) for a, v in out.items()}


def constrain(program: ir.Program, u: dict, discrete: dict, args) -> dict:
    """Every latent and deterministic site's value, from unconstrained ``u`` and discrete values."""
    return constrained_trace(program, u, discrete, args)[0]


def constrained_trace(program: ir.Program, u: dict, discrete: dict, args) -> tuple:
    """``(choices, retval)`` of one run with the continuous sites at ``T(u)`` and the discrete ones given."""
    mode = _Unconstrained(set(discrete))
    trace = C.run(program, _SummedMode(mode), args, inputs={**u, **discrete})
    return trace.choices, trace.retval


class _SummedMode(C.Mode):
    """An element mode made into a compiled-engine mode (log densities summed)."""

    def __init__(self, inner):
        self.inner = inner

    def sample(self, stmt, dist, inputs, key):
        value, ld, given = self.inner.sample(stmt, dist, inputs, key)
        return value, C.sum_terms(ld), given

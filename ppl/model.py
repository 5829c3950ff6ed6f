"""``@ppl.model``: a Python function that performs random choices, as a first-class model."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ppl import outside
from ppl import trace as tracing
from ppl.condition_layer import run_conditioned
from ppl.inference.causal.transform import do_program
from ppl.semantics import compile as C
from ppl.semantics import effects, ir
from ppl.semantics.condition import condition_program
from ppl.semantics.interpret.free import sample_log_density, site_score
from ppl.semantics.program import Dynamic, split_args
from ppl.stdlib.errors import AddressError, ModelError, PPLError

__all__ = ["Model", "model", "Trace"]

Trace = C.Trace


class Model:
    """A probabilistic model: a function of its arguments that makes named random choices.

    A model denotes a distribution over what it returns (as in WebPPL). Call it
    inside another model to nest its addresses under its name.
    """

    def __init__(self, fn: Callable, name: str | None = None, conditions: dict | None = None,
                 source: Any = None, interventions: dict | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "model")
        self.conditions = dict(conditions or {})
        self.interventions = dict(interventions or {})
        self.source = source  # the .ppl definition, for models loaded from the language
        self._programs: dict = {}
        self._compiled: dict = {}
        #: optional ``(args, kwargs) -> (args, kwargs)`` applied before tracing (the .ppl front end
        #: gives its models one that gives data the declared element types, so ``[1, 2]`` and
        #: ``[1.0, 2.0]`` for a ``real[]`` argument are the same program, compiled once)
        self.coerce: Callable | None = None
        functools.update_wrapper(self, fn, updated=())

    def __repr__(self) -> str:
        return f"<ppl.Model {self.name}>"

    # -- as a sub-model -------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if effects.current_handler() is None:
            raise ModelError(
                f"the model '{self.name}' was called directly",
                span=effects.caller_span(),
                hint=f"Run it with {self.name}.simulate(key, ...) or ppl.infer({self.name}, ...), "
                "or call it from inside another model.",
            )
        return effects.call(self.name, self.body, *args, **kwargs)

    def body(self, *args, **kwargs):
        """Run the model's function under the current handler, applying its conditions
        (a sample becomes an observation). Interventions are not applied here: ``do`` is an
        IR -> IR transformation of the whole program (:meth:`program`)."""
        if self.interventions:
            raise _submodel_do_error(self)
        if not self.conditions:
            return self.fn(*args, **kwargs)
        return run_conditioned(self.fn, self.name, self.conditions, args, kwargs)

    # -- derived models ---------------------------------------------------------
    def condition(self, data: dict) -> "Model":
        """The model with the random choices named in ``data`` observed at those values."""
        return self._derived(Model(self.fn, self.name, {**self.conditions, **dict(data)}, self.source,
                                   self.interventions))

    def do(self, interventions: dict) -> "Model":
        """The model after the intervention ``do(site = value)`` for each entry: the mechanism
        that produced the site is cut out and the value fed in its place (graph surgery), so
        nothing upstream learns from it — unlike :meth:`condition`.

        A value may also be a distribution or a function of named sites (a soft intervention);
        sites may be observed (their readers see the value), deterministic, in loops or plates
        (``"x[3]"`` for one step or element) or in sub-models (``"sub/x"``). ``do`` is the IR -> IR
        transformation ``inference/causal/transform.py`` (its docstring states the law); a
        dynamic model, which has no static IR, is refused with an error."""
        return self._derived(Model(self.fn, self.name, self.conditions, self.source,
                                   {**self.interventions, **dict(interventions)}))

    def undo(self) -> "Model":
        """The model without its interventions (its conditions kept)."""
        return self._derived(Model(self.fn, self.name, self.conditions, self.source))

    def _derived(self, other: "Model") -> "Model":
        """``other`` (a conditioned or intervened copy) with this model's argument handling."""
        other.coerce = self.coerce
        if hasattr(self, "param_names"):
            other.param_names = self.param_names
        return other

    # -- the IR ---------------------------------------------------------------------
    def program(self, *args, **kwargs):
        """The static IR program for these arguments, or a ``Dynamic`` description."""
        if self.coerce is not None:
            args, kwargs = self.coerce(args, kwargs)
        leaves, rebuild = split_args(args, kwargs, self.fn)
        key = rebuild.key
        # what a Python model reads from globals and closures is a constant of its program: a
        # program traced with other values of them is not this one (ppl/outside.py)
        reads = () if self.source is not None else outside.fingerprint(self.fn)
        kept = self._programs.get(key)
        got = kept[1] if kept is not None and kept[0] == reads else None
        if got is None:
            if self.interventions:
                got = self._surgery(args, kwargs)
            else:
                got = self._conditioned(args, kwargs)
            self._programs[key] = (reads, got)
        if isinstance(got, Dynamic):
            a, k = rebuild(leaves)
            return Dynamic(self.body, a, k, self.name, got.reason, got.span), leaves
        return got, leaves

    def _conditioned(self, args, kwargs):
        """The traced program with this model's conditions (the arguments coerced already):
        ``condition`` as an IR -> IR transformation (``semantics/condition.py``) where it applies,
        else the model's code run with the conditions layered over the tracer."""
        if not self.conditions:
            return tracing.trace(self.fn, args, kwargs, self.name)
        plain = tracing.trace(self.fn, args, kwargs, self.name)
        if isinstance(plain, ir.Program):
            got = condition_program(plain, self.conditions)
            if got is not None:
                return got
        return tracing.trace(self.body, args, kwargs, self.name)

    def _surgery(self, args, kwargs):
        """The interventions as an IR -> IR transformation of the program without them
        (``inference/causal/transform.py``). A dynamic model (no static IR) is refused with a
        clear error: surgery transforms the model's diagram, and a dynamic model has none."""
        # a condition on an intervened site is dropped with its observation: do() replaces it
        kept = {k: v for k, v in self.conditions.items() if k not in self.interventions}
        program = Model(self.fn, self.name, kept, self.source)._conditioned(args, kwargs)
        if not isinstance(program, ir.Program):
            raise _dynamic_do_error(self, program)
        return do_program(program, self.interventions)

    def ir(self, *args, **kwargs):
        """The IR of the model for these arguments (print it to read it)."""
        program, _ = self.program(*args, **kwargs)
        if isinstance(program, Dynamic):
            raise ModelError(program.describe(), span=program.span)
        return program

    def is_static(self, *args, **kwargs) -> bool:
        """Whether the model compiles (a fixed set of addresses and shapes) for these arguments."""
        program, _ = self.program(*args, **kwargs)
        return isinstance(program, ir.Program)

    def _fn(self, kind: str, program: ir.Program, build):
        key = (kind, program)
        fn = self._compiled.get(key)
        if fn is None:
            fn = jax.jit(build)
            self._compiled[key] = fn
        return fn

    def log_density_function(self, *args, unconstrained: bool = False, **kwargs):
        """The model's joint log density as a pure JAX function of a dict of latent values.

        With ``unconstrained=True`` the values are in unconstrained coordinates and the
        log-Jacobian of each site's transform is included (what gradient-based samplers use).
        The function jits, vmaps and differentiates; the data are closed over.
        """
        program, leaves = self.program(*args, **kwargs)
        if isinstance(program, Dynamic):
            raise ModelError(program.describe(), span=program.span)
        if unconstrained:
            return lambda u: C.log_density_unconstrained(program, u, leaves)
        return lambda choices: C.log_density(program, choices, leaves)

    # -- the generative-function interface -----------------------------------------
    def simulate(self, key, *args, **kwargs) -> Trace:
        """Run the model forwards: every latent site drawn from its prior."""
        program, leaves = self.program(*args, **kwargs)
        if isinstance(program, Dynamic):
            return _eager_trace(program, key, {})
        fn = self._fn("simulate", program, lambda k, a: C.simulate(program, k, a))
        return fn(key, leaves)

    def log_density(self, choices: dict, *args, **kwargs):
        """``log p(choices, data)``: the joint log density at the given latent values."""
        program, leaves = self.program(*args, **kwargs)
        if isinstance(program, Dynamic):
            return _eager_log_density(program, choices)
        _check_addresses(program, choices)
        fn = self._fn("log_density", program, lambda c, a: C.log_density(program, c, a))
        return fn(dict(choices), leaves)

    def generate(self, key, *args, constraints: dict | None = None, **kwargs):
        """Run with some sites fixed by ``constraints``; returns ``(trace, log_weight)``."""
        constraints = dict(constraints or {})
        program, leaves = self.program(*args, **kwargs)
        if isinstance(program, Dynamic):
            trace = _eager_trace(program, key, constraints)
            return trace, trace.log_given + trace.log_likelihood
        _check_addresses(program, constraints, require_all=False)
        fn = self._fn("generate", program, lambda k, c, a: C.generate(program, k, a, c))
        return fn(key, constraints, leaves)


def _dynamic_do_error(model: "Model", program) -> ModelError:
    why = f" ({program.reason})" if getattr(program, "reason", None) else ""
    return ModelError(
        f"do() on the model '{model.name}', which is dynamic{why}: surgery transforms the model's IR, and a "
        "dynamic model has no static diagram", span=getattr(program, "span", None),
        hint="Write its control flow with ppl.cond and ppl.scan (or as a .ppl file) so that it compiles.")


def _submodel_do_error(model: "Model") -> ModelError:
    return ModelError(
        f"the model '{model.name}' has interventions (do) and is called as a sub-model: surgery transforms a "
        "whole program", span=effects.caller_span(),
        hint=f"Intervene on the outer model instead, naming the site as '{model.name}/<site>'.")


def model(fn: Callable | None = None, *, name: str | None = None):
    """Decorator: turn a Python function into a :class:`Model`."""
    if fn is None:
        return lambda f: Model(f, name)
    return Model(fn, name)


def _check_addresses(program: ir.Program, choices: dict, require_all: bool = True):
    latent = program.latent_sites()
    unknown = [a for a in choices if a not in latent]
    if unknown:
        raise AddressError(
            f"no random choice is named {unknown[0]!r} in model '{program.name}'; "
            f"its latent sites are {sorted(latent)}",
        )
    for a, v in choices.items():
        want = latent[a].stacked_shape
        if tuple(np.shape(v)) != tuple(want):
            raise AddressError(f"the value for '{a}' has shape {tuple(np.shape(v))}, but the site has shape "
                               f"{tuple(want)}", span=latent[a].span)
    if require_all:
        missing = [a for a in latent if a not in choices]
        if missing:
            raise AddressError(f"no value was given for the random choice {missing[0]!r}",
                               span=latent[missing[0]].span)


class _EagerRun(effects.Handler):
    """Runs a dynamic model: given values where supplied, prior draws elsewhere."""

    def __init__(self, key, given: dict):
        super().__init__()
        self.key = key
        self.count = 0
        self.given = given
        self.choices, self.used = {}, set()
        self.log_prior = self.log_likelihood = self.log_given = 0.0

    def site(self, site):
        if site.kind == "sample":
            if site.address in self.given:
                x = jnp.asarray(self.given[site.address])
                self.used.add(site.address)
                lp = sample_log_density(site, x)
                self.log_given += lp
            else:
                if self.key is None:
                    raise AddressError(f"no value was given for the random choice '{site.address}'",
                                       span=site.span)
                self.count += 1
                sub = jax.random.fold_in(self.key, self.count)
                x = site.dist.sample(sub)
                lp = sample_log_density(site, x)
            self.log_prior += lp
            self.choices[site.address] = x
            return x
        if site.kind == "deterministic":
            self.choices[site.address] = site.value
            return site.value
        self.log_likelihood += site_score(site)
        return None


def _eager_run(program: Dynamic, key, given):
    h = _EagerRun(key, dict(given))
    try:
        with h:
            value = program.call()
    except PPLError as err:
        from ppl.inference._common import annotate

        raise annotate(err) from None
    unused = set(given) - h.used
    if unused:
        raise AddressError(f"no random choice named {sorted(unused)[0]!r} was made in this run of "
                           f"'{program.name}'")
    return h, value


def _eager_trace(program, key, given) -> Trace:
    h, value = _eager_run(program, key, given)
    return Trace(h.choices, h.log_prior, h.log_likelihood, h.log_given, value, {})


def _eager_log_density(program, choices):
    h, _ = _eager_run(program, None, choices)
    return h.log_prior + h.log_likelihood

"""The one place where ppl touches JAX internals.

Everything here is either semi-public (``jax.extend``) or an attribute of a
jaxpr that JAX does not promise to keep. When JAX moves, this module is the
only one that should need to change.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax import errors as jax_errors
from jax.extend import core as jcore

__all__ = [
    "Primitive",
    "ShapedArray",
    "is_tracer",
    "make_jaxpr",
    "eqn_name_stack",
    "eqn_subjaxprs",
    "is_literal",
    "literal_value",
    "is_dropvar",
    "CONCRETIZATION_ERRORS",
    "SCAN",
    "COND",
    "JIT_NAMES",
    "threefry_2x32",
    "define_prng_impl",
    "marker_primitive",
    "shard_map",
    "key_from_seed",
]

Primitive = jcore.Primitive
ShapedArray = jax.core.ShapedArray

# Errors JAX raises when Python control flow asks for the value of a traced array.
CONCRETIZATION_ERRORS: tuple[type[BaseException], ...] = (
    jax_errors.ConcretizationTypeError,
    jax_errors.TracerBoolConversionError,
    jax_errors.TracerIntegerConversionError,
    jax_errors.TracerArrayConversionError,
    jax_errors.NonConcreteBooleanIndexError,
)

SCAN = "scan"
COND = "cond"
JIT_NAMES = ("pjit", "jit", "closed_call", "core_call", "remat", "checkpoint")


def is_tracer(x: Any) -> bool:
    """True when ``x`` is an abstract value being traced by JAX (no concrete value)."""
    return isinstance(x, jax.core.Tracer)


def make_jaxpr(fn, *args):
    """``jax.make_jaxpr`` returning the closed jaxpr and the output pytree structure."""
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    return closed, out_shape


def eqn_name_stack(eqn) -> tuple[str, ...]:
    """The ``jax.named_scope`` path under which an equation was traced."""
    stack = getattr(eqn.source_info, "name_stack", None)
    if stack is None:
        return ()
    text = str(stack)
    return tuple(part for part in text.split("/") if part)


def eqn_frames(eqn) -> list[tuple[str, int]]:
    """The Python stack (file, line) where an equation was traced, innermost first."""
    tb = getattr(eqn.source_info, "traceback", None)
    frames = getattr(tb, "frames", None) or ()
    return [(f.file_name, int(f.line_num)) for f in frames]


def closed_to_parts(closed) -> tuple[Any, list[Any]]:
    """(jaxpr, consts) of a ClosedJaxpr (or a plain Jaxpr with no consts)."""
    if hasattr(closed, "jaxpr") and hasattr(closed, "consts"):
        return closed.jaxpr, list(closed.consts)
    return closed, []


def eqn_subjaxprs(eqn) -> Iterable[Any]:
    """Every jaxpr nested in an equation's parameters (scan bodies, cond branches, ...)."""
    for value in eqn.params.values():
        items = value if isinstance(value, (tuple, list)) else (value,)
        for item in items:
            if hasattr(item, "eqns") or (hasattr(item, "jaxpr") and hasattr(item, "consts")):
                yield item


def is_literal(atom) -> bool:
    return isinstance(atom, jcore.Literal)


def literal_value(atom):
    return atom.val


def is_dropvar(var) -> bool:
    return isinstance(var, jcore.DropVar)


def aval_of(atom) -> tuple[tuple[int, ...], np.dtype]:
    aval = atom.aval
    return tuple(aval.shape), np.dtype(aval.dtype)


def bind(op, args, params):
    """Apply a primitive to values (concrete arrays or tracers).

    ``params`` are an equation's parameters as a jaxpr stores them; primitives
    such as ``custom_jvp_call`` take some of them as functions at bind time,
    which ``get_bind_params`` recovers (as ``jax.core.eval_jaxpr`` does; in
    jax 0.10 it returns the parameters, the functions among them, and in
    older versions a pair (functions, parameters)).
    """
    got = op.get_bind_params(params)
    if isinstance(got, tuple):  # jax < 0.10: (functions, parameters)
        subfuns, bind_params = got
        out = op.bind(*subfuns, *args, **bind_params)
    else:
        out = op.bind(*args, **got)
    return list(out) if op.multiple_results else [out]


def scan_params(eqn) -> dict:
    """The parts of a ``scan`` equation that ppl needs, by name."""
    return scan_params_of(eqn.params)


def scan_params_of(p: dict) -> dict:
    """:func:`scan_params` from a ``scan`` equation's (or bind's) parameters."""
    if "num_consts" in p:  # jax <= 0.10
        num_consts, num_carry = int(p["num_consts"]), int(p["num_carry"])
    else:  # jax >= 0.11: flat trees of (consts, carry, xs)
        consts, carry, _ = p["ft_in"].unpack()
        num_consts, num_carry = len(consts), len(carry)
    return {
        "jaxpr": p["jaxpr"],
        "length": int(p["length"]),
        "reverse": bool(p["reverse"]),
        "num_consts": num_consts,
        "num_carry": num_carry,
    }


WHILE = "while"


def bind_closed(closed, args) -> list:
    """The outputs of a closed jaxpr applied to ``args`` (values or tracers)."""
    return list(jcore.jaxpr_as_fun(closed)(*args))


def while_params(params: dict) -> dict:
    """The parts of a ``while`` equation's (or bind's) parameters that ppl needs, by name."""
    return {
        "cond": params["cond_jaxpr"],
        "body": params["body_jaxpr"],
        "cond_nconsts": int(params["cond_nconsts"]),
        "body_nconsts": int(params["body_nconsts"]),
    }


def params_body(params: dict):
    """The closed jaxpr in a ``jit``-like equation's (or bind's) parameters, or None."""
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if key in params:
            return params[key]
    return None


def params_subjaxprs(params: dict) -> Iterable[Any]:
    """Every jaxpr nested in a primitive's parameters (as :func:`eqn_subjaxprs`)."""
    for value in params.values():
        items = value if isinstance(value, (tuple, list)) else (value,)
        for item in items:
            if hasattr(item, "eqns") or (hasattr(item, "jaxpr") and hasattr(item, "consts")):
                yield item


@contextlib.contextmanager
def eager_primitive_hook(hook: Callable):
    """Within: every primitive applied eagerly (to concrete values, outside ``jit``, ``grad`` and
    the other transformations, which trace instead) first goes to ``hook(primitive, args, params)``;
    it returns the primitive's results itself, or None to let JAX apply the primitive as usual. The
    hook runs under JAX's plain evaluation, so the primitives it applies do not come back to it."""
    from jax._src import core as jcore_src

    trace = _HOOK_TRACE.get("trace")
    if trace is None:  # one for the process: jit's caches are keyed on the current trace

        class _HookTrace(jcore_src.EvalTrace):
            def process_primitive(self, primitive, args, params, /):
                current = _HOOKS[-1] if _HOOKS else None
                got = current(primitive, args, params) if current is not None else None
                if got is not None:
                    return got
                return super().process_primitive(primitive, args, params)

        trace = _HOOK_TRACE["trace"] = _HookTrace()
    _HOOKS.append(hook)
    try:
        with jcore_src.set_current_trace(trace):
            yield
    finally:
        _HOOKS.pop()


_HOOK_TRACE: dict = {}
_HOOKS: list = []


@contextlib.contextmanager
def without_eager_hook():
    """Within: JAX's plain eager evaluation, when :func:`eager_primitive_hook` is in force (ppl's own
    work inside a user's eager run: its ``jit``-compiled functions keep JAX's fast path)."""
    trace = _HOOK_TRACE.get("trace")
    if trace is None or not _HOOKS:
        yield
        return
    from jax._src import core as jcore_src

    if jcore_src.trace_ctx.trace is not trace:
        yield
        return
    with jcore_src.set_current_trace(jcore_src.eval_trace):
        yield


def marker_primitive(name: str) -> Primitive:
    """A primitive that takes no operands and returns nothing: a mark in a jaxpr whose parameters
    carry what a tracer records at that point (ppl's: where a plate or sub-model call opens and
    closes). JAX evaluates and compiles it as a no-op, so a jaxpr that holds one (inside a loop
    body ppl keeps opaque, say) runs under ``jit``, ``vmap`` and ``grad`` as it would without."""
    from jax.interpreters import mlir

    prim = Primitive(name)
    prim.multiple_results = True
    prim.def_abstract_eval(lambda **params: [])
    prim.def_impl(lambda **params: [])
    mlir.register_lowering(prim, lambda ctx, **params: [])
    return prim


def cond_branches(eqn) -> tuple:
    return tuple(eqn.params["branches"])


def jit_body(eqn):
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if key in eqn.params:
            return eqn.params[key]
    raise KeyError(f"no body in {eqn.primitive.name}")


def abstract(shape, dtype) -> ShapedArray:
    return ShapedArray(tuple(shape), jnp.dtype(dtype))


def threefry_2x32(key_words: Any, counts: Any) -> Any:
    """JAX's own Threefry-2x32 hash (``jax.extend.random``): ``counts`` (even length) hashed
    as the pair (first half, second half) under the uint32 pair ``key_words``. Used by the
    tests to check the samplers' unrolled copy bit for bit."""
    from jax.extend import random as jrandom

    return jrandom.threefry_2x32(key_words, counts)


def define_prng_impl(**spec) -> Any:
    """A new kind of JAX PRNG key (``jax.extend.random.define_prng_impl``): pass the result as
    ``impl=`` to ``jax.random.wrap_key_data``. ``spec``: ``key_shape``, ``seed``, ``split``,
    ``random_bits``, ``fold_in``, ``name``, ``tag``."""
    from jax.extend import random as jrandom

    return jrandom.define_prng_impl(**spec)


def shard_map(fn: Callable, mesh, in_specs, out_specs, axis_names=None) -> Callable:
    """``fn`` run once per device of ``mesh`` on its block of the inputs (``jax.shard_map``).

    ``axis_names``: the mesh axes ``fn`` is manual over (the others stay automatic); None: all.
    Replication is not checked (``check_vma``/``check_rep`` off): the callers' bodies are per-device
    loops whose outputs are split along the manual axes. Wraps the two homes and the two spellings
    of the check flag that JAX versions use.
    """
    names = frozenset(mesh.axis_names if axis_names is None else axis_names)
    public = getattr(jax, "shard_map", None)
    if public is not None:
        return public(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, axis_names=names, check_vma=False)
    from jax.experimental.shard_map import shard_map as experimental  # older JAX

    auto = frozenset(mesh.axis_names) - names
    return experimental(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False, auto=auto)


def uses_lapack(serialized: bytes) -> bool:
    """Whether a program serialised by ``jax.export`` may call a LAPACK routine: the module names
    every custom-call target as plain text (``lapack_spotrf_ffi``, ...). A Python function whose name
    starts with ``lapack_`` in the traced call stack also counts: a false "yes" costs only the
    initialisation."""
    return b"lapack_" in serialized


@contextlib.contextmanager
def lowering_exported_without_lapack():
    """Lower calls of exported programs without JAX's one-off LAPACK initialisation.

    Lowering a call of an exported program first initialises JAX's LAPACK handlers on CPU
    (``jax._src.export._export._ensure_backends_initialized``), which imports ``scipy.linalg`` (about
    0.3 s of a new process). Only a program that calls LAPACK needs them (``uses_lapack``); jitted
    code of the process's own initialises them its own way, so skipping it for the others is safe.
    """
    from jax._src.export import _export as export_internals

    original = getattr(export_internals, "_ensure_backends_initialized", None)
    if original is None:  # JAX moved it: lower as JAX does
        yield
        return
    export_internals._ensure_backends_initialized = lambda platforms: None
    try:
        yield
    finally:
        export_internals._ensure_backends_initialized = original


def key_from_seed(seed: Any) -> Any:
    """``jax.random.key(seed)`` without compiling anything for an integer seed.

    ``jax.random.key`` stages the seed and runs a small jitted program (two XLA compilations on a
    process's first call). For the default Threefry-2x32 implementation the key's data are the
    seed's high and low 32-bit words (the high word is 0 without x64, where seeds are int32): this
    builds that key from NumPy words. Other implementations, other seed types and seeds outside
    the range JAX accepts go through ``jax.random.key`` itself (which raises what it raises).
    ``tests/test_counter_rng.py`` checks the equality of the two ways.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        return jax.random.key(seed)
    impl = jax.config.jax_default_prng_impl
    wide = bool(jax.config.jax_enable_x64)
    seed = int(seed)
    low, high = (-(2**63), 2**63) if wide else (-(2**31), 2**31)
    if impl != "threefry2x32" or not low <= seed < high:
        return jax.random.key(seed)
    words = np.array([(seed >> 32) & 0xFFFFFFFF if wide else 0, seed & 0xFFFFFFFF], np.uint32)
    return jax.random.wrap_key_data(jax.device_put(words), impl="threefry2x32")

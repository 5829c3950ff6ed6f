"""A digest of what an IR program computes, found without tracing it.

The on-disk sampler cache (``inference/mcmc/export_cache.py``) needs a key
that two processes compute alike for the same log density, and that differs
whenever the numbers differ. Tracing and lowering the density gives one, at
the price of a trace in every new process. A ppl program's density is a fixed
function of its IR, of ppl's own code (the interpreters, distributions and
bijectors that give the IR its meaning) and of JAX; so the IR's content, with
a digest of ppl's source, keys it without the trace.

``digest(program)`` reads the whole program: every statement and its fields,
each variable by its place of first use (ids differ between processes), each
literal and closed-over constant by its dtype, shape and bytes, each JAX
operation by its primitive's name and parameters, the jaxprs those
parameters hold, equation by equation (their constants by their bytes too),
and each distribution's tree structure node by node (every node's class by
its module and name, and its static data). What it cannot read completely
makes it give up (None, and the caller keys the program by tracing it): a
parameter that is a Python function (a ``custom_jvp`` rule, a callback), an
operation that is not one of JAX's or ppl's primitives, a class from outside
ppl and JAX anywhere in the program (a distribution of the user's own, even
inside one of ppl's mixtures or truncations: its code is not in the source
digest), a value whose text is abbreviated or names an object by its address,
or any type not listed below. The rule is an allow-list: nothing is taken on
trust.

Law: two programs with the same digest (in processes with the same ppl source
and JAX) compute the same density, given arguments of the same shapes and
dtypes. Source spans are read too (a comment edited in a ``.ppl`` file gives
a new digest: a new key, never a wrong one).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ppl.semantics import ir
from ppl.stdlib.errors import Span
from ppl.stdlib.jax_compat import Primitive

__all__ = ["digest", "source_digest"]

# the folders whose code gives an IR program its meaning (and builds the programs around it)
_PACKAGES = ("ppl", "ppl.semantics", "ppl.inference", "ppl.stdlib")


@functools.lru_cache(maxsize=None)
def source_digest(names: tuple[str, ...] = _PACKAGES) -> str:
    """A digest of the source of ``names``: a package's every ``.py``, ``.ppl`` and ``.lark`` file, a
    module's own file (all of ppl by default; the program cache names the driver's modules)."""
    import importlib.util

    h = hashlib.sha256()
    for name in names:  # found, not imported: this layer reads the files of the layers above
        spec = importlib.util.find_spec(name)
        if spec.submodule_search_locations:
            root = Path(spec.submodule_search_locations[0])
            paths = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".ppl", ".lark")
                           and "__pycache__" not in p.parts)
        else:
            root, paths = Path(spec.origin).parent, [Path(spec.origin)]
        for path in paths:
            h.update(f"{name}/{path.relative_to(root).as_posix()}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


_library = {"modules": -1, "primitives": frozenset()}


def _library_primitives() -> frozenset:
    """The ids of the primitives JAX and ppl define (attributes of their modules, which live as long
    as the process). A primitive made anywhere else (a user's own, whose rules no digest covers) is
    not among them. Found again whenever more modules have been imported."""
    if len(sys.modules) != _library["modules"]:
        found = set()
        for name, module in list(sys.modules.items()):
            if module is None or name.split(".")[0] not in ("jax", "jaxlib", "ppl"):
                continue
            found.update(id(v) for v in list(vars(module).values()) if isinstance(v, Primitive))
        _library.update(modules=len(sys.modules), primitives=frozenset(found))
    return _library["primitives"]


def _primitive(op: Any) -> str:
    if not isinstance(op, Primitive) or id(op) not in _library_primitives():
        raise _Unreadable(f"the operation {op!r}, not one of JAX's or ppl's")
    return op.name


_CONTAINERS = (tuple, list, dict, type(None))


def _known_module(module: str) -> bool:
    """JAX's and ppl's own modules: classes whose fields, read one by one, are all they hold."""
    return module.split(".")[0] in ("jax", "ppl")


class _Unreadable(Exception):
    """Something in the program whose content the digest cannot read completely."""


def _text(value: Any) -> str:
    """``repr(value)``, refused where it is abbreviated or names an object by its address."""
    text = repr(value)
    if " at 0x" in text or "object at" in text or "..." in text:
        raise _Unreadable(text[:80])
    return text


def _dtype(dtype: Any) -> str:
    """A dtype by its name and layout (``bfloat16`` and ``float16`` both have 2-byte layouts)."""
    d = np.dtype(dtype)
    return f"{d.name}{d.str}"


def _array(value: Any) -> str:
    a = np.asarray(value)
    if a.dtype == object:
        raise _Unreadable("an array of Python objects")
    a = np.ascontiguousarray(a)
    data = hashlib.blake2b(a.view(np.uint8).reshape(-1), digest_size=16).hexdigest()
    return f"array({_dtype(a.dtype)},{a.shape},{data})"


class _Writer:
    """Feeds a canonical text of the program into a hash, naming variables by first use."""

    def __init__(self):
        self.hash = hashlib.sha256()
        self.names: dict[int, int] = {}  # id(variable) -> its number; variables live as long as the program
        self.keep: list = []  # the jaxpr variables numbered (so their ids stay theirs while we read)
        self.sources: dict[int, str] = {}

    def put(self, text: str) -> None:
        self.hash.update(text.encode())
        self.hash.update(b"\0")

    def var(self, v: Any, kind: str) -> None:
        n = self.names.get(id(v))
        if n is None:
            n = self.names[id(v)] = len(self.names)
            self.keep.append(v)
        self.put(f"{kind}{n}")

    # -- the IR ------------------------------------------------------------------------------
    def value(self, v: Any) -> None:  # noqa: C901 - one case per kind of content
        if isinstance(v, ir.Var):
            self.var(v, "v")
            self.put(f"{tuple(v.shape)}:{_dtype(v.dtype)}")
        elif isinstance(v, ir.Lit):
            self.put(f"lit:{type(v.value).__name__}:{_array(v.value)}")
        elif isinstance(v, Span):
            self.span(v)
        elif isinstance(v, ir.Prim):
            self.prim(v)
        elif isinstance(v, (ir.Stmt, ir.Block)):
            self.put(type(v).__name__)
            for f in dataclasses.fields(v):
                self.put(f.name)
                self.value(getattr(v, f.name))
        elif isinstance(v, type):
            if v.__module__ == "builtins" and v in _CONTAINERS:
                self.put(f"container:{v.__name__}")
            elif _known_module(v.__module__):
                self.put(f"class:{v.__module__}.{v.__qualname__}")
            else:
                raise _Unreadable(f"the class {v.__qualname__} from outside ppl")
        elif type(v).__name__ == "PyTreeDef":
            self.tree(v)
        else:
            self.param(v)

    def tree(self, t: Any) -> None:
        """A tree structure node by node: each node's class (by module and name, so a user's class
        named like one of ppl's is not taken for it), its static data, then its children."""
        data = t.node_data()
        if data is None:
            self.put("leaf")
            return
        kind, aux = data
        self.value(kind)
        self.put("aux")
        self.value(aux)
        children = t.children()
        self.put(f"children[{len(children)}")
        for child in children:
            self.tree(child)
        self.put("]")

    def span(self, s: Span) -> None:
        source = s.source
        if source is not None:
            got = self.sources.get(id(source))
            if got is None:
                got = self.sources[id(source)] = hashlib.sha256(source.encode()).hexdigest()
            source = got
        self.put(f"span:{s.file!r}:{s.line}:{s.column}:{s.end_line}:{s.end_column}:{source}")

    def prim(self, p: ir.Prim) -> None:
        self.put(f"Prim:{_primitive(p.op)}:{p.check_index}")
        self.value(p.span)
        for name in ("outs", "args"):
            self.put(name)
            self.value(getattr(p, name))
        self.put("params")
        self.param(p.params)

    # -- parameters of JAX operations --------------------------------------------------------
    def param(self, v: Any) -> None:  # noqa: C901 - one case per kind of content
        if v is None or isinstance(v, (bool, int, float, complex, str, bytes)):
            self.put(f"{type(v).__name__}:{v!r}")
        elif isinstance(v, (tuple, list)) and not hasattr(v, "_fields"):
            self.put(f"{type(v).__name__}[{len(v)}")
            for x in v:
                self.value(x)
            self.put("]")
        elif isinstance(v, dict):
            self.put(f"dict[{len(v)}")
            for k in sorted(v, key=repr):
                self.put(_text(k))
                self.value(v[k])
            self.put("]")
        elif isinstance(v, (np.ndarray, np.generic)) or type(v).__module__.startswith("jaxlib"):
            self.put(_array(v))
        elif isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
            self.put(f"dtype:{_dtype(v)}")
        elif isinstance(v, enum.Enum):
            self.put(f"enum:{type(v).__module__}.{type(v).__qualname__}.{v.name}")
        elif type(v).__name__ in ("ClosedJaxpr", "Jaxpr"):
            self.jaxpr(v)
        elif not _known_module(type(v).__module__):
            raise _Unreadable(f"a parameter of type {type(v).__qualname__}")
        elif hasattr(v, "_fields"):  # JAX's and ppl's named tuples (dimension numbers, plates)
            self.put(f"{type(v).__qualname__}(")
            for name in v._fields:
                self.put(name)
                self.value(getattr(v, name))
            self.put(")")
        elif dataclasses.is_dataclass(v):
            self.put(f"{type(v).__qualname__}(")
            for f in dataclasses.fields(v):
                self.put(f.name)
                self.value(getattr(v, f.name))
            self.put(")")
        elif type(v).__name__ in ("ShapedArray", "UnspecifiedValue", "AbstractMesh", "Mesh"):
            self.put(f"{type(v).__name__}:{_text(v)}")
        else:
            raise _Unreadable(f"a parameter of type {type(v).__qualname__}")

    def jaxpr(self, j: Any) -> None:
        consts = getattr(j, "consts", None)
        jaxpr = getattr(j, "jaxpr", j)
        self.put(f"jaxpr[{len(jaxpr.constvars)},{len(jaxpr.invars)},{len(jaxpr.eqns)}")
        if consts is not None:
            for c in consts:
                self.put(_array(c))
        for v in (*jaxpr.constvars, *jaxpr.invars):
            self.atom(v)
        for eqn in jaxpr.eqns:
            self.put(f"eqn:{_primitive(eqn.primitive)}")
            for v in eqn.invars:
                self.atom(v)
            self.put("->")
            for v in eqn.outvars:
                self.atom(v)
            self.param(dict(eqn.params))
        self.put("returns")
        for v in jaxpr.outvars:
            self.atom(v)
        self.put("]")

    def atom(self, v: Any) -> None:
        """A jaxpr variable (by first use, with its type) or literal (by value)."""
        aval = getattr(v, "aval", None)
        kind = f"{getattr(aval, 'shape', ())}:{_dtype(aval.dtype) if hasattr(aval, 'dtype') else '?'}"
        if type(v).__name__ == "Literal":
            self.put(f"literal:{kind}:{_array(v.val)}")
        elif type(v).__name__ == "DropVar":
            self.put(f"drop:{kind}")
        else:
            self.var(v, "j")
            self.put(kind)


def digest(program: ir.Program) -> str | None:
    """The digest of what ``program`` computes (with ppl's source digest), or None where some part
    of it cannot be read completely (see the module docstring)."""
    w = _Writer()
    w.put(f"ppl-ir-digest-v1:{source_digest()}")
    try:
        w.put(f"program:{program.name!r}")
        w.param(tuple(program.consts))
        w.value(program.block)
        w.put("out")
        w.value(program.out_tree)
        w.put("sharded")
        w.param(tuple((name, size, str(how)) for name, size, how, *_ in program.sharded_plates))
    except _Unreadable:
        return None
    except Exception:  # a value this reader cannot convert (an array on other processes' devices, ...)
        return None
    return w.hash.hexdigest()

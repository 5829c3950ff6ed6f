"""Small facts and signals of one evaluation: the ``return`` signal, a scanned loop's current draw
(``Collected``), whether a value is known now or only when the model runs, and the words of
an error."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp

from ppl.semantics import effects
from ppl.stdlib import jax_compat as jc
from ppl.stdlib.errors import ModelError, Span
from ppl.syntax import ast as A

if TYPE_CHECKING:
    from .values import Closure

__all__ = ["Returned", "Collected", "real_dtype", "is_concrete", "endless_recursion", "tracing", "dynamic", "plain", "short_message"]


class Returned(Exception):
    def __init__(self, value):
        self.value = value


@dataclasses.dataclass
class Collected:
    """Inside a scanned loop: the current iteration's value of a name drawn as ``x[i] ~ d``."""

    value: Any
    var: str


def real_dtype():
    return jnp.result_type(float)


def is_concrete(x) -> bool:
    return not jc.is_tracer(x)


def endless_recursion(fn: Closure, call: A.Call, depth: int) -> ModelError:
    """The error for a recursion that reached Python's limit, at the recursive call ``call``."""
    from ppl.semantics.recursion import BASE_CASE_HINT_PPL

    return ModelError(
        f"the function '{fn.name}' calls itself without end: {depth} nested calls deep when Python's "
        "recursion limit was reached",
        span=call.span, hint=BASE_CASE_HINT_PPL,
    )


def tracing() -> bool:
    from ppl.trace import TraceHandler

    return isinstance(effects.current_handler(), TraceHandler)


def dynamic(reason: str, span: Span):
    return effects.NeedsDynamic(reason, span)


def plain(v):
    return v.value if isinstance(v, Collected) else v


def short_message(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__

"""The evaluator: interprets a checked module's definitions, one rule per node kind (the rules live
in ``statements``, ``loops``, ``expressions`` and ``calls``), and names the anonymous sites."""

from __future__ import annotations

import contextlib
from typing import Any

from ppl.semantics import effects
from ppl.stdlib import jax_compat as jc
from ppl.stdlib.errors import ModelError, PPLError
from ppl.syntax import ast as A

from .calls import CallRules
from .expressions import ExpressionRules
from .facts import anonymous_names
from .indexing import statement_scope
from .loops import LoopRules
from .runtime import Returned, dynamic, short_message
from .statements import StatementRules

__all__ = ["Evaluator"]


class Evaluator(StatementRules, LoopRules, ExpressionRules, CallRules):
    """Interprets a checked module's definitions; one rule per node kind."""

    def __init__(self, module: A.Module):
        self.module = module
        self.globals: dict[str, Any] = {}
        self.bodies: list[A.Node] = []  # the function and model bodies being run, innermost last
        self._anonymous: dict[int, dict[int, str]] = {}
        self.depth = 0
        self.unchecked = 0  # inside both branches of an if-expression on a vector or run-time value
        self.stmt_rules = {
            A.Block: self.s_block, A.Assign: self.s_assign, A.IndexAssign: self.s_index_assign,
            A.Tilde: self.s_tilde, A.Observe: self.s_observe, A.Factor: self.s_factor,
            A.Condition: self.s_condition, A.Return: self.s_return, A.If: self.s_if, A.For: self.s_for,
            A.ExprStmt: self.s_expr,
        }
        self.expr_rules = {
            A.Num: self.e_num, A.Bool: self.e_bool, A.Str: self.e_str, A.Name: self.e_name,
            A.Array: self.e_array, A.Index: self.e_index, A.Call: self.e_call, A.BinOp: self.e_binop,
            A.UnaryOp: self.e_unary, A.IfExpr: self.e_ifexpr, A.Lambda: self.e_lambda,
        }

    # -- anonymous sites ----------------------------------------------------------
    @contextlib.contextmanager
    def in_body(self, body: A.Node):
        self.bodies.append(body)
        try:
            yield
        finally:
            self.bodies.pop()

    def site_name(self, kind: str, node: A.Node) -> str:
        """The address of the anonymous site ``node`` (see :func:`anonymous_names`)."""
        body = self.bodies[-1] if self.bodies else self.module
        table = self._anonymous.get(id(body))
        if table is None:
            table = self._anonymous[id(body)] = anonymous_names(body)
        return table.get(id(node), f"_{kind}")

    # -- statements -------------------------------------------------------------
    def block(self, block: A.Block, env: dict) -> None:
        for s in block.stmts:
            self.stmt(s, env)

    def stmt(self, s, env: dict) -> None:
        try:
            with statement_scope(s.span):
                self.stmt_rules[type(s)](s, env)
        except (Returned, PPLError, effects.NeedsDynamic, effects.MemoOnTracedValue, RecursionError):
            raise
        except jc.CONCRETIZATION_ERRORS:
            raise dynamic("this statement needs a value that is only known when the model runs",
                           s.span) from None
        except (TypeError, ValueError, IndexError, ZeroDivisionError) as err:
            raise ModelError(f"this statement could not be evaluated: {short_message(err)}", span=s.span) from None

"""The registry of builtins (ppl/syntax/builtins/): every builtin is declared once, with its
implementation, its type rule and its doc; the checker and the evaluator both read it, and the
language reference (docs/language.md) lists exactly what it registers."""

from __future__ import annotations

import inspect
import pathlib
import re

import numpy as np
import pytest

import ppl
from ppl.stdlib import constraints as cons
from ppl.stdlib.distributions.base import Distribution as DistributionBase
from ppl.syntax import builtins as B

DOC = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text(encoding="utf-8")
KINDS = {"num", "int", "dist", "fun", "any"}


def _section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.index("\n## ", start + 1)
    return DOC[start:end]


@pytest.mark.parametrize("name", sorted(B.FUNCTIONS))
def test_every_function_has_implementation_rule_and_doc(name):
    spec = B.FUNCTIONS[name]
    assert spec.name == name
    assert callable(spec.impl) and callable(spec.result)
    assert spec.doc.strip() and not spec.doc.endswith(".")  # the checker's hints add the full stop
    assert set(spec.args) <= KINDS and (spec.rest is None or spec.rest in KINDS)
    assert 0 <= spec.optional <= len(spec.args)
    if spec.form:  # a form gets the evaluator, the call and the environment
        assert list(inspect.signature(spec.impl).parameters) == ["ev", "e", "env"]
    if spec.fun_arity is not None:
        assert "fun" in spec.args


def test_distributions_supports_and_constants_have_implementation_rule_and_doc():
    for name, spec in B.DISTRIBUTIONS.items():
        assert spec.name == name and spec.doc.strip()
        assert issubclass(spec.impl, DistributionBase), name
        assert spec.impl.__init__ is not None and callable(spec.result)
        params = list(inspect.signature(spec.impl).parameters)
        assert set(spec.params) <= set(params), (name, spec.params, params)
    for name, support in B.SUPPORTS.items():
        assert support.doc.strip()
        impl = support.impl
        assert isinstance(impl, cons.Constraint) if not support.args else callable(impl), name
    for name, const in B.CONSTANTS.items():
        assert const.name == name and const.doc.strip() and isinstance(const.value, float)
        assert const.ty == B.REAL
    assert B.FLAT_DOC.strip()


def test_the_tables_do_not_share_a_name():
    tables = [set(B.FUNCTIONS), set(B.DISTRIBUTIONS), set(B.SUPPORTS), set(B.CONSTANTS)]
    for i, a in enumerate(tables):
        for b in tables[i + 1:]:
            assert not a & b
    special = {"flat", "param"}  # forms of the language itself (sections 5 and 8 of the reference)
    assert not special & set().union(*tables)


def test_a_name_declared_twice_is_refused():
    from ppl.syntax.builtins.registry import merge, table

    one = B.FUNCTIONS["exp"]
    with pytest.raises(RuntimeError, match="declared twice"):
        table([one, one])
    with pytest.raises(RuntimeError, match="two families"):
        merge({"exp": one}, {"exp": one})


def test_the_reference_lists_exactly_the_registered_functions():
    """Section 7's tables name every builtin function, and only those (the generated
    distribution functions are listed per family, in their own table)."""
    text = _section("7. Builtin functions")
    rows = re.findall(r"^\| (`[^|]*`) \|", text, flags=re.M)
    listed = set()
    for cell in rows:
        listed |= set(re.findall(r"`([A-Za-z_]\w*)(?:\(|`)", cell))
    families = re.findall(r"^\| `(\w+)\([^`]*\)` \| ((?:`\w+`,? ?)+) \|", text, flags=re.M)
    for _, fns in families:
        listed |= set(re.findall(r"`(\w+)`", fns))
    listed -= set(B.DISTRIBUTIONS)  # the family column of the distribution-function table
    assert listed == set(B.FUNCTIONS), (sorted(listed - set(B.FUNCTIONS)), sorted(set(B.FUNCTIONS) - listed))


def test_the_reference_table_of_distributions_matches_the_registry():
    text = _section("8. Distributions")
    rows = re.findall(r"^\| `(\w+)\(([^)]*)\)`[^|]* \| `(\w+)` \| (\w+) \|", text, flags=re.M)
    seen = set()
    for name, params, cls, value in rows:
        if name == "flat":
            continue
        spec = B.DISTRIBUTIONS[name]
        assert tuple(p.strip() for p in params.split(",")) == spec.params, name
        assert (cls, value) == (spec.cls, spec.value), name
        seen.add(name)
    assert seen == set(B.DISTRIBUTIONS)


def test_the_reference_table_of_supports_matches_the_registry():
    rows = re.findall(r"^\| `(\w+)(?:\(([^)]*)\))?` \|", _section("8. Distributions"), flags=re.M)
    supports = {name: tuple(a.strip() for a in args.split(",")) if args else ()
                for name, args in rows if name in B.SUPPORTS}
    assert supports == {name: s.args for name, s in B.SUPPORTS.items()}


def test_any_and_all_run():
    """The two were registered and documented, but had no implementation (the evaluator said
    "the name 'any' is not defined"); the registry cannot hold a builtin without one."""
    module = ppl.loads("def f(x: real[]) {\n  return [any(x > 0.5), all(x > 0.5), all(x > 0.0)]\n}\n")
    np.testing.assert_array_equal(np.asarray(module.f(np.array([0.1, 0.7]))), [True, False, True])

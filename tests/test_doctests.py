"""Docstring examples run as doctests."""

import doctest
import importlib

import pytest

MODULES = ["ppl", "ppl.stdlib.distributions"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0

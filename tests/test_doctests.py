"""The ``Examples`` sections of the public API's docstrings run, and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: Modules whose docstrings carry examples of the public API (``lrn_cli``'s exports and the
#: one-home rules: defaults, radius, settings text, axes, one-line errors).
MODULES = [
    "lrn_cli",
    "lrn_cli.core",
    "lrn_cli.reference",
    "lrn_cli.conventions",
    "lrn_cli.layouts",
    "lrn_cli.errors",
    "lrn_cli.norms",
    "lrn_cli.cli.tables",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module) if t.examples]
    assert tests, f"{name} has no examples"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("name", ["lrn", "lrn_divisor", "lrn_backward", "set_threads",
                                  "reference_lrn", "reference_divisor",
                                  "reference_lrn_backward", "translate", "get_convention",
                                  "normalizations"])
def test_public_functions_have_examples(name):
    import lrn_cli

    doc = getattr(lrn_cli, name).__doc__ or ""
    assert "Examples\n    --------" in doc and ">>> " in doc, name

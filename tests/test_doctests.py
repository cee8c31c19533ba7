"""The Examples sections of the public API run as doctests: what a docstring shows is what the code does."""

from __future__ import annotations

import doctest
import importlib
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_with_examples() -> list[str]:
    out = []
    for path in sorted((ROOT / "bayes_scaling").rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


@pytest.mark.parametrize("name", _modules_with_examples())
def test_the_examples_of(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sampler warnings of the examples' tiny fits are not their subject
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see the output above)"


def test_the_main_entry_points_have_examples():
    from numpydoc.docscrape import FunctionDoc

    import bayes_scaling as bs
    from bayes_scaling.forecast.tables import forecast_table, target_table

    for obj in (bs.fit, bs.load_fit, bs.read_runs, bs.load_dataset, bs.summarize, bs.loo_table, forecast_table,
                target_table, bs.Forecaster.at_compute, bs.list_datasets, bs.cite):
        doc = FunctionDoc(obj)
        assert doc["Examples"], f"{obj.__qualname__} has no Examples section"
        assert doc["Parameters"] or not [p for p in __import__("inspect").signature(obj).parameters if p != "self"], \
            f"{obj.__qualname__} has no Parameters section"

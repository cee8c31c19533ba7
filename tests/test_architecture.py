"""ARCHITECTURE.md stays true: its module map names every module of the package, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_module_map_matches_the_package():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`bayes_scaling/(\w+\.py)`", text))
    actual = {p.name for p in (ROOT / "bayes_scaling").glob("*.py") if p.name != "__init__.py"}
    assert not actual - documented, f"modules missing from ARCHITECTURE.md: {sorted(actual - documented)}"
    assert not documented - actual, f"ARCHITECTURE.md names modules that do not exist: {sorted(documented - actual)}"


def test_every_path_the_map_names_exists():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for path in set(re.findall(r"`((?:benchmarks|analyses|datasets|docs|tests)/[\w./-]*)`", text)):
        assert (ROOT / path).exists(), path

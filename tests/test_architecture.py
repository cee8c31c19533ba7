"""ARCHITECTURE.md stays true: its module map names every module of the package, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_module_map_matches_the_package():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`bayes_scaling/((?:\w+/)?\w+\.py)`", text))
    package = ROOT / "bayes_scaling"
    actual = {p.relative_to(package).as_posix() for p in package.rglob("*.py")
              if p.name != "__init__.py" or p.parent != package}
    assert not actual - documented, f"modules missing from ARCHITECTURE.md: {sorted(actual - documented)}"
    assert not documented - actual, f"ARCHITECTURE.md names modules that do not exist: {sorted(documented - actual)}"


def test_every_path_the_map_names_exists():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for path in set(re.findall(r"`((?:benchmarks|analyses|datasets|docs|tests)/[\w./-]*)`", text)):
        assert (ROOT / path).exists(), path


def test_no_function_in_the_package_is_over_80_lines():
    """Long functions hide several ideas; split them into named steps."""
    import ast

    long = []
    for path in sorted((ROOT / "bayes_scaling").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 80:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    assert not long, long

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
    """Long functions hide several ideas; split them into named steps (docstrings not counted)."""
    import ast

    long = []
    for path in sorted((ROOT / "bayes_scaling").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines -= first.end_lineno - first.lineno + 1  # a docstring is documentation, not logic
            if lines > 80:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines besides its docstring)")
    assert not long, long


# ---------------------------------------------------------------- the import graph


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for path in (ROOT / "bayes_scaling").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in it (inside functions and
    ``TYPE_CHECKING`` blocks included); ``from pkg import mod`` counts as an import of ``pkg.mod``."""
    import ast

    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "bayes_scaling":
                found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "bayes_scaling"}
    return found - {name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) & set(modules) for name, path in modules.items()}


def _layers() -> list[list[str]]:
    """The layers ARCHITECTURE.md lists between its ``layers`` markers, lowest first."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("<!-- layers:begin -->")[1].split("<!-- layers:end -->")[0]
    return [re.findall(r"`(\w+)", line.split("|")[2]) for line in block.splitlines()
            if re.match(r"\|\s*\d+\s*\|", line)]


def test_the_package_has_no_import_cycle():
    graph = _graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_imports_point_down_the_layers_architecture_md_lists():
    layers = _layers()
    assert len(layers) >= 10, layers
    rank = {name: i for i, names in enumerate(layers) for name in names}

    def layer(module: str) -> int:
        parts = module.split(".")
        if len(parts) == 1:
            return len(layers)  # the package root re-exports the public API: above everything
        assert parts[1] in rank, f"{module} is in no layer of ARCHITECTURE.md"
        return rank[parts[1]]

    upward = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets if layer(b) > layer(a))
    assert not upward, f"imports that climb the layers: {upward}"


def test_the_import_checks_see_a_cycle_and_a_climb(tmp_path):
    """The checks above can fail: a function-level import is an edge, as is ``from pkg import mod``."""
    package = tmp_path / "bayes_scaling"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text("def f():\n    from bayes_scaling.high import b\n")
    (package / "high.py").write_text("from bayes_scaling.low import a\n")
    modules = {"bayes_scaling.low.a": package / "low" / "a.py", "bayes_scaling.high": package / "high.py",
               "bayes_scaling.low": package / "low" / "__init__.py"}
    assert _imports("bayes_scaling.low.a", modules["bayes_scaling.low.a"], modules) == {"bayes_scaling.high"}
    assert _imports("bayes_scaling.high", modules["bayes_scaling.high"], modules) == {"bayes_scaling.low.a"}


def test_no_module_is_over_600_lines():
    """A module over 600 lines holds several ideas: give each its own."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "bayes_scaling").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, long

"""The shape of the house (shared/CONVENTIONS.md), checked on the source itself: small files, no
import loops, a CLI that uses only public names, a method table that imports nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "impasto"
MAX_LINES = 500


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in source_files()}


def imported_modules(path: Path) -> set[str]:
    """impasto modules that ``path`` imports anywhere (top level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {module for module in found if module in MODULES and module != name}


def test_no_source_file_is_over_500_lines():
    root = PACKAGE.parents[1]
    benchmarks = sorted([*(root / "benchmarks").glob("*.py"), *(root / "fuzz").glob("*.py")])
    long = {
        p.name: n
        for p in [*source_files(), *benchmarks]
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines: {long}"


def import_graph() -> dict[str, set[str]]:
    graph = {name: imported_modules(path) for name, path in MODULES.items()}
    for targets in graph.values():
        # ``from .. import __version__``: the root package imports nothing (lazy names), so a
        # module importing it closes no loop. Any other package counts as its __init__.py.
        targets.discard("impasto")
    return graph


def find_loop(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``graph`` (module -> modules it imports), or None."""
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_loop():
    loop = find_loop(import_graph())
    assert loop is None, " -> ".join(loop)


def test_the_loop_check_sees_imports_inside_functions_and_finds_loops():
    assert "impasto.files" in imported_modules(PACKAGE / "pipeline.py")  # a function-level one
    assert find_loop({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_loop({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("folder", ["cli", "."])
def test_no_module_uses_another_modules_private_names(folder):
    # The CLI (the rule) and, beyond it, every module of the package.
    offences = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        tree = ast.parse(path.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offences.append(f"{path.relative_to(PACKAGE)}: imports {alias.name}")
                    modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                modules |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offences.append(f"{path.relative_to(PACKAGE)}: {node.value.id}.{node.attr}")
    assert not offences, offences


@pytest.mark.parametrize("module", ["impasto", "impasto.methods.registry", "impasto.recommend"])
def test_reading_the_method_table_imports_no_method_and_no_torch(module):
    code = (
        f"import sys, {module}\n"
        "from impasto.methods.registry import METHODS\n"
        "heavy = [m for m in sys.modules if m == 'torch' or m.startswith('impasto.methods.')"
        " and m not in ('impasto.methods.registry',)]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

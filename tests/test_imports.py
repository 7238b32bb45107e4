"""The package's modules import one another without a circle (``TYPE_CHECKING`` imports count)."""

from __future__ import annotations

import ast
from graphlib import TopologicalSorter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports: ``from X import a`` takes ``X.a`` where that
    is a module, else ``X``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                for a in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found & modules


def test_no_module_imports_itself_through_others():
    paths = {
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (REPO_ROOT / "gradinv").rglob("*.py")
    }
    graph = {name: imports(path, set(paths)) - {name} for name, path in paths.items()}
    TopologicalSorter(graph).prepare()  # raises CycleError, naming the circle

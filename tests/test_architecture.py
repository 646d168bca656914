"""The package import graph follows docs/architecture.md's rank order, so it stays acyclic.

Every import of a minarch package, at module level or inside a function, must
go to a package of equal or lower rank. Parsed from the source: no import runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import minarch

SOURCE = Path(minarch.__file__).parent

RANKS = {
    "errors": 0,
    "registry": 0,
    "tables": 0,
    "columns": 0,
    "plugins": 0,
    "lazy": 0,
    "scratch": 0,
    "data": 1,
    "models": 1,
    "store": 1,
    "spec": 2,
    "train": 2,
    "prune": 2,
    "quant": 2,
    "analysis": 3,
    "bench": 3,
    "execute": 4,
    "reporting": 4,
    "api": 5,
    "cli": 6,
    "terminal": 6,
    "__main__": 6,
}
"""docs/architecture.md's layers; a new package or module needs a rank here."""


def _unit(path: Path) -> str:
    """The rank unit of a source file: its subpackage, or its module at the top level."""
    relative = path.relative_to(SOURCE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_units(tree: ast.AST) -> set[str]:
    units = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "minarch":  # from minarch import api
                names = [f"minarch.{alias.name}" for alias in node.names]
        units |= {n.split(".")[1] for n in names if n.startswith("minarch.")}
    return units


def import_edges() -> set[tuple[str, str]]:
    edges = set()
    for path in SOURCE.rglob("*.py"):
        unit = _unit(path)
        if unit == "__init__":  # the package facade: loads the API lazily, on first use
            continue
        for target in _imported_units(ast.parse(path.read_text(), str(path))):
            if target != unit and target != "__version__":
                edges.add((unit, target))
    return edges


def test_every_module_has_a_rank():
    # _version.py is written by setuptools-scm at install time and imports nothing
    units = {_unit(p) for p in SOURCE.rglob("*.py")} - {"__init__", "_version"}
    assert units <= set(RANKS), f"add a rank for {sorted(units - set(RANKS))}"


def test_imports_go_to_equal_or_lower_ranks():
    upward = sorted((a, b) for a, b in import_edges() if RANKS[b] > RANKS[a])
    assert not upward, f"imports against the rank order: {upward}"


def test_the_rank_check_can_fail():
    tree = ast.parse("from minarch.reporting import write_report\nimport minarch.api")
    assert _imported_units(tree) == {"reporting", "api"}
    assert RANKS["reporting"] > RANKS["analysis"]


def test_the_package_facade_imports_only_errors_at_load_time():
    tree = ast.parse((SOURCE / "__init__.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {n.module for n in top_level if isinstance(n, ast.ImportFrom)}
    assert modules <= {"typing", "minarch.errors"}

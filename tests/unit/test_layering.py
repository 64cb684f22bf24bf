"""The import layering README's "Where things are" promises, read from the source.

Imports run down the pipeline and never in a circle:

    cli → plan → cell → load | peers | report → analysis → system → tunbench.errors
    forwarders → tunio (a forwarder is a standalone program: it never imports tunbench)

Every ``import`` counts, also those inside functions and under ``TYPE_CHECKING``: a
function-level import is still a dependency, only a later one. Siblings on one floor
(load, peers, report) do not import each other. The static check reads the files with
:mod:`ast`; the runtime check imports each forwarder and tunio module in a fresh
interpreter and looks at what got loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tunbench", "forwarders", "tunio")

# Higher floors may import lower ones; a floor's packages may import within themselves only.
FLOORS: dict[str, int] = {
    "tunbench.cli": 8,
    "tunbench.plan": 7,
    "tunbench.cell": 6,
    "tunbench.load": 5,
    "tunbench.peers": 5,
    "tunbench.report": 5,
    "tunbench.analysis": 4,
    "tunbench.system": 3,
    "tunbench": 2,  # tunbench/__init__.py and tunbench/errors.py: what every floor shares
    "forwarders": 1,
    "tunio": 0,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def imports_of(path: Path, modules: dict[str, Path], me: str) -> Iterator[tuple[int, str]]:
    """(line, project module) for every import in ``path`` (module ``me``), wherever it
    stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = me.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    yield node.lineno, sub
                elif base in modules:
                    yield node.lineno, base


def floor_of(module: str) -> tuple[str, int]:
    """The package a module belongs to for layering, and its floor."""
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len)
    return best, FLOORS[best]


def graph() -> dict[str, dict[str, int]]:
    modules = project_modules()
    out: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        deps: dict[str, int] = {}
        for line, dep in imports_of(path, modules, name):
            if dep != name:
                deps.setdefault(dep, line)
        out[name] = deps
    return out


def upward(g: dict[str, dict[str, int]]) -> list[str]:
    """Imports that run against the floors, one line each."""
    bad = []
    for mod, deps in sorted(g.items()):
        pkg, floor = floor_of(mod)
        for dep, line in sorted(deps.items()):
            dpkg, dfloor = floor_of(dep)
            if dpkg != pkg and dfloor >= floor:
                bad.append(f"{mod}:{line} imports {dep} ({pkg} must not import {dpkg})")
    return bad


def cycles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_floor() -> None:
    assert all(floor_of(m) for m in project_modules())


def test_imports_run_down_the_pipeline() -> None:
    assert upward(graph()) == []


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_the_check_sees_an_upward_import_and_a_cycle() -> None:
    """The checks themselves: an import from report into cell, inside a function and under
    TYPE_CHECKING, is upward; two modules importing each other are a cycle."""
    g = graph()
    g["tunbench.report.tables"] = {**g["tunbench.report.tables"], "tunbench.cell.session": 1}
    assert any("tunbench.report.tables:1 imports tunbench.cell.session" in b for b in upward(g))
    g["tunbench.cell.session"] = {**g["tunbench.cell.session"], "tunbench.cell.record": 1}
    g["tunbench.cell.record"] = {**g["tunbench.cell.record"], "tunbench.cell.session": 1}
    assert any({"tunbench.cell.record", "tunbench.cell.session"} <= set(c) for c in cycles(g))


def test_imports_inside_functions_and_type_checking_count(tmp_path: Path) -> None:
    src = tmp_path / "tunbench" / "report" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tunbench.cell.session import Cell\n"
        "def f():\n    from tunbench.plan import matrix\n"
    )
    mods = {"tunbench.cell.session": src, "tunbench.plan.matrix": src}
    found = [dep for _, dep in imports_of(src, mods, "tunbench.report.x")]
    assert found == ["tunbench.cell.session", "tunbench.plan.matrix"]


_CHECK = """
import importlib, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1].split(","))
print("\\n".join(bad))
"""


def _modules(package: str) -> list[str]:
    return sorted(f"{package}.{p.stem}" for p in (ROOT / package).glob("*.py"))


@pytest.mark.parametrize(
    ("package", "forbidden"), [("forwarders", "tunbench"), ("tunio", "tunbench,forwarders")]
)
def test_package_does_not_import(package: str, forbidden: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHECK, forbidden, *_modules(package)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.split() == [], f"{package} pulls in {out.split()}"

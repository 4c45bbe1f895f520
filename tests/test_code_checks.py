"""The project's own code checks, so CI fails when they do: ruff, mypy strict
over the packages pyproject.toml names (tests/ among them), and the layer contracts (import-linter,
[tool.importlinter] in pyproject.toml, and the lab's below)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    p = run(str(BIN / "ruff"), "check", ".")
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_strict_finds_nothing() -> None:
    p = run(str(BIN / "mypy"))
    assert p.returncode == 0, p.stdout + p.stderr


def test_layer_contracts_are_kept() -> None:
    p = run(str(BIN / "lint-imports"))
    assert p.returncode == 0, p.stdout + p.stderr


def imported_names(path: Path, paths_too: bool) -> set[str]:
    """The top-level names path imports; with paths_too, also each word of
    its string constants that spell a path (a file loaded by path is a
    dependency too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        elif paths_too and isinstance(node, ast.Constant) and isinstance(node.value, str):
            names |= {p for p in node.value.split("/") if p} if "/" in node.value else {node.value}
    return names


def test_the_lab_uses_no_benchmark_and_no_product_uses_the_lab() -> None:
    # import-linter takes packages only, and kmod/lab is a folder of scripts
    # (lab.py, images.py): bench may use the lab, the lab never bench.
    lab_files = sorted((ROOT / "kmod" / "lab").glob("*.py"))
    assert {p.name for p in lab_files} >= {"lab.py", "images.py"}
    for path in lab_files:
        used = imported_names(path, paths_too=True)
        assert "bench" not in used, f"{path.relative_to(ROOT)} uses bench"
    for package in ("capture_lib", "tui", "restorer"):
        for path in (ROOT / package).rglob("*.py"):
            used = imported_names(path, paths_too=False) & {"lab", "images"}
            assert not used, f"{path.relative_to(ROOT)} imports the lab ({used})"


def canonical(dist: str) -> str:
    """A distribution's name as the package index compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def test_every_dependency_is_imported_by_a_product() -> None:
    """A dependency that no module of capture_lib, tui or restorer imports is only
    something more to install (pyelftools was one once the restorer read ELF itself)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {}
    for requirement in project["dependencies"]:
        m = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert m, requirement
        wanted[canonical(m.group())] = requirement
    used: set[str] = set()
    for package in ("capture_lib", "tui", "restorer"):
        for path in (ROOT / package).rglob("*.py"):
            used |= imported_names(path, paths_too=False)
    providers = importlib.metadata.packages_distributions()
    imported = {canonical(dist) for name in used for dist in providers.get(name, ())}
    unused = sorted(req for dist, req in wanted.items() if dist not in imported)
    assert not unused, f"no product imports {unused}: drop them from pyproject.toml"

"""The project's own code checks, so CI fails when they do: ruff, mypy strict
over the packages pyproject.toml names (tests/ among them), and the layer contracts (import-linter,
[tool.importlinter] in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
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

"""Shared fixtures: building the C test programs, privileges."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def c_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cbin")


def build_c(src: Path, out_dir: Path, *extra: str) -> Path:
    """Compile one C test program (warnings are errors)."""
    exe = out_dir / src.stem
    if not exe.exists():
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(src), *extra],
            check=True,
        )
    return exe

"""Shared fixtures: building the C test programs, privileges."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bench.sshd import Sshd

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


@pytest.fixture(scope="session", autouse=True)
def private_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every syscap the tests start keeps its settings and saved filters in a
    directory of the test run, never in the user's ~/.config."""
    path = tmp_path_factory.mktemp("config")
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(path)
    yield path
    if old is None:
        del os.environ["XDG_CONFIG_HOME"]
    else:
        os.environ["XDG_CONFIG_HOME"] = old


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real OpenSSH server on loopback with throw-away keys (bench/sshd.py); as
    root (it needs /run/sshd) a missing or failing sshd is a failure, not a skip."""
    if os.geteuid() != 0:
        pytest.skip("the sshd fixture needs root (sshd's privilege separation directory)")
    # imported here: the arm64 restorer guest runs these fixtures with no bench package
    from bench.sshd import Sshd

    box = tmp_path / "sshd"
    box.mkdir()
    with Sshd(box) as server:
        yield server

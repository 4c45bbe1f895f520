"""capture_lib's C unit tests, built normally and under ASan+UBSan, run by pytest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIB = ROOT / "capture_lib"
SOURCES = sorted((Path(__file__).parent / "c").glob("test_*.c"))


@pytest.fixture(scope="module")
def built() -> None:
    subprocess.run(["make", "-s", "-C", str(LIB), "test-bins", "asan-bins"], check=True)


@pytest.mark.parametrize("variant", ["plain", "asan"])
@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_c_unit(built: None, src: Path, variant: str) -> None:
    exe = LIB / "build" / ("tests" if variant == "plain" else "asan") / src.stem
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout

"""capture_lib's C unit tests, built normally, under ASan+UBSan and under TSan, run by
pytest; and a live eBPF session under TSan, its consumer racing snapshots."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIB = ROOT / "capture_lib"
SOURCES = sorted((Path(__file__).parent / "c").glob("test_*.c"))
TSAN_ENV = {**os.environ, "TSAN_OPTIONS": "halt_on_error=1 exitcode=66 second_deadlock_stack=1"}


@pytest.fixture(scope="module")
def built() -> None:
    subprocess.run(["make", "-s", "-C", str(LIB), "test-bins", "asan-bins", "tsan-bins"],
                   check=True)


@pytest.mark.parametrize("variant", ["plain", "asan", "tsan"])
@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_c_unit(built: None, src: Path, variant: str) -> None:
    exe = LIB / "build" / {"plain": "tests"}.get(variant, variant) / src.stem
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env=TSAN_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout


@pytest.mark.usefixtures("bpf_ready")
def test_live_session_has_no_data_race(built: None) -> None:
    """Consumer thread draining and recording while this thread snapshots and polls."""
    exe = LIB / "build" / "tsan" / "live_session_race"
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env=TSAN_ENV,
                          timeout=120)
    assert "ThreadSanitizer" not in proc.stderr, proc.stderr[-6000:]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout

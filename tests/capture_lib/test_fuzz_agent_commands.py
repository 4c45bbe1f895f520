"""syscap-agent's filter-command parser under libFuzzer (ASan + UBSan): the committed seeds
once, then a short coverage-guided run. The target checks that every filter it leaves is
one the kernel can take and that every error is one printable line.

A longer run: `make -C capture_lib fuzz-commands-run FUZZ_SECONDS=600`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIB = ROOT / "capture_lib"
FUZZER = LIB / "build" / "fuzz" / "fuzz_agent_commands"
CORPUS = Path(__file__).parent / "c" / "corpus" / "commands"
SECONDS = 10


@pytest.fixture(scope="module")
def fuzzer() -> Path:
    subprocess.run(["make", "-s", "-C", str(LIB), "fuzz-commands"], check=True)
    return FUZZER


def test_every_seed_runs_clean(fuzzer: Path) -> None:
    inputs = sorted(str(p) for p in CORPUS.iterdir())
    assert len(inputs) >= 3
    proc = subprocess.run([str(fuzzer), "-timeout=10", *inputs], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("Executed ") == len(inputs), proc.stderr[-4000:]


def test_short_fuzz_run_finds_nothing(fuzzer: Path, tmp_path: Path) -> None:
    work, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    work.mkdir()
    artifacts.mkdir()
    proc = subprocess.run(
        [str(fuzzer), f"-max_total_time={SECONDS}", "-timeout=10", "-print_final_stats=1",
         f"-artifact_prefix={artifacts}/", str(work), str(CORPUS)],
        capture_output=True, text=True, timeout=SECONDS + 120,
    )  # fmt: skip
    found = sorted(p.name for p in artifacts.iterdir())
    assert proc.returncode == 0 and not found, f"{found}\n{proc.stderr[-4000:]}"
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    assert runs and int(runs.group(1)) > 10000, proc.stderr[-2000:]

"""The trace reader under libFuzzer (ASan + UBSan): every committed corpus input
once, as regressions, then a short coverage-guided run from the seeds.

The seeds under c/corpus/trace are small traces made by `syscap record`, plus
every input that once crashed or misled a reader. A longer run:
`make -C capture_lib fuzz-run FUZZ_SECONDS=600`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIB = ROOT / "capture_lib"
FUZZER = LIB / "build" / "fuzz" / "fuzz_trace_reader"
CORPUS = Path(__file__).parent / "c" / "corpus" / "trace"
SECONDS = 25


@pytest.fixture(scope="module")
def fuzzer() -> Path:
    subprocess.run(["make", "-s", "-C", str(LIB), "fuzz"], check=True)
    return FUZZER


def test_corpus_has_real_traces_and_regressions() -> None:
    names = {p.name for p in CORPUS.iterdir()}
    assert any(n.startswith("regress-") for n in names)
    assert len([n for n in names if not n.startswith("regress-")]) >= 3
    assert all(p.stat().st_size < 64 * 1024 for p in CORPUS.iterdir()), "keep seeds small"


def test_every_corpus_input_runs_clean(fuzzer: Path) -> None:
    inputs = sorted(str(p) for p in CORPUS.iterdir())
    proc = subprocess.run([str(fuzzer), "-timeout=10", *inputs], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("Executed ") == len(inputs), proc.stderr[-4000:]


def test_short_fuzz_run_finds_no_crash(fuzzer: Path, tmp_path: Path) -> None:
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
    assert runs and int(runs.group(1)) > 1000, proc.stderr[-2000:]

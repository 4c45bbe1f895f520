"""Running a libFuzzer target from the tests: every corpus input once, then a short
coverage-guided run that must find nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def run_corpus(fuzzer: Path, corpus: Path) -> int:
    """Every input of corpus through fuzzer once (regressions); how many there were."""
    inputs = sorted(str(p) for p in corpus.iterdir())
    proc = subprocess.run([str(fuzzer), "-timeout=10", *inputs], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("Executed ") == len(inputs), proc.stderr[-4000:]
    return len(inputs)


def short_run(fuzzer: Path, corpus: Path, work_dir: Path, seconds: int, min_runs: int) -> None:
    """seconds of fuzzing from corpus (new inputs go to work_dir): no crash and at least
    min_runs executions."""
    work, artifacts = work_dir / "corpus", work_dir / "artifacts"
    work.mkdir()
    artifacts.mkdir()
    proc = subprocess.run(
        [str(fuzzer), f"-max_total_time={seconds}", "-timeout=10", "-print_final_stats=1",
         f"-artifact_prefix={artifacts}/", str(work), str(corpus)],
        capture_output=True, text=True, timeout=seconds + 120,
    )  # fmt: skip
    found = sorted(p.name for p in artifacts.iterdir())
    assert proc.returncode == 0 and not found, f"{found}\n{proc.stderr[-4000:]}"
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    assert runs and int(runs.group(1)) > min_runs, proc.stderr[-2000:]

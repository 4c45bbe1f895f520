"""Running a fuzz target from the tests: the C library's libFuzzer binaries and the atheris
scripts (Python under libFuzzer: the same flags, the same output). Every corpus input once,
then a short coverage-guided run that must find nothing."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.conftest import ROOT

LIB = ROOT / "capture_lib"


def built(make_target: str, name: str) -> Path:
    """The libFuzzer binary `name` of capture_lib, built by its Makefile's make_target."""
    subprocess.run(["make", "-s", "-C", str(LIB), make_target], check=True)
    return LIB / "build" / "fuzz" / name


def run_corpus(fuzzer: Path, corpus: Path) -> int:
    """Every input of corpus through fuzzer once (regressions); how many there were."""
    inputs = sorted(str(p) for p in corpus.iterdir())
    proc = subprocess.run([str(fuzzer), "-timeout=10", *inputs], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("Executed ") == len(inputs), proc.stderr[-4000:]
    return len(inputs)


def short_run(
    target: Sequence[str | Path],
    corpus: Path,
    work_dir: Path,
    seconds: int,
    min_runs: int,
    flags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> None:
    """seconds of fuzzing by the command target from the seeds in corpus (new inputs go
    under work_dir, which is also the working directory): no crash, no input kept as an
    artifact, and more than min_runs executions."""
    work, artifacts = work_dir / "corpus", work_dir / "artifacts"
    work.mkdir()
    artifacts.mkdir()
    proc = subprocess.run(
        [*map(str, target), f"-max_total_time={seconds}", "-timeout=10", *flags,
         f"-artifact_prefix={artifacts}/", str(work), str(corpus)],
        cwd=work_dir, capture_output=True, text=True, timeout=seconds + 120, env=env,
    )  # fmt: skip
    log = proc.stderr[-6000:]
    found = sorted(p.name for p in artifacts.iterdir())
    assert proc.returncode == 0 and not found, f"{found}\n{log}"
    runs = re.search(r"Done (\d+) runs", proc.stderr)
    assert runs and int(runs.group(1)) > min_runs, log

"""The stream decoder (capture_lib.stream) under atheris: seeded with real streams of the
agent, a short coverage-guided run must find nothing but one-line StreamErrors.

A longer run: record seeds as seeds() does, then
`python tests/capture_lib/fuzz_stream.py -max_total_time=600 CORPUS_DIR`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.capture_lib.conftest import AGENT_GETPPID as GETPPID
from tests.capture_lib.conftest import run_workload_pid
from tests.conftest import ROOT
from tests.libfuzzer import short_run

TARGET = Path(__file__).parent / "fuzz_stream.py"
SECONDS = 20

pytestmark = pytest.mark.usefixtures("bpf_ready")


def record_stream(agent: Path, workload: Path, *args: str) -> bytes:
    """A real stream: the workload's intervals only (a comm filter keeps the seed small)."""
    proc = subprocess.Popen([str(agent), "stream", "--interval", "0.1", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    first = proc.stdout.read(8)  # the header is written once the probes are attached
    proc.stdin.write(f"filter comm {workload.name}\n".encode())
    proc.stdin.flush()
    run_workload_pid(workload, GETPPID)
    proc.stdin.close()
    data = first + proc.stdout.read()
    assert proc.wait(timeout=30) == 0
    return data


@pytest.fixture(scope="module")
def corpus(agent: Path, workload: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("stream-corpus")
    (d / "counts").write_bytes(record_stream(agent, workload))
    (d / "durations").write_bytes(record_stream(agent, workload, "--durations"))
    assert all(p.stat().st_size < 64 * 1024 for p in d.iterdir()), "keep seeds small"
    return d


def test_fuzzing_the_stream_decoder_finds_only_stream_errors(corpus: Path, tmp_path: Path) -> None:
    short_run(
        [sys.executable, TARGET], corpus, tmp_path, SECONDS, min_runs=1000,
        flags=["-max_len=65536"], env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip

"""The start-up calibration of `syscap top`'s live source traces only its own
workload: a process outside the user's -p filter is never traced, not even
while the probes' cost is measured before the filter applies."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from capture_lib import syscalls
from capture_lib.live import LiveSource
from capture_lib.snapshot import Filter

pytestmark = pytest.mark.usefixtures("bpf_ready")

# Calls getuid() without pause; nothing else in these tests calls it often.
BYSTANDER = """
import os, sys
os.getuid()
sys.stdout.write("ready\\n")
sys.stdout.flush()
while True:
    os.getuid()
"""


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", BYSTANDER], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("durations", ["off", "sampled", "all"])
def test_calibration_traces_no_process_outside_the_filter(
        bystander: subprocess.Popen[str], sleeper: subprocess.Popen[bytes], durations: str) -> None:
    src = LiveSource("bpf", Filter(pids=frozenset({sleeper.pid})), durations=durations)
    try:
        assert bystander.poll() is None  # it called getuid() all along
        totals = src.session.totals().syscalls
        # the kernel's per-CPU counters count every syscall that passed the
        # filter since the probes were loaded: calibration included
        assert syscalls.number("getuid") not in totals
        # ... and the calibration did trace its own workload, in every mode
        getppid = totals[syscalls.number("getppid")].count
        assert getppid >= len(src.offered) * 3 * 20000
        assert src.offered == ("off", "sampled", "all")
        assert src.durations == durations
        assert src.hook_cost_ns >= 0
    finally:
        src.close()

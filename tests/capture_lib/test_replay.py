"""Replay of a recorded trace, without privileges on the reading side."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture_lib.replay import ReplaySource
from capture_lib.snapshot import Filter
from tests.capture_lib.conftest import report_json, syscap

pytestmark = pytest.mark.usefixtures("bpf_ready")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, workload: Path) -> Path:
    trace = tmp_path_factory.mktemp("replay") / "w.trace"
    syscap("record", "-o", str(trace), "--", str(workload), "1000", "50", "20", "30", "200",
           "300")
    return trace


def test_stepping_through_replays_every_record(recorded: Path) -> None:
    total = report_json(recorded)["events"]
    src = ReplaySource(str(recorded), interval_s=0.001)
    src.paused = True
    seen = 0
    pids = set()
    for _ in range(100000):
        snap = src.step()
        seen += snap.events
        pids |= {p.pid for p in snap.processes if p.count}
        if src.at_end:
            break
    src.close()
    assert seen == total
    assert len(pids) == 2


def test_paused_replay_does_not_advance(recorded: Path) -> None:
    src = ReplaySource(str(recorded))
    src.paused = True
    assert src.snapshot().events == 0
    assert src.snapshot().events == 0
    src.close()


def test_filter_applies_to_replay(recorded: Path) -> None:
    src = ReplaySource(str(recorded), interval_s=10.0)
    src.set_filter(Filter(failed_only=True))
    snap = src.step()
    src.close()
    assert {s.name for s in snap.syscalls} == {"openat", "access"}
    assert all(s.count == s.errors for s in snap.syscalls)
    assert [p.count for p in snap.processes] == [21]  # 20 failed openat + 1 access

"""Records mode's entry state on the live eBPF backend.

The running task's pending syscall lives in a per-CPU slot, written back into
the task's storage by sched_switch when the task leaves the CPU. A call inside
which the task sleeps or moves to another CPU must still pair with its own
entry, and an entry left pending by an earlier run must never pair with a
later exit. The workload logs, around every getppid, a span its entry and exit
must fall in.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from capture_lib import native, syscalls
from capture_lib.live import Session
from capture_lib.snapshot import Filter
from tests.capture_lib.conftest import drain_events as drain
from tests.capture_lib.conftest import wait_blocked_in_read

pytestmark = pytest.mark.usefixtures("bpf_ready")

_, lib = native.require()

CALLS = 2000


def calls(events: list[Any], tgid: int, name: str) -> list[tuple[int, int]]:
    nr = syscalls.number(name)
    return sorted((ts, dur) for kind, _, n, t, ts, dur, _ in events
                  if kind == lib.SYSCAP_EV_SYSCALL and n == nr and t == tgid)  # fmt: skip


def test_calls_that_sleep_or_migrate_pair_with_their_own_entry(spans_exe: Path) -> None:
    with Session("bpf") as s:
        s.set_filter(Filter(comms=frozenset({spans_exe.name})))
        s.attach()
        proc = subprocess.run([str(spans_exe), str(CALLS)], capture_output=True, text=True,
                              check=True)  # fmt: skip
        s.detach()
        events = drain(s)
        totals = s.totals()
    assert totals.drops == 0
    spans = sorted(tuple(map(int, line.split())) for line in proc.stdout.splitlines())
    assert len(spans) == CALLS
    tgid = next(t for kind, _, _, t, *_ in events if kind == lib.SYSCAP_EV_EXIT)
    getppid = calls(events, tgid, "getppid")
    assert len(getppid) == CALLS
    for (ts, dur), (before, after) in zip(getppid, spans, strict=True):
        assert before <= ts and ts + dur <= after, (before, ts, dur, after)
    # the task moves to another CPU inside every sched_setaffinity: each call
    # ends before the getppid span that follows it begins
    moves = calls(events, tgid, "sched_setaffinity")
    assert len(moves) == CALLS
    for (ts, dur), (before, _) in zip(moves, spans, strict=True):
        assert ts + dur <= before, (ts, dur, before)
    # and it sleeps inside every nanosleep: the CPU runs others meanwhile
    sleeps = calls(events, tgid, "clock_nanosleep") or calls(events, tgid, "nanosleep")
    assert len(sleeps) == CALLS and all(dur >= 100_000 for _, dur in sleeps)


def test_an_entry_from_an_earlier_run_is_never_paired() -> None:
    with Session("bpf") as s:
        s.set_filter(Filter(comms=frozenset({"head"})))
        s.attach()
        proc = subprocess.Popen(["head", "-c1"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_blocked_in_read(proc.pid)  # its read entered in this run
            s.detach()
            drain(s)
            restart = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            s.attach()
            assert proc.stdin is not None
            proc.stdin.write(b"x")
            proc.stdin.close()
            proc.wait()
        finally:
            proc.kill()
            proc.wait()
        s.detach()
        events = drain(s)
    mine = [ts for kind, _, _, tgid, ts, *_ in events
            if kind == lib.SYSCAP_EV_SYSCALL and tgid == proc.pid]  # fmt: skip
    assert mine, "head's calls after the restart were not recorded"
    assert min(mine) >= restart, "an entry from before the restart was paired"

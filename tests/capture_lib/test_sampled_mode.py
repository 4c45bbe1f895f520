"""Sampled mode on the live eBPF backend: exact counts, plus the durations of
a random sample of the calls.

A sample's entry time lives in the task's storage, so it must come back right
when the task migrates inside the call, and a sample left behind by an
earlier run must never be paired with a later exit. The workload logs, around
every getppid, a span its entry and exit must fall in: a sample paired with
the wrong exit would leave its span.
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
from tests.capture_lib.conftest import drain_events, wait_blocked_in_read

pytestmark = pytest.mark.usefixtures("bpf_ready")

_, lib = native.require()

CALLS = 2000


def drain(s: Session) -> list[Any]:
    return list(drain_events(s))


def sampled(events: list[Any], tgid: int, name: str) -> list[tuple[int, int]]:
    nr = syscalls.number(name)
    return [(ts, dur) for kind, flags, n, t, ts, dur, _ in events
            if kind == lib.SYSCAP_EV_SYSCALL and flags & lib.SYSCAP_F_SAMPLED and n == nr
            and t == tgid]


def test_every_sample_belongs_to_its_own_call_across_migrations(spans_exe: Path) -> None:
    with Session("bpf") as s:
        s.set_mode("sampled")
        s.set_sample_period(1)  # every call: each one must pair with its own exit
        s.set_filter(Filter(comms=frozenset({spans_exe.name})))
        s.attach()
        proc = subprocess.run([str(spans_exe), str(CALLS)], capture_output=True, text=True,
                              check=True)
        s.detach()
        events = drain(s)
        totals = s.totals()
    assert totals.drops == 0
    spans = [tuple(map(int, line.split())) for line in proc.stdout.splitlines()]
    assert len(spans) == CALLS
    tgid = next(t for kind, _, _, t, *_ in events if kind == lib.SYSCAP_EV_EXIT)
    getppid = sampled(events, tgid, "getppid")
    assert len(getppid) == CALLS  # period 1: none missed
    for (ts, dur), (before, after) in zip(sorted(getppid), sorted(spans), strict=True):
        assert before <= ts and ts + dur <= after, (before, ts, dur, after)
    # the call inside which the task moves to another CPU: all of them sampled,
    # and none can have been paired with a later call's exit (each is shorter
    # than the getppid span that follows it begins)
    moves = sorted(sampled(events, tgid, "sched_setaffinity"))
    assert len(moves) == CALLS
    for (ts, dur), (before, _) in zip(moves, sorted(spans), strict=True):
        assert ts + dur <= before
    sleeps = sampled(events, tgid, "clock_nanosleep") or sampled(events, tgid, "nanosleep")
    assert len(sleeps) == CALLS and all(dur >= 100_000 for _, dur in sleeps)


def test_a_sample_from_an_earlier_run_is_never_paired(tmp_path: Path) -> None:
    with Session("bpf") as s:
        s.set_mode("sampled")
        s.set_sample_period(1)
        s.set_filter(Filter(comms=frozenset({"head"})))
        s.attach()
        proc = subprocess.Popen(["head", "-c1"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL)
        try:
            wait_blocked_in_read(proc.pid)  # its read was sampled at entry
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
    samples = [ts for kind, flags, _, tgid, ts, *_ in events
               if kind == lib.SYSCAP_EV_SYSCALL and flags & lib.SYSCAP_F_SAMPLED
               and tgid == proc.pid]
    assert samples, "head's calls after the restart were not sampled"
    assert min(samples) >= restart, "a sample taken before the restart was paired"


def test_counts_stay_exact_with_a_sparse_sample(spans_exe: Path) -> None:
    with Session("bpf") as s:
        s.set_mode("sampled")
        s.set_sample_period(16)
        s.aggregate(True)
        s.set_filter(Filter(comms=frozenset({spans_exe.name})))
        s.start()
        s.snapshot()
        subprocess.run([str(spans_exe), str(CALLS)], capture_output=True, check=True)
        s.stop()
        snap = s.snapshot()
    assert snap.sampled and snap.latency and snap.drops == 0
    rows = {r.name: r for r in snap.syscalls}
    assert rows["getppid"].count == CALLS
    assert rows["sched_setaffinity"].count == CALLS
    # about one in 16 of 2000 calls: far from none and far from all
    assert 0 < rows["getppid"].samples < CALLS
    sleep = rows.get("clock_nanosleep") or rows["nanosleep"]
    assert sleep.samples and sleep.p50_ns >= 100_000 and sleep.avg_ns >= 100_000


def test_samples_between_sampling_windows(spans_exe: Path) -> None:
    """Sampling windows open half the time: the entry probe is attached and
    detached while the workload runs (2000 iterations of at least 100 us),
    every call is still counted, calls outside the windows are not timed, and
    a call sampled in a window that closed before its exit keeps its own
    duration (no getppid comes out as long as the sleeps around it)."""
    with Session("bpf") as s:
        s.set_mode("sampled")
        s.set_sample_period(1)
        assert s.set_sample_duty(0.5)
        s.aggregate(True)
        s.set_filter(Filter(comms=frozenset({spans_exe.name})))
        s.start()
        s.snapshot()
        subprocess.run([str(spans_exe), str(CALLS)], capture_output=True, check=True)
        s.stop()
        snap = s.snapshot()
        opened, open_s = s.sample_windows()
    assert snap.sampled and snap.drops == 0
    rows = {r.name: r for r in snap.syscalls}
    assert rows["getppid"].count == CALLS and rows["sched_setaffinity"].count == CALLS
    assert 0 < rows["getppid"].samples < CALLS
    assert rows["getppid"].p99_ns < 100_000
    sleep = rows.get("clock_nanosleep") or rows["nanosleep"]
    assert 0 < sleep.samples < CALLS and sleep.p50_ns >= 100_000
    assert opened >= 2 and open_s > 0


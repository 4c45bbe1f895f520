"""Count mode (what `syscap top` starts in) on the live eBPF backend.

The kernel counts calls and errors per process x syscall and takes no
timestamps; these tests hold it to the same exact numbers as records mode
and strace, with the filters applied in the kernel.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from capture_lib import syscalls
from capture_lib.live import MIN_SAMPLE_DUTY, LiveSource, Session
from capture_lib.snapshot import Filter, Snapshot

from .conftest import traced_run

pytestmark = pytest.mark.usefixtures("bpf_ready")

ARGS = (1000, 50, 20, 30, 200, 300)  # as in test_record_live


def run_counted(workload: Path, mode: str, flt: Filter) -> Snapshot:
    """Run the workload once under a session in mode; the snapshot after it."""
    snap, proc = traced_run([str(workload), *map(str, ARGS)], mode, flt)
    assert proc.returncode == 0, proc.stderr
    return snap


def per_syscall(snap: Snapshot) -> dict[str, tuple[int, int]]:
    return {s.name: (s.count, s.errors) for s in snap.syscalls}


@pytest.fixture(params=["counts", "sampled"])
def counted(workload: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, tuple[int, int]]]:
    """Counts of one workload run; sampled mode counts exactly as count mode."""
    snap = run_counted(workload, request.param, Filter(comms=frozenset({workload.name})))
    assert snap.drops == 0 and snap.latency == (request.param == "sampled")
    yield per_syscall(snap)


def test_counts_are_exact(counted: dict[str, tuple[int, int]]) -> None:
    getppid, opens, fails, writes, child, thread = ARGS
    assert counted["getppid"] == (getppid + child + thread, 0)
    n_open, n_fail = counted["openat"]
    assert n_fail == fails and n_open >= opens + 1
    assert counted["write"] == (writes, 0)
    # exit and exit_group never return to sys_exit: counted at process exit
    assert counted["exit_group"] == (2, 0)
    assert counted["exit"] == (1, 0)


def test_counts_agree_with_records_mode(workload: Path,
                                        counted: dict[str, tuple[int, int]]) -> None:
    snap = run_counted(workload, "records", Filter(comms=frozenset({workload.name})))
    assert snap.drops == 0 and snap.latency
    recorded = per_syscall(snap)
    # execve: records mode sees its entry under the old comm (not traced yet),
    # count mode its exit under the new one
    recorded.pop("execve", None)
    counted = dict(counted)
    counted.pop("execve", None)
    assert counted == recorded


def test_counts_agree_with_strace(workload: Path, tmp_path: Path,
                                  counted: dict[str, tuple[int, int]]) -> None:
    out = tmp_path / "strace.txt"
    subprocess.run(["strace", "-f", "-c", "-o", str(out), str(workload), *map(str, ARGS)],
                   check=True)
    oracle = {}
    for line in out.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)$", line)
        if m and m.group(3) != "total":
            oracle[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    assert "getppid" in oracle
    for name, expected in oracle.items():
        if name not in ("futex", "execve"):
            assert counted.get(name, (0, 0)) == expected, name


def test_syscall_set_and_failed_only_apply_in_the_kernel(workload: Path) -> None:
    openat = syscalls.number("openat")
    snap = run_counted(workload, "counts", Filter(comms=frozenset({workload.name}),
                                                     syscalls=frozenset({openat})))
    counts = per_syscall(snap)
    assert set(counts) == {"openat"}
    snap = run_counted(workload, "counts",
                       Filter(comms=frozenset({workload.name}), failed_only=True))
    counts = per_syscall(snap)
    assert counts["openat"] == (ARGS[2], ARGS[2])
    assert all(calls == errors for calls, errors in counts.values())


def test_own_syscalls_never_counted_and_gone_processes_leave_the_map(workload: Path) -> None:
    # a live process that answers a line, so it made syscalls inside the session
    echo = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert echo.stdin is not None and echo.stdout is not None
    try:
        with Session("bpf") as s:
            s.set_mode("counts")
            s.aggregate(True)
            s.start()
            s.snapshot()
            echo.stdin.write(b"x\n")
            echo.stdin.flush()
            assert echo.stdout.readline() == b"x\n"
            proc = subprocess.Popen([str(workload), *map(str, ARGS)])
            proc.wait()
            snap = s.snapshot()
            pids = {p.pid for p in snap.processes}
            assert proc.pid in pids
            assert os.getpid() not in pids
            # its counters were read once more after it was reaped, then removed
            keys = set(s.counted_tgids())
            assert echo.pid in keys, "a live process's counters are not in the kernel"
            assert proc.pid not in keys
            assert os.getpid() not in keys
            s.stop()
    finally:
        echo.kill()
        echo.wait()


def test_top_source_switches_between_counts_and_durations(workload: Path) -> None:
    src = LiveSource("bpf", Filter(comms=frozenset({workload.name})), durations="off")
    try:
        assert not src.latency
        subprocess.run([str(workload), *map(str, ARGS)], check=True)
        src.set_durations("all")  # what was counted so far is kept
        subprocess.run([str(workload), *map(str, ARGS)], check=True)
        time.sleep(0.2)  # records reach the aggregate when the consumer wakes
        snap = src.snapshot()
        assert not snap.latency  # half the interval had no durations
        assert per_syscall(snap)["getppid"] == (2 * (ARGS[0] + ARGS[4] + ARGS[5]), 0)
        subprocess.run([str(workload), *map(str, ARGS)], check=True)
        time.sleep(0.2)
        snap = src.snapshot()
        assert snap.latency and src.latency
        getppid = next(s for s in snap.syscalls if s.name == "getppid")
        assert getppid.count == ARGS[0] + ARGS[4] + ARGS[5] and getppid.p50_ns > 0
        src.set_durations("sampled")
        src.snapshot()  # what the records mode left in the rings
        subprocess.run([str(workload), *map(str, ARGS)], check=True)
        snap = src.snapshot()
        assert snap.sampled and snap.latency and src.sample_period >= 1
        assert per_syscall(snap)["getppid"] == (ARGS[0] + ARGS[4] + ARGS[5], 0)
    finally:
        src.close()


def test_sample_follows_the_budget(flood: Path) -> None:
    """At a flood's rate, a budget of 0.001 % of a CPU (10 us/s) is less than
    the sampler's entry probe alone costs in the least sampling window: the
    windows shrink to their least and the period grows. Counts stay exact."""
    src = LiveSource("bpf", Filter(comms=frozenset({flood.name})), calibrate=False,
                     durations="sampled", sample_budget=0.001)
    try:
        subprocess.run([str(flood), "2", "200000"], check=True)
        snap = src.snapshot()
        assert per_syscall(snap)["getppid"] == (400000, 0)
        plan = src.session.sample
        assert plan is not None and plan.duty == MIN_SAMPLE_DUTY and plan.period > 1
        assert src.sample_period == round(plan.period / MIN_SAMPLE_DUTY)
    finally:
        src.close()


def test_counts_are_exact_per_process_with_no_filter(workload: Path) -> None:
    """Without a condition on the task the probe skips the cached verdict (a
    plain compare with the consumer's tgid): every process is still counted
    exactly, and the consumer not at all."""
    getppid, opens, fails, writes, child, thread = ARGS
    with Session("bpf") as s:
        s.set_mode("counts")
        s.aggregate(True)
        s.set_filter(Filter())
        s.start()
        s.snapshot()
        proc = subprocess.Popen([str(workload), *map(str, ARGS)])
        assert proc.wait() == 0
        s.stop()
        snap = s.snapshot()
    assert snap.drops == 0
    by_pid = {p.pid: {c.name: (c.count, c.errors) for c in p.syscalls} for p in snap.processes}
    main = by_pid[proc.pid]
    assert main["getppid"] == (getppid + thread, 0)
    assert main["openat"][0] >= opens + 1 and main["openat"][1] == fails
    assert main["write"] == (writes, 0)
    assert main["exit_group"] == (1, 0) and main["exit"] == (1, 0)
    children = [c for pid, c in by_pid.items()
                if pid != proc.pid and c.get("getppid") == (child, 0)]
    assert len(children) == 1 and children[0]["exit_group"] == (1, 0)
    assert os.getpid() not in by_pid


@pytest.mark.parametrize("mode", ["counts", "sampled"])
def test_totals_keep_the_calls_of_processes_gone(workload: Path, mode: str) -> None:
    """The per-syscall totals (what the exporter serves) are the kernel's
    tables plus what their forgotten counters held: a process gone, and its
    counters forgotten, still counts there, exactly."""
    getppid, opens, fails, writes, child, thread = ARGS
    with Session("bpf") as s:
        s.set_mode(mode)
        s.aggregate(True)
        s.set_filter(Filter(comms=frozenset({workload.name})))
        s.start()
        proc = subprocess.Popen([str(workload), *map(str, ARGS)])
        assert proc.wait() == 0
        s.snapshot()
        assert proc.pid not in s.counted_tgids(), "the process's counters were not forgotten"
        totals = s.totals()
        s.stop()
    assert totals.drops == 0
    assert totals.syscalls[syscalls.number("getppid")].count == getppid + child + thread
    assert totals.syscalls[syscalls.number("write")].count == writes
    opened = totals.syscalls[syscalls.number("openat")]
    assert opened.errors == fails and opened.count >= opens + 1

"""Count mode (what `syscap top` starts in) on the live eBPF backend.

The kernel counts calls and errors per process x syscall and takes no
timestamps; these tests hold it to the same exact numbers as records mode
and strace, with the filters applied in the kernel.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from capture_lib import syscalls
from capture_lib.live import LiveSource, Session
from capture_lib.snapshot import Filter, Snapshot

pytestmark = pytest.mark.usefixtures("bpf_ready")

ARGS = (1000, 50, 20, 30, 200, 300)  # as in test_record_live
WORKLOAD = frozenset({"workload"})  # the comm of the workload, its child and thread


def run_counted(workload: Path, mode: str, flt: Filter) -> Snapshot:
    """Run the workload once under a session in mode; the snapshot after it."""
    with Session("bpf") as s:
        s.set_mode(mode)
        s.aggregate(True)
        s.set_filter(flt)
        s.start()
        s.snapshot()
        proc = subprocess.run([str(workload), *map(str, ARGS)], check=True)
        assert proc.returncode == 0
        s.stop()  # detach and drain: everything is in the next snapshot
        return s.snapshot()


def per_syscall(snap: Snapshot) -> dict[str, tuple[int, int]]:
    return {s.name: (s.count, s.errors) for s in snap.syscalls}


@pytest.fixture
def counted(workload: Path) -> Iterator[dict[str, tuple[int, int]]]:
    snap = run_counted(workload, "counts", Filter(comms=WORKLOAD))
    assert snap.drops == 0 and not snap.latency
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
    snap = run_counted(workload, "records", Filter(comms=WORKLOAD))
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
    snap = run_counted(workload, "counts", Filter(comms=WORKLOAD,
                                                     syscalls=frozenset({openat})))
    counts = per_syscall(snap)
    assert set(counts) == {"openat"}
    snap = run_counted(workload, "counts", Filter(comms=WORKLOAD, failed_only=True))
    counts = per_syscall(snap)
    assert counts["openat"] == (ARGS[2], ARGS[2])
    assert all(calls == errors for calls, errors in counts.values())


def test_own_syscalls_never_counted_and_gone_processes_leave_the_map(workload: Path) -> None:
    with Session("bpf") as s:
        s.set_mode("counts")
        s.aggregate(True)
        s.start()
        s.snapshot()
        proc = subprocess.Popen([str(workload), *map(str, ARGS)])
        proc.wait()
        snap = s.snapshot()
        pids = {p.pid for p in snap.processes}
        assert proc.pid in pids
        assert os.getpid() not in pids
        # its counters were read once more after it was reaped, then removed
        dump = subprocess.run(["bpftool", "-j", "map", "dump", "name", "counts"],
                              capture_output=True, text=True, check=True).stdout
        keys = {entry["key"]["tgid"] for entry in json.loads(dump) if "key" in entry}
        assert proc.pid not in keys
        assert os.getpid() not in keys
        s.stop()


def test_top_source_switches_between_counts_and_durations(workload: Path) -> None:
    src = LiveSource("bpf", Filter(comms=WORKLOAD), latency=False)
    try:
        assert not src.latency
        subprocess.run([str(workload), *map(str, ARGS)], check=True)
        src.set_latency(True)  # what was counted so far is kept
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
    finally:
        src.close()

"""`syscap record` on the live eBPF backend: exact counts, scope, filters, loss."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.capture_lib.conftest import SYSCAP, report_json, start_recorder, syscap

pytestmark = pytest.mark.usefixtures("bpf_ready")

# getppid, opens, failing opens, writes, child getppid, thread getppid
ARGS = (1000, 50, 20, 30, 200, 300)


def counts(rep: dict[str, object], name: str) -> tuple[int, int]:
    sc = rep["syscalls"]
    assert isinstance(sc, dict)
    entry = sc.get(name, {"count": 0, "errors": 0})
    return entry["count"], entry["errors"]


def test_record_command_counts_exactly(workload: Path, trace_path: Path) -> None:
    syscap("record", "-o", str(trace_path), "--", str(workload), *map(str, ARGS))
    rep = report_json(trace_path)
    assert rep["dropped"] == 0 and rep["missed"] == 0 and rep["complete"]
    getppid, opens, fails, writes, child, thread = ARGS
    assert counts(rep, "getppid") == (getppid + child + thread, 0)
    # the workload's own openat of /dev/null for writing, plus libc's loading
    n_open, n_fail = counts(rep, "openat")
    assert n_fail == fails
    assert n_open >= opens + 1
    assert counts(rep, "write") == (writes, 0)
    # exit and exit_group never return to sys_exit; syscap still counts them
    assert counts(rep, "exit_group") == (2, 0)  # the workload and its child
    assert counts(rep, "exit") == (1, 0)  # the thread


def test_record_agrees_with_strace(workload: Path, trace_path: Path, tmp_path: Path) -> None:
    syscap("record", "-o", str(trace_path), "--", str(workload), *map(str, ARGS))
    rep = report_json(trace_path)
    out = tmp_path / "strace.txt"
    subprocess.run(["strace", "-f", "-c", "-o", str(out), str(workload), *map(str, ARGS)],
                   check=True)
    oracle: dict[str, tuple[int, int]] = {}
    for line in out.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)$", line)
        if m and m.group(3) != "total":
            oracle[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    assert "getppid" in oracle, out.read_text()
    for name, expected in oracle.items():
        if name in ("futex", "execve"):
            continue  # differ by design: strace's own wakeups, exec timing
        assert counts(rep, name) == expected, name


def test_children_and_threads_followed_unrelated_not(workload: Path, flood: Path,
                                                     trace_path: Path) -> None:
    busy = subprocess.Popen([str(flood), "1", "100000000"])
    try:
        syscap("record", "-o", str(trace_path), "--", str(workload), *map(str, ARGS))
    finally:
        busy.kill()
        busy.wait()
    rep = report_json(trace_path)
    pids = {p["pid"] for p in rep["processes"]}
    assert busy.pid not in pids
    assert len(pids) == 2  # the workload and its forked child
    child = [p for p in rep["processes"] if p["syscalls"].get("getppid", {}).get("count") == 200]
    assert len(child) == 1


def test_own_syscalls_never_recorded(flood: Path, trace_path: Path) -> None:
    proc = subprocess.Popen(
        [*SYSCAP, "record", "-a", "-o", str(trace_path),
         "--duration", "1"], cwd=Path(__file__).resolve().parents[2])
    proc.wait(timeout=60)
    assert proc.returncode == 0
    rep = report_json(trace_path)
    assert rep["events"] > 0
    assert proc.pid not in {p["pid"] for p in rep["processes"]}


def test_own_syscalls_never_recorded_inside_a_pid_namespace(trace_path: Path) -> None:
    """In a container getpid() is not the number the probes see: the
    recorder must still know itself."""
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", *SYSCAP, "record", "-a", "-o",
         str(trace_path), "--duration", "1"],
        cwd=Path(__file__).resolve().parents[2], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "recording to" in line, line + proc.stderr.read()
    # unshare's one child is the recorder, pid 1 in its namespace
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 1, children
    recorder = int(children[0])
    proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    rep = report_json(trace_path)
    assert rep["events"] > 0
    assert recorder not in {p["pid"] for p in rep["processes"]}


def test_syscall_filter_keeps_other_syscalls_out_of_the_rings(flood: Path,
                                                              trace_path: Path) -> None:
    # 200 000 getppid with -e openat: the kernel counts and the rings carry
    # only openat, so nothing is dropped even with small rings.
    syscap("record", "-o", str(trace_path), "-e", "openat", "--buffer-size", "64K",
           "--", str(flood), "2", "100000")
    rep = report_json(trace_path)
    assert set(rep["syscalls"]) == {"openat"}
    assert rep["dropped"] == 0
    assert rep["events"] == rep["syscalls"]["openat"]["count"]
    assert rep["max_ring_fill"] < 0.5


def test_loss_accounting_is_exact(flood: Path, tmp_path: Path) -> None:
    threads, calls = 2, 200000
    for i in range(10):
        trace = tmp_path / f"loss{i}.trace"
        syscap("record", "-o", str(trace), "-e", "getppid", "--buffer-size", "4K",
               "--", str(flood), str(threads), str(calls))
        rep = report_json(trace)
        captured = rep["events"]
        assert rep["missed"] == 0
        assert rep["syscalls"]["getppid"]["count"] == threads * calls
        assert captured + rep["dropped"] == threads * calls, (captured, rep["dropped"])
        assert rep["dropped"] > 0  # 4 KiB rings must overflow under this flood


def test_failed_only(workload: Path, trace_path: Path) -> None:
    syscap("record", "-o", str(trace_path), "--failed", "--", str(workload), *map(str, ARGS))
    rep = report_json(trace_path)
    assert counts(rep, "openat") == (ARGS[2], ARGS[2])
    assert all(v["count"] == v["errors"] for v in rep["syscalls"].values())


def test_record_returns_the_command_exit_status(trace_path: Path) -> None:
    proc = syscap("record", "-o", str(trace_path), "--", "sh", "-c", "exit 7", check=False)
    assert proc.returncode == 7


def test_sigterm_finishes_the_file(trace_path: Path) -> None:
    proc = start_recorder("-a", "-o", str(trace_path))
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "dropped" in err and "max ring fill" in err
    rep = report_json(trace_path)
    assert rep["complete"] and rep["exact"]


def test_pid_scope_follows_new_children(trace_path: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = f"while [ ! -e {go} ]; do sleep 0.05; done; /bin/true; /bin/true"
    shell = subprocess.Popen(["sh", "-c", script])
    rec = start_recorder("-p", str(shell.pid), "-o", str(trace_path))
    try:
        go.touch()
        shell.wait(timeout=30)
        rec.send_signal(signal.SIGINT)
        assert rec.wait(timeout=30) == 0
    finally:
        shell.kill()
        rec.kill()
        rec.wait()
    rep = report_json(trace_path)
    by_comm = {p["comm"]: p for p in rep["processes"]}
    assert "true" in by_comm, rep  # children forked after the start
    assert "sh" in by_comm, rep
    assert os.getpid() not in {p["pid"] for p in rep["processes"]}


def test_comm_filter_selects_tasks_by_name(workload: Path, flood: Path, trace_path: Path,
                                          tmp_path: Path) -> None:
    # Record everything named as flood while both programs run: only flood's
    # syscalls (and its exit) may be there, and all of its getppid.
    rec = start_recorder("-a", "--comm", flood.name, "-o", str(trace_path))
    try:
        subprocess.run([str(workload), *map(str, ARGS)], check=True)
        subprocess.run([str(flood), "2", "1000"], check=True)
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=30)
    rep = report_json(trace_path)
    assert {p["comm"] for p in rep["processes"]} == {flood.name}
    assert counts(rep, "getppid") == (2000, 0)

"""Fixtures for capture tests against the real kernel (eBPF backend)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capture_lib import syscalls
from capture_lib.live import Session
from capture_lib.snapshot import Filter, Snapshot
from tests.conftest import ROOT, build_c

WORKLOADS = Path(__file__).parent / "workloads"
SYSCAP = [sys.executable, "-m", "capture_lib.cli"]


@pytest.fixture(scope="session")
def bpf_ready() -> None:
    """The eBPF backend must work here: as root it is a failure if it does not."""
    if os.geteuid() != 0:
        pytest.skip("capture tests need root (CAP_BPF + CAP_PERFMON); run them as root")
    from capture_lib.cli import backend_status

    status = backend_status()["bpf"]
    assert status == "ok", f"eBPF backend unavailable as root: {status}"


def run_unique(exe: Path, prefix: str) -> Path:
    """A copy of exe named (and so with a comm) unique to this test run: comm
    filters then see no copy another run on the machine starts meanwhile."""
    copy = exe.with_name(f"{prefix}{os.getpid() % 100000}")
    if not copy.exists():
        copy.write_bytes(exe.read_bytes())
        copy.chmod(0o755)
    return copy


@pytest.fixture(scope="session")
def workload(c_build_dir: Path) -> Path:
    """The workload of the exact-count tests, under a comm of this run."""
    return run_unique(build_c(WORKLOADS / "workload.c", c_build_dir, "-lpthread"), "workload")


@pytest.fixture(scope="session")
def flood(c_build_dir: Path) -> Path:
    """The getppid flood, under a comm of this run."""
    return run_unique(build_c(WORKLOADS / "flood.c", c_build_dir, "-lpthread"), "flood")


@pytest.fixture(scope="session")
def spans_exe(c_build_dir: Path) -> Path:
    """sampled_spans.c: calls that migrate and sleep, and each getppid's span."""
    return build_c(WORKLOADS / "sampled_spans.c", c_build_dir)


Event = tuple[int, int, int, int, int, int, int]  # (kind, flags, nr, tgid, ts_ns, dur_ns, ret)


def drain_events(s: Session) -> list[Event]:
    """Every record left in the session's rings."""
    events: list[Event] = []
    while batch := s.read_events():
        events.extend((e.kind, e.flags, e.nr, e.tgid, e.ts_ns, e.dur_ns, e.ret) for e in batch)
    return events


def calls_of(events: list[Event], tgid: int, name: str, flag: int = 0) -> list[tuple[int, int]]:
    """(ts_ns, dur_ns) of process tgid's calls of name (those with flag set, if given),
    in time order."""
    from capture_lib import native

    _, lib = native.require()
    nr = syscalls.number(name)
    return sorted((ts, dur) for kind, flags, n, t, ts, dur, _ in events
                  if kind == lib.SYSCAP_EV_SYSCALL and n == nr and t == tgid
                  and flags & flag == flag)  # fmt: skip


def run_spans(s: Session, spans_exe: Path, calls: int) -> tuple[list[Event], int,
                                                                 list[tuple[int, int]]]:
    """Run spans_exe (calls rounds) with s attached to it alone: (the records, none
    dropped; its tgid; the (before, after) span it logged around each getppid, in
    time order)."""
    from capture_lib import native

    _, lib = native.require()
    s.set_filter(Filter(comms=frozenset({spans_exe.name})))
    s.attach()
    proc = subprocess.run([str(spans_exe), str(calls)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    s.detach()
    events = drain_events(s)
    assert s.totals().drops == 0
    spans = sorted((int(a), int(b)) for a, b in map(str.split, proc.stdout.splitlines()))
    assert len(spans) == calls
    tgid = next(t for kind, _, _, t, *_ in events if kind == lib.SYSCAP_EV_EXIT)
    return events, tgid, spans


def check_calls_against_spans(events: list[Event], tgid: int, spans: list[tuple[int, int]],
                              flag: int = 0) -> None:
    """spans_exe's calls (those with flag) each paired with their own entry: every
    getppid lies in its span; the task moves to another CPU inside every
    sched_setaffinity, and each ends before the getppid span that follows it begins
    (none paired with a later call's exit); and it sleeps inside every nanosleep while
    the CPU runs others."""
    getppid = calls_of(events, tgid, "getppid", flag)
    assert len(getppid) == len(spans)
    for (ts, dur), (before, after) in zip(getppid, spans, strict=True):
        assert before <= ts and ts + dur <= after, (before, ts, dur, after)
    moves = calls_of(events, tgid, "sched_setaffinity", flag)
    assert len(moves) == len(spans)
    for (ts, dur), (before, _) in zip(moves, spans, strict=True):
        assert ts + dur <= before, (ts, dur, before)
    sleeps = calls_of(events, tgid, "clock_nanosleep", flag) or calls_of(
        events, tgid, "nanosleep", flag)
    assert len(sleeps) == len(spans) and all(dur >= 100_000 for _, dur in sleeps)


def read_across_a_restart(s: Session) -> tuple[int, int, list[Event]]:
    """head -c1 blocked in a read that entered while s was attached; s detached, drained
    and attached again; then the read returns: (head's pid, when the second run began,
    the second run's records). An entry from the first run must not pair with an exit
    in the second."""
    s.set_filter(Filter(comms=frozenset({"head"})))
    s.attach()
    proc = subprocess.Popen(["head", "-c1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wait_blocked_in_read(proc.pid)  # its read entered in this run
        s.detach()
        drain_events(s)
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
    return proc.pid, restart, drain_events(s)


def wait_blocked_in_read(pid: int) -> None:
    """Return once process pid is inside read() (its entry has been seen)."""
    read_nr = syscalls.number("read")
    for _ in range(10_000):
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
        if fields and fields[0] == str(read_nr):
            return
        os.sched_yield()
    raise AssertionError(f"process {pid} never blocked in read")


@pytest.fixture
def spinner(flood: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process calling getppid() until it is killed."""
    p = subprocess.Popen([str(flood), "1", str(10**12)])
    yield p
    p.kill()
    p.wait(timeout=30)


def bpf_links(pid: int) -> int:
    """The BPF links process pid holds (0 when it is gone)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return 0
    n = 0
    for fd in fds:
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf_link"
        except FileNotFoundError:
            continue
    return n


def attached(pid: int) -> bool:
    """Whether process pid holds BPF links (some of its probes are in)."""
    return bpf_links(pid) > 0


@pytest.fixture(scope="session")
def record_links(agents: dict[str, Path]) -> int:
    """The BPF links of an eBPF agent in record mode once all its probes are in:
    the local agent's after it said it records (it says so once start returned).
    A box's agent holding fewer is still attaching, one program after another."""
    proc = subprocess.Popen([str(agents[os.uname().machine]), "record", "-o", "/dev/null",
                             "--backend", "bpf"], stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert "recording to" in line, line
        n = bpf_links(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert n > 0
    return n


def syscap(*args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run the syscap CLI as a user would (a separate process)."""
    proc = subprocess.run([*SYSCAP, *args], capture_output=True, text=True, cwd=ROOT, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"syscap {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def report_json(trace: Path, *extra: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(syscap("report", str(trace), "--json", *extra).stdout)
    return out


@pytest.fixture
def trace_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "t.trace"


def start_recorder(*args: str) -> subprocess.Popen[str]:
    """Start `syscap record ARGS` and return once its probes are attached."""
    proc = subprocess.Popen([*SYSCAP, "record", *args], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "recording to" not in line:
        proc.kill()
        raise AssertionError(f"recorder did not start: {line}{proc.stderr.read()}")
    return proc


def traced_run(cmd: list[str], mode: str, flt: Filter
               ) -> tuple[Snapshot, subprocess.CompletedProcess[str]]:
    """Run cmd once under a fresh eBPF session in mode ("counts" or "records"),
    flt applied in the kernel: the snapshot of exactly that run (the session is
    stopped and drained before it is taken) and the finished process."""
    with Session("bpf") as s:
        s.set_mode(mode)
        s.aggregate(True)
        s.set_filter(flt)
        s.start()
        s.snapshot()  # what came before the run is not part of it
        proc = subprocess.run(cmd, capture_output=True, text=True)
        s.stop()
        return s.snapshot(), proc


# ---- syscap-agent ---------------------------------------------------------------------------

AGENT_LIB = ROOT / "capture_lib"
# the copies `make agent agent-arm64` puts beside the sources: what --ssh sends and
# `pip install .` ships
AGENTS = {"x86_64": AGENT_LIB / "agents/syscap-agent-x86_64",
          "aarch64": AGENT_LIB / "agents/syscap-agent-aarch64"}  # fmt: skip
AGENT_GETPPID = 1000


@pytest.fixture(scope="session")
def agents() -> dict[str, Path]:
    subprocess.run(["make", "-s", "-C", str(AGENT_LIB), "agent", "agent-arm64"], check=True)
    return AGENTS


@pytest.fixture(scope="session")
def agent(agents: dict[str, Path]) -> Path:
    return agents[os.uname().machine]


def run_workload_pid(workload: Path, getppid: int = AGENT_GETPPID) -> int:
    """Run the workload (getppid getppid() calls, and a fork making none) to its end; its pid."""
    p = subprocess.Popen([str(workload), str(getppid), "0", "0", "0", "0", "0"])
    assert p.wait(timeout=60) == 0
    return p.pid

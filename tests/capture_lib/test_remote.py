"""RemoteSource (`syscap top --remote`) against the real static agent on this host (eBPF).

The command is the local agent itself, as `ssh box syscap-agent stream` would run it on
a box: what reaches the UI is the agent's stream through a pipe either way.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.procs import proc_table
from capture_lib.errors import CaptureError, UsageError
from capture_lib.remote import ConnectionLost, RemoteSource, _filter_commands, remote_host
from capture_lib.snapshot import Filter, Snapshot
from capture_lib.stream import StreamInfo
from tests.capture_lib.conftest import AGENT_GETPPID as GETPPID
from tests.capture_lib.conftest import SYSCAP, bpf_links, report_json, run_workload_pid
from tests.conftest import ROOT

WAIT = 30.0  # seconds: a bound for things that take milliseconds


def command(agent: Path, *extra: str) -> str:
    return shlex.join([str(agent), "stream", "--interval", "0.2", *extra])


@pytest.fixture
def remote(agent: Path) -> Iterator[RemoteSource]:
    src = RemoteSource(command(agent))
    yield src
    src.close()


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Exceptions that escape any thread (the reader's must never)."""
    seen: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda a: seen.append(repr(a.exc_value)))
    return seen


def next_snapshot(src: RemoteSource) -> Snapshot:
    """The snapshot of at least one more interval."""
    assert src.wait_intervals(1, WAIT), src.connection
    return src.snapshot()


def until(src: RemoteSource, t_ns: int) -> list[Snapshot]:
    """Snapshots up to the first that ends after t_ns (CLOCK_MONOTONIC, shared here)."""
    out = [next_snapshot(src)]
    while out[-1].end_ns <= t_ns:
        out.append(next_snapshot(src))
    return out


def calls(snaps: list[Snapshot], pid: int, name: str) -> int:
    return sum(s.count for snap in snaps for p in snap.processes if p.pid == pid
               for s in p.syscalls if s.name == name)  # fmt: skip


def test_it_names_the_box_kernel_and_backend(remote: RemoteSource, agent: Path) -> None:
    assert (remote.kernel, remote.backend) == (os.uname().release, "bpf")
    assert remote.host == agent.name  # not ssh: the command's name
    assert remote.lost is None and remote.connection == f"connected to {agent.name}"
    assert remote.syscall_table.number("getppid") == remote.info.names.index("getppid")


def filtered(src: RemoteSource) -> Snapshot:
    """The first snapshot whose intervals all began under the filter last sent."""
    next_snapshot(src)
    while src.filter_pending:
        next_snapshot(src)
    return next_snapshot(src)  # the interval the filter began with may hold a call in flight


def only(src: RemoteSource, workload: Path) -> None:
    """Count only the workload: with the rest of the machine busy (other tests' process
    churn) the kernel's process x syscall table can fill, and then a call is counted in
    the totals and as a drop but not under its process."""
    src.set_filter(Filter(comms=frozenset({workload.name})))
    filtered(src)


def test_a_known_workload_arrives_exactly(remote: RemoteSource, workload: Path) -> None:
    only(remote, workload)
    pid = run_workload_pid(workload)
    got = until(remote, time.monotonic_ns())
    assert calls(got, pid, "getppid") == GETPPID
    last = got[-1]
    assert last.rings and not last.latency
    assert remote.agent_cost is not None
    cpu, rss = remote.agent_cost
    assert 0 <= cpu <= 100 * (os.cpu_count() or 1) and rss > 1 << 20
    # events are the kernel's counter differences: with nothing dropped, every call
    # that passed the filter is under its process
    if not sum(s.drops for s in got):
        assert sum(s.events for s in got) == sum(p.count for s in got for p in s.processes)
    assert any(s.name == "getppid" and s.count >= GETPPID for snap in got for s in snap.syscalls)


def test_with_durations_the_syscalls_have_percentiles(agent: Path, workload: Path) -> None:
    src = RemoteSource(command(agent, "--durations"))
    try:
        only(src, workload)
        pid = run_workload_pid(workload)
        got = until(src, time.monotonic_ns())
        assert calls(got, pid, "getppid") == GETPPID
        rows = [s for snap in got for s in snap.syscalls if s.name == "getppid"]
        assert all(snap.latency for snap in got)
        assert all(0 < r.p50_ns <= r.p99_ns for r in rows if r.count)
    finally:
        src.close()


def test_sampled_durations_keep_exact_counts(agent: Path, workload: Path) -> None:
    src = RemoteSource(command(agent, "--sampled", "--sample-period", "4"))
    try:
        only(src, workload)
        pid = run_workload_pid(workload)
        got = until(src, time.monotonic_ns())
        assert calls(got, pid, "getppid") == GETPPID
        assert all(snap.sampled and snap.latency for snap in got)
        rows = [s for snap in got for s in snap.syscalls if s.name == "getppid" and s.count]
        assert 0 < sum(r.samples for r in rows) < sum(r.count for r in rows)
    finally:
        src.close()


def test_an_empty_snapshot_when_nothing_arrived(agent: Path) -> None:
    src = RemoteSource(shlex.join([str(agent), "stream", "--interval", "3600"]))
    try:
        snap = src.snapshot()  # the header is here, the first interval an hour away
        assert (snap.processes, snap.syscalls, snap.events) == ((), (), 0)
        assert snap.start_ns == snap.end_ns
        assert src.lost is None
    finally:
        src.close()
    assert src.lost == "connection lost: the agent ended its stream"


def test_a_comm_filter_stops_other_processes_in_the_agents_kernel(
    remote: RemoteSource, spinner: subprocess.Popen[bytes], workload: Path
) -> None:
    while calls([next_snapshot(remote)], spinner.pid, "getppid") == 0:
        pass
    remote.set_filter(Filter(comms=frozenset({workload.name})))
    after = filtered(remote)
    pid = run_workload_pid(workload)
    got = [after, *until(remote, time.monotonic_ns())]
    assert spinner.poll() is None, "the spinner must still be running"
    assert calls(got, spinner.pid, "getppid") == 0
    assert calls(got, pid, "getppid") == GETPPID
    assert {p.comm for s in got for p in s.processes} <= {workload.name}
    remote.set_filter(Filter())
    again = filtered(remote)
    assert calls([again, next_snapshot(remote)], spinner.pid, "getppid") > 0


def test_a_failed_only_filter_reaches_the_agent(
    remote: RemoteSource, spinner: subprocess.Popen[bytes]
) -> None:
    remote.set_filter(Filter(failed_only=True, pids=frozenset({spinner.pid})))
    got = [filtered(remote), next_snapshot(remote)]
    assert calls(got, spinner.pid, "getppid") == 0  # getppid never fails


def test_exclusions_are_refused_and_the_stream_goes_on(remote: RemoteSource) -> None:
    with pytest.raises(UsageError, match="cannot exclude"):
        remote.set_filter(Filter(exclude_pids=frozenset({1})))
    with pytest.raises(UsageError, match="cannot exclude"):
        remote.set_filter(Filter(exclude_comms=frozenset({"sshd"})))
    assert not remote.filter_pending
    next_snapshot(remote)
    assert remote.lost is None


def test_filter_commands_say_only_what_changed() -> None:
    info = StreamInfo("x86_64", "6.1", "bpf", "mono", 0, 0, 1, ("read", "write", "open"))
    assert _filter_commands(Filter(), Filter(), info) == []
    new = Filter(syscalls=frozenset({2, 0}), comms=frozenset({"nginx"}), pids=frozenset({7}),
                 failed_only=True)  # fmt: skip
    assert _filter_commands(Filter(), new, info) == [
        "filter syscalls 0,2", "filter comm nginx", "filter pid 7", "filter failed on"]
    assert _filter_commands(new, Filter(), info) == [
        "filter syscalls all", "filter comm all", "filter pid all", "filter failed off"]
    with pytest.raises(UsageError, match="1 to 15 characters"):
        _filter_commands(Filter(), Filter(comms=frozenset({"a,b"})), info)
    with pytest.raises(UsageError, match="beyond"):
        _filter_commands(Filter(), Filter(syscalls=frozenset({3})), info)


def test_a_killed_command_is_a_lost_connection_that_keeps_what_arrived(
    remote: RemoteSource, workload: Path, thread_errors: list[str]
) -> None:
    only(remote, workload)
    pid = run_workload_pid(workload)
    done = time.monotonic_ns()
    assert remote.wait_intervals(1, WAIT)
    kept: list[Snapshot] = []
    while not kept or kept[-1].end_ns <= done:  # the workload's interval arrived
        kept.append(next_snapshot(remote))
    os.kill(remote.pid, signal.SIGKILL)
    lost = remote.wait_lost(WAIT)
    assert lost is not None and lost.startswith("connection lost: ") and "SIGKILL" in lost, lost
    while True:  # what arrived before the loss is still handed out, then the loss
        try:
            kept.append(remote.snapshot())
        except ConnectionLost as exc:
            assert str(exc) == lost
            break
    assert calls(kept, pid, "getppid") == GETPPID
    assert remote.last is not None and remote.last.processes
    with pytest.raises(ConnectionLost):
        remote.set_filter(Filter(comms=frozenset({"x"})))
    assert thread_errors == []


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group pgid."""
    return [pid for pid, st in proc_table().items() if st.pgrp == pgid and st.state != "Z"]


def gone(pgid: int) -> bool:
    """Whether the group empties (a SIGKILL is delivered asynchronously): polls /proc."""
    deadline = time.monotonic() + WAIT
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        os.sched_yield()
    return True


def test_close_leaves_no_process_behind(agent: Path) -> None:
    # A command that leaves a child holding the stream's pipe after the agent ends.
    src = RemoteSource(f"sh -c 'sleep 1000 & exec {command(agent)}'")
    pgid = src.pid
    next_snapshot(src)
    assert len(group_members(pgid)) == 2
    src.close()
    assert gone(pgid), group_members(pgid)
    assert src.lost is not None


def test_close_ends_the_agents_stream_cleanly(remote: RemoteSource) -> None:
    next_snapshot(remote)
    remote.close()
    assert remote.lost == "connection lost: the agent ended its stream"
    assert not Path(f"/proc/{remote.pid}").exists()


# ---- commands that cannot start ---------------------------------------------------------


@pytest.mark.parametrize("cmd", ["", "   ", "'unclosed"])
def test_an_empty_or_unparsable_command_is_a_usage_error(cmd: str) -> None:
    with pytest.raises(UsageError, match="--remote"):
        RemoteSource(cmd)


def test_a_command_that_does_not_exist_says_so() -> None:
    with pytest.raises(CaptureError, match="cannot run 'no-such-syscap-command': No such file"):
        RemoteSource("no-such-syscap-command stream")


def test_a_command_that_prints_garbage_says_it_is_no_stream() -> None:
    cmd = shlex.join([sys.executable, "-c", "print('Welcome to juno!'); input()"])
    with pytest.raises(CaptureError, match=r"bad magic .*not .*a syscap-agent stream"):
        RemoteSource(cmd)


def test_a_command_that_fails_passes_on_its_last_message() -> None:
    cmd = "sh -c 'echo \"ssh: Could not resolve hostname juno\" >&2; exit 255'"
    with pytest.raises(CaptureError) as err:
        RemoteSource(cmd)
    assert str(err.value) == "ssh: Could not resolve hostname juno (sh: exit status 255)"


def test_a_command_that_never_streams_times_out() -> None:
    with pytest.raises(CaptureError, match=r"no stream from .* within 0\.5 s"):
        RemoteSource("sleep 1000", start_timeout_s=0.5)


@pytest.mark.parametrize(("argv", "host"), [
    (["ssh", "root@juno", "syscap-agent", "stream"], "juno"),
    (["ssh", "-p", "2222", "-i", "key", "-o", "BatchMode=yes", "juno.lab", "x"], "juno.lab"),
    (["/usr/bin/ssh", "-tt", "-lroot", "ssh://me@box:22", "x"], "box"),
    (["kubectl", "exec", "pod", "--", "syscap-agent"], "kubectl"),
])  # fmt: skip
def test_the_host_is_sshs_destination(argv: list[str], host: str) -> None:
    assert remote_host(argv) == host


# ---- syscap record --remote -------------------------------------------------------------


def record_from_a_box(args: list[str], trace: Path, started: str,
                      agents: Callable[[int], list[int]], workload: Path, links: int) -> list[int]:
    """`syscap record ARGS -o TRACE`, which must say started first; once an agent
    (of agents(record's pid)) holds all its links (record_links), the workload runs,
    then Ctrl-C: record exits 0, saying where the trace went, and the trace is
    complete, with the workload's exact count. The agents' pids."""
    proc = subprocess.Popen([*SYSCAP, "record", *args, "-o", str(trace)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith(started), line
        deadline = time.monotonic() + WAIT
        box = agents(proc.pid)
        # the header comes before the probes, which attach one after another
        while not any(bpf_links(p) >= links for p in box):
            assert time.monotonic() < deadline, "the agent never attached"
            box = agents(proc.pid)
        pid = run_workload_pid(workload)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the agent is stopped
        assert proc.wait(timeout=WAIT) == 0
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rest.startswith("syscap record: ") and "bytes of trace written" in rest, rest
    report = report_json(trace)
    assert report["complete"] and report["dropped"] == 0  # its END block came through
    mine = [p for p in report["processes"] if p["pid"] == pid]
    assert mine and mine[0]["syscalls"]["getppid"]["count"] == GETPPID
    return box


def test_record_remote_writes_the_boxs_trace_and_passes_ctrl_c_on(
    agent: Path, workload: Path, tmp_path: Path, record_links: int
) -> None:
    def the_command(record: int) -> list[int]:
        kids = subprocess.run(["pgrep", "-P", str(record)], capture_output=True,
                              text=True).stdout.split()  # fmt: skip
        assert len(kids) == 1, kids
        return [int(kids[0])]

    trace = tmp_path / "box.trace"
    cmd = shlex.join([str(agent), "record", "-o", "-", "--backend", "bpf"])
    (box,) = record_from_a_box(["--remote", cmd], trace, f"syscap record: recording to {trace}",
                               the_command, workload, record_links)  # fmt: skip
    assert gone(box)  # Ctrl-C was passed on to it
    assert trace.stat().st_mode & 0o777 == 0o600


def record_error(*args: str) -> str:
    proc = subprocess.run([*SYSCAP, "record", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=WAIT)  # fmt: skip
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("syscap record: "), lines
    return lines[0]


@pytest.mark.parametrize(("cmd", "words"), [
    ("", "--remote needs the command"),
    ("no-such-syscap-command", "cannot run 'no-such-syscap-command'"),
    ("echo ssh: connect to host juno: refused", "bad magic"),
    ("echo hi", "it printed 3 bytes, not a trace header"),
    ("sh -c 'echo ssh: no route to juno >&2; exit 255'", "ssh: no route to juno (sh: exit status"),
])  # fmt: skip
def test_record_remote_bad_commands_are_one_line_and_leave_no_file(
    tmp_path: Path, cmd: str, words: str
) -> None:
    trace = tmp_path / "t.trace"
    assert words in record_error("--remote", cmd, "-o", str(trace))
    assert not trace.exists()


def test_record_remote_refuses_local_options_and_existing_files(tmp_path: Path) -> None:
    assert "-a with --remote" in record_error("--remote", "x", "-a")
    assert "--comm with --remote" in record_error("--remote", "x", "--comm", "nginx")
    assert "--backend with --remote" in record_error("--remote", "x", "--backend", "bpf")
    there = tmp_path / "there.trace"
    there.write_bytes(b"keep me")
    assert "--force" in record_error("--remote", "x", "-o", str(there))
    assert there.read_bytes() == b"keep me"


def test_ctrl_c_while_waiting_for_the_header_leaves_nothing_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    cmd = f"sh -c 'echo $$ > {pidfile}; exec sleep 1000'"
    script = f"from capture_lib.remote import RemoteSource; RemoteSource({cmd!r})"
    # SIGINT at its default action: Python then turns it into KeyboardInterrupt (a job a
    # non-interactive shell put in the background inherits it ignored)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + WAIT
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None
            os.sched_yield()
        started = int(pidfile.read_text())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=WAIT) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert gone(started), group_members(started)


def test_record_remote_keeps_a_trace_that_stops_early_and_says_so(
    agent: Path, tmp_path: Path, spinner: subprocess.Popen[bytes]
) -> None:
    # The spinner makes millions of calls a second: the trace passes the 20000-byte cut
    # long before --duration, however quiet the rest of the machine is.
    trace = tmp_path / "cut.trace"
    cmd = f"sh -c '{agent} record -o - --duration 5 | head -c 20000'"
    proc = subprocess.run([*SYSCAP, "record", "--remote", cmd, "-o", str(trace)], cwd=ROOT,
                          capture_output=True, text=True, timeout=WAIT)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert last.startswith(f"syscap record: {trace} ends early (20000 bytes): "), last
    assert trace.stat().st_size == 20000
    report = subprocess.run([*SYSCAP, "report", str(trace), "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=WAIT)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["complete"] is False

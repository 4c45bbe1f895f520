"""`syscap exporter`: counters scraped from a live capture of real processes."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from capture_lib.exporter import is_loopback
from tests.capture_lib.conftest import SYSCAP, syscap
from tests.conftest import ROOT
from tests.export.conftest import Exporter, Samples, free_port, stop, unique_comm, wait_http

# workload GETPPID OPENS FAILS WRITES CHILD_GETPPID THREAD_GETPPID
ARGS = (4000, 60, 25, 700, 1100, 1300)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def comm_values(samples: Samples) -> set[str]:
    return {dict(labels)["comm"] for (name, labels) in samples
            if name == "syscap_syscalls_total"}


def test_counter_increase_equals_the_workload_calls(
        exporter: type[Exporter], workload: Path, tmp_path: Path) -> None:
    exe = unique_comm(tmp_path, workload, "sxw")
    e = exporter("--comm", exe.name)
    before = e.scrape()
    t0 = time.monotonic()
    subprocess.run([str(exe), *map(str, ARGS)], check=True, timeout=60)
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))  # scrapes a second apart
    after = e.scrape()

    def inc(name: str, syscall: str) -> float:
        return (value(after, name, comm=exe.name, syscall=syscall)
                - value(before, name, comm=exe.name, syscall=syscall))

    getppid_n, opens, fails, writes, child_n, thread_n = ARGS
    assert inc("syscap_syscalls_total", "getppid") == getppid_n + child_n + thread_n
    assert inc("syscap_syscalls_total", "write") == writes
    assert inc("syscap_syscall_errors_total", "openat") == fails
    # the openat of /dev/null for the writes, plus the loop's
    assert inc("syscap_syscalls_total", "openat") >= opens + 1
    assert inc("syscap_syscall_errors_total", "getppid") == 0


def getppid_histogram(e: Exporter, exe: Path) -> tuple[Samples, int, list[float]]:
    """Run the workload exe under e, scrape: the scrape, the getppid calls the
    workload made, and getppid's cumulative duration buckets in bound order
    (+Inf last)."""
    subprocess.run([str(exe), *map(str, ARGS)], check=True, timeout=60)
    time.sleep(0.3)
    s = e.scrape()
    getppid_n, _, _, _, child_n, thread_n = ARGS
    h = {dict(labels)["le"]: v for (name, labels), v in s.items()
         if name == "syscap_syscall_duration_seconds_bucket"
         and dict(labels)["syscall"] == "getppid"}
    bounds = sorted(h, key=float)
    counts = [h[b] for b in bounds]
    assert bounds[-1] == "+Inf" and counts == sorted(counts)  # cumulative
    return s, getppid_n + child_n + thread_n, counts


def test_duration_histogram_counts_every_call(
        exporter: type[Exporter], workload: Path, tmp_path: Path) -> None:
    exe = unique_comm(tmp_path, workload, "sxh")
    e = exporter("--latency", "--comm", exe.name, "-e", "getppid")
    s, calls, counts = getppid_histogram(e, exe)
    assert counts[-1] == calls  # +Inf
    assert value(s, "syscap_syscall_duration_seconds_count", syscall="getppid") == calls
    total = value(s, "syscap_syscall_duration_seconds_sum", syscall="getppid")
    assert 0 < total < calls * 1e-3  # getppid takes well under a millisecond
    # only getppid passes -e: no other syscall series exist
    assert {dict(labels)["syscall"] for (name, labels) in s
            if name == "syscap_syscalls_total"} == {"getppid"}


def test_sampled_histogram_counts_every_call_from_a_sample(
        exporter: type[Exporter], workload: Path, tmp_path: Path) -> None:
    exe = unique_comm(tmp_path, workload, "sxs")
    # a whole CPU's budget: the sampling window stays open, so this short
    # workload's calls are sampled whenever it runs
    e = exporter("--durations", "sampled", "--sample-budget", "100", "--comm", exe.name,
                 "-e", "getppid")
    s, calls, counts = getppid_histogram(e, exe)
    assert counts[-1] == calls  # +Inf: the count is exact; the buckets are estimated
    assert counts[-2] <= calls
    assert value(s, "syscap_syscall_duration_seconds_count", syscall="getppid") == calls
    assert value(s, "syscap_syscalls_total", comm=exe.name, syscall="getppid") == calls
    total = value(s, "syscap_syscall_duration_seconds_sum", syscall="getppid")
    assert 0 < total < calls * 1e-3
    info = [dict(labels) for (name, labels) in s if name == "syscap_backend_info"]
    assert info[0]["mode"] == "sampled"
    assert "sys_enter_sample" in attached_programs(e.proc.pid)


def test_ring_and_backend_metrics_are_exported(exporter: type[Exporter]) -> None:
    e = exporter("--comm", "sx-nothing")
    s = e.scrape()
    info = [dict(labels) for (name, labels) in s if name == "syscap_backend_info"]
    assert len(info) == 1 and info[0]["backend"] == "bpf"
    cpus = {dict(labels)["cpu"] for (name, labels) in s if name == "syscap_ring_drops_total"}
    assert len(cpus) >= 1
    for cpu in cpus:
        assert value(s, "syscap_ring_size_bytes", cpu=cpu) > 0
        assert 0 <= value(s, "syscap_ring_fill_ratio", cpu=cpu) <= 1


def test_comm_labels_stay_within_the_bound_with_5000_short_lived_processes(
        exporter: type[Exporter], spawner: Path, tmp_path: Path) -> None:
    count, calls, top = 5000, 10, 5
    links = tmp_path / "bin"
    links.mkdir()
    for i in range(count):
        (links / f"c{i}").symlink_to(spawner)
    proc = subprocess.Popen([str(spawner), str(links), str(count), str(calls)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        # only scrapes fold intervals in (--interval is long), so every value a
        # series had before it lost its label was seen by a scrape
        e = exporter("-p", str(proc.pid), "-e", "getppid", "--top-comms", str(top),
                     "--interval", "3600")
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
        seen: set[str] = set()
        prev: dict[str, float] = {}
        total = 0.0
        scrapes = 0
        while True:
            finished = proc.poll() is not None
            time.sleep(0.3 if finished else 0.05)
            s = e.scrape()
            scrapes += 1
            comms = comm_values(s)
            assert len(comms) <= top + 1, comms
            cur = {c: value(s, "syscap_syscalls_total", comm=c, syscall="getppid") for c in comms}
            # a series that reappears starts from zero (a counter reset to Prometheus)
            total += sum(v - prev.get(c, 0.0) for c, v in cur.items())
            prev = cur
            seen |= comms
            if finished:
                break
        assert proc.stdout.read() == "done\n" and proc.wait() == 0
        assert total == count * calls  # nothing lost to label churn
        assert "other" in seen and len(seen - {"other"}) >= top
        assert scrapes > 5
    finally:
        stop(proc)


def test_a_taken_port_is_a_one_line_error(bpf_ready: None) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = syscap("exporter", "--listen", f"127.0.0.1:{port}", check=False, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cannot listen on" in r.stderr, r.stderr


def attached_programs(pid: int) -> set[str]:
    """Names of the BPF programs pid has attached: the prog_id of each of its
    BPF link fds (/proc/PID/fdinfo), named by `bpftool prog show id` in its
    plain-text form."""
    names = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if "link_id" not in info or "prog_id" not in info:
            continue
        out = subprocess.run(["bpftool", "prog", "show", "id", info["prog_id"].strip()],
                             capture_output=True, text=True, check=True).stdout
        m = re.search(r"\bname (\S+)", out)
        assert m, out
        names.add(m.group(1))
    return names


def capabilities(pid: int) -> dict[str, set[int]]:
    """CapEff and CapPrm of every thread of pid -> the values seen (a thread
    that ends while we look, such as a scrape's, is skipped)."""
    seen: dict[str, set[int]] = {"CapEff": set(), "CapPrm": set()}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                lines = f.readlines()
        except FileNotFoundError:
            continue
        for line in lines:
            key, _, value = line.partition(":")
            if key in seen:
                seen[key].add(int(value, 16))
    return seen


def bpf_needs_no_capability_once_loaded() -> bool:
    """From 6.5 the kernel checks capabilities only where BPF objects are made;
    before, kernel.unprivileged_bpf_disabled made every bpf() call need CAP_BPF."""
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    assert m
    if (int(m.group(1)), int(m.group(2))) >= (6, 5):
        return True
    with open("/proc/sys/kernel/unprivileged_bpf_disabled") as f:
        return f.read().strip() == "0"


def test_exporter_counts_with_the_count_program_and_no_capabilities(
        exporter: type[Exporter], workload: Path, tmp_path: Path) -> None:
    exe = unique_comm(tmp_path, workload, "sxc")
    e = exporter("--comm", exe.name)
    pid = e.proc.pid
    progs = attached_programs(pid)
    assert "sys_exit_count" in progs and not progs & {"sys_enter", "sys_exit"}, progs
    caps = capabilities(pid)
    expected = 0 if bpf_needs_no_capability_once_loaded() else 1 << 39  # CAP_BPF
    assert caps == {"CapEff": {expected}, "CapPrm": {expected}}, caps
    assert len(os.listdir(f"/proc/{pid}/task")) > 1  # the consumer and the server too

    # it still reads the kernel's counters: exact counts after the drop
    subprocess.run([str(exe), *map(str, ARGS)], check=True, timeout=60)
    s = e.scrape()
    getppid_n, _, _, writes, child_n, thread_n = ARGS
    assert value(s, "syscap_syscalls_total", comm=exe.name, syscall="getppid") == \
        getppid_n + child_n + thread_n
    assert value(s, "syscap_syscalls_total", comm=exe.name, syscall="write") == writes
    assert not any(name.startswith("syscap_syscall_duration_seconds") for name, _ in s)
    info = [dict(labels) for (name, labels) in s if name == "syscap_backend_info"]
    assert info[0]["mode"] == "counts"
    assert capabilities(pid) == caps  # serving scrapes took none back


def test_latency_attaches_the_timing_programs(exporter: type[Exporter]) -> None:
    e = exporter("--latency", "--comm", "sx-nothing")
    progs = attached_programs(e.proc.pid)
    assert {"sys_enter", "sys_exit"} <= progs and "sys_exit_count" not in progs, progs
    info = [dict(labels) for (name, labels) in e.scrape() if name == "syscap_backend_info"]
    assert info[0]["mode"] == "records"


@pytest.mark.parametrize("listen", ["0.0.0.0:{port}", "[::]:{port}", "10.1.2.3:{port}",
                                    "myhost.example:{port}"])
def test_a_public_listen_address_needs_listen_public(listen: str) -> None:
    r = syscap("exporter", "--listen", listen.format(port=free_port()), check=False,
               timeout=60)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "not a loopback address" in lines[0] and "--listen-public" in lines[0]


def test_loopback_addresses_are_told_apart_from_public_ones() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "localhost", "::ffff:127.0.0.1"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.1", "::ffff:10.0.0.1", "example.com", ""):
        assert not is_loopback(host), host


def test_listen_public_serves_and_says_what_it_exposes(bpf_ready: None) -> None:
    port = free_port()
    proc = subprocess.Popen([*SYSCAP, "exporter", "--listen", f"0.0.0.0:{port}",
                             "--listen-public", "--comm", "sx-nothing"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        warning, started = proc.stderr.readline(), proc.stderr.readline()
        assert "serving http" in started, warning + started
        assert warning.startswith("syscap exporter: warning:") and f"0.0.0.0:{port}" in warning
        assert "syscall counts" in warning and "comms" in warning
        wait_http(f"http://127.0.0.1:{port}/metrics", proc)
    finally:
        stop(proc)
        if proc.stderr is not None:
            assert proc.stderr.read() == ""  # one line of warning, no more
            proc.stderr.close()

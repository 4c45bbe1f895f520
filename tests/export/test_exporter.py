"""`syscap exporter`: counters scraped from a live capture of real processes."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.export.conftest import Exporter, Samples, stop, unique_comm

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


def test_duration_histogram_counts_every_call(
        exporter: type[Exporter], workload: Path, tmp_path: Path) -> None:
    exe = unique_comm(tmp_path, workload, "sxh")
    e = exporter("--comm", exe.name, "-e", "getppid")
    subprocess.run([str(exe), *map(str, ARGS)], check=True, timeout=60)
    time.sleep(0.3)
    s = e.scrape()
    getppid_n, _, _, _, child_n, thread_n = ARGS
    calls = getppid_n + child_n + thread_n
    h = {dict(labels)["le"]: v for (name, labels), v in s.items()
         if name == "syscap_syscall_duration_seconds_bucket"
         and dict(labels)["syscall"] == "getppid"}
    bounds = sorted(h, key=float)
    assert bounds[-1] == "+Inf" and h["+Inf"] == calls
    counts = [h[b] for b in bounds]
    assert counts == sorted(counts)  # cumulative
    assert value(s, "syscap_syscall_duration_seconds_count", syscall="getppid") == calls
    total = value(s, "syscap_syscall_duration_seconds_sum", syscall="getppid")
    assert 0 < total < calls * 1e-3  # getppid takes well under a millisecond
    # only getppid passes -e: no other syscall series exist
    assert {dict(labels)["syscall"] for (name, labels) in s
            if name == "syscap_syscalls_total"} == {"getppid"}


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
    from tests.capture_lib.conftest import syscap

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = syscap("exporter", "--listen", f"127.0.0.1:{port}", check=False, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cannot listen on" in r.stderr, r.stderr

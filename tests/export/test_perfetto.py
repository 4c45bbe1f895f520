"""`syscap export --format perfetto`: the JSON a recorded workload turns into.

Perfetto's Python trace processor cannot run here (it downloads its
trace_processor_shell binary on first use, and this machine is offline), so
the JSON trace-event structure Perfetto's importer relies on is checked
strictly instead.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from capture_lib.trace import TraceFile
from tests.capture_lib.conftest import syscap
from tests.conftest import ROOT

# workload GETPPID OPENS FAILS WRITES CHILD_GETPPID THREAD_GETPPID
ARGS = (3000, 40, 15, 500, 700, 900)
HEX = re.compile(r"^(0|0x[0-9a-f]+)$")


def syscall_records(trace: Path) -> Counter[tuple[int, int, int]]:
    """(tgid, tid, nr) -> records of kind SYSCALL, read block by block (test side)."""
    out: Counter[tuple[int, int, int]] = Counter()
    with TraceFile(str(trace)) as tf:
        for blk in tf.blocks():
            if blk.type == 1:  # SYSCAP_BLOCK_EVENTS
                for i in range(blk.count):
                    ev = blk.events[i]
                    if ev.kind == 1:  # SYSCAP_EV_SYSCALL
                        out[(ev.tgid, ev.tid, ev.nr)] += 1
    return out


def validate(doc: Any) -> list[dict[str, Any]]:
    """Check the JSON trace-event structure strictly; returns traceEvents."""
    assert isinstance(doc, dict) and set(doc) == {"displayTimeUnit", "otherData", "traceEvents"}
    assert doc["displayTimeUnit"] == "ns"
    assert isinstance(doc["otherData"], dict)
    events = doc["traceEvents"]
    assert isinstance(events, list)
    for ev in events:
        ph = ev["ph"]
        assert isinstance(ev["pid"], int) and ev["pid"] > 0
        if ph == "X":
            assert set(ev) == {"ph", "cat", "name", "pid", "tid", "ts", "dur", "args"}, ev
            assert isinstance(ev["name"], str) and re.fullmatch(r"[a-z0-9_]+", ev["name"])
            assert isinstance(ev["tid"], int) and ev["tid"] > 0
            assert isinstance(ev["ts"], int | float) and ev["ts"] > 0
            assert isinstance(ev["dur"], int | float) and ev["dur"] >= 0
            a = ev["args"]
            assert set(a) <= {"ret", "errno", "noreturn", "args"} and isinstance(a["ret"], int)
            if "args" in a:  # only from a trace recorded with --args
                assert len(a["args"]) == 6 and all(HEX.match(x) for x in a["args"])
            if "errno" in a:
                assert -4095 <= a["ret"] < 0 and re.fullmatch(r"E[A-Z0-9]+", a["errno"])
        elif ph == "M":
            assert set(ev) == {"ph", "name", "pid", "tid", "args"}, ev
            assert ev["name"] in ("process_name", "thread_name")
            assert isinstance(ev["args"]["name"], str) and ev["args"]["name"]
        elif ph == "C":
            assert set(ev) == {"ph", "name", "pid", "ts", "args"}, ev
            assert ev["name"] == "syscalls" and set(ev["args"]) == {"calls/s"}
            assert isinstance(ev["args"]["calls/s"], int | float) and ev["args"]["calls/s"] >= 0
        else:
            raise AssertionError(f"unexpected event phase {ph!r}: {ev}")
    return list(events)


@pytest.fixture(scope="module")
def recorded(bpf_ready: None, workload: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("perfetto")
    trace, out = d / "w.trace", d / "w.json"
    syscap("record", "-o", str(trace), "--", str(workload), *map(str, ARGS))
    syscap("export", str(trace), "--format", "perfetto", "-o", str(out))
    return trace, out, json.loads(out.read_text())


def slices(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["ph"] == "X"]


def test_arguments_are_exported_only_from_a_trace_that_has_them(recorded: Any,
                                                                 workload: Path,
                                                                 tmp_path: Path) -> None:
    _, _, doc = recorded
    assert not any("args" in e["args"] for e in slices(validate(doc)))
    trace, out = tmp_path / "a.trace", tmp_path / "a.json"
    syscap("record", "--args", "-o", str(trace), "--", str(workload), *map(str, ARGS))
    syscap("export", str(trace), "--format", "perfetto", "-o", str(out))
    got = slices(validate(json.loads(out.read_text())))
    assert got and all(len(e["args"]["args"]) == 6 for e in got)
    # the workload's failing opens name a path: their first argument is a pointer
    fails = [e for e in got if e["name"] == "openat" and e["args"].get("errno") == "ENOENT"]
    assert len(fails) >= ARGS[2] and all(e["args"]["args"][1] != "0" for e in fails)


def test_export_is_valid_trace_event_json_with_one_slice_per_record(recorded: Any) -> None:
    trace, _, doc = recorded
    events = validate(doc)
    records = syscall_records(trace)
    assert len(slices(events)) == sum(records.values()) > sum(ARGS)
    with TraceFile(str(trace)) as tf:
        want = Counter({(t, tid, tf.name(nr)): n for (t, tid, nr), n in records.items()})
    got = Counter((e["pid"], e["tid"], e["name"]) for e in slices(events))
    assert got == want


def test_workload_calls_land_on_their_threads(recorded: Any) -> None:
    _, _, doc = recorded
    per_thread = Counter((e["pid"], e["tid"]) for e in slices(doc["traceEvents"])
                         if e["name"] == "getppid")
    main_pid = next(e["pid"] for e in slices(doc["traceEvents"]) if e["name"] == "execve")
    getppid_n, _, fails, _, child_n, thread_n = ARGS
    assert per_thread[(main_pid, main_pid)] == getppid_n
    others = sorted(n for (pid, tid), n in per_thread.items() if (pid, tid) != (main_pid, main_pid))
    assert others == sorted([child_n, thread_n])
    failed = [e for e in slices(doc["traceEvents"])
              if e["name"] == "openat" and e["args"].get("errno") == "ENOENT"]
    assert len([e for e in failed if e["pid"] == main_pid]) >= fails


def test_slices_on_a_thread_do_not_overlap(recorded: Any) -> None:
    _, _, doc = recorded
    by_tid: dict[int, list[tuple[float, float]]] = {}
    for e in slices(doc["traceEvents"]):
        by_tid.setdefault(e["tid"], []).append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_tid.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end - 0.001  # rounding of the microsecond text


def test_processes_and_threads_are_named_from_the_trace(recorded: Any, workload: Path) -> None:
    _, _, doc = recorded
    events = doc["traceEvents"]
    names = {(e["name"], e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M"}
    tids = {(e["pid"], e["tid"]) for e in slices(events) if e["name"] == "getppid"}
    for pid, tid in tids:  # main thread, its thread and the forked child
        assert names[("thread_name", pid, tid)] == workload.name
        assert names[("process_name", pid, pid)] == workload.name


def test_counters_integrate_to_each_process_slice_count(recorded: Any) -> None:
    _, _, doc = recorded
    events = doc["traceEvents"]
    bin_s = 0.1
    per_pid = Counter(e["pid"] for e in slices(events))
    for pid, n in per_pid.items():
        points = sorted((e["ts"], e["args"]["calls/s"]) for e in events
                        if e["ph"] == "C" and e["pid"] == pid)
        assert points and points[-1][1] == 0  # the step function ends at zero
        total = sum(v * (t1 - t0) / 1e6 for (t0, v), (t1, _) in itertools.pairwise(points))
        assert total == pytest.approx(n, abs=1e-6 * n), (pid, points)
        assert all(abs(round(t / (bin_s * 1e6)) - t / (bin_s * 1e6)) < 1e-9 for t, _ in points)


def test_filters_keep_only_what_was_asked(recorded: Any, tmp_path: Path) -> None:
    trace, _, doc = recorded
    all_slices = slices(doc["traceEvents"])
    main_pid = next(e["pid"] for e in all_slices if e["name"] == "execve")
    child = next(e["pid"] for e in all_slices if e["pid"] != main_pid)

    out = tmp_path / "f.json"
    syscap("export", str(trace), "-o", str(out), "-p", str(child), "-e", "getppid,write")
    got = slices(validate(json.loads(out.read_text())))
    want = [e for e in all_slices if e["pid"] == child and e["name"] in ("getppid", "write")]
    assert len(got) == len(want) == ARGS[4]

    # -p follows fork: the parent's export includes the child it forked
    syscap("export", str(trace), "-o", str(out), "--force", "-p", str(main_pid), "-e", "getppid")
    got = slices(validate(json.loads(out.read_text())))
    assert len(got) == ARGS[0] + ARGS[4] + ARGS[5]

    with TraceFile(str(trace)) as tf:
        start_us = tf.info.start_mono_ns / 1000
    ts = sorted(e["ts"] for e in all_slices)
    lo, hi = ts[len(ts) // 4], ts[3 * len(ts) // 4]
    s0, s1 = (lo - start_us) / 1e6, (hi - start_us) / 1e6
    syscap("export", str(trace), "-o", str(out), "--force", "--start", repr(s0), "--end",
           repr(s1))
    got = slices(validate(json.loads(out.read_text())))
    t0, t1 = start_us + int(s0 * 1e9) / 1000, start_us + int(s1 * 1e9) / 1000
    want = [e for e in all_slices if t0 <= e["ts"] < t1]
    assert 0 < len(got) == len(want) < len(all_slices)


def test_unknown_syscall_and_missing_trace_are_one_line_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "x.json")
    r = syscap("export", str(tmp_path / "none.trace"), "-o", out, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not exist" in r.stderr


# Runs the export in a fresh interpreter and prints its peak RSS (VmHWM of its
# own address space: ru_maxrss would include the forking pytest process's).
PEAK_RSS = """
import sys
from capture_lib.cli import main
rc = main(sys.argv[1:])
with open("/proc/self/status") as f:
    print(next(line.split()[1] for line in f if line.startswith("VmHWM:")))
sys.exit(rc)
"""


def _export_peak_rss_kb(trace: Path) -> tuple[int, float]:
    """Peak RSS (KiB) and seconds of one `syscap export` run."""
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", PEAK_RSS, "export", str(trace), "-o", os.devnull],
                       cwd=ROOT, capture_output=True, text=True, check=True)
    return int(r.stdout.split()[-1]), time.monotonic() - t0


def test_export_memory_stays_flat_on_a_trace_ten_times_larger(
        bpf_ready: None, tmp_path: Path, c_build_dir: Path) -> None:
    from tests.capture_lib.conftest import WORKLOADS as CAPTURE_WORKLOADS
    from tests.conftest import build_c

    flood = build_c(CAPTURE_WORKLOADS / "flood.c", c_build_dir, "-lpthread")
    rss: list[int] = []
    for calls in (150_000, 1_500_000):
        trace = tmp_path / f"f{calls}.trace"
        syscap("record", "-o", str(trace), "--", str(flood), "1", str(calls))
        size = trace.stat().st_size
        peak, secs = _export_peak_rss_kb(trace)
        print(f"export of {size >> 20} MiB trace ({calls} calls): peak RSS {peak} KiB, "
              f"{secs:.2f} s")
        rss.append(peak)
        trace.unlink()
    # the large trace is ~140 MiB: growing with it would show as +100 MiB
    assert rss[1] - rss[0] < 8 * 1024, rss


def test_writing_over_the_trace_itself_is_refused(recorded: Any) -> None:
    trace = recorded[0]
    size = trace.stat().st_size
    r = syscap("export", str(trace), "-o", str(trace), check=False)
    assert r.returncode == 2 and "the trace itself" in r.stderr
    assert trace.stat().st_size == size

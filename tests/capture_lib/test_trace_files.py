"""Trace files as users meet them: round trip, kill -9, corruption, other arch."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from capture_lib.syscall_tables import TABLES
from tests.capture_lib.conftest import report_json, start_recorder, syscap

pytestmark = pytest.mark.usefixtures("bpf_ready")

HEADER = struct.Struct("<8s4I16s64s16s16sQQ4I")  # struct syscap_trace_header


def test_round_trip_matches_the_recorder_summary(flood: Path, trace_path: Path) -> None:
    proc = syscap("record", "-o", str(trace_path), "--", str(flood), "2", "5000")
    rep = report_json(trace_path)
    assert rep["syscalls"]["getppid"]["count"] == 10000
    assert f"({rep['syscalls'] and sum(v['count'] for v in rep['syscalls'].values())} syscalls)" \
        in proc.stderr
    assert rep["complete"] and rep["warnings"] == []


def test_kill_9_leaves_a_readable_truncated_trace(flood: Path, trace_path: Path) -> None:
    busy = subprocess.Popen([str(flood), "1", "1000000000"])
    rec = start_recorder("-a", "-o", str(trace_path))
    try:
        # wait until at least one block is on disk, then kill without warning
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
                not trace_path.exists() or trace_path.stat().st_size < 300_000):
            time.sleep(0.05)
        rec.send_signal(signal.SIGKILL)
        rec.wait()
    finally:
        busy.kill()
        busy.wait()
    proc = syscap("report", str(trace_path))
    assert "truncated" in proc.stderr
    rep = report_json(trace_path)
    assert not rep["complete"]
    assert rep["events"] > 1000
    assert any("truncated" in w for w in rep["warnings"])


def test_corrupt_block_is_skipped_with_a_warning(flood: Path, trace_path: Path) -> None:
    syscap("record", "-o", str(trace_path), "-e", "getppid", "--", str(flood), "1", "20000")
    whole = report_json(trace_path)
    assert whole["events"] == 20000
    data = bytearray(trace_path.read_bytes())
    header_size = HEADER.unpack_from(data)[4]
    data[header_size + 32 + 5000] ^= 0xFF  # inside the first block's payload
    trace_path.write_bytes(bytes(data))
    proc = syscap("report", str(trace_path), "--json")
    assert "corrupt block" in proc.stderr
    rep = report_json(trace_path)
    assert 0 < rep["events"] < 20000
    assert rep["complete"]


def test_trace_from_another_arch_decodes_with_its_own_table(flood: Path,
                                                           trace_path: Path) -> None:
    syscap("record", "-o", str(trace_path), "-e", "getppid", "--", str(flood), "1", "10")
    data = trace_path.read_bytes()
    fields = list(HEADER.unpack_from(data))
    header_size, nsys, names_len = fields[4], fields[12], fields[13]
    arm = TABLES["aarch64"]
    names = b"".join(arm.get(nr, "").encode() + b"\0" for nr in range(nsys))
    names += b"\0" * ((8 - (HEADER.size + len(names)) % 8) % 8)
    fields[5] = b"aarch64"
    fields[4] = HEADER.size + len(names)
    fields[13] = len(names)
    fields[14] = 0
    fields[14] = zlib.crc32(HEADER.pack(*fields) + names)
    assert header_size == HEADER.size + names_len
    trace_path.write_bytes(HEADER.pack(*fields) + names + data[header_size:])
    rep = report_json(trace_path)
    assert rep["arch"] == "aarch64"
    # x86-64 getppid is number 110, which is timer_settime on arm64
    assert rep["syscalls"][arm[110]]["count"] == 10
    assert "getppid" not in rep["syscalls"]


SEEK_TO = 123456789  # an lseek offset no other call passes
SEEK = ("import os, sys; fd = os.open(sys.executable, os.O_RDONLY); "
        f"[os.lseek(fd, {SEEK_TO} + i, os.SEEK_SET) for i in range(5)]")


def lseek_records(path: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    """The trace's record size, its lseek records, and (fd, offset, whence) of
    each that returned an offset from SEEK_TO on."""
    from capture_lib.trace import TraceFile

    out, n = [], 0
    with TraceFile(str(path)) as t:
        size = HEADER.unpack_from(path.read_bytes())[3]
        for blk in t.blocks():
            if blk.type != 1:
                continue
            for i in range(blk.count):
                ev = blk.events[i]
                if ev.kind == 1 and t.name(ev.nr) == "lseek":
                    n += 1
                    if ev.ret >= SEEK_TO:
                        out.append((ev.args[0], ev.args[1], ev.args[2]))
    return size, n, out


@pytest.mark.parametrize("with_args", [False, True], ids=["compact", "args"])
def test_arguments_only_when_asked(trace_path: Path, with_args: bool) -> None:
    extra = ["--args"] if with_args else []
    syscap("record", "-o", str(trace_path), "-e", "lseek", *extra, "--",
           sys.executable, "-c", SEEK)  # fmt: skip
    size, n, calls = lseek_records(trace_path)
    assert len(calls) == 5
    if with_args:
        assert size == 96
        assert sorted(off for _, off, _ in calls) == [SEEK_TO + i for i in range(5)]
        assert {(fd > 2, whence) for fd, _, whence in calls} == {(True, 0)}
    else:
        assert size == 48
        assert calls == [(0, 0, 0)] * 5
    rep = report_json(trace_path)
    assert rep["syscalls"]["lseek"]["count"] == n and rep["complete"]


CORPUS = Path(__file__).parent / "c" / "corpus" / "trace"


def test_version_1_traces_still_read() -> None:
    """true.trace was written with 96-byte struct syscap_event records (record
    version 1) by an earlier syscap: `true` run under `syscap record`."""
    data = (CORPUS / "true.trace").read_bytes()
    assert HEADER.unpack_from(data)[2:4] == (1, 96)
    rep = report_json(CORPUS / "true.trace")
    assert rep["complete"] and rep["warnings"] == []
    assert rep["syscalls"]["execve"]["count"] == 1
    assert rep["syscalls"]["exit_group"]["count"] == 1
    assert rep["events"] > 20

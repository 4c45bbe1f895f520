"""Thin layer over the cffi extension: loading it, C snapshots -> Python objects.

Everything here maps 1:1 onto include/syscap.h; the friendly API lives in
live.py, trace.py and replay.py. Errors from C become SyscapError subclasses
here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from capture_lib.errors import CaptureError, SyscapError
from capture_lib.snapshot import Filter, ProcessStats, RingStats, Snapshot, SyscallStats

try:
    from capture_lib._native import ffi, lib
except ImportError as e:  # pragma: no cover - depends on the build
    _import_error: ImportError | None = e
    ffi = None
    lib = None
else:
    _import_error = None

ERRLEN = 512


def require() -> tuple[Any, Any]:
    """(ffi, lib), or CaptureError saying how to build them."""
    if lib is None:
        raise CaptureError(
            f"capture_lib's native library is not built ({_import_error}): run ./setup.sh"
        )
    return ffi, lib


def errbuf() -> Any:
    f, _ = require()
    return f.new(f"char[{ERRLEN}]")


def errstr(buf: Any) -> str:
    f, _ = require()
    return str(f.string(buf).decode(errors="replace"))


def c_filter(flt: Filter) -> Any:
    """A struct syscap_filter for flt (the process set is applied separately)."""
    f, L = require()
    c = f.new("struct syscap_filter *")
    flags = 0
    if flt.syscalls:
        flags |= L.SYSCAP_FILTER_SYSCALLS
        for nr in flt.syscalls:
            if not 0 <= nr < L.SYSCAP_MAX_SYSCALLS:
                raise SyscapError(
                    f"syscall number {nr} is out of range (0..{L.SYSCAP_MAX_SYSCALLS - 1})"
                )
            c.syscalls[nr >> 6] |= 1 << (nr & 63)
    if flt.pids:
        flags |= L.SYSCAP_FILTER_PIDS
    if flt.comms and flt.exclude_comms:
        raise SyscapError("give comms to include or comms to exclude, not both")
    comms = flt.comms or flt.exclude_comms
    if len(comms) > L.SYSCAP_MAX_COMMS:
        raise SyscapError(f"at most {L.SYSCAP_MAX_COMMS} comm names can be filtered in the kernel")
    if comms:
        flags |= L.SYSCAP_FILTER_COMM if flt.comms else L.SYSCAP_FILTER_COMM_EXCLUDE
        for i, name in enumerate(sorted(comms)):
            raw = name.encode()[: L.SYSCAP_COMM_LEN - 1]  # the kernel keeps 15 bytes
            c.comm[i] = raw
        c.ncomm = len(comms)
    if flt.failed_only:
        flags |= L.SYSCAP_FILTER_FAILED
    c.flags = flags
    return c


def _comm(raw: Any) -> str:
    f, _ = require()
    return str(f.string(raw).decode(errors="replace"))


def convert_snapshot(
    snap: Any, name_of: Callable[[int], str], missed: int | None = None
) -> Snapshot:
    """Turn a filled struct syscap_snapshot into a Snapshot (copies everything)."""

    def row(r: Any) -> SyscallStats:
        return SyscallStats(
            nr=r.nr,
            name=name_of(r.nr),
            count=r.count,
            errors=r.errors,
            total_ns=r.total_ns,
            p50_ns=r.p50_ns,
            p99_ns=r.p99_ns,
            last_errno=r.last_errno,
            samples=r.samples,
        )

    rows = snap.rows
    procs = []
    for i in range(snap.nprocs):
        p = snap.procs[i]
        first = p.first_row
        procs.append(
            ProcessStats(
                pid=p.tgid,
                comm=_comm(p.comm),
                count=p.count,
                errors=p.errors,
                total_ns=p.total_ns,
                p50_ns=p.p50_ns,
                p99_ns=p.p99_ns,
                syscalls=tuple(row(rows[k]) for k in range(first, first + p.nrows)),
                exited=bool(p.exited),
            )
        )
    rings = tuple(
        RingStats(
            cpu=r.cpu, size=r.size, used=r.used, max_used=r.max_used, events=r.events,
            drops=r.drops,
        )
        for r in (snap.rings[i] for i in range(snap.nrings))
    )
    return Snapshot(
        start_ns=snap.start_ns,
        end_ns=snap.end_ns,
        processes=tuple(procs),
        syscalls=tuple(row(snap.sys[i]) for i in range(snap.nsys)),
        rings=rings,
        events=snap.events,
        drops=snap.drops,
        missed=snap.missed if missed is None else missed,
        latency=bool(snap.latency),
        sampled=snap.latency == 2,
    )

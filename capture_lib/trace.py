"""Trace files: reading them block by block and turning them into reports.

Records stay in C: Python walks blocks and hands them to the aggregator.
A trace decodes with its own syscall table, so a trace recorded on another
architecture reads correctly anywhere.
"""

from __future__ import annotations

import mmap
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from capture_lib import native
from capture_lib.errors import TraceError
from capture_lib.snapshot import Snapshot, SyscallStats
from capture_lib.stream import TraceInfo


def text(raw: bytes) -> str:
    """Bytes from a trace file as text: whatever is not UTF-8 is shown escaped (\\xff),
    since a damaged or hostile file must still give a report."""
    return raw.decode(errors="backslashreplace")


STDIN = "-"


def _stdin_map() -> mmap.mmap:
    """A trace piped into stdin, in memory the reader can map: stdin is copied into an
    anonymous file (memfd), so a trace of any size costs page cache, not a Python copy,
    and nothing is left on disk."""
    if sys.stdin.isatty():
        raise TraceError(
            "stdin is a terminal: pipe a trace into it, e.g. "
            "'ssh root@box syscap-agent record -o - --duration 10 | syscap report -'"
        )
    fd = os.memfd_create("syscap-trace-stdin", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        size = os.fstat(fd).st_size
        if size == 0:
            raise TraceError(
                "stdin is empty: pipe a trace into it, e.g. "
                "'ssh root@box syscap-agent record -o - --duration 10 | syscap report -'"
            )
        return mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)


class TraceFile:
    """An open trace. A block's records stay valid until the next block is read.
    The path "-" reads the trace from stdin."""

    def __init__(self, path: str) -> None:
        ffi, lib = native.require()
        self._ffi, self._lib = ffi, lib
        self._map: mmap.mmap | None = None
        self._buf: Any = None
        err = native.errbuf()
        if path == STDIN:
            self._map = _stdin_map()
            self._buf = ffi.from_buffer(self._map)  # page-aligned, as the reader needs
            t = lib.syscap_trace_open_mem(self._buf, len(self._map), b"stdin", err,
                                          native.ERRLEN)  # fmt: skip
        elif not os.path.exists(path):
            raise TraceError(
                f"trace {path} does not exist: record one with 'syscap record -o {path}'"
            )
        else:
            t = lib.syscap_trace_open(os.fsencode(path), err, native.ERRLEN)
        if t == ffi.NULL:
            self._release()
            raise TraceError(native.errstr(err))
        self._t: Any = t
        self.path = path
        h = lib.syscap_trace_header(t)

        def s(raw: Any) -> str:
            return text(ffi.string(raw))

        self.info = TraceInfo(
            arch=s(h.arch), kernel=s(h.release), backend=s(h.backend),
            clock=s(h.clock), start_mono_ns=h.start_mono_ns,
            start_real_ns=h.start_real_ns, ncpu=h.ncpu,
        )
        self._names: dict[int, str] = {}

    def name(self, nr: int) -> str:
        """The syscall's name in the trace's own table."""
        name = self._names.get(nr)
        if name is None:
            p = self._lib.syscap_trace_name(self._t, nr)
            name = text(self._ffi.string(p)) if p != self._ffi.NULL else f"syscall_{nr}"
            self._names[nr] = name
        return name

    def blocks(self) -> Iterator[Any]:
        """struct syscap_trace_block per readable block, from the start."""
        self.rewind()
        blk = self._ffi.new("struct syscap_trace_block *")
        while self.next_block(blk):
            yield blk

    def next_block(self, blk: Any) -> bool:
        return bool(self._lib.syscap_trace_next(self._t, blk))

    def rewind(self) -> None:
        self._lib.syscap_trace_rewind(self._t)

    @property
    def complete(self) -> bool:
        return bool(self._lib.syscap_trace_complete(self._t))

    @property
    def warnings(self) -> list[str]:
        notes = text(self._ffi.string(self._lib.syscap_trace_warnings(self._t)))
        return [line for line in notes.splitlines() if line]

    def close(self) -> None:
        if self._t is not None:
            self._lib.syscap_trace_close(self._t)
            self._t = None
        self._release()

    def _release(self) -> None:
        if self._buf is not None:
            self._ffi.release(self._buf)
            self._buf = None
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> TraceFile:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Aggregator:
    """The C aggregator: events in (by block), snapshots out."""

    def __init__(self, pid: int = 0) -> None:
        ffi, lib = native.require()
        self._ffi, self._lib = ffi, lib
        self._a: Any = ffi.gc(lib.syscap_agg_new(), lib.syscap_agg_free)
        if pid:
            lib.syscap_agg_set_pid(self._a, pid)

    def add(self, events: Any, count: int) -> None:
        self._lib.syscap_agg_add(self._a, events, count)

    def add_until(self, events: Any, count: int, until_ns: int) -> int:
        return int(self._lib.syscap_agg_add_until(self._a, events, count, until_ns))

    def snapshot_c(self) -> Any:
        snap = self._ffi.new("struct syscap_snapshot *")
        if self._lib.syscap_agg_snapshot(self._a, snap):
            raise TraceError("out of memory aggregating the trace")
        return snap


@dataclass(frozen=True, slots=True)
class Report:
    info: TraceInfo
    events: int  # syscall records in the file (read)
    dropped: int  # syscall records lost while recording (kernel counter)
    dropped_process_events: int
    missed: int
    duration_s: float
    syscalls: dict[str, SyscallStats]  # counts from the kernel's counters when exact
    snapshot: Snapshot  # per process detail, from the records
    complete: bool
    exact: bool  # syscall counts come from the kernel's counters
    warnings: list[str] = field(default_factory=list)
    max_used: int = 0
    ring_size: int = 0


def build_report(path: str, pid: int = 0) -> Report:
    """Aggregate a whole trace (records for detail, kernel counters for totals)."""
    with TraceFile(path) as tf:
        agg = Aggregator(pid)
        stats: dict[str, int] | None = None
        rows: dict[int, tuple[int, int, int]] = {}
        end_stats = False
        last_ns = tf.info.start_mono_ns
        _, lib = native.require()
        for blk in tf.blocks():
            if blk.type == lib.SYSCAP_BLOCK_EVENTS:
                agg.add(blk.events, blk.count)
                if blk.count:
                    ev = blk.events[blk.count - 1]
                    last_ns = max(last_ns, ev.ts_ns + ev.dur_ns)
            elif blk.type in (lib.SYSCAP_BLOCK_STATS, lib.SYSCAP_BLOCK_END):
                st = blk.stats
                stats = {k: getattr(st, k) for k in
                         ("mono_ns", "events", "drops", "proc_events", "proc_drops", "missed",
                          "max_used", "ring_size")}
                rows = {r.nr: (r.calls, r.errors, r.total_ns)
                        for r in (blk.rows[i] for i in range(blk.count))}
                end_stats = blk.type == lib.SYSCAP_BLOCK_END
                last_ns = max(last_ns, st.mono_ns)
        csnap = agg.snapshot_c()
        snap = native.convert_snapshot(csnap, tf.name, missed=stats["missed"] if stats else 0)
        complete = tf.complete
        warnings = tf.warnings
        # A finished recording's kernel counters are exact for its scope; a
        # cut-short one has records newer than its last counters.
        exact = bool(end_stats and complete and not pid)
        by_name: dict[str, SyscallStats] = {}
        for s in snap.syscalls:
            if exact and s.nr in rows:
                count, errors, total = rows[s.nr]
                by_name[s.name] = replace(s, count=count, errors=errors, total_ns=total)
            else:
                by_name[s.name] = s
        if exact:  # syscalls whose every record was dropped still count
            for nr, (count, errors, total) in rows.items():
                name = tf.name(nr)
                if name not in by_name:
                    by_name[name] = SyscallStats(nr, name, count, errors, total, 0, 0, 0)
        return Report(
            info=tf.info,
            events=sum(p.count for p in snap.processes),
            dropped=stats["drops"] if stats else 0,
            dropped_process_events=stats["proc_drops"] if stats else 0,
            missed=stats["missed"] if stats else 0,
            duration_s=max(last_ns - tf.info.start_mono_ns, 0) / 1e9,
            syscalls=by_name,
            snapshot=snap,
            complete=complete,
            exact=exact,
            warnings=warnings,
            max_used=stats["max_used"] if stats else 0,
            ring_size=stats["ring_size"] if stats else 0,
        )

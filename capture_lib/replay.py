"""Replay a trace as a SnapshotSource: the UI shows it as if it were live.

The replay clock advances with the wall clock times `speed`; each snapshot
aggregates the records whose entry time passed since the previous one. No
privileges are needed: only the file is read.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from capture_lib import native
from capture_lib.snapshot import Filter, ProcessStats, Snapshot, SyscallStats
from capture_lib.trace import Aggregator, TraceFile

# The last instant a trace can name (its clock is a u64 of nanoseconds).
CLOCK_END_NS = (1 << 64) - 1


def _keep_syscall(s: SyscallStats, flt: Filter) -> bool:
    return (not flt.syscalls or s.nr in flt.syscalls) and (not flt.failed_only or s.errors > 0)


def _select(calls: tuple[SyscallStats, ...], flt: Filter) -> tuple[SyscallStats, ...]:
    """The syscalls the filter keeps; with failed_only, only their failures count."""
    kept = (s for s in calls if _keep_syscall(s, flt))
    if flt.failed_only:
        return tuple(replace(s, count=s.errors) for s in kept)
    return tuple(kept)


def _apply(snap: Snapshot, flt: Filter) -> Snapshot:
    """The filter applied to an aggregated interval (replay has no kernel)."""
    if flt == Filter():
        return snap
    procs = []
    for p in snap.processes:
        if (flt.pids and p.pid not in flt.pids) or p.pid in flt.exclude_pids:
            continue
        if (flt.comms and p.comm not in flt.comms) or p.comm in flt.exclude_comms:
            continue
        calls = _select(p.syscalls, flt)
        if not calls and p.syscalls:
            continue
        count = sum(s.count for s in calls)
        procs.append(ProcessStats(
            pid=p.pid, comm=p.comm, count=count, errors=sum(s.errors for s in calls),
            total_ns=sum(s.total_ns for s in calls), p50_ns=p.p50_ns, p99_ns=p.p99_ns,
            syscalls=calls, exited=p.exited,
        ))
    keep = {p.pid for p in procs}
    by_sys = _select(snap.syscalls, flt) if keep else ()
    return Snapshot(
        start_ns=snap.start_ns, end_ns=snap.end_ns, processes=tuple(procs), syscalls=by_sys,
        rings=snap.rings, events=sum(p.count for p in procs), drops=snap.drops,
        missed=snap.missed,
    )


class ReplaySource:
    """SnapshotSource over a trace file, played at `speed` times recorded speed."""

    backend = "replay"

    def __init__(self, path: str, speed: float = 1.0, interval_s: float = 1.0) -> None:
        self._trace = TraceFile(path)
        self._agg = Aggregator()
        ffi, _ = native.require()
        self._blk: Any = ffi.new("struct syscap_trace_block *")
        self._pos = 0  # next record in the current block
        self._have_block = False
        self._exhausted = False
        self.info = self._trace.info
        self.now_ns = self.info.start_mono_ns  # the replay clock, in trace time
        self._last_wall = time.monotonic()
        self.speed = speed
        self.paused = False
        self.interval_s = interval_s
        self._filter = Filter()
        self._drops = 0

    @property
    def at_end(self) -> bool:
        return self._exhausted

    @property
    def warnings(self) -> list[str]:
        return self._trace.warnings

    def _feed_until(self, until_ns: int) -> None:
        _, lib = native.require()
        while not self._exhausted:
            if not self._have_block:
                if not self._trace.next_block(self._blk):
                    self._exhausted = True
                    return
                self._have_block, self._pos = True, 0
            blk = self._blk
            if blk.type == lib.SYSCAP_BLOCK_EVENTS:
                left = blk.count - self._pos
                if until_ns >= CLOCK_END_NS:  # the end of time: records stamped with it too
                    self._agg.add(blk.events + self._pos, left)
                    took = left
                else:
                    took = self._agg.add_until(blk.events + self._pos, left, until_ns)
                self._pos += took
                if took < left:
                    return  # the rest is later than the replay clock
            elif blk.type in (lib.SYSCAP_BLOCK_STATS, lib.SYSCAP_BLOCK_END):
                if blk.stats.mono_ns > until_ns:
                    return
                self._drops = blk.stats.drops
            self._have_block = False

    def _advance(self, dt_ns: int) -> Snapshot:
        start = self.now_ns
        self.now_ns = min(self.now_ns + dt_ns, CLOCK_END_NS)  # a damaged trace may start late
        self._feed_until(self.now_ns)
        c = self._agg.snapshot_c()
        snap = native.convert_snapshot(c, self._trace.name, missed=0)
        snap = Snapshot(
            start_ns=start, end_ns=self.now_ns, processes=snap.processes,
            syscalls=snap.syscalls, rings=(), events=snap.events, drops=0, missed=0,
        )
        return _apply(snap, self._filter)

    def snapshot(self) -> Snapshot:
        wall = time.monotonic()
        dt = 0 if self.paused else int((wall - self._last_wall) * 1e9 * self.speed)
        self._last_wall = wall
        return self._advance(dt)

    def step(self) -> Snapshot:
        """Advance one interval of trace time (for use while paused)."""
        self._last_wall = time.monotonic()
        return self._advance(int(self.interval_s * 1e9))

    @property
    def drops(self) -> int:
        """Records the recorder lost, as of the replay clock."""
        return int(self._drops)

    def set_filter(self, flt: Filter) -> None:
        self._filter = flt

    def close(self) -> None:
        self._trace.close()

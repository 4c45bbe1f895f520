"""What capture hands to its users: immutable snapshots and the filter they ask for.

A snapshot holds the aggregates gathered since the previous snapshot (an
interval), never single events. The live backends (eBPF, kernel module) and
trace replay all produce these, so the UI and exporters depend on nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SyscallStats:
    """One syscall's activity during the interval (in one process, or in all)."""

    nr: int
    name: str
    count: int
    errors: int
    total_ns: int
    p50_ns: int
    p99_ns: int
    last_errno: int  # positive errno of the last failure in the interval, 0 if none
    # durations behind total_ns, p50_ns and p99_ns: count, or fewer when the
    # snapshot is sampled (then total_ns is count x the samples' mean)
    samples: int = 0

    @property
    def avg_ns(self) -> float:
        return self.total_ns / self.count if self.count else 0.0


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """One process (tgid) during the interval."""

    pid: int
    comm: str
    count: int
    errors: int
    total_ns: int
    p50_ns: int
    p99_ns: int
    syscalls: tuple[SyscallStats, ...]  # sorted by count, highest first
    exited: bool = False  # the process ended during the interval


@dataclass(frozen=True, slots=True)
class RingStats:
    """One CPU's ring at snapshot time, with counters since capture start."""

    cpu: int
    size: int  # bytes of record space
    used: int  # bytes written and not yet consumed
    max_used: int  # highest fill seen by the consumer since start
    events: int  # syscall records generated on this CPU since start
    drops: int  # syscall records lost on this CPU since start

    @property
    def fill(self) -> float:
        return self.used / self.size if self.size else 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Aggregates for [start_ns, end_ns) plus ring state at end_ns."""

    start_ns: int  # CLOCK_MONOTONIC
    end_ns: int
    processes: tuple[ProcessStats, ...]
    syscalls: tuple[SyscallStats, ...]  # all processes together
    rings: tuple[RingStats, ...]
    events: int  # syscalls counted in the interval (records or in-kernel counts)
    # syscalls lost in the interval (all CPUs): records that found their ring
    # full, or in count mode calls the kernel could not attribute to a process
    drops: int
    missed: int = 0  # probe runs the kernel skipped (BPF recursion), since start
    # durations were measured: total_ns, p50_ns and p99_ns hold. False in count
    # mode, where the kernel counts calls and errors and takes no timestamps.
    latency: bool = True
    # the durations are a sample's (sampled mode): counts stay exact
    sampled: bool = False

    @property
    def interval_s(self) -> float:
        return max(self.end_ns - self.start_ns, 1) / 1e9

    @property
    def total_drops(self) -> int:
        return sum(r.drops for r in self.rings)


@dataclass(frozen=True, slots=True)
class Filter:
    """What the kernel lets through. Empty sets mean "no restriction"."""

    syscalls: frozenset[int] = field(default_factory=frozenset)  # include only these
    pids: frozenset[int] = field(default_factory=frozenset)  # include these trees
    exclude_pids: frozenset[int] = field(default_factory=frozenset)
    comms: frozenset[str] = field(default_factory=frozenset)  # include only these
    exclude_comms: frozenset[str] = field(default_factory=frozenset)
    failed_only: bool = False


class SnapshotSource(Protocol):
    """Anything that yields snapshots: a live backend or a replayed trace."""

    @property
    def backend(self) -> str:
        """'bpf', 'kmod' or 'replay'."""
        ...

    def snapshot(self) -> Snapshot:
        """Aggregates since the previous call. Safe to call from one thread."""
        ...

    def set_filter(self, flt: Filter) -> None:
        """Apply a new in-kernel filter (replay applies it while reading)."""
        ...

    def close(self) -> None: ...

"""A deterministic snapshot source for tests, screenshots and the benchmark.

Every call to `snapshot()` advances a virtual clock by exactly one interval, and all
numbers derive from the process index and the tick number, so two runs draw the
same screens. It honours `set_filter` the way the kernel would (fewer events, lower
ring fill), so filter toggles have a visible effect.
"""

from __future__ import annotations

from functools import partial

from capture_lib import syscalls
from capture_lib.filter_spec import ModuleTable
from capture_lib.snapshot import Filter, ProcessStats, RingStats, Snapshot, SyscallStats

_PROFILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nginx", ("epoll_wait", "accept4", "recvfrom", "writev", "openat", "sendfile", "close")),
    ("postgres", ("pread64", "lseek", "futex", "recvfrom", "sendto", "epoll_wait")),
    ("redis-server", ("epoll_wait", "read", "write", "clock_gettime")),
    ("python3", ("read", "newfstatat", "openat", "mmap", "close", "futex")),
    ("node", ("epoll_pwait", "futex", "write", "read", "madvise")),
    ("sshd", ("poll", "read", "write", "rt_sigprocmask")),
    ("systemd-journal", ("epoll_wait", "writev", "fstat", "openat")),
    ("cron", ("nanosleep", "newfstatat", "clock_gettime")),
    ("bash", ("wait4", "rt_sigaction", "rt_sigprocmask", "clone", "execve")),
    ("java", ("futex", "clock_gettime", "read", "write", "mmap", "munmap")),
)
_USERS = ("root", "www-data", "postgres", "redis", "alice", "bob")

# The real syscall table and groups (capture_lib.syscalls), for x86-64 whatever the
# host: every machine draws the same screens.
ARCH = "x86_64"
GROUPS: dict[str, frozenset[str]] = syscalls.GROUPS
SYSCALLS: dict[str, int] = {
    name: syscalls.number(name, ARCH) for _, calls in _PROFILES for name in calls
}
TABLE = ModuleTable(GROUPS, partial(syscalls.number, arch=ARCH))


def group_numbers(group: str) -> frozenset[int]:
    """Every x86-64 syscall number in `group`, as a kernel filter on it would hold."""
    return frozenset(nr for nr, name in syscalls.table(ARCH).items() if name in GROUPS[group])


def synthetic_user(pid: int) -> str:
    """The deterministic owner of a synthetic process."""
    return _USERS[pid % len(_USERS)]


class SyntheticSource:
    """`n` processes with fixed, varied load; one tick per `snapshot()` call.

    `only_one_changes` keeps every process constant except the first (the benchmark's
    "one visible row changes" case).
    """

    hook_cost_ns = 130.0

    def __init__(
        self,
        n: int = 40,
        interval_s: float = 1.0,
        cpus: int = 2,
        only_one_changes: bool = False,
        backend: str = "bpf",
        ring_size: int = 8 << 20,
    ) -> None:
        self.n = n
        self.interval_ns = int(interval_s * 1e9)
        self.cpus = cpus
        self.only_one_changes = only_one_changes
        self._backend = backend
        self.ring_size = ring_size
        self.tick = 0
        self.filters: list[Filter] = []
        self.flt = Filter()
        self.closed = False
        self.fail_with: Exception | None = None  # raise this from the next snapshot()
        self._events_total = [0] * cpus
        self._drops_total = [0] * cpus

    @property
    def backend(self) -> str:
        return self._backend

    def set_filter(self, flt: Filter) -> None:
        self.filters.append(flt)
        self.flt = flt

    def close(self) -> None:
        self.closed = True

    def _passes(self, pid: int, comm: str, nr: int) -> bool:
        f = self.flt
        if f.syscalls and nr not in f.syscalls:
            return False
        if f.pids and pid not in f.pids:
            return False
        if pid in f.exclude_pids or comm in f.exclude_comms:
            return False
        return not (f.comms and comm not in f.comms)

    def _process(self, i: int, tick: int) -> ProcessStats | None:
        comm, calls = _PROFILES[i % len(_PROFILES)]
        pid = 1000 + i * 7
        phase = 5 if (self.only_one_changes and i != 0) else (tick * (i + 3)) % 11
        base = (12000 // (i + 1) + 40) * (6 + phase) // 11
        stats: list[SyscallStats] = []
        for j, name in enumerate(calls):
            nr = SYSCALLS[name]
            if not self._passes(pid, comm, nr):
                continue
            count = max(base // (j + 1), 1)
            errors = count // 9 if name in ("openat", "newfstatat", "recvfrom", "futex") else 0
            if self.flt.failed_only:
                count = errors
                if not count:
                    continue
            lat = 400 + 150 * j + 37 * (i % 13)
            stats.append(
                SyscallStats(
                    nr,
                    name,
                    count,
                    errors,
                    count * lat,
                    lat,
                    lat * 6 + 900,
                    2 if errors and name in ("openat", "newfstatat") else (11 if errors else 0),
                )
            )
        if not stats:
            return None
        stats.sort(key=lambda s: s.count, reverse=True)
        count = sum(s.count for s in stats)
        total = sum(s.total_ns for s in stats)
        return ProcessStats(
            pid=pid,
            comm=comm,
            count=count,
            errors=sum(s.errors for s in stats),
            total_ns=total,
            p50_ns=total // count,
            p99_ns=max(s.p99_ns for s in stats),
            syscalls=tuple(stats),
        )

    def snapshot(self) -> Snapshot:
        if self.fail_with is not None:
            raise self.fail_with
        self.tick += 1
        procs = [p for i in range(self.n) if (p := self._process(i, self.tick)) is not None]
        by_nr: dict[int, list[SyscallStats]] = {}
        for p in procs:
            for s in p.syscalls:
                by_nr.setdefault(s.nr, []).append(s)
        totals = []
        for nr, group in by_nr.items():
            c = sum(s.count for s in group)
            totals.append(
                SyscallStats(
                    nr,
                    group[0].name,
                    c,
                    sum(s.errors for s in group),
                    sum(s.total_ns for s in group),
                    max(s.p50_ns for s in group),
                    max(s.p99_ns for s in group),
                    max(s.last_errno for s in group),
                )
            )
        totals.sort(key=lambda s: s.count, reverse=True)
        events = sum(p.count for p in procs)
        size = self.ring_size
        rings = []
        drops = 0
        for cpu in range(self.cpus):
            share = events // self.cpus
            used = min(size, share * 24 * (cpu + 1) // 4)
            dropped = share // 50 if used >= size * 0.9 else 0
            self._events_total[cpu] += share
            self._drops_total[cpu] += dropped
            drops += dropped
            rings.append(
                RingStats(cpu, size, used, used, self._events_total[cpu], self._drops_total[cpu])
            )
        start = (self.tick - 1) * self.interval_ns
        return Snapshot(
            start_ns=start,
            end_ns=start + self.interval_ns,
            processes=tuple(procs),
            syscalls=tuple(totals),
            rings=tuple(rings),
            events=events,
            drops=drops,
        )

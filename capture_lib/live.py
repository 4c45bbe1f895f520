"""Live capture: a Session over a kernel backend, and the SnapshotSource for the UI."""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from capture_lib import native, syscalls
from capture_lib.errors import CaptureError, UsageError
from capture_lib.snapshot import Filter, Snapshot

DEFAULT_RING_SIZE = 8 << 20  # bytes per CPU, as Falco's default
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39  # linux/capability.h
# What a capture may still need after attaching, least first: the eBPF backend
# nothing from kernel 6.5 on, CAP_BPF on older kernels with
# unprivileged_bpf_disabled set; the module CAP_PERFMON on every ioctl.
_KEEP_CANDIDATES = ((), ("CAP_BPF",), ("CAP_PERFMON",), ("CAP_BPF", "CAP_PERFMON"),
                    ("CAP_SYS_ADMIN",))
_CAP_BITS = {"CAP_SYS_ADMIN": CAP_SYS_ADMIN, "CAP_PERFMON": CAP_PERFMON, "CAP_BPF": CAP_BPF}
BACKENDS = ("auto", "bpf", "kmod")


def parse_size(text: str) -> int:
    """'8M', '512K', '1G' or bytes -> a power-of-two byte count, else UsageError."""
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)(?:i?[bB])?", text.strip())
    if not m:
        raise UsageError(f"buffer size {text!r} is not a size: give e.g. 8M, 512K or 1G")
    value = int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]
    page = os.sysconf("SC_PAGE_SIZE")
    if value < page or value & (value - 1):
        raise UsageError(
            f"buffer size {text!r} must be a power of two of at least {page} bytes, e.g. 8M"
        )
    if value > 1 << 30:
        raise UsageError(f"buffer size {text!r} is over 1G per CPU: give at most 1G")
    return value


def names_blob(arch: str | None = None) -> tuple[bytes, int]:
    """The syscall name table for a trace header: NUL-terminated names by number."""
    _, lib = native.require()
    n = lib.SYSCAP_MAX_SYSCALLS
    table = syscalls.table(arch)
    return b"".join(table.get(nr, "").encode() + b"\0" for nr in range(n)), n


@dataclass(frozen=True, slots=True)
class SyscallTotal:
    name: str
    count: int
    errors: int
    total_ns: int


@dataclass(frozen=True, slots=True)
class Totals:
    """Exact kernel counters since the session started (all CPUs)."""

    events: int
    drops: int
    proc_events: int
    proc_drops: int
    missed: int
    max_used: int
    ring_size: int
    syscalls: dict[int, SyscallTotal]


@dataclass(frozen=True, slots=True)
class Delivery:
    """How long syscall records waited between their syscall's exit and the
    consumer, since the session opened: log2 buckets of ns (bucket b holds
    waits in [2^(b-1), 2^b)) and the longest wait."""

    records: int
    max_ns: int
    hist: tuple[int, ...]

    def upper_ns(self, q: float) -> int:
        """An upper bound of the q quantile (0..1): its bucket's top."""
        rank, seen = q * self.records, 0
        for b, n in enumerate(self.hist):
            seen += n
            if n and seen >= rank:
                return min((1 << b) - 1 if b else 0, self.max_ns)
        return self.max_ns


class EventBatch:
    """Records copied out of the rings; owns the buffer its items point into."""

    def __init__(self, buf: Any, n: int) -> None:
        self._buf, self._n = buf, n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._buf[i]

    def __iter__(self) -> Iterator[Any]:
        return (self._buf[i] for i in range(self._n))


class Session:
    """One capture session: probes attached while started, one consumer thread."""

    def __init__(self, backend: str = "auto", ring_size: int = DEFAULT_RING_SIZE) -> None:
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        ffi, lib = native.require()
        self._ffi, self._lib = ffi, lib
        err = native.errbuf()
        s = lib.syscap_session_open(backend.encode(), ring_size, err, native.ERRLEN)
        if s == ffi.NULL:
            raise CaptureError(native.errstr(err))
        self._s: Any = s
        self._pids: dict[int, int] = {}
        self.ring_size = ring_size
        self.filter = Filter()
        self._mode = "records"
        # the plan that set the sample period and duty (plan_samples); None
        # once either is set directly, as the C session forgets it then
        self.sample: SamplePlan | None = None

    @property
    def backend(self) -> str:
        return str(self._ffi.string(self._lib.syscap_session_backend(self._s)).decode())

    @property
    def ncpu(self) -> int:
        return int(self._lib.syscap_session_ncpu(self._s))

    def set_filter(self, flt: Filter) -> None:
        """Apply flt in the kernel: filter struct first, then the process set."""
        lib = self._lib
        wanted = {pid: lib.SYSCAP_PID_INCLUDE for pid in flt.pids}
        wanted.update({pid: lib.SYSCAP_PID_EXCLUDE for pid in flt.exclude_pids})
        for pid, value in wanted.items():
            if self._pids.get(pid) != value:
                self._check(lib.syscap_session_set_pid(self._s, pid, value), f"pid {pid}")
        for pid in set(self._pids) - set(wanted):
            self._check(lib.syscap_session_set_pid(self._s, pid, 0), f"pid {pid}")
        self._pids = wanted
        self._check(lib.syscap_session_set_filter(self._s, native.c_filter(flt)), "filter")
        self.filter = flt

    def _check(self, ret: int, what: str) -> None:
        if ret < 0:
            raise CaptureError(f"setting the {what} in the kernel failed: {os.strerror(-ret)}")

    def record(self, path: str, force: bool = False, with_args: bool = False) -> None:
        """Write every record to a new trace file at path (mode 0600; an
        existing file is replaced only with force, a symbolic link never),
        with each syscall's arguments when with_args."""
        blob, n = names_blob()
        err = native.errbuf()
        flags = self._lib.SYSCAP_CREATE_FORCE if force else 0
        if with_args:
            self.set_args(True)
        if self._lib.syscap_session_record(self._s, path.encode(), flags, blob, len(blob), n,
                                           err, native.ERRLEN):
            raise CaptureError(native.errstr(err))

    def set_args(self, on: bool) -> None:
        """Capture each syscall's six argument registers with its record (and
        write them into the trace); off by default. Only before recording
        and while stopped."""
        ret = self._lib.syscap_session_set_args(self._s, int(on))
        if ret < 0:
            raise CaptureError(f"cannot switch the capture of arguments now: "
                               f"{os.strerror(-ret)}")

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        """'records' (one record per syscall, with durations), 'counts' (the
        kernel counts calls and errors per process x syscall and takes no
        timestamps: the cheapest mode, what `syscap top` starts in) or
        'sampled' (counts, plus the durations of about one call in
        sample_period). Only while stopped. CaptureError when this backend or
        kernel lacks the mode."""
        values = {"records": self._lib.SYSCAP_MODE_RECORDS, "counts": self._lib.SYSCAP_MODE_COUNTS,
                  "sampled": self._lib.SYSCAP_MODE_SAMPLED}
        if mode not in values:
            raise UsageError(f"unknown capture mode {mode!r}: use records, counts or sampled")
        ret = self._lib.syscap_session_set_mode(self._s, values[mode])
        if ret == -errno.ENOTSUP:
            raise CaptureError(f"the {self.backend} backend on this kernel has no {mode} mode "
                               "(eBPF needs kernel 5.15 or newer for it; or load the module, "
                               "which has every mode)")
        self._check(ret, "capture mode")
        self._mode = mode

    def set_sample_period(self, period: int) -> None:
        """Sampled mode: about one syscall in period (a power of two) gets its
        duration measured. May change while running."""
        if period < 1 or period & (period - 1) or period > 1 << 30:
            raise UsageError(f"sample period {period} is not a power of two up to 2^30")
        self.sample = None  # the session forgets its plan too
        self._check(self._lib.syscap_session_set_sample_period(self._s, period), "sample period")

    def plan_samples(self, rate_per_s: float, budget_pct: float, sample_ns: float = 0.0,
                     enter_ns: float = 0.0) -> SamplePlan:
        """Sampled mode: the densest sample whose cost stays within budget_pct
        of one CPU at rate_per_s syscalls a second (sample_plan, with sampling
        windows where the backend has them; costs not measured, 0, are taken
        as SAMPLE_COST_NS and ENTER_COST_NS), set in the kernel when it
        differs from the plan set last (syscap_session_plan_samples)."""
        out = self._ffi.new("struct syscap_sample_plan *")
        self.sample = None
        ret = self._lib.syscap_session_plan_samples(self._s, rate_per_s, budget_pct, sample_ns,
                                                    enter_ns, out)
        if ret == -errno.EINVAL:
            raise UsageError(f"sample budget {budget_pct:g}% is not in (0, 100]")
        self._check(ret, "sample plan")
        self.sample = SamplePlan(int(out.period), out.duty_ppm / DUTY_FULL)
        return self.sample

    def set_sample_duty(self, duty: float) -> bool:
        """Sampled mode: take samples only inside sampling windows that together
        cover this fraction of the time (0 < duty <= 1; 1, the default: always).
        Outside them the entry probe is detached and a call costs what count
        mode costs; counts stay exact. False when the backend cannot detach its
        entry probe: then it stays attached. May change while running."""
        if not 0 < duty <= 1:
            raise UsageError(f"sample duty {duty:g} is not a fraction in (0, 1]")
        self.sample = None  # the session forgets its plan too
        ret = self._lib.syscap_session_set_sample_duty(self._s, max(1, round(duty * DUTY_FULL)))
        if ret == -errno.ENOTSUP:
            return False
        self._check(ret, "sample duty")
        return True

    def sample_windows(self) -> tuple[int, float]:
        """Sampling windows opened since the session opened, and the seconds
        that those already closed were open."""
        w = self._ffi.new("struct syscap_windows *")
        self._lib.syscap_session_sample_windows(self._s, w)
        return int(w.opened), w.open_ns / 1e9

    def aggregate(self, on: bool = True) -> None:
        self._lib.syscap_session_aggregate(self._s, int(on))

    def start(self) -> None:
        err = native.errbuf()
        if self._lib.syscap_session_start(self._s, err, native.ERRLEN):
            raise CaptureError(native.errstr(err))

    def attach(self) -> None:
        """Attach the probes without the consumer thread (for read_events)."""
        err = native.errbuf()
        if self._lib.syscap_session_attach(self._s, err, native.ERRLEN):
            raise CaptureError(native.errstr(err))

    def drop_capabilities(self) -> str:
        """Give up every capability the attached probes no longer need (all of
        them, where the kernel lets a process use BPF maps through fds it
        holds without one), in this, the process's only thread: threads it
        starts later have none either. Returns what was kept, for the user."""
        threads = len(os.listdir("/proc/self/task"))
        if threads != 1:
            raise CaptureError(f"capabilities are per thread and this process already has "
                               f"{threads}: drop them before starting any")
        lib = self._lib
        for names in _KEEP_CANDIDATES:
            keep = sum(1 << _CAP_BITS[n] for n in names)
            works = lib.syscap_session_works_with(self._s, keep)
            if works < 0:
                raise CaptureError(f"cannot test which capabilities the capture needs: "
                                   f"{os.strerror(-works)}")
            if works:
                err = native.errbuf()
                if lib.syscap_drop_capabilities(keep, err, native.ERRLEN):
                    raise CaptureError(native.errstr(err))
                if not names:
                    return "no capabilities"
                return (f"only {' and '.join(names)}: the {self.backend} backend checks "
                        f"{'it' if len(names) == 1 else 'them'} on every read here")
        return "all capabilities (reading the maps failed with fewer)"

    def detach(self) -> None:
        """Detach the probes; what they wrote stays in the rings."""
        self._lib.syscap_session_detach(self._s)

    def stop(self) -> None:
        """Detach, drain the rest, finish the trace file."""
        if self._lib.syscap_session_stop(self._s):
            raise CaptureError(self.error or "finishing the capture failed")

    @property
    def error(self) -> str | None:
        e = self._lib.syscap_session_error(self._s)
        return None if e == self._ffi.NULL else str(self._ffi.string(e).decode())

    @property
    def consumed(self) -> int:
        return int(self._lib.syscap_session_consumed(self._s))

    def delivery(self) -> Delivery:
        """How long records waited in the rings (see Delivery)."""
        d = self._ffi.new("struct syscap_delivery *")
        self._lib.syscap_session_delivery(self._s, d)
        return Delivery(records=d.records, max_ns=d.max_ns, hist=tuple(d.hist))

    def counted_tgids(self) -> list[int]:
        """Count and sampled modes: the processes with counters in the kernel now."""
        ffi, lib = self._ffi, self._lib
        room = 1024
        while True:
            out = ffi.new("uint32_t[]", room)
            n = lib.syscap_session_counted_tgids(self._s, out, room)
            if n < 0:
                raise CaptureError(f"reading the kernel counters failed: {os.strerror(-n)}")
            if n <= room:
                return list(out[0:n])
            room = n + 64

    def totals(self) -> Totals:
        ffi, lib = self._ffi, self._lib
        st = ffi.new("struct syscap_trace_stats *")
        rows = ffi.new("struct syscap_trace_sysrow[]", lib.SYSCAP_MAX_SYSCALLS)
        n = lib.syscap_session_totals(self._s, st, rows, lib.SYSCAP_MAX_SYSCALLS)
        if n < 0:
            raise CaptureError(f"reading the kernel counters failed: {os.strerror(-n)}")
        return Totals(
            events=st.events, drops=st.drops, proc_events=st.proc_events,
            proc_drops=st.proc_drops, missed=st.missed, max_used=st.max_used,
            ring_size=st.ring_size,
            syscalls={
                r.nr: SyscallTotal(syscalls.name(r.nr), r.calls, r.errors, r.total_ns)
                for r in (rows[i] for i in range(min(n, lib.SYSCAP_MAX_SYSCALLS)))
            },
        )

    def _snapshot_c(self) -> Any:
        snap = self._ffi.new("struct syscap_snapshot *")
        ret = self._lib.syscap_session_snapshot(self._s, snap)
        if ret:
            raise CaptureError(f"taking a snapshot failed: {os.strerror(-ret)}")
        return snap

    def snapshot(self) -> Snapshot:
        return native.convert_snapshot(self._snapshot_c(), syscalls.name)

    def snapshot_with_histograms(self) -> tuple[Snapshot, dict[int, list[int]]]:
        """A snapshot plus, per syscall seen, its log2 latency histogram over all
        processes: bucket b counts durations in [2^(b-1), 2^b) ns (b = 0: 0 ns)."""
        c = self._snapshot_c()
        nb = self._lib.SYSCAP_HIST_BUCKETS
        hists = {
            c.sys[i].nr: list(self._ffi.unpack(c.sys_hist + c.sys[i].nr * nb, nb))
            for i in range(c.nsys)
        } if c.sys_hist != self._ffi.NULL else {}
        return native.convert_snapshot(c, syscalls.name), hists

    def read_events(self, max_events: int = 65536) -> EventBatch:
        """The next batch of pending records, copied out of the rings (tools and
        tests; the consumer thread must not be running). Empty when none are left."""
        buf = self._ffi.new("struct syscap_event[]", max_events)
        n = self._lib.syscap_session_read(self._s, buf, max_events)
        if n < 0:
            raise CaptureError("read_events needs a session without its consumer thread")
        return EventBatch(buf, n)

    def close(self) -> None:
        if self._s is not None:
            self._lib.syscap_session_close(self._s)
            self._s = None

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _GetppidLoop:
    """A forked child that times n getppid() calls each time it is asked: the
    calibration's workload, and the only process its capture admits. The
    consumer (this process) is never traced, so the calls must come from a
    child; the same child serves every measurement, so its pid can be in the
    filter before the first one."""

    def __init__(self, n: int) -> None:
        cmd_r, self._cmd = os.pipe()
        res_r, res_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - child
            try:
                os.close(self._cmd)
                os.close(res_r)
                while os.read(cmd_r, 1):
                    t0 = time.perf_counter_ns()
                    for _ in range(n):
                        os.getppid()
                    os.write(res_w, f"{(time.perf_counter_ns() - t0) / n}\n".encode())
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(res_w)
        self._results = os.fdopen(res_r)

    def ns_per_call(self) -> float:
        os.write(self._cmd, b"m")
        return float(self._results.readline() or "nan")

    def close(self) -> None:
        os.close(self._cmd)  # EOF: the child exits
        self._results.close()
        os.waitpid(self.pid, 0)


# What top's `l` key cycles through, and the session mode behind each.
DURATIONS = ("off", "sampled", "all")
_MODE_OF = {"off": "counts", "sampled": "sampled", "all": "records"}
DEFAULT_SAMPLE_BUDGET = 1.0  # percent of one CPU that sampled durations may add
# Sampled mode's constants, each syscap.h's SYSCAP_ one of the same meaning (a test checks).
MAX_SAMPLE_PERIOD = 1 << 20
SAMPLE_COST_NS = 500.0  # what one sample adds, if not measured
ENTER_COST_NS = 100.0  # what the sampler's entry probe adds to every call, if not measured
MIN_SAMPLE_DUTY = 1e-3  # sampling windows cover at least this fraction of the time
DUTY_FULL = 1_000_000  # parts per million


@dataclass(frozen=True, slots=True)
class SamplePlan:
    """Sampled mode's settings: one call in period is timed while a sampling
    window is open, and windows are open duty of the time."""
    period: int
    duty: float

    @property
    def one_in(self) -> int:
        """About one call in this many is timed."""
        return max(1, round(self.period / self.duty))


def sample_plan(rate_per_s: float, budget_pct: float, sample_ns: float,
                enter_ns: float = ENTER_COST_NS, windows: bool = True) -> SamplePlan:
    """The densest sample whose cost stays within budget_pct percent of one CPU
    at rate_per_s syscalls a second: syscap_sample_plan() of syscap.h (the
    arithmetic alone; Session.plan_samples and syscap-agent's stream plan and
    set it with syscap_session_plan_samples)."""
    ffi, lib = native.require()
    out = ffi.new("struct syscap_sample_plan *")
    lib.syscap_sample_plan(rate_per_s, budget_pct, sample_ns, enter_ns, int(windows), out)
    return SamplePlan(int(out.period), out.duty_ppm / DUTY_FULL)


class LiveSource:
    """SnapshotSource over a live Session, for `syscap top` and exporters.

    durations "off" (what top starts with) runs the session in count mode where
    the backend has one: exact calls and errors per process and syscall, no
    durations, the least cost per syscall. "sampled" adds the durations of a
    random sample of the calls (avg, p50 and p99 estimated from it, counts
    still exact), the sample as dense as sample_budget (percent of one CPU)
    allows at the current syscall rate. "all" records every syscall with its
    duration (histograms for exporters).
    """

    def __init__(self, backend: str = "auto", flt: Filter | None = None,
                 ring_size: int = DEFAULT_RING_SIZE, calibrate: bool = True,
                 durations: str = "all",
                 sample_budget: float = DEFAULT_SAMPLE_BUDGET) -> None:
        if durations not in DURATIONS:
            raise UsageError(f"unknown durations setting {durations!r}: use "
                             + ", ".join(DURATIONS))
        if not 0 < sample_budget <= 100:
            raise UsageError(f"sample budget {sample_budget}% is not in (0, 100]")
        self._budget = sample_budget
        self._session = Session(backend, ring_size)
        self._session.aggregate(True)
        self._cost: dict[str, float] = {}
        try:
            self.offered = self._offered()
            if calibrate:
                self._calibrate()
            if flt is not None:
                self._session.set_filter(flt)
            self._use(durations)
            self._session.start()
            self._session.snapshot()  # drop the calibration interval
        except BaseException:
            self._session.close()
            raise

    def _offered(self) -> tuple[str, ...]:
        """The durations settings this backend and kernel can run."""
        offered = []
        for d in DURATIONS:
            try:
                self._session.set_mode(_MODE_OF[d])
            except CaptureError:
                continue
            offered.append(d)
        return tuple(offered)

    def _use(self, durations: str) -> None:
        """Choose the session's mode (stopped): the setting asked for, or the
        nearest one offered ("all" always is)."""
        if durations not in self.offered:
            durations = "off" if durations == "sampled" and "off" in self.offered else "all"
        self._session.set_mode(_MODE_OF[durations])
        if durations == "sampled" and self._session.sample is None:
            # until a snapshot shows the rate: as if a million calls a second
            self._plan(1e6)

    def _plan(self, rate_per_s: float) -> None:
        self._session.plan_samples(rate_per_s, self._budget, self._sample_cost_ns(),
                                   self._enter_cost_ns())

    def _calibrate(self) -> None:
        """What each mode's probes add to one traced syscall. Only the
        calibration's own child passes the filter meanwhile: no other
        process is traced, whatever filter the user gives afterwards.
        Sampled mode is measured with its sampling window always open and
        (almost) no call sampled: the entry probe's own cost (hook_cost_ns
        adds the share of the samples, both scaled by the window's duty)."""
        loop = _GetppidLoop(20000)
        try:
            before = min(loop.ns_per_call() for _ in range(3))
            self._session.set_filter(Filter(pids=frozenset({loop.pid})))
            for durations in self.offered:
                self._use(durations)
                if durations == "sampled":  # the window always open, (almost) no sample
                    self._session.set_sample_period(MAX_SAMPLE_PERIOD)
                    self._session.set_sample_duty(1.0)
                self._session.start()
                try:
                    after = min(loop.ns_per_call() for _ in range(3))
                finally:
                    self._session.stop()
                self._cost[durations] = max(after - before, 0.0)
        finally:
            loop.close()
        self._session.set_filter(Filter())

    def _sample_cost_ns(self) -> float:
        """What one sampled call adds: a record's cost over a count's."""
        if "all" in self._cost and "off" in self._cost:
            return max(self._cost["all"] - self._cost["off"], 50.0)
        return SAMPLE_COST_NS

    def _enter_cost_ns(self) -> float:
        """What the sampler's entry probe adds to every call while attached."""
        if "sampled" in self._cost and "off" in self._cost:
            return max(self._cost["sampled"] - self._cost["off"], 1.0)
        return ENTER_COST_NS

    @property
    def hook_cost_ns(self) -> float:
        """ns the probes add to a traced syscall in the current mode (0: not measured)."""
        d = self.durations
        plan = self._session.sample
        if d == "sampled" and d in self._cost and "off" in self._cost and plan is not None:
            return self._cost["off"] + plan.duty * (
                self._enter_cost_ns() + self._sample_cost_ns() / plan.period)
        return self._cost.get(d, 0.0)

    @property
    def backend(self) -> str:
        return self._session.backend

    @property
    def session(self) -> Session:
        return self._session

    @property
    def durations(self) -> str:
        """"off", "sampled" or "all": whose durations are measured."""
        return {"counts": "off", "sampled": "sampled", "records": "all"}[self._session.mode]

    @property
    def sample_period(self) -> int:
        """Sampled: about one call in this many is timed (0 in other modes)."""
        plan = self._session.sample
        return plan.one_in if self.durations == "sampled" and plan is not None else 0

    @property
    def latency(self) -> bool:
        """Durations are measured (sampled or every call)."""
        return self.durations != "off"

    def set_durations(self, durations: str) -> None:
        """Switch modes without losing counts: the probes are swapped while the
        aggregate carries on."""
        if durations not in DURATIONS:
            raise UsageError(f"unknown durations setting {durations!r}")
        if durations == self.durations:
            return
        self._session.stop()
        try:
            self._use(durations)
        finally:
            self._session.start()

    def _retune(self, snap: Snapshot) -> None:
        """The densest sample that keeps sampled durations within the budget
        at the rate just seen."""
        self._plan((snap.events + snap.drops) / snap.interval_s)

    def snapshot(self) -> Snapshot:
        err = self._session.error
        if err:
            raise CaptureError(err)
        snap = self._session.snapshot()
        if self.durations == "sampled":
            self._retune(snap)
        return snap

    def set_filter(self, flt: Filter) -> None:
        self._session.set_filter(flt)

    def close(self) -> None:
        self._session.close()


def open_source(backend: str = "auto", flt: Filter | None = None,
                ring_size: int = DEFAULT_RING_SIZE, durations: str = "all",
                sample_budget: float = DEFAULT_SAMPLE_BUDGET) -> LiveSource:
    return LiveSource(backend, flt, ring_size, durations=durations,
                      sample_budget=sample_budget)

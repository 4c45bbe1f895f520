"""A Prometheus exporter fed by a live capture session.

A live Session counts calls and errors per process x syscall in the kernel
(count mode, the cheapest: no timestamps, no record per syscall) or, with
latency, records every syscall with its duration for a histogram. The
exporter takes a snapshot (the aggregates since the previous one) on every
scrape and on a timer, and adds each interval to running totals, so counters
are monotonic and exact for what was captured (drops are exported next to
them, per CPU). Exposition is prometheus_client's standard text format.

The endpoint names every busy command on the host with its syscall counts:
it listens on loopback unless told otherwise (is_loopback), and the process
serving it holds no capability once the probes are attached
(Session.drop_capabilities).

Label cardinality is bounded: at most `top_comms` comm values plus "other".
Comms compete by a decayed call rate (each interval halves the old score and
adds the interval's calls); a comm outside the set takes the place of the
weakest one inside only when its score is more than twice as high, so the set
does not flap. A comm that leaves the set stops being exported (Prometheus
marks its series stale) and its later calls count under "other".
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from capture_lib.errors import CaptureError, UsageError
from capture_lib.live import (
    DEFAULT_RING_SIZE,
    DEFAULT_SAMPLE_BUDGET,
    Session,
)
from capture_lib.snapshot import Filter, Snapshot

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import CollectorRegistry

OTHER = "other"
UNKNOWN = "unknown"  # a process that exited before its comm could be read
DEFAULT_LISTEN = "127.0.0.1:9477"
DEFAULT_TOP_COMMS = 20
# Histogram bounds: log2 buckets 10..34 of the C aggregator, i.e. durations
# up to 2^b - 1 ns (about 1 us .. 17 s); smaller buckets fold into the first.
HIST_FIRST, HIST_LAST = 10, 34
HIST_BOUNDS = tuple(((1 << b) - 1) / 1e9 for b in range(HIST_FIRST, HIST_LAST + 1))


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[V6]:PORT' -> (host, port), else UsageError."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: give HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Only this host can reach host: localhost, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: it may resolve to anything
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news


def bind_http(host: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    """The /metrics endpoint, bound and listening but not yet serving (start
    serve_forever in a thread): the socket is made while the process may
    still bind a port below 1024, the serving threads after it dropped its
    capabilities."""
    from prometheus_client import make_wsgi_app

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("_Server", (_ThreadingServer,), {"address_family": family})
    return make_server(host, port, make_wsgi_app(registry), server_class,
                       handler_class=_QuietHandler)


class CommLabels:
    """Which comms get their own label value: at most `limit`, the rest are "other"."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise UsageError(f"--top-comms {limit}: give 0 or more")
        self.limit = limit
        self.labeled: set[str] = set()
        self.score: dict[str, float] = {}
        self.evictions = 0

    def update(self, calls_by_comm: dict[str, int]) -> list[str]:
        """Take one interval's calls per comm; returns the comms evicted."""
        for comm in list(self.score):
            self.score[comm] /= 2
            if self.score[comm] < 0.5 and comm not in self.labeled:
                del self.score[comm]
        for comm, n in calls_by_comm.items():
            self.score[comm] = self.score.get(comm, 0.0) + n
        # keep the candidate table bounded too
        cap = max(64, 8 * self.limit)
        if len(self.score) > cap:
            keep = sorted(self.score, key=self.score.__getitem__, reverse=True)[:cap]
            kept = set(keep) | self.labeled
            self.score = {c: s for c, s in self.score.items() if c in kept}
        outside = sorted((c for c in self.score if c not in self.labeled and c != OTHER),
                         key=lambda c: (-self.score[c], c))
        evicted: list[str] = []
        for comm in outside:
            if len(self.labeled) < self.limit:
                self.labeled.add(comm)
                continue
            if not self.labeled:
                break
            weakest = min(self.labeled, key=lambda c: (self.score.get(c, 0.0), c))
            if self.score[comm] <= 2 * self.score.get(weakest, 0.0) + 1:
                break  # candidates are sorted: no later one qualifies either
            self.labeled.discard(weakest)
            self.labeled.add(comm)
            evicted.append(weakest)
            self.evictions += 1
        return evicted

    def label(self, comm: str) -> str:
        return comm if comm in self.labeled else OTHER


@dataclass
class _Series:
    calls: int = 0
    errors: int = 0


class MetricSeries:
    """The exported series, summed over snapshot intervals (all counters only
    grow): calls and errors per command label x syscall, duration histograms.
    Not the kernel's own totals (capture_lib.live.Totals)."""

    def __init__(self, top_comms: int) -> None:
        self.labels = CommLabels(top_comms)
        self.by_comm: dict[tuple[str, str], _Series] = {}  # (comm label, syscall)
        # syscall -> bucket counts (not cumulative); sampled intervals add each
        # sample as count / samples calls, so the buckets still sum to the calls
        self.hist: dict[str, list[float]] = {}
        self.hist_sum_ns: dict[str, int] = {}
        self.hist_count: dict[str, int] = {}
        self.snapshots = 0
        self.last: Snapshot | None = None

    def add(self, snap: Snapshot, buckets_of: Callable[[int], Sequence[int]] | None) -> None:
        """Add one interval. buckets_of(nr): the interval's log2 duration buckets of a
        syscall (from the C snapshot); None leaves the histogram buckets alone."""
        calls_by_comm: dict[str, int] = {}
        for p in snap.processes:
            if p.count:
                comm = p.comm or UNKNOWN
                calls_by_comm[comm] = calls_by_comm.get(comm, 0) + p.count
        for comm in self.labels.update(calls_by_comm):
            for key in [k for k in self.by_comm if k[0] == comm]:
                del self.by_comm[key]
        for p in snap.processes:
            label = self.labels.label(p.comm or UNKNOWN)
            for s in p.syscalls:
                series = self.by_comm.setdefault((label, s.name), _Series())
                series.calls += s.count
                series.errors += s.errors
        nb = HIST_LAST - HIST_FIRST + 2  # bounded buckets, then +Inf
        for s in snap.syscalls if snap.latency else ():  # count mode measures no durations
            buckets = self.hist.setdefault(s.name, [0.0] * nb)
            weight = 1.0
            if snap.sampled:
                weight = s.count / s.samples if s.samples else 0.0
            if buckets_of is not None:
                for b, n in enumerate(buckets_of(s.nr)):
                    if n:
                        buckets[min(max(b, HIST_FIRST), HIST_LAST + 1) - HIST_FIRST] += \
                            n * weight
            self.hist_sum_ns[s.name] = self.hist_sum_ns.get(s.name, 0) + s.total_ns
            self.hist_count[s.name] = self.hist_count.get(s.name, 0) + s.count
        self.snapshots += 1
        self.last = snap


class Exporter:
    """A capture session and the metrics built from it (a prometheus_client collector).

    The probes are attached here; the consumer thread starts with start(),
    so that capabilities can be dropped in between while this is the only
    thread. durations "off" (the default) runs the session in count mode
    where the backend has one (as `syscap top` does); "all" records every
    syscall with its duration and exports the duration histogram; "sampled"
    counts and times a sample within sample_budget (percent of one CPU),
    the histogram then estimated from the sample (its count stays exact).

    prometheus_client is imported when metrics are built, so `syscap` itself
    starts without it."""

    def __init__(self, flt: Filter, top_comms: int = DEFAULT_TOP_COMMS, backend: str = "auto",
                 ring_size: int = DEFAULT_RING_SIZE, durations: str = "off",
                 sample_budget: float = DEFAULT_SAMPLE_BUDGET) -> None:
        self.session = Session(backend, ring_size)
        self.series = MetricSeries(top_comms)
        self._lock = threading.Lock()
        self._budget = sample_budget
        try:
            self.session.aggregate(True)
            self.session.set_filter(flt)
            if durations == "all":
                self.session.set_mode("records")
            else:
                try:
                    self.session.set_mode("sampled" if durations == "sampled" else "counts")
                except CaptureError:
                    self.session.set_mode("records")  # eBPF before 5.15
            if self.session.mode == "sampled":
                self.session.plan_samples(1e6, self._budget)  # until the rate is seen
            self.session.attach()
        except BaseException:
            self.session.close()
            raise
        self.uname = os.uname()

    @property
    def latency(self) -> bool:
        """Durations are measured (records or sampled mode)."""
        return self.session.mode != "counts"

    def start(self) -> None:
        """Start the consumer thread (the probes are attached already)."""
        self.session.start()

    def refresh(self) -> None:
        """Fold everything captured since the last refresh into the totals."""
        with self._lock:
            err = self.session.error
            if err:
                raise CaptureError(err)
            snap, hists = self.session.snapshot_with_histograms()
            self.series.add(snap, hists.__getitem__ if hists else None)
            if self.session.mode == "sampled":
                self.session.plan_samples((snap.events + snap.drops) / snap.interval_s,
                                          self._budget)

    def collect(self) -> Iterator[Metric]:
        self.refresh()
        with self._lock:
            yield from self._metrics()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected on demand only

    def _metrics(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            InfoMetricFamily,
        )

        t = self.series
        info = InfoMetricFamily("syscap_backend", "The capture backend and this host's kernel")
        info.add_metric([], {"backend": self.session.backend, "kernel": self.uname.release,
                             "arch": self.uname.machine, "mode": self.session.mode,
                             "ring_bytes_per_cpu": str(self.session.ring_size)})
        yield info
        calls = CounterMetricFamily(
            "syscap_syscalls", "Syscalls captured, by command name (top N, then 'other')",
            labels=["comm", "syscall"])
        errors = CounterMetricFamily(
            "syscap_syscall_errors", "Failed syscalls (-4095..-1) captured, by command name",
            labels=["comm", "syscall"])
        for (comm, name), s in sorted(t.by_comm.items()):
            calls.add_metric([comm, name], s.calls)
            errors.add_metric([comm, name], s.errors)
        yield calls
        yield errors
        if self.latency:  # count mode measures no durations
            hist = HistogramMetricFamily(
                "syscap_syscall_duration_seconds",
                "Syscall durations, all processes; bounds are the capture's log2 buckets",
                labels=["syscall"])
            for name in sorted(t.hist):
                count = float(t.hist_count[name])
                cum, buckets = 0.0, []
                for bound, n in zip(HIST_BOUNDS, t.hist[name], strict=False):
                    cum += n
                    # sampled weights are fractions: never above the exact count
                    buckets.append((repr(bound), min(cum, count)))
                buckets.append(("+Inf", count))
                hist.add_metric([name], buckets, t.hist_sum_ns[name] / 1e9)
            yield hist
        kernel = CounterMetricFamily(
            "syscap_kernel_syscalls",
            "Syscalls passing the filter, from the probe's exact per-CPU counters (also counts "
            "calls whose records were dropped)", labels=["syscall"])
        for row in sorted(self.session.totals().syscalls.values(), key=lambda r: r.name):
            kernel.add_metric([row.name], row.count)
        yield kernel
        rings = t.last.rings if t.last else ()
        fill = GaugeMetricFamily("syscap_ring_fill_ratio",
                                 "Ring fill at the last snapshot (used / size)", labels=["cpu"])
        max_used = GaugeMetricFamily("syscap_ring_max_used_bytes",
                                     "Highest ring fill seen since start", labels=["cpu"])
        size = GaugeMetricFamily("syscap_ring_size_bytes", "Ring size", labels=["cpu"])
        events = CounterMetricFamily("syscap_ring_records",
                                     "Syscall records generated on this CPU", labels=["cpu"])
        drops = CounterMetricFamily("syscap_ring_drops",
                                    "Syscall records lost because the ring was full",
                                    labels=["cpu"])
        for r in rings:
            cpu = [str(r.cpu)]
            fill.add_metric(cpu, r.fill)
            max_used.add_metric(cpu, r.max_used)
            size.add_metric(cpu, r.size)
            events.add_metric(cpu, r.events)
            drops.add_metric(cpu, r.drops)
        yield from (fill, max_used, size, events, drops)
        missed = CounterMetricFamily("syscap_probe_missed",
                                     "Probe runs the kernel skipped (BPF recursion)")
        missed.add_metric([], t.last.missed if t.last else 0)
        yield missed
        labeled = GaugeMetricFamily("syscap_comm_labels",
                                    "Comm label values in use, 'other' not counted")
        labeled.add_metric([], len(t.labels.labeled))
        yield labeled
        evictions = CounterMetricFamily("syscap_comm_label_evictions",
                                        "Comms that lost their label to a busier one")
        evictions.add_metric([], t.labels.evictions)
        yield evictions

    def close(self) -> None:
        with self._lock:
            self.session.close()


def make_registry(exporter: Exporter) -> CollectorRegistry:
    from prometheus_client.registry import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(exporter)
    return reg

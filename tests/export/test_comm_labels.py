"""How the exporter bounds its comm labels and keeps counters monotonic (no kernel needed)."""

from __future__ import annotations

import pytest

from capture_lib.errors import UsageError
from capture_lib.exporter import OTHER, CommLabels, MetricSeries, parse_listen
from capture_lib.snapshot import ProcessStats, Snapshot, SyscallStats


def snap(calls: dict[str, int], syscall: str = "read", nr: int = 0) -> Snapshot:
    procs = tuple(
        ProcessStats(pid=i + 1, comm=comm, count=n, errors=0, total_ns=n, p50_ns=1, p99_ns=1,
                     syscalls=(SyscallStats(nr, syscall, n, 0, n, 1, 1, 0),))
        for i, (comm, n) in enumerate(calls.items())
    )
    total = sum(calls.values())
    return Snapshot(start_ns=0, end_ns=1, processes=procs, rings=(), events=total, drops=0,
                    syscalls=(SyscallStats(nr, syscall, total, 0, total, 1, 1, 0),))


def test_the_first_comms_fill_the_labels_busiest_first() -> None:
    labels = CommLabels(2)
    labels.update({"a": 5, "b": 50, "c": 20})
    assert labels.labeled == {"b", "c"}
    assert labels.label("a") == OTHER


def test_a_much_busier_comm_takes_the_weakest_label() -> None:
    labels = CommLabels(2)
    labels.update({"a": 100, "b": 10})
    assert labels.update({"a": 100, "c": 40}) == ["b"]  # b decayed to 5: 40 > 2 * 5 + 1
    assert labels.labeled == {"a", "c"}


def test_a_slightly_busier_comm_does_not_make_labels_flap() -> None:
    labels = CommLabels(2)
    labels.update({"a": 100, "b": 100})
    for _ in range(10):
        assert labels.update({"a": 100, "b": 100, "c": 150}) == []
    assert labels.labeled == {"a", "b"}


def test_zero_labels_put_everything_in_other() -> None:
    t = MetricSeries(0)
    t.add(snap({"a": 3, "b": 4}), None)
    assert t.by_comm.keys() == {(OTHER, "read")} and t.by_comm[(OTHER, "read")].calls == 7


def test_totals_only_grow_and_an_evicted_series_disappears() -> None:
    t = MetricSeries(1)
    t.add(snap({"a": 10}), None)
    t.add(snap({"a": 10, "b": 1}), None)
    assert t.by_comm[("a", "read")].calls == 20 and t.by_comm[(OTHER, "read")].calls == 1
    t.add(snap({"b": 1000}), None)  # b takes a's label: a's series stops
    assert ("a", "read") not in t.by_comm
    assert t.by_comm[("b", "read")].calls == 1000
    assert t.by_comm[(OTHER, "read")].calls == 1
    t.add(snap({"a": 5}), None)
    assert t.by_comm[(OTHER, "read")].calls == 6


def test_the_candidate_table_stays_bounded() -> None:
    labels = CommLabels(3)
    for i in range(200):
        labels.update({f"p{i}-{k}": 1 for k in range(50)})
    assert len(labels.score) <= 64 + 3 and len(labels.labeled) == 3


def test_unknown_comms_get_a_label_value() -> None:
    t = MetricSeries(5)
    t.add(snap({"": 2}), None)
    assert t.by_comm[("unknown", "read")].calls == 2


def test_histogram_buckets_are_cumulative_from_log2_buckets() -> None:
    t = MetricSeries(5)
    buckets = [0] * 64
    buckets[3] = 4  # 4..7 ns: into the first bound (1023 ns)
    buckets[12] = 2  # 2048..4095 ns: le 4.095e-06
    buckets[40] = 1  # ~550 s: above the last bound, only in +Inf
    t.add(snap({"a": 7}), lambda nr: buckets)
    h = t.hist["read"]
    assert h[0] == 4 and h[12 - 10] == 2 and h[-1] == 1 and sum(h) == 7


@pytest.mark.parametrize("text", ["9477", "host:", ":9477", "h:0", "h:99999", "h:x"])
def test_bad_listen_addresses_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_listen(text)


def test_listen_takes_ipv6_in_brackets() -> None:
    assert parse_listen("[::1]:9477") == ("::1", 9477)
    assert parse_listen("127.0.0.1:9477") == ("127.0.0.1", 9477)

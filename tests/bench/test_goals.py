"""The nginx goal lines, read from recorded summaries (not timings)."""

from __future__ import annotations

from typing import Any

from bench import nginx


def row(key: str, loss: float, minus_floor: float | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"key": key, "name": key, "loss_pct": {"median": loss}}
    if minus_floor is not None:
        r["loss_minus_floor_points"] = minus_floor
    return r


def test_each_syscap_mode_is_read_against_the_floor_and_every_peer() -> None:
    rows = [
        {"key": "baseline", "name": "baseline"},
        row("floor", 3.4, 0.0),
        row("syscap-count", 3.3, -0.1),
        row("syscap-sampled", 5.8, 2.4),
        row("syscap-record", 18.1, 14.7),
        row("bpftrace", 14.2, 10.8),
        row("strace", 96.1, 92.7),
        {"key": "sysdig", "name": "sysdig", "status": "not run"},  # no loss: not a peer here
    ]
    count, sampled, record = nginx.goal_lines(rows)
    assert "loss <= floor + 1 point and below every peer" in count
    assert count.endswith("-0.1 points, below every peer: met")
    assert "loss <= floor + 2 points: +2.4 points" in sampled and sampled.endswith("NOT met")
    assert "loss and below bpftrace: +14.7 points, not below bpftrace (14.2 %): NOT met" in record
    strace_alone = [r for r in rows if r.get("key") != "bpftrace"]
    assert nginx.goal_lines(strace_alone)[-1].endswith("below every peer: met")


def test_within_a_point_of_the_floor_but_above_a_peer_is_not_met() -> None:
    rows = [row("floor", 10.0, 0.0), row("syscap-count", 10.5, 0.5), row("bpftrace", 10.2)]
    (count,) = nginx.goal_lines(rows)
    assert "+0.5 points, not below bpftrace (10.2 %): NOT met" in count

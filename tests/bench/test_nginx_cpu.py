"""nginx's second metric, the worker's CPU per request, on synthetic rounds
(no timing, no nginx): its pairing, the loss it implies, its columns and goals."""

from __future__ import annotations

import math
import os
import statistics
from typing import Any

import pytest

from bench import markdown, nginx, stats
from bench.harness import Row

NAN = math.nan
# requests/s of 4 rounds, noisy as this VM's; round 3 of record failed
BASE = [10000.0, 17100.0, 12000.0, 15000.0]
FLOOR = [9700.0, 16500.0, 11700.0, 14600.0]
RECORD = [8300.0, 14500.0, NAN, 12700.0]
# the worker's CPU ns per request of the same rounds: much steadier
CPU = {"baseline": [40000.0, 40400.0, 39800.0, 40200.0],
       "floor": [41200.0, 41500.0, 41000.0, 41400.0],
       "syscap-record": [47000.0, 47600.0, NAN, 47300.0]}
TRACER = {"floor": [5.0, 6.0, 5.0, 5.0], "syscap-record": [9000.0, 9100.0, NAN, 9050.0]}
MACHINE = {"host": "vm", "arch": "x86_64", "cpus": 2, "cpu_model": "Xeon", "kernel": "6.18",
           "distro": "Debian 12", "date": "2026-11-25", "loadavg_at_start": [0.1, 0.1, 0.1]}


def rows() -> list[Row]:
    return [Row("baseline", "baseline", list(BASE)), Row("floor", "floor", list(FLOOR)),
            Row("syscap-record", "syscap record -a to file", list(RECORD)),
            Row("bpftrace", "bpftrace count", list(BASE))]  # ran, but no CPU measured


def rounds(worker: dict[str, list[float]] = CPU, busy: dict[str, list[float]] | None = None
           ) -> nginx.CpuRounds:
    return nginx.CpuRounds(worker, TRACER, busy or {})


def summary() -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in nginx.summarise(rows(), {}, rounds())}


def result(out: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rows": out, "machine": MACHINE, "rounds": 4, "sweep_rounds": 1, "quick": False,
            "concurrency": 50, "levels": [1, 10, 100, 1000]}


def test_cpu_loss_is_paired_per_round_against_the_baseline() -> None:
    out = summary()
    rec = out["syscap-record"]["cpu_loss_pct"]
    # 100 (1 - base / row) per round; round 3 failed and is left out of its pair
    per_round = [100 * (1 - b / r) for b, r in zip(CPU["baseline"], CPU["syscap-record"],
                                                   strict=True) if math.isfinite(r)]
    assert rec["n"] == 3
    assert rec["median"] == pytest.approx(statistics.median(per_round), abs=0.01)
    assert rec["interval"] == pytest.approx([min(per_round), max(per_round)], abs=0.01)
    assert rec["interval_level"] == stats.estimate(per_round).as_json()["interval_level"]
    floor = statistics.median(100 * (1 - b / r) for b, r in zip(CPU["baseline"], CPU["floor"],
                                                                strict=True))
    assert out["syscap-record"]["cpu_loss_minus_floor_points"] == pytest.approx(
        statistics.median(per_round) - floor, abs=0.02)
    assert out["floor"]["cpu_loss_minus_floor_points"] == 0.0


def test_cpu_loss_is_the_requests_per_cpu_second_lost() -> None:
    # 25 % more CPU per request: a CPU-bound worker serves 1/1.25 as many, 20 % fewer
    e = nginx.cpu_loss([50.0, 50.0], [40.0, 40.0])
    assert e is not None and e.median == pytest.approx(20.0)
    assert nginx.cpu_loss([NAN, 50.0], [40.0, NAN]) is None  # no round with both


def test_cpu_per_request_keeps_the_runs_and_the_requests_s_metric_is_untouched() -> None:
    out = summary()
    base = out["baseline"]
    assert base["cpu_per_request_ns"]["runs"] == CPU["baseline"]
    assert base["cpu_per_request_ns"]["median"] == pytest.approx(40100.0)
    assert "cpu_loss_pct" not in base  # the baseline has no loss against itself
    assert out["syscap-record"]["tracer_cpu_per_request_ns"]["median"] == pytest.approx(9050.0)
    assert "tracer_cpu_per_request_ns" not in base
    plain = {r["key"]: r for r in nginx.summarise(rows(), {})}
    for key, r in plain.items():
        new = ("cpu_", "tracer_", "worker_")
        assert {k for k in out[key] if not k.startswith(new)} == r.keys()
        assert r.get("loss_pct") == out[key].get("loss_pct")
        assert "cpu_per_request_ns" not in r


def test_a_row_without_cpu_data_has_no_cpu_keys() -> None:
    out = summary()
    assert "loss_pct" in out["bpftrace"]
    assert not any(k.startswith(("cpu_", "tracer_", "worker_")) for k in out["bpftrace"])
    # every CPU reading of the baseline failed: no CPU loss anywhere, no crash
    none = {r["key"]: r for r in nginx.summarise(rows(), {}, rounds(CPU | {"baseline": [NAN] * 4}))}
    assert "cpu_per_request_ns" not in none["baseline"]
    assert "cpu_loss_pct" not in none["syscap-record"]
    assert "cpu_per_request_ns" in none["syscap-record"]


def test_a_stopped_row_gets_no_cpu_numbers() -> None:
    rs = rows()
    rs[2].why = "failed: syscap record died"
    out = {r["key"]: r for r in nginx.summarise(rs, {}, rounds())}
    assert out["syscap-record"]["status"] == "failed"
    assert "cpu_per_request_ns" not in out["syscap-record"]


def test_table_and_markdown_print_the_cpu_columns() -> None:
    res = result(nginx.summarise(rows(), {}, rounds()))
    text = nginx.table(res)
    header = next(ln for ln in text.splitlines() if ln.strip().startswith("configuration"))
    for col in ("µs/req", "CPU loss", "CPU interval", "tracer"):
        assert col in header
    rec = next(ln for ln in text.splitlines() if ln.strip().startswith("syscap record"))
    loss = res["rows"][2]["cpu_loss_pct"]
    assert f"{loss['median']:.1f}" in rec
    assert f"[{loss['interval'][0]:.1f}, {loss['interval'][1]:.1f}]" in rec
    assert "  47.3 " in rec and "   9.1 " in rec  # worker and tracer µs per request
    bpf = next(ln for ln in text.splitlines() if ln.strip().startswith("bpftrace"))
    assert bpf.split()[-7:-4] == ["-", "-", "-"]  # µs/req, CPU loss, interval: not measured
    md = markdown.nginx(res)
    head = md.splitlines()[0]
    assert "| worker µs/request | CPU loss % | CPU loss interval |" in head
    cols = head.count("|")
    for line in md.splitlines()[2:6]:
        assert line.count("|") == cols, line
    assert f"| 47.3 | {loss['median']:.1f} | [" in md
    assert "| bpftrace count | 17100 |" not in md  # its own median
    assert md.splitlines()[5].split(" | ")[5:8] == ["-", "-", "-"]


def test_a_row_that_did_not_run_still_fills_the_markdown_table() -> None:
    rs = [*rows(), Row("sysdig", "sysdig", why="sysdig needs its scap kernel module")]
    md = markdown.nginx(result(nginx.summarise(rs, {}, rounds())))
    line = next(ln for ln in md.splitlines() if ln.startswith("| sysdig"))
    assert line.count("|") == md.splitlines()[0].count("|")


def goal_row(key: str, loss: float, pts: float | None, cpu: float | None = None,
             cpu_pts: float | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"key": key, "name": key, "loss_pct": {"median": loss},
                         "loss_minus_floor_points": pts}
    if cpu is not None:
        r["cpu_loss_pct"] = {"median": cpu}
        r["cpu_loss_minus_floor_points"] = cpu_pts
    return r


def test_goals_are_also_read_by_worker_cpu() -> None:
    rows = [goal_row("floor", 3.0, 0.0, 2.8, 0.0),
            goal_row("syscap-sampled", 6.0, 3.0, 4.5, 1.7),
            goal_row("syscap-record", 14.0, 11.0, 12.0, 9.2),
            goal_row("bpftrace", 13.0, 10.0, 13.5, 10.7)]
    lines = nginx.goal_lines(rows)
    assert len(lines) == 4  # two goals, each by requests/s then by worker CPU
    sampled, sampled_cpu, record, record_cpu = lines
    assert sampled.startswith("  goal: syscap-sampled loss <= floor + 2 points: +3.0 points")
    assert sampled.endswith("NOT met")
    assert sampled_cpu.startswith("  goal by worker CPU: syscap-sampled loss <= floor + 2 "
                                  "points: +1.7 points")
    assert sampled_cpu.endswith(": met")
    assert "not below bpftrace (13.0 %): NOT met" in record
    assert record_cpu.startswith("  goal by worker CPU: syscap-record")
    assert record_cpu.endswith("below every peer: met")  # 12.0 < bpftrace's 13.5


def test_a_peer_without_cpu_data_is_no_peer_by_worker_cpu() -> None:
    rows = [goal_row("floor", 3.0, 0.0, 2.8, 0.0),
            goal_row("syscap-record", 14.0, 11.0, 12.0, 9.2), goal_row("bpftrace", 13.0, 10.0)]
    record, record_cpu = nginx.goal_lines(rows)
    assert record.endswith("NOT met")
    assert record_cpu.endswith("below every peer: met")
    # no CPU points over the floor (the floor had none): only the requests/s line
    rows[1]["cpu_loss_minus_floor_points"] = None
    assert nginx.goal_lines(rows) == [record]


def test_cpu_per_request_from_two_readings() -> None:
    assert nginx.per_request(1_000_000, 4_000_000, 3000) == pytest.approx(1000.0)
    for before, after, n in ((None, 5, 1), (5, None, 1), (1, 5, 0), (5, 1, 1)):
        assert math.isnan(nginx.per_request(before, after, n))


def test_cpu_time_is_read_from_schedstat() -> None:
    me = nginx.cpu_ns(os.getpid())
    assert me is not None and me > 0
    tree = nginx.tree_cpu_ns(os.getpid())
    assert tree is not None and tree > 0
    assert nginx.cpu_ns(0) is None and nginx.tree_cpu_ns(0) is None  # no such process


def test_ab_report_gives_the_completed_requests() -> None:
    out = "Complete requests:      30000\nFailed requests:        12\n"
    assert nginx.parse_complete(out) == 30000
    assert nginx.parse_complete("apr_socket_recv: Connection refused (111)") == 0


def test_rounds_are_filled_from_readings_around_each_run() -> None:
    cr = nginx.CpuRounds.unmeasured(["baseline", "floor"], 2)
    # 0.15 s of worker CPU and 3 ms of the tracer's over 3000 requests in 0.3 s
    cr.put("floor", 1, (10**9, 10**9 + 150_000_000), (0, 3_000_000), 3000, 0.3)
    cr.put("baseline", 1, (None, 5), (None, None), 3000, 0.3)  # the worker's reading failed
    assert math.isnan(cr.worker["floor"][0]) and cr.worker["floor"][1] == pytest.approx(50_000.0)
    assert cr.tracer["floor"][1] == pytest.approx(1000.0)
    assert cr.busy["floor"][1] == pytest.approx(50.0)
    assert all(math.isnan(x) for k in ("worker", "tracer", "busy")
               for x in getattr(cr, k)["baseline"])


def test_the_table_says_how_busy_the_worker_was() -> None:
    busy = {"baseline": [52.0, 49.0, 50.0, 51.0]}
    res = result(nginx.summarise(rows(), {}, rounds(busy=busy)))
    assert res["rows"][0]["worker_busy_pct"]["median"] == pytest.approx(50.5)
    assert "the worker was busy 50 % of the baseline's ab runs" in nginx.table(res)
    assert "busy" not in nginx.table(result(nginx.summarise(rows(), {}, rounds())))

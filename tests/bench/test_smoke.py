"""End to end: `syscap bench` runs, prints every row and leaves nothing behind.

Short runs (timings are not checked: the numbers of so short a run mean
nothing); they need root and the eBPF backend, like the capture tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import guest, plots, throughput
from bench.tracers import TRACEFS, all_tracers
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="syscap bench needs root")


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "capture_lib.cli", "bench", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout, check=False)
    assert p.returncode == 0, p.stderr
    return p


def leftovers() -> list[str]:
    """Tracers or servers of this harness still running, ftrace instances left."""
    found = [p.name for p in TRACEFS.glob("instances/syscap-bench-*")]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "floor.bpf.o" in cmd or "syscap-bench-" in cmd:
            found.append(f"{proc.name}: {cmd}")
    return found


def check_rows(tracers: dict[str, Any], expected: set[str], must_run: set[str]) -> None:
    assert set(tracers) == expected
    for key, row in tracers.items():
        if row["status"] == "ok":
            assert isinstance(row["median"], float | int), key
            lo, hi = row["interval"]
            assert lo <= row["median"] <= hi, key
            assert 0.0 <= row["interval_level"] <= 1.0, key
        else:
            assert row["why"], f"{key} did not run and does not say why"
    for key in must_run:
        assert tracers[key]["status"] == "ok", f"{key}: {tracers[key]['why']}"


def test_micro_quick_json_has_every_row_with_median_and_interval(tmp_path: Path) -> None:
    p = bench("micro", "--quick", "--json", "--rounds", "2", "--results", str(tmp_path))
    doc = json.loads(p.stdout)
    keys = {t.key for t in all_tracers()}
    check_rows(doc["tracers"]["micro"], keys, {"baseline", "floor", "syscap-record"})
    for t in all_tracers():  # the table (on stderr with --json) prints every row
        assert t.name in p.stderr
    assert (tmp_path / "micro.quick.json").exists()
    assert (tmp_path / "micro.quick.png").exists() or plots.why_not()
    assert leftovers() == []


@pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("ab")),
                    reason="nginx and ab (apache2-utils) are not installed")
def test_nginx_quick_runs_and_stops_its_server(tmp_path: Path) -> None:
    p = bench("nginx", "--quick", "--json", "--rounds", "1", "--tracers", "floor,syscap-record",
              "--results", str(tmp_path))
    doc = json.loads(p.stdout)
    rows = doc["tracers"]["nginx"]
    check_rows(rows, {"baseline", "floor", "syscap-record"}, {"baseline", "syscap-record"})
    assert "loss_pct" in rows["syscap-record"]
    levels = doc["benchmarks"]["nginx"]["rows"][0]["concurrency"]
    assert set(levels) == {"1", "10", "100", "1000"}
    assert (tmp_path / "nginx.quick.png").exists() or plots.why_not()
    assert leftovers() == []


def test_throughput_finds_a_drop_free_rate_for_a_ring() -> None:
    res = throughput.run(throughput.Options(quick=True, ring_mib=(4,)))
    (row,) = res["rows"]
    assert row["trials"], row
    if row["best"] is not None:
        assert row["best"]["drops"] == 0
        assert row["best"]["recorded"] > 0
    assert row["bound"] in ("generator", "drops")
    # a trickle's every record delivered, within a snapshot interval
    t = res["trickle"]
    assert t["calls"] == throughput.TRICKLE_CALLS[1] and t["records"] == t["calls"], t
    assert 0 < t["max_ms"] < throughput.SNAPSHOT_S * 1e3, t
    assert leftovers() == []


def test_guest_prints_every_row_even_without_the_lab(tmp_path: Path) -> None:
    # quick: without the lab's guest image it says so at once (no download);
    # with it, one short boot (about a minute under TCG)
    p = bench("guest", "--quick", "--json", "--results", str(tmp_path), timeout=300)
    rows = json.loads(p.stdout)["tracers"]["guest"]
    assert list(rows) == [k for k, _ in guest.ROWS]
    for row in rows.values():
        assert row["status"] == "ok" or row["why"]

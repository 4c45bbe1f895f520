"""A real Prometheus server (Debian's package, on loopback) scrapes the exporter.

With SYSCAP_PLOT=FILE.png the test also draws the per-syscall rates it
queried from Prometheus (that is how docs/exporter-rates.png was made).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.export.conftest import Exporter, free_port, stop, unique_comm, wait_http

# pace TICKS GETPPID WRITES FAILS: per 10 ms tick, so rates are 100x per second
TICKS, GETPPID, WRITES, FAILS = 1600, 200, 50, 10


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: str) -> Any:
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{q}", timeout=10) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def wait_scraped(self, timeout: float = 30.0) -> None:
        """Until two scrapes of the target have succeeded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.api("query", query='sum_over_time(up{job="syscap"}[1m])')["result"]
            if res and float(res[0]["value"][1]) >= 2:
                return
            time.sleep(0.2)
        raise AssertionError(f"prometheus did not scrape the exporter within {timeout} s")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """prometheus(target) starts a server scraping target every second; stopped afterwards."""
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail("the prometheus server is missing: apt-get install prometheus")
    procs: list[subprocess.Popen[str]] = []

    def start(target: str) -> Prometheus:
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: syscap\n    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        proc = subprocess.Popen(
            [exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", proc, timeout=60)
        return Prometheus(url)

    yield start
    for p in procs:
        stop(p)


def test_promql_rate_matches_the_workload_rate(
        exporter: type[Exporter], prometheus: Any, pace: Path, tmp_path: Path) -> None:
    exe = unique_comm(tmp_path, pace, "sxp")
    e = exporter("--comm", exe.name)
    prom = prometheus(f"127.0.0.1:{e.port}")
    prom.wait_scraped()  # its first scrape comes a few seconds after start-up
    started = time.time()
    work = subprocess.Popen([str(exe), str(TICKS), str(GETPPID), str(WRITES), str(FAILS)])
    try:
        time.sleep(13.0)
        assert work.poll() is None  # the query window lies inside the run
        sel = f'comm="{exe.name}"'
        query = f'rate(syscap_syscalls_total{{{sel},syscall="getppid"}}[10s])'
        res = prom.api("query", query=query)
        assert len(res["result"]) == 1, res
        rate = float(res["result"][0]["value"][1])
        assert rate == pytest.approx(GETPPID * 100, rel=0.10)
        res = prom.api("query",
                       query=f'rate(syscap_syscall_errors_total{{{sel},syscall="openat"}}[10s])')
        assert float(res["result"][0]["value"][1]) == pytest.approx(FAILS * 100, rel=0.10)
        assert work.wait(timeout=30) == 0
    finally:
        stop(work)
    ran = time.time() - started
    assert ran < TICKS / 100 * 1.2  # pace kept its schedule (it did not fall behind)
    time.sleep(3.0)
    end = time.time()
    query = f"sum by (syscall) (rate(syscap_syscalls_total{{{sel}}}[3s]))"
    rng = prom.api("query_range", query=query, start=f"{started - 3:.3f}", end=f"{end:.3f}",
                   step="0.5")
    series = {r["metric"]["syscall"]: [(float(t), float(v)) for t, v in r["values"]]
              for r in rng["result"]}
    assert {"getppid", "write", "openat"} <= set(series)
    plot = os.environ.get("SYSCAP_PLOT")
    if plot:
        draw(series, started, plot, exe.name)


def draw(series: dict[str, list[tuple[float, float]]], t0: float, path: str, comm: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    busy = [s for s in series if max(v for _, v in series[s]) >= 1]  # not one-off calls
    top = sorted(busy, key=lambda s: -max(v for _, v in series[s]))[:6]
    for name in top:
        pts = series[name]
        ax.plot([t - t0 for t, _ in pts], [v for _, v in pts], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the workload started")
    ax.set_ylabel("calls/s")
    ax.set_title(f"sum by (syscall) (rate(syscap_syscalls_total{{comm=\"{comm}\"}}[3s]))",
                 fontsize=9)
    ax.legend(loc="lower center", fontsize=8, ncol=3)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

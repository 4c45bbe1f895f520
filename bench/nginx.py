"""nginx: requests/s of nginx + ab on loopback under each tracer.

Sized for a 2-CPU machine as the design measured it stable (+-1.5 %): one nginx
worker pinned to CPU 1 (worker_cpu_affinity), access log on, a small static
page; `taskset -c 0 ab -n N -c 50` from CPU 0, where the tracers' consumers
run too. One nginx serves the whole run. Each round starts every tracer in
turn (rotated order), runs ab against it, and in the first sweep_rounds rounds
also at concurrency 1, 10, 100 and 1000 (rotated), then stops the tracer.
Loss is paired per round against the baseline run of the same round.
"""

from __future__ import annotations

import math
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import harness, stats
from bench.harness import Row
from bench.tracers import (
    BASELINE,
    FLOOR,
    TRACER_CPU,
    WORK_CPU,
    BenchError,
    Proc,
    Target,
    TracerError,
    select,
)

CONCURRENCY = 50
LEVELS = (1, 10, 100, 1000)
# Requests per ab run (full, quick); slow tracers get a fraction of it.
REQUESTS = (30_000, 3_000)
SWEEP_REQUESTS = (10_000, 1_000)
SCALE = {"strace": 1 / 3, "perf-trace": 1 / 10}
ROUNDS = (10, 3)
SWEEP_ROUNDS = (5, 1)
AB_TIMEOUT = 300.0
PAGE = b"<!DOCTYPE html>\n<html><head><title>syscap bench</title></head><body>\n" + (
    b"<p>" + b"syscap benchmark page. " * 24 + b"</p>\n") + b"</body></html>\n"


@dataclass(frozen=True)
class Options:
    rounds: int
    quick: bool
    sweep_rounds: int
    tracers: tuple[str, ...] | None = None  # keys; None: all


def why_not() -> str | None:
    for tool, pkg in (("nginx", "nginx"), ("ab", "apache2-utils"), ("taskset", "util-linux")):
        if not shutil.which(tool):
            return f"{tool} is not installed (apt-get install {pkg})"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_conf(d: Path, port: int) -> Path:
    www = d / "www"
    www.mkdir()
    (www / "index.html").write_bytes(PAGE)
    d.chmod(0o755)  # the worker runs as nobody and must read www
    conf = d / "nginx.conf"
    conf.write_text(f"""\
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity {1 << WORK_CPU:b};
worker_rlimit_nofile 8192;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ root {www}; }}
    }}
}}
""")
    return conf


def _get(port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def start_nginx(d: Path, port: int) -> tuple[Proc, int]:
    """nginx in the foreground under our control, and its worker's pid."""
    conf = write_conf(d, port)
    p = Proc.start(["taskset", "-c", str(WORK_CPU), "nginx", "-p", str(d), "-c", str(conf)],
                   "nginx")
    try:
        deadline = time.monotonic() + 20
        while not _get(port):
            p.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"nginx did not answer on 127.0.0.1:{port} within 20 s "
                                 f"(see {d}/error.log)")
            time.sleep(0.1)
        children = Path(f"/proc/{p.popen.pid}/task/{p.popen.pid}/children").read_text().split()
        if len(children) != 1:
            raise BenchError(f"nginx should have one worker, found {len(children)}")
        return p, int(children[0])
    except TracerError as e:
        p.kill()
        raise BenchError(f"nginx did not start: {e}") from e
    except BaseException:
        p.kill()
        raise


def more_files(want: int = 8192) -> None:
    """Raise this process's open-file limit (ab -c 1000 inherits it). Set here,
    not in a preexec_fn: that is unsafe with the tracers' reader threads."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_ab(out: str) -> tuple[float, int]:
    """(requests per second, failed requests + non-2xx) from ab's report."""
    m = re.search(r"Requests per second:\s+([\d.]+)", out)
    if not m:
        raise ValueError("no 'Requests per second' in ab's output")
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    return float(m.group(1)), sum(int(x.group(1)) for x in (failed, non2xx) if x)


def ab(port: int, requests: int, concurrency: int) -> float:
    n = max(requests, concurrency)
    cmd = ["taskset", "-c", str(TRACER_CPU), "ab", "-q", "-r", "-s", "30", "-n", str(n),
           "-c", str(concurrency), f"http://127.0.0.1:{port}/"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=AB_TIMEOUT,
                           check=False)
    except subprocess.TimeoutExpired as e:
        raise TracerError(f"ab -c {concurrency} did not finish in {AB_TIMEOUT:.0f} s") from e
    try:
        rps, bad = parse_ab(p.stdout)
    except ValueError as e:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise TracerError(f"ab -c {concurrency} failed ({p.returncode}): {last}") from e
    if bad > n // 100:
        raise TracerError(f"ab -c {concurrency}: {bad} of {n} requests failed")
    return rps


def alive(server: Proc) -> None:
    """nginx must outlive every tracer; if it died the whole run is void."""
    try:
        server.check_alive()
    except TracerError as e:
        raise BenchError(f"nginx died during the run: {e}") from e


def requests_for(key: str, base: int) -> int:
    return max(100, int(base * SCALE.get(key, 1.0)))


def summarise(rows: list[Row], sweep: dict[str, dict[int, list[float]]]) -> list[dict[str, Any]]:
    base = next(r for r in rows if r.key == BASELINE)
    floor = next((r for r in rows if r.key == FLOOR), None)
    floor_loss = (stats.loss_pct(floor.runs, base.runs).median
                  if floor is not None and floor.ok and base.ok else None)
    out: list[dict[str, Any]] = []
    for r in rows:
        d = r.as_json("requests/s")
        if r.ok and base.ok and r.key != BASELINE:
            loss = stats.loss_pct(r.runs, base.runs)
            d["loss_pct"] = loss.as_json()
            d["loss_minus_floor_points"] = (None if floor_loss is None
                                            else round(loss.median - floor_loss, 2))
        levels: dict[str, Any] = {}
        for c, runs in sweep.get(r.key, {}).items():
            xs = stats.finite(runs)
            if not xs:
                continue
            lv: dict[str, Any] = {"runs": runs, **stats.estimate(xs).as_json()}
            bruns = sweep.get(BASELINE, {}).get(c, [])
            if r.key != BASELINE and stats.paired(runs, bruns):
                lv["loss_pct"] = stats.loss_pct(runs, bruns).as_json()
            levels[str(c)] = lv
        if levels:
            d["concurrency"] = levels
        out.append(d)
    return out


def run(opts: Options) -> dict[str, Any]:
    tracers = select(opts.tracers)
    rows = [Row(t.key, t.name, why=t.why_not() or "") for t in tracers]
    if why := why_not():
        for r in rows:
            r.why = why
    elif why := harness.build_native():
        for r in rows:
            if r.key == FLOOR:
                r.why = why
    main_n = REQUESTS[1] if opts.quick else REQUESTS[0]
    sweep_n = SWEEP_REQUESTS[1] if opts.quick else SWEEP_REQUESTS[0]
    sweep: dict[str, dict[int, list[float]]] = {
        t.key: {c: [math.nan] * opts.sweep_rounds for c in LEVELS} for t in tracers}
    sweep_notes: dict[str, dict[str, str]] = {}
    if not why_not():
        more_files()
        with tempfile.TemporaryDirectory(prefix="syscap-bench-nginx-") as d:
            port = free_port()
            server, worker = start_nginx(Path(d), port)
            try:
                target = Target(pids=(worker,))

                def one(i: int, rnd: int) -> float:
                    t = tracers[i]
                    got: dict[int, float] = {}
                    with t.attached(Path(d), target):
                        alive(server)
                        rps = ab(port, requests_for(t.key, main_n), CONCURRENCY)
                        if rnd < opts.sweep_rounds:
                            for j in harness.rotated(len(LEVELS), rnd + i):
                                c = LEVELS[j]
                                try:
                                    got[c] = ab(port, requests_for(t.key, sweep_n), c)
                                except TracerError as e:  # this level only: note it
                                    sweep_notes.setdefault(t.key, {})[str(c)] = str(e)
                                    alive(server)
                    # kept only now that the tracer is known to have lived throughout
                    for c, v in got.items():
                        sweep[t.key][c][rnd] = v
                    return rps

                harness.interleave(rows, opts.rounds, one, harness.say)
            finally:
                server.stop()
    return {
        "benchmark": "nginx",
        "method": f"nginx 1 worker on CPU {WORK_CPU} (access log on), "
                  f"taskset -c {TRACER_CPU} ab -c {CONCURRENCY}; loss paired per round "
                  "against the baseline",
        "machine": harness.machine(),
        "rounds": opts.rounds,
        "sweep_rounds": opts.sweep_rounds,
        "quick": opts.quick,
        "requests": {t.key: requests_for(t.key, main_n) for t in tracers},
        "sweep_requests": {t.key: requests_for(t.key, sweep_n) for t in tracers},
        "concurrency": CONCURRENCY,
        "levels": list(LEVELS),
        "rows": summarise(rows, sweep),
        "concurrency_failures": sweep_notes,  # tracer -> level -> last failure
    }


def table(result: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = result["rows"]
    level = next((r["interval_level"] for r in rows if "interval_level" in r), None)
    out = harness.header(f"nginx: requests/s, ab -c {result['concurrency']} on loopback "
                         "(higher is better)", result["machine"], result["rounds"], level)
    out.append(f"  {'configuration':34} {'median':>9} {'interval':>19} {'loss %':>7} "
               f"{'loss interval':>15} {'- floor':>8}   " +
               " ".join(f"{'c=' + str(c):>7}" for c in result["levels"]))
    for r in rows:
        if r["status"] != "ok":
            out.append(f"  {r['name']:34} {r['status']}: {r['why'] or r['note']}")
            continue
        loss = r.get("loss_pct")
        iv = f"[{r['interval'][0]:.0f}, {r['interval'][1]:.0f}]"
        liv = f"[{loss['interval'][0]:.1f}, {loss['interval'][1]:.1f}]" if loss else "-"
        conc = r.get("concurrency", {})
        cells = []
        for c in result["levels"]:
            lv = conc.get(str(c))
            if lv is None:
                cells.append(f"{'-':>7}")
            elif r["key"] == BASELINE:
                cells.append(f"{lv['median']:7.0f}")
            else:
                cells.append(harness.fmt(lv.get("loss_pct", {}).get("median"), 1, 7))
        out.append(f"  {r['name']:34} {r['median']:9.0f} {iv:>19} "
                   f"{harness.fmt(loss['median'] if loss else None, 1, 7)} {liv:>15} "
                   f"{harness.fmt(r.get('loss_minus_floor_points'), 1, 8)}   " + " ".join(cells))
    out.append(f"  (c=N columns: baseline requests/s, tracers loss % at that concurrency, "
               f"median of {result['sweep_rounds']} rounds)")
    out += goal_lines(rows)
    return "\n".join(out)


PEER_KEYS = ("bpftrace", "ftrace", "perf-trace", "strace", "sysdig")
# The nginx goal of each syscap mode: its loss at most the floor's + N points
# (None: no such bound), and below these peers' (every peer that ran).
GOALS: dict[str, tuple[float | None, tuple[str, ...]]] = {
    "syscap-count": (1.0, PEER_KEYS),
    "syscap-sampled": (2.0, ()),
    "syscap-record": (None, ("bpftrace",)),  # below what bpftrace loses only counting
}
GOAL_KEYS = tuple(GOALS)


def goal_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per syscap mode that ran: its loss against its GOALS entry."""
    out = []
    for key, (points, peer_keys) in GOALS.items():
        r = next((x for x in rows if x["key"] == key), None)
        if r is None or r.get("loss_minus_floor_points") is None or not r.get("loss_pct"):
            continue
        peers = [p for p in rows if p["key"] in peer_keys and p.get("loss_pct")]
        pts = r["loss_minus_floor_points"]
        loss = r["loss_pct"]["median"]
        beaten = [p for p in peers if p["loss_pct"]["median"] <= loss]
        what = [f"loss <= floor + {points:g} point{'s' if points != 1 else ''}"] \
            if points is not None else ["loss"]
        if peer_keys:
            what.append("below every peer" if peer_keys == PEER_KEYS else
                        "below " + ", ".join(peer_keys))
        below = ("below every peer" if not beaten else
                 "not below " + ", ".join(f"{p['name']} ({p['loss_pct']['median']:.1f} %)"
                                         for p in beaten))
        met = (points is None or pts <= points) and not beaten
        out.append(f"  goal: {r['name']} {' and '.join(what)}: "
                   f"{pts:+.1f} points, {below}: {'met' if met else 'NOT met'}")
    return out

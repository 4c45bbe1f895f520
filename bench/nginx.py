"""nginx: requests/s of nginx + ab on loopback under each tracer.

Sized for a 2-CPU machine as the design measured it stable (+-1.5 %): one nginx
worker pinned to CPU 1 (worker_cpu_affinity), access log on, a small static
page; `taskset -c 0 ab -n N -c 50` from CPU 0, where the tracers' consumers
run too. One nginx serves the whole run. Each round starts every tracer in
turn (rotated order), runs ab against it, and in the first sweep_rounds rounds
also at concurrency 1, 10, 100 and 1000 (rotated), then stops the tracer.
Loss is paired per round against the baseline run of the same round.

A second, quieter metric: around every main ab run (not the concurrency
sweep) the worker's CPU time (sum_exec_runtime from /proc/PID/task/*/schedstat,
which leaves out steal and waiting) is read, and divided by the requests ab
completed: worker CPU ns per request. Where the tracer has processes their CPU
is read the same way (tracer ns per request; work a consumer does after the
run is missed). CPU loss % = 100 (1 - baseline's ns/request / the row's), paired
per round like the loss: what the tracer's added CPU in the worker would cost
were the worker CPU-bound. It is not here (about half busy on the 2-CPU VM:
CPU 0, with ab, loopback and the consumers, is the limit), so the CPU loss
leaves out the tracer's cost on CPU 0 that the requests/s loss includes; the
worker's busy share is kept per round. The goals are read on both metrics.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness, procs, stats
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


def parse_complete(out: str) -> int:
    """Requests ab completed (its 'Complete requests'), 0 when it says none."""
    m = re.search(r"Complete requests:\s+(\d+)", out)
    return int(m.group(1)) if m else 0


@dataclass(frozen=True)
class AbRun:
    rps: float
    complete: int  # requests served, failed ones included: the worker handled them too


def ab(port: int, requests: int, concurrency: int) -> AbRun:
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
    return AbRun(rps, parse_complete(p.stdout))


def cpu_ns(pid: int) -> int | None:
    """CPU time process pid has run so far, in ns: the sum of its threads'
    sum_exec_runtime (/proc/PID/task/TID/schedstat, first field). Unlike wall
    time it leaves out the time the host ran others (steal, with paravirt time
    accounting) and time spent waiting. Exact for a sleeping task; a running
    one's lags by up to a tick. None when pid is gone or the kernel has no
    schedstat; threads that exited are not counted."""
    total, found = 0, False
    try:
        tids = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for tid in tids:
        try:
            total += int((tid / "schedstat").read_text().split()[0])
            found = True
        except (OSError, ValueError, IndexError):
            continue
    return total if found else None


def tree_cpu_ns(pid: int) -> int | None:
    """cpu_ns of pid and every process below it (a tracer and its helpers);
    None when pid itself is gone."""
    total = cpu_ns(pid)
    if total is None:
        return None
    kids: dict[int, list[int]] = {}
    for p, st in procs.proc_table().items():
        kids.setdefault(st.ppid, []).append(p)
    todo = list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        total += cpu_ns(p) or 0
        todo += kids.get(p, [])
    return total


def per_request(before: int | None, after: int | None, requests: int) -> float:
    """ns of CPU per request between two readings; NaN when either is missing."""
    if before is None or after is None or requests <= 0 or after < before:
        return math.nan
    return (after - before) / requests


def alive(server: Proc) -> None:
    """nginx must outlive every tracer; if it died the whole run is void."""
    try:
        server.check_alive()
    except TracerError as e:
        raise BenchError(f"nginx died during the run: {e}") from e


def requests_for(key: str, base: int) -> int:
    return max(100, int(base * SCALE.get(key, 1.0)))


def per_cpu_second(ns_per_request: list[float]) -> list[float]:
    """Requests per second of worker CPU: what a CPU-bound worker would serve."""
    return [1e9 / x if math.isfinite(x) and x > 0 else math.nan for x in ns_per_request]


def cpu_loss(values: list[float], base: list[float]) -> stats.Estimate | None:
    """Loss implied by the worker's added CPU, round by round against the baseline:
    100 (1 - base ns/request / ns/request), the requests/s lost were the worker
    CPU-bound. None without a round where both were measured."""
    runs, bruns = per_cpu_second(values), per_cpu_second(base)
    return stats.loss_pct(runs, bruns) if stats.paired(runs, bruns) else None


@dataclass
class CpuRounds:
    """Per row key, one value per round of its main ab run (NaN: not measured)."""

    worker: dict[str, list[float]] = field(default_factory=dict)  # CPU ns per request
    tracer: dict[str, list[float]] = field(default_factory=dict)  # its processes', the same
    # the worker's CPU time in % of the run's wall time: CPU loss predicts the
    # requests/s loss only where this is near 100 (the worker is the bottleneck)
    busy: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def unmeasured(cls, keys: list[str], rounds: int) -> CpuRounds:
        return cls(*({k: [math.nan] * rounds for k in keys} for _ in range(3)))

    def put(self, key: str, rnd: int, worker: tuple[int | None, int | None],
            tracer: tuple[int | None, int | None], requests: int, seconds: float) -> None:
        """Round rnd of key from (before, after) CPU ns readings around its run."""
        self.worker[key][rnd] = per_request(*worker, requests)
        self.tracer[key][rnd] = per_request(*tracer, requests)
        w = per_request(*worker, 1)
        self.busy[key][rnd] = 100 * w / (seconds * 1e9) if seconds > 0 else math.nan


def _cpu_json(runs: list[float]) -> dict[str, Any] | None:
    xs = stats.finite(runs)
    return {"runs": runs, **stats.estimate(xs).as_json()} if xs else None


def summarise(rows: list[Row], sweep: dict[str, dict[int, list[float]]],
              cpu_rounds: CpuRounds | None = None) -> list[dict[str, Any]]:
    """The rows as JSON: requests/s and its loss, and where measured the
    worker's CPU per request and the loss it implies, paired the same way."""
    cr = cpu_rounds or CpuRounds()
    cpu = cr.worker
    base = next(r for r in rows if r.key == BASELINE)
    floor = next((r for r in rows if r.key == FLOOR), None)
    floor_loss = (stats.loss_pct(floor.runs, base.runs).median
                  if floor is not None and floor.ok and base.ok else None)
    base_cpu = cpu.get(BASELINE, []) if base.ok else []
    floor_cpu = (cpu_loss(cpu.get(FLOOR, []), base_cpu)
                 if floor is not None and floor.ok else None)
    out: list[dict[str, Any]] = []
    for r in rows:
        d = r.as_json("requests/s")
        if r.ok and base.ok and r.key != BASELINE:
            loss = stats.loss_pct(r.runs, base.runs)
            d["loss_pct"] = loss.as_json()
            d["loss_minus_floor_points"] = (None if floor_loss is None
                                            else round(loss.median - floor_loss, 2))
        if r.ok and (w := _cpu_json(cpu.get(r.key, []))):
            d["cpu_per_request_ns"] = w
            closs = cpu_loss(cpu[r.key], base_cpu) if r.key != BASELINE else None
            if closs is not None:
                d["cpu_loss_pct"] = closs.as_json()
                d["cpu_loss_minus_floor_points"] = (
                    None if floor_cpu is None else round(closs.median - floor_cpu.median, 2))
        if r.ok and (t := _cpu_json(cr.tracer.get(r.key, []))):
            d["tracer_cpu_per_request_ns"] = t
        if r.ok and (b := _cpu_json(cr.busy.get(r.key, []))):
            d["worker_busy_pct"] = b
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
    # CPU ns per request of each round's main run: the worker's, the tracer's
    cpu = CpuRounds.unmeasured([t.key for t in tracers], opts.rounds)
    if not why_not():
        more_files()
        with tempfile.TemporaryDirectory(prefix="syscap-bench-nginx-") as d:
            port = free_port()
            server, worker = start_nginx(Path(d), port)
            try:
                target = Target(pids=(worker,))
                # one untimed run first: the first ab against a fresh nginx was
                # the slowest of the whole run, and the rotation gives round 1's
                # first slot to the baseline every time
                ab(port, main_n // 10, CONCURRENCY)

                def one(i: int, rnd: int) -> float:
                    t = tracers[i]
                    got: dict[int, float] = {}
                    with t.attached(Path(d), target) as proc:
                        alive(server)
                        tpid = proc.popen.pid if proc is not None else None
                        w0, t0 = cpu_ns(worker), tree_cpu_ns(tpid) if tpid else None
                        started = time.monotonic()
                        main = ab(port, requests_for(t.key, main_n), CONCURRENCY)
                        took = time.monotonic() - started
                        w1, t1 = cpu_ns(worker), tree_cpu_ns(tpid) if tpid else None
                        if rnd < opts.sweep_rounds:
                            for j in harness.rotated(len(LEVELS), rnd + i):
                                c = LEVELS[j]
                                try:
                                    got[c] = ab(port, requests_for(t.key, sweep_n), c).rps
                                except TracerError as e:  # this level only: note it
                                    sweep_notes.setdefault(t.key, {})[str(c)] = str(e)
                                    alive(server)
                    # kept only now that the tracer is known to have lived throughout
                    for c, v in got.items():
                        sweep[t.key][c][rnd] = v
                    cpu.put(t.key, rnd, (w0, w1), (t0, t1), main.complete, took)
                    return main.rps

                harness.interleave(rows, opts.rounds, one, harness.say)
            finally:
                server.stop()
    return {
        "benchmark": "nginx",
        "method": f"nginx 1 worker on CPU {WORK_CPU} (access log on), "
                  f"taskset -c {TRACER_CPU} ab -c {CONCURRENCY}; loss paired per round "
                  "against the baseline; CPU loss from the worker's CPU ns per request "
                  "(schedstat), paired the same way",
        "machine": harness.machine(),
        "rounds": opts.rounds,
        "sweep_rounds": opts.sweep_rounds,
        "quick": opts.quick,
        "requests": {t.key: requests_for(t.key, main_n) for t in tracers},
        "sweep_requests": {t.key: requests_for(t.key, sweep_n) for t in tracers},
        "concurrency": CONCURRENCY,
        "levels": list(LEVELS),
        "rows": summarise(rows, sweep, cpu),
        "concurrency_failures": sweep_notes,  # tracer -> level -> last failure
    }


def _us(d: dict[str, Any] | None, width: int) -> str:
    """A stats dict of ns as µs (its median), or '-'."""
    return harness.fmt(d["median"] / 1000 if d else None, 1, width)


def table(result: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = result["rows"]
    level = next((r["interval_level"] for r in rows if "interval_level" in r), None)
    out = harness.header(f"nginx: requests/s, ab -c {result['concurrency']} on loopback "
                         "(higher is better)", result["machine"], result["rounds"], level)
    out.append(f"  {'configuration':34} {'median':>9} {'interval':>19} {'loss %':>7} "
               f"{'loss interval':>15} {'- floor':>8}   "
               f"{'µs/req':>7} {'CPU loss':>8} {'CPU interval':>15} {'- floor':>8} "
               f"{'tracer':>7}   " +
               " ".join(f"{'c=' + str(c):>7}" for c in result["levels"]))
    for r in rows:
        if r["status"] != "ok":
            out.append(f"  {r['name']:34} {r['status']}: {r['why'] or r['note']}")
            continue
        loss = r.get("loss_pct")
        iv = f"[{r['interval'][0]:.0f}, {r['interval'][1]:.0f}]"
        liv = f"[{loss['interval'][0]:.1f}, {loss['interval'][1]:.1f}]" if loss else "-"
        closs = r.get("cpu_loss_pct")
        civ = f"[{closs['interval'][0]:.1f}, {closs['interval'][1]:.1f}]" if closs else "-"
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
                   f"{harness.fmt(r.get('loss_minus_floor_points'), 1, 8)}   "
                   f"{_us(r.get('cpu_per_request_ns'), 7)} "
                   f"{harness.fmt(closs['median'] if closs else None, 1, 8)} {civ:>15} "
                   f"{harness.fmt(r.get('cpu_loss_minus_floor_points'), 1, 8)} "
                   f"{_us(r.get('tracer_cpu_per_request_ns'), 7)}   " + " ".join(cells))
    out.append("  (µs/req: the nginx worker's CPU time per request (schedstat); CPU loss: the "
               "loss % that implies were the worker CPU-bound, 100 (1 - baseline's µs/req / "
               "row's), paired per round; tracer: the tracer's processes' CPU µs per request)")
    if busy := next((r.get("worker_busy_pct") for r in rows if r["key"] == BASELINE), None):
        out.append(f"  (the worker was busy {busy['median']:.0f} % of the baseline's ab runs: "
                   "CPU loss is the requests/s loss only where it is the bottleneck, near 100 %)")
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


# The metrics the goals are read on: (label, loss key, points-over-the-floor key).
GOAL_METRICS = (("", "loss_pct", "loss_minus_floor_points"),
                (" by worker CPU", "cpu_loss_pct", "cpu_loss_minus_floor_points"))


def goal_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Per syscap mode that ran: its loss against its GOALS entry, by requests/s,
    then (where measured) by the worker's CPU per request."""
    out = []
    for key, goal in GOALS.items():
        for metric in GOAL_METRICS:
            if line := _goal_line(rows, key, goal, *metric):
                out.append(line)
    return out


def _goal_line(rows: list[dict[str, Any]], key: str,
               goal: tuple[float | None, tuple[str, ...]],
               label: str, loss_key: str, pts_key: str) -> str | None:
    points, peer_keys = goal
    r = next((x for x in rows if x["key"] == key), None)
    if r is None or r.get(pts_key) is None or not r.get(loss_key):
        return None
    peers = [p for p in rows if p["key"] in peer_keys and p.get(loss_key)]
    pts = r[pts_key]
    loss = r[loss_key]["median"]
    beaten = [p for p in peers if p[loss_key]["median"] <= loss]
    what = [f"loss <= floor + {points:g} point{'s' if points != 1 else ''}"] \
        if points is not None else ["loss"]
    if peer_keys:
        what.append("below every peer" if peer_keys == PEER_KEYS else
                    "below " + ", ".join(peer_keys))
    below = ("below every peer" if not beaten else
             "not below " + ", ".join(f"{p['name']} ({p[loss_key]['median']:.1f} %)"
                                     for p in beaten))
    met = (points is None or pts <= points) and not beaten
    return (f"  goal{label}: {r['name']} {' and '.join(what)}: "
            f"{pts:+.1f} points, {below}: {'met' if met else 'NOT met'}")

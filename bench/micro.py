"""micro: ns per getppid() under each tracer, pinned, interleaved, medians.

Every round runs every configuration once, in a rotated order, so drift on
this noisy machine hits all of them alike. The loop runs on CPU 1, tracers
and their consumers on CPU 0 (per-process tracers wrap the loop; perf trace
is pinned to CPU 0, strace is not: see tracers._wrap_strace). Added cost is
taken round by round (run i minus the baseline's run i) and summarised by its
median and interval; "x floor" is the added cost over the floor's, the number
the goals are read against.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import harness, stats
from bench.harness import Row
from bench.tracers import (
    BASELINE,
    FLOOR,
    NATIVE,
    WORK_CPU,
    Target,
    Tracer,
    TracerError,
    select,
)

# getppid calls per run, full and quick: about a third of a second each here.
CALLS = {"perf-trace": (5_000, 1_000), "strace": (20_000, 5_000)}
DEFAULT_CALLS = (2_000_000, 500_000)
ROUNDS = (10, 3)
GOALS = {"syscap-record": 2.0, "syscap-sampled": 1.3, "syscap-count": 1.0}  # added <= N x floor


@dataclass(frozen=True)
class Options:
    rounds: int
    quick: bool
    tracers: tuple[str, ...] | None = None  # keys; None: all


def calls_for(key: str, quick: bool) -> int:
    full, short = CALLS.get(key, DEFAULT_CALLS)
    return short if quick else full


def one_run(tracer: Tracer, calls: int, work: Path) -> float:
    loop = ["taskset", "-c", str(WORK_CPU), str(NATIVE / "getppid_loop"), str(calls)]
    with tracer.attached(work, Target()):
        cmd = tracer.wrap(loop) if tracer.wrap else loop
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired as e:
            raise TracerError(f"{tracer.name}: the loop did not finish in 300 s") from e
        if p.returncode:
            last = (p.stderr.strip().splitlines() or ["?"])[-1]
            raise TracerError(f"{tracer.name}: the loop failed ({p.returncode}): {last}")
    return float(p.stdout.strip().splitlines()[-1])


def summarise(rows: list[Row]) -> list[dict[str, Any]]:
    """Per row: median ns and interval, added ns over baseline (paired, per
    round) and the added cost in floors."""
    base = next(r for r in rows if r.key == BASELINE)
    floor = next((r for r in rows if r.key == FLOOR), None)
    floor_added = (stats.added(floor.runs, base.runs).median
                   if floor is not None and floor.ok and base.ok else None)
    out: list[dict[str, Any]] = []
    for r in rows:
        d = r.as_json("ns/syscall")
        if r.ok and base.ok and r.key != BASELINE:
            add = stats.added(r.runs, base.runs)
            d["added_ns"] = add.as_json()
            d["x_floor"] = (None if floor_added is None
                            else stats.ratio(add.median, floor_added))
        out.append(d)
    return out


def run(opts: Options) -> dict[str, Any]:
    tracers = select(opts.tracers)
    built = harness.build_native()  # every row needs the loop: if it failed, all say so
    rows = [Row(t.key, t.name, why=built or t.why_not() or "") for t in tracers]
    with tempfile.TemporaryDirectory(prefix="syscap-bench-") as d:
        def one(i: int, rnd: int) -> float:
            return one_run(tracers[i], calls_for(tracers[i].key, opts.quick), Path(d))
        harness.interleave(rows, opts.rounds, one, harness.say)
    return {
        "benchmark": "micro",
        "method": "getppid loop on CPU 1, tracers on CPU 0; ns per call; added cost "
                  "paired per round against the baseline",
        "machine": harness.machine(),
        "rounds": opts.rounds,
        "quick": opts.quick,
        "calls": {t.key: calls_for(t.key, opts.quick) for t in tracers},
        "rows": summarise(rows),
    }


def table(result: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = result["rows"]
    level = next((r["interval_level"] for r in rows if "interval_level" in r), None)
    out = harness.header("micro: getppid, ns per call (lower is better)", result["machine"],
                         result["rounds"], level)
    out.append(f"  {'configuration':34} {'median':>9} {'interval':>19} {'added':>9} "
               f"{'added interval':>19} {'x floor':>8}")
    for r in rows:
        if r["status"] != "ok":
            out.append(f"  {r['name']:34} {r['status']}: {r['why'] or r['note']}")
            continue
        add = r.get("added_ns")
        iv = f"[{r['interval'][0]:.1f}, {r['interval'][1]:.1f}]"
        aiv = f"[{add['interval'][0]:.1f}, {add['interval'][1]:.1f}]" if add else "-"
        xf = r.get("x_floor")
        out.append(f"  {r['name']:34} {r['median']:9.1f} {iv:>19} "
                   f"{harness.fmt(add['median'] if add else None)} {aiv:>19} "
                   f"{harness.fmt(xf, 2, 8)}")
    for key, limit in GOALS.items():
        g = next((x for x in rows if x["key"] == key), None)
        if g is not None and g.get("x_floor") is not None:
            met = "met" if g["x_floor"] <= limit else "NOT met"
            out.append(f"  goal: {g['name']} added <= {limit}x floor: {g['x_floor']:.2f}x, {met}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """python -m bench.micro [ROUNDS]: as before, the table and bench/results/micro.json."""
    rounds = int(argv[0]) if argv else ROUNDS[0]
    result = run(Options(rounds, quick=False))
    harness.write_result("micro", result)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`syscap bench`: syscap against every peer, side by side, tables, JSON and plots.

Sub-benchmarks: micro (ns per getppid), nginx (requests/s and loss by
concurrency), throughput (zero-drop rate by ring size), guest (the kernel
module, in a QEMU guest of kmod/lab); all runs them in that order. restore
(the coredump restorer's restore time, not part of all) prints its table only; board
(syscap-agent's stream bandwidth, CPU and memory against syscap top's, its size and
top --ssh's time to a first screen, not part of all) writes board.json and board.md; profile
(the guest's getppid block by block under TCG's plugin, bench/guest_profile.py, not part of all)
writes guest_profile.json and guest_profile.md. Each prints
a table and writes bench/results/NAME.json (NAME.quick.json for --quick, so a
quick run never replaces a full one), the table as Markdown for the README
(NAME.md) and its plot (NAME.png).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench import board, guest, harness, markdown, micro, nginx, plots, restore_bench, throughput
from bench.tracers import select
from capture_lib.errors import UsageError

NAMES = ("micro", "nginx", "throughput", "guest")
SUMMARY_KEYS = ("median", "interval", "interval_level", "n", "added_ns", "x_floor", "loss_pct",
                "loss_minus_floor_points", "cpu_loss_pct", "cpu_loss_minus_floor_points",
                "micro", "counts")


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmark syscap against other tracers (root)",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("which", nargs="?", choices=(*NAMES, "all", "restore", "board", "profile"),
                   default="all",
                   help="sub-benchmark (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="reduced run, under 3 minutes for all; every row still printed")
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON on stdout (tables go to stderr)")
    p.add_argument("--rounds", type=int, metavar="N",
                   help="interleaved rounds for micro, nginx and guest (default 10, quick 3; "
                        "guest quick 2)")
    p.add_argument("--tracers", metavar="KEYS",
                   help="only these tracers in micro and nginx, comma-separated keys (e.g. "
                        "floor,syscap-record; baseline always runs)")
    p.add_argument("--results", type=Path, default=harness.RESULTS, metavar="DIR",
                   help="where JSON and plots go (default bench/results)")
    p.set_defaults(func=run)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Per row key: status, why, and its median and interval (the --json contract)."""
    out: dict[str, Any] = {}
    for r in result["rows"]:
        key = r.get("key") or f"ring-{r['ring_mib']}MiB"
        d: dict[str, Any] = {"name": r.get("name", key), "status": r.get("status", "ok"),
                             "why": r.get("why", "")}
        if "ring_mib" in r:  # throughput: one bisection, no repeated runs
            best = r.get("best")
            d["status"] = "ok" if best else "not run" if r.get("why") else "drops"
            if best and "recorded" in r:  # repeated: median and interval
                d.update(r["recorded"])
                d["consumer_cpu_pct"] = r["consumer_cpu_pct"]["median"]
                d["bound"] = r["bound"]
            elif best:  # one trial (quick): no interval to speak of
                d["median"] = round(best["recorded"])
                d["interval"] = [round(best["recorded"]), round(best["recorded"])]
                d["interval_level"] = 0.0
                d["consumer_cpu_pct"] = round(best["consumer_cpu_pct"], 1)
                d["bound"] = r["bound"]
        d.update({k: r[k] for k in SUMMARY_KEYS if k in r})
        for k in ("median", "interval", "interval_level"):  # same keys for every row
            d.setdefault(k, None)
        out[key] = d
    return out


def tracer_keys(args: argparse.Namespace) -> tuple[str, ...] | None:
    """--tracers as keys, checked (UsageError names the known ones)."""
    if not args.tracers:
        return None
    keys = tuple(k.strip() for k in args.tracers.split(",") if k.strip())
    select(keys)
    return keys


def _one(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    q = 1 if args.quick else 0
    keys = tracer_keys(args)
    if name == "micro":
        rounds = args.rounds or micro.ROUNDS[q]
        res = micro.run(micro.Options(rounds, args.quick, keys))
        return res, micro.table(res)
    if name == "nginx":
        rounds = args.rounds or nginx.ROUNDS[q]
        res = nginx.run(nginx.Options(rounds, args.quick, min(rounds, nginx.SWEEP_ROUNDS[q]),
                                       keys))
        return res, nginx.table(res)
    if name == "throughput":
        res = throughput.run(throughput.Options(args.quick))
        return res, throughput.table(res)
    res = guest.run(args.quick, args.rounds)
    return res, guest.table(res)


PLOTS: dict[str, Callable[[dict[str, Any], Path], Path | None]] = {
    "micro": plots.micro,
    "nginx": plots.nginx_concurrency,
    "throughput": plots.throughput,
}


def _noise_line(m: dict[str, Any]) -> str:
    other = m["other_cpus"]
    verdict = ("quiet enough" if other < 0.1 else
               "NOISY: do not quote these numbers" if other >= 0.3 else "some noise")
    line = (f"\n  other work during this run: {other:.2f} CPUs on average, steal "
            f"{m['steal_cpus']:.2f} ({verdict})")
    if hooks := m.get("foreign_syscall_hooks"):
        line += (f"\n  {len(hooks)} other processes had BPF programs on sys_enter/sys_exit "
                 "throughout: every number includes their cost (do not quote)")
    return line


def _term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds every tracer's and nginx's cleanup


def run(args: argparse.Namespace) -> int:
    if args.rounds is not None and not 1 <= args.rounds <= 1000:
        raise UsageError(f"--rounds {args.rounds}: give 1 to 1000 rounds")
    tracer_keys(args)
    harness.require_root()
    if args.which == "restore":  # 10 and 100 MB cores, 1 and 16 threads
        return restore_bench.main(["--runs", str(args.rounds or (3 if args.quick else 7))])
    if args.which == "profile":  # where a guest getppid's cost goes, by translated block
        from bench import guest_profile  # the lab's modules: only where it runs

        return guest_profile.main(args.quick, args.results)
    if args.which == "board":  # syscap-agent's stream and top --ssh, on this machine as the box
        return board.main(["--quick"] if args.quick else ["--rounds", str(args.rounds or 3)],
                          args.results)  # fmt: skip
    names = NAMES if args.which == "all" else (args.which,)
    out = sys.stderr if args.json else sys.stdout
    hooks = harness.syscall_hooks(exclude=os.getpid())
    for warning in (harness.load_warning(), harness.hooks_warning(hooks)):
        if warning:
            harness.say(warning)
    old = signal.signal(signal.SIGTERM, _term)
    doc: dict[str, Any] = {"machine": harness.machine(), "quick": args.quick, "benchmarks": {},
                           "tracers": {}}
    doc["machine"]["foreign_syscall_hooks"] = {str(k): v for k, v in hooks.items()}
    t0 = time.monotonic()
    try:
        for name in names:
            started = time.monotonic()
            before = harness.CpuSample.now()
            res, text = _one(name, args)
            res["seconds"] = round(time.monotonic() - started, 1)
            res["machine"]["loadavg_before_bench"] = doc["machine"]["loadavg_at_start"]
            res["machine"]["foreign_syscall_hooks"] = doc["machine"]["foreign_syscall_hooks"]
            res["machine"].update(harness.other_load(before, harness.CpuSample.now()))
            text += _noise_line(res["machine"])
            stem = f"{name}.quick" if args.quick else name
            files = [harness.write_result(stem, res, args.results)]
            md = args.results / f"{stem}.md"
            md.write_text(markdown.TABLES[name](res) + "\n")
            files.append(md)
            if name in PLOTS:
                if no_plots := plots.why_not():
                    harness.say(no_plots)
                elif png := PLOTS[name](res, args.results / f"{stem}.png"):
                    files.append(png)
            print(text, file=out)
            print(f"  ({res['seconds']:.0f} s; " + ", ".join(map(str, files)) + ")\n",
                  file=out, flush=True)
            doc["benchmarks"][name] = res
            doc["tracers"][name] = summary(res)
    finally:
        signal.signal(signal.SIGTERM, old)
    doc["seconds"] = round(time.monotonic() - t0, 1)
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        print()
    return 0

"""throughput: the highest syscall rate syscap records with zero drops, per ring size.

For each ring size (bytes per CPU) a syscap session records every process
(-a) to a file, exactly as `syscap record` does, but in this process, so the
consumer's CPU time is this process's (its main thread only waits). The load
is bench/native/syscall_rate: getppid() from one pinned thread per CPU, paced
in 1 ms ticks at an offered rate. First a trial as fast as the generator can
go; if that drops nothing the ring is generator-bound. Otherwise the offered
rate is bisected between 0 and that maximum. A trial passes when the kernel's
drop counter stays at 0 for the whole trial; the rate reported is the
recorded rate (every syscall on the machine, from the exact in-kernel
counters) of the best passing trial. Short trials favour big rings (they
absorb the whole trial), so the trial length is part of the result.

Then delivery at a trickle: the generator makes one getppid every 100 ms
(only its getppid pass the filter, so nothing else feeds the rings), recorded
to a file at the goal's ring size; the probes never wake the consumer, so
this says how long a lone record waits for the consumer's next pass (from
its syscall's exit; p99 as its log2 bucket's top), which must stay within
one snapshot interval.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import harness, stats
from bench.tracers import NATIVE, BenchError, syscap_why_not

RING_MIB = (1, 2, 4, 8, 16, 32, 64)
TRIAL_S = (5.0, 1.0)  # full, quick
STEPS = (6, 3)  # bisection steps after the unpaced trial
CONFIRM = (3, 0)  # repeats of the best rate that must drop nothing too
MAX_LOWER = 5  # times a dropping repeat may lower the rate by 10 % (to 59 %)
GOAL_RATE, GOAL_RING_MIB = 3_000_000, 8  # the records issue: 3 M/s at 8 MiB per CPU
TRICKLE_CALLS = (100, 10)  # full, quick: one getppid per TRICKLE_GAP_S
TRICKLE_GAP_S = 0.1
SNAPSHOT_S = 1.0  # top's snapshot interval: the bound on a record's wait


@dataclass(frozen=True)
class Options:
    quick: bool
    ring_mib: tuple[int, ...] = RING_MIB


@dataclass(frozen=True)
class Trial:
    offered: float  # calls/s asked of the generator; 0: as fast as it goes
    generated: float  # calls/s the generator made
    recorded: float  # syscalls/s counted in the kernel, all processes
    drops: int
    max_fill_pct: float
    consumer_cpu_pct: float  # of one CPU
    # delivery under this load: how long records waited between their
    # syscall's exit and the consumer (p99 as its log2 bucket's top)
    delivery_p99_ms: float = 0.0
    delivery_max_ms: float = 0.0


def cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Recorded:
    """One generator run under a recording session."""

    out: str  # the generator's stdout: "CALLS SECONDS"
    totals: Any  # the session's totals (capture_lib.live)
    delivery: Any  # and its delivery histogram
    cpu_s: float  # this process's CPU seconds (the consumer's) while the generator ran
    wall_s: float


def record_while(ring: int, gen: list[str], seconds: float, trace: Path,
                 flt: Any = None) -> Recorded:
    """Run gen while a session (eBPF, ring bytes per CPU, filter flt if any)
    records to trace, as `syscap record` does."""
    from capture_lib.errors import SyscapError
    from capture_lib.live import Session

    try:
        s = Session("bpf", ring)
    except SyscapError as e:
        raise BenchError(f"the eBPF backend cannot start: {e}") from e
    try:
        if flt is not None:
            s.set_filter(flt)
        s.record(str(trace), force=True)  # one scratch file for every run
        s.start()
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        try:
            p = subprocess.run(gen, capture_output=True, text=True, timeout=seconds + 60,
                               check=False)
        finally:
            s.stop()
        if p.returncode:
            raise BenchError(f"syscall_rate failed ({p.returncode}): {p.stderr.strip()}")
        r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        return Recorded(p.stdout, s.totals(), s.delivery(),
                        (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), t1 - t0)
    finally:
        s.close()
        trace.unlink(missing_ok=True)


def trial(ring: int, rate: float, seconds: float, work: Path) -> Trial:
    gen = [str(NATIVE / "syscall_rate"), f"{rate:.0f}", f"{seconds}",
           ",".join(map(str, cpus()))]
    r = record_while(ring, gen, seconds, work / "throughput.trace")
    calls, gen_s = r.out.split()
    tot = r.totals
    return Trial(
        offered=rate, generated=int(calls) / float(gen_s), recorded=tot.events / float(gen_s),
        drops=tot.drops, max_fill_pct=100.0 * tot.max_used / tot.ring_size if tot.ring_size
        else 0.0, consumer_cpu_pct=100.0 * r.cpu_s / r.wall_s,
        delivery_p99_ms=r.delivery.upper_ns(0.99) / 1e6,
        delivery_max_ms=r.delivery.max_ns / 1e6,
    )


def trickle(calls: int, work: Path) -> dict[str, Any]:
    """Delivery at a trickle (see the module's doc): calls getppid, one per
    TRICKLE_GAP_S, from the generator on the last CPU."""
    from capture_lib import syscalls
    from capture_lib.snapshot import Filter

    seconds = (calls + 0.5) * TRICKLE_GAP_S  # the last call is due at calls x the gap
    gen = [str(NATIVE / "syscall_rate"), f"{1 / TRICKLE_GAP_S:.0f}", f"{seconds:.1f}",
           str(cpus()[-1])]
    flt = Filter(comms=frozenset({"syscall_rate"}),
                 syscalls=frozenset({syscalls.number("getppid")}))
    r = record_while(GOAL_RING_MIB << 20, gen, seconds, work / "trickle.trace", flt)
    return {"calls": int(r.out.split()[0]), "gap_ms": TRICKLE_GAP_S * 1e3,
            "records": r.delivery.records, "p99_ms": r.delivery.upper_ns(0.99) / 1e6,
            "max_ms": r.delivery.max_ns / 1e6}


def trickle_line(t: dict[str, Any]) -> str:
    """The trickle's goal line: every record within one snapshot interval."""
    if t.get("why"):
        return f"  delivery at a trickle: not run: {t['why']}"
    ok = t["records"] == t["calls"] and t["max_ms"] < SNAPSHOT_S * 1e3
    lost = "" if t["records"] == t["calls"] else f", {t['records']} of {t['calls']} delivered"
    return (f"  goal: at a trickle (one getppid per {t['gap_ms']:.0f} ms, {t['calls']} calls) "
            f"each record reaches the consumer within a snapshot interval ({SNAPSHOT_S:.0f} s): "
            f"p99 {t['p99_ms']:.1f} ms, longest {t['max_ms']:.1f} ms{lost}, "
            f"{'met' if ok else 'NOT met'}")


def search(ring: int, seconds: float, steps: int, confirm: int, work: Path) -> dict[str, Any]:
    """Bisect the offered rate for the highest drop-free trial at this ring
    size, then repeat that rate confirm times: a drop in any repeat lowers the
    rate by 10 % (until a trial passes, at most MAX_LOWER times in all) and
    starts the repeats again."""
    trials = [trial(ring, 0, seconds, work)]
    best: Trial | None = trials[0] if trials[0].drops == 0 else None
    bound = "generator" if best else "drops"
    lo, hi = 0.0, trials[0].generated
    for _ in range(steps if best is None else 0):
        mid = (lo + hi) / 2
        t = trial(ring, mid, seconds, work)
        trials.append(t)
        if t.drops == 0:
            lo = mid
            if best is None or t.recorded > best.recorded:
                best = t
        else:
            hi = mid
    passing = [best] if best else []
    lowered = 0
    while best is not None and len(passing) <= confirm:
        t = trial(ring, best.offered, seconds, work)
        trials.append(t)
        if t.drops == 0:
            passing.append(t)
            continue
        # a repeat dropped: 10 % lower until a trial passes, then repeat that
        bound = "drops"
        rate = best.offered or best.generated
        best, passing = None, []
        while best is None and lowered < MAX_LOWER:
            lowered += 1
            rate *= 0.9
            t = trial(ring, rate, seconds, work)
            trials.append(t)
            if t.drops == 0:
                best, passing = t, [t]
    why = ""
    if len(passing) <= confirm and confirm > 0:  # never confirmed: no rate to report
        if best is not None or any(t.drops == 0 for t in trials):
            why = (f"no rate stayed drop-free in {confirm + 1} trials in a row "
                   f"(lowered {MAX_LOWER} times by 10 %)")
        best, passing = None, []
    out: dict[str, Any] = {
        "ring_mib": ring >> 20,
        "best": asdict(best) if best else None,
        "bound": bound,  # generator: no drops even at full speed (a lower bound)
        "trials": [asdict(t) for t in trials],
    }
    if why:
        out["why"] = why
    if passing:
        out["recorded"] = stats.estimate([t.recorded for t in passing]).as_json(0)
        out["consumer_cpu_pct"] = stats.estimate(
            [t.consumer_cpu_pct for t in passing]).as_json(1)
    return out


def why_not() -> str | None:
    return syscap_why_not("bpf") or harness.build_native()


def run(opts: Options) -> dict[str, Any]:
    seconds = TRIAL_S[1] if opts.quick else TRIAL_S[0]
    steps = STEPS[1] if opts.quick else STEPS[0]
    confirm = CONFIRM[1] if opts.quick else CONFIRM[0]
    why = why_not()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="syscap-bench-tp-") as d:  # $TMPDIR
        for mib in opts.ring_mib:
            if why:
                rows.append({"ring_mib": mib, "best": None, "why": why, "trials": []})
                continue
            harness.say(f"throughput: ring {mib} MiB per CPU")
            rows.append(search(mib << 20, seconds, steps, confirm, Path(d)))
        if why:
            slow: dict[str, Any] = {"why": why}
        else:
            harness.say("throughput: delivery at a trickle")
            slow = trickle(TRICKLE_CALLS[1] if opts.quick else TRICKLE_CALLS[0], Path(d))
    return {
        "benchmark": "throughput",
        "method": f"syscall_rate: getppid from one pinned thread per CPU ({len(cpus())}), "
                  f"paced; syscap records -a to a file; {seconds} s trials; zero drops",
        "machine": harness.machine(),
        "quick": opts.quick,
        "trial_s": seconds,
        "steps": steps,
        "confirm": confirm,
        "rows": rows,
        "trickle": slow,
    }


def table(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [
        "throughput: highest syscalls/s syscap records with zero drops (higher is better)",
        f"  {m['host']} {m['arch']} ({m['cpus']} CPUs), kernel {m['kernel']}, {m['date']}; "
        f"{result['trial_s']} s trials, {result['steps']} bisection steps, "
        + (f"best rate repeated {result['confirm']} times (median and interval of those)"
           if result.get("confirm") else "best rate not repeated (no interval)"),
        f"  {'ring/CPU':>9} {'recorded/s':>12} {'interval':>21} {'generated/s':>12} "
        f"{'consumer CPU':>13} {'max fill':>9} {'delivery p99':>13}  bound",
    ]
    for r in result["rows"]:
        b = r.get("best")
        if b is None:
            why = r.get("why") or (
                f"drops at every rate tried (lowest {min(t['offered'] for t in r['trials']):.0f}"
                "/s offered)" if r["trials"] else "not run")
            out.append(f"  {r['ring_mib']:>5} MiB  {why}")
            continue
        bound = ("none found: no drops at the generator's full speed (a lower bound)"
                 if r["bound"] == "generator" else "drops above this rate")
        rec = r.get("recorded") or {"median": b["recorded"], "interval": [b["recorded"]] * 2}
        cpu = r.get("consumer_cpu_pct", {}).get("median", b["consumer_cpu_pct"])
        iv = (f"[{rec['interval'][0]:.0f}, {rec['interval'][1]:.0f}]"
              if rec.get("n", 1) > 1 else "-")
        delivery = f"{b.get('delivery_p99_ms', 0.0):.1f} ms"
        out.append(f"  {r['ring_mib']:>5} MiB {rec['median']:12.0f} {iv:>21} "
                   f"{b['generated']:12.0f} {cpu:12.1f}% {b['max_fill_pct']:8.1f}% "
                   f"{delivery:>13}  {bound}")
    goal = next((r for r in result["rows"] if r["ring_mib"] == GOAL_RING_MIB), None)
    if goal is not None and goal.get("best"):
        rate = (goal.get("recorded") or {}).get("median", goal["best"]["recorded"])
        if rate >= GOAL_RATE:
            verdict = "met"
        elif goal["bound"] == "generator":
            verdict = "undecided: the generator could not make it drop (load it harder)"
        else:
            verdict = "NOT met"
        out.append(f"  goal: >= {GOAL_RATE / 1e6:.0f} M/s with zero drops at {GOAL_RING_MIB} MiB: "
                   f"{rate / 1e6:.2f} M/s, {verdict}")
    if result.get("trickle"):
        out.append(trickle_line(result["trickle"]))
    return "\n".join(out)

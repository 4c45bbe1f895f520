"""guest: the kernel module's rows, measured inside one QEMU guest of kmod/lab.

This host cannot load modules, so the module is compared where it can run:
one guest boot running nginx + ab, then a getppid loop, for baseline, the
module's floor (empty probes), syscap recording with the kmod and eBPF
backends (the module also timing with the TSC, as it does where the CPU has an
invariant one; TCG's CPU model has none), syscap-agent's stream in count and
sampled mode, and sysdig (its own scap module). Under TCG the balance of
user and kernel cost differs from real hardware, so only ratios inside one
guest run mean anything, and only those are reported next to the host rows.

bench/guest_boot.py boots the guest (with the lab's image builder,
kmod/lab/images.py; the lab itself imports nothing of bench). Its contract:

    bench_guest(quick: bool[, rounds: int]) -> dict with
        "kernel": str                        # the guest's uname -r
        "method": str                        # one line: workload, sizes
        "rows": [{"key": str, "name": str,   # keys: those of ROWS
                  "runs": [float, ...],      # requests/s, one per interleaved round
                  "why": str,                # non-empty: did not run, and why
                  # optional:
                  "micro": [float, ...],     # ns per getppid, one per micro round
                  "counts": {"nginx"|"micro": {"events": [...], "drops": [...], ...}}
                 }]                          #   the tracer's own counters per round
        "checks": {name: float}              # optional: e.g. ns per getppid
                                             #   before and after loading the modules
        "notes": [str, ...]                  # optional: what the reader must know

With quick it should finish within a minute (syscap bench --quick must stay
under 3). It may raise an exception whose message says why the guest cannot
run. rounds (only passed when the user gives --rounds) sets the rounds of both
phases.

bench/guest_rounds.sh runs the rounds in the guest (tracers given as
start/stop commands in its environment) and from_console() turns the guest's
console into the dict above.
Whatever happens, each row of ROWS is printed, with numbers or a reason.
Drops are part of the result: a tracer that loses most of its events did less
work than the others, and the table says it is not comparable.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from typing import Any

from bench import harness, stats
from bench.harness import Row
from bench.tracers import ROOT

LAB = ROOT / "kmod" / "lab" / "images.py"
ROWS = (
    ("baseline", "baseline (guest, no tracing)"),
    ("kmodfloor", "module floor: empty enter+exit probes (guest)"),
    ("kmod", "syscap record, kmod backend (guest)"),
    ("kmodmono", "syscap record, kmod backend, monotonic clock (guest)"),
    ("bpf", "syscap record, eBPF backend (guest)"),
    ("kmodheld", "kmod record, consumer stopped (guest)"),
    ("bpfheld", "eBPF record, consumer stopped (guest)"),
    ("kmodcount", "syscap-agent stream, kmod count mode (guest)"),
    ("kmodsampled", "syscap-agent stream, kmod sampled (guest)"),
    ("bpfcount", "syscap-agent stream, eBPF count mode (guest)"),
    ("sysdig", "sysdig -w /dev/null, scap module (guest)"),
)


def lab_entry() -> tuple[Callable[..., dict[str, Any]] | None, str]:
    """guest_boot's bench_guest, or None and why the guest cannot run here."""
    if not LAB.exists():
        return None, f"{LAB.relative_to(ROOT)} is missing (the kernel module's guest lab)"
    if not shutil.which("qemu-system-x86_64"):
        return None, "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    from bench import guest_boot  # imports the lab's image builder

    return guest_boot.bench_guest, ""


SCRIPT = ROOT / "bench" / "guest_rounds.sh"
PHASES = ("nginx", "micro")
# A tracer that loses more than this share of its events did much less work
# than the others: its row is marked as not comparable; from DROPS_NOTE_PCT
# on, a note says its cost is for recording only part of the load.
DROPS_NOT_COMPARABLE_PCT = 50.0
DROPS_NOTE_PCT = 1.0


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _by_round(got: dict[int, float], rounds: int) -> list[float]:
    return [got.get(r, math.nan) for r in range(1, rounds + 1)]


def from_console(text: str, method: str = "") -> dict[str, Any]:
    """bench_guest's result from the console of a guest that ran guest_rounds.sh."""
    names = dict(ROWS)
    runs: dict[str, dict[int, float]] = {}
    micro: dict[str, dict[int, float]] = {}
    # phase -> key -> counter name -> round -> value
    counts: dict[str, dict[str, dict[str, dict[int, float]]]] = {}
    checks: dict[str, float] = {}
    why: dict[str, str] = {}
    notes: list[str] = []
    kernel = None
    for raw in text.splitlines():
        line = raw.strip()
        at = line.find("SYSCAP-BENCH ")  # a kernel message may share the line
        if at < 0:
            continue
        parts = line[at:].split()
        if len(parts) < 3:
            continue
        kind = parts[1]
        if kind == "KERNEL":
            kernel = parts[2]
        elif kind in ("RUN", "MICRO") and len(parts) == 5 and parts[2].isdigit():
            (runs if kind == "RUN" else micro).setdefault(parts[3], {})[int(parts[2])] = \
                _number(parts[4])
        elif (kind == "STAT" and len(parts) >= 6 and parts[2] in PHASES
              and parts[3].isdigit()):
            per = counts.setdefault(parts[2], {}).setdefault(parts[4], {})
            for word in parts[5:]:
                name, eq, value = word.partition("=")
                if eq:
                    per.setdefault(name, {})[int(parts[3])] = _number(value)
        elif kind == "FAIL" and len(parts) >= 5 and parts[2] in PHASES and parts[3].isdigit():
            notes.append(f"{names.get(parts[4], parts[4])}: {parts[2]} round {parts[3]} failed"
                         f" ({' '.join(parts[5:]) or 'no reason given'}); left out of its pairs")
        elif kind == "CHECK" and len(parts) == 4:
            checks[parts[2]] = _number(parts[3])
        elif kind == "SKIP":
            why[parts[2]] = " ".join(parts[3:])
    rounds = max((r for rs in runs.values() for r in rs), default=0)
    micro_rounds = max((r for rs in micro.values() for r in rs), default=0)
    rows = []
    for key in dict.fromkeys([*names, *runs, *why]):
        got = runs.get(key, {})
        row: dict[str, Any] = {
            "key": key, "name": names.get(key, key),
            "runs": _by_round(got, rounds) if got else [],
            "why": why.get(key, "" if got else "the guest reported no runs")}
        if key in micro:
            row["micro"] = _by_round(micro[key], micro_rounds)
        row_counts = {phase: {name: _by_round(vals, rounds if phase == "nginx" else micro_rounds)
                              for name, vals in counts[phase][key].items()}
                      for phase in PHASES if key in counts.get(phase, {})}
        if row_counts:
            row["counts"] = row_counts
        rows.append(row)
    out: dict[str, Any] = {"kernel": kernel,
                           "method": method or "bench/guest_rounds.sh in one guest",
                           "rows": rows}
    if checks:
        out["checks"] = checks
    if notes:
        out["notes"] = notes
    return out


def rows_from(result: dict[str, Any] | None, why: str) -> list[Row]:
    """The requests/s rows (every one of ROWS, in order), from the lab's result."""
    return _rows(result, why, "runs")


def micro_rows_from(result: dict[str, Any] | None, why: str) -> list[Row]:
    """The ns per getppid rows (every one of ROWS, in order), from the lab's result."""
    return _rows(result, why, "micro")


def _rows(result: dict[str, Any] | None, why: str, field: str) -> list[Row]:
    got = {r.get("key"): r for r in (result or {}).get("rows", [])}
    rows = []
    for key, name in ROWS:
        r = got.get(key)
        if r is None:
            rows.append(Row(key, name, why=why or "the lab returned no such row"))
            continue
        runs = [float(x) for x in r.get(field, [])]
        row_why = str(r.get("why", ""))
        if not row_why and not runs:
            row_why = "the guest reported no runs"
        rows.append(Row(key, str(r.get("name") or name), runs, why=row_why))
    return rows


def counts_summary(counts: dict[str, list[float]]) -> dict[str, Any]:
    """A tracer's own counters over one phase: totals, and drops in % of events."""
    total = {name: sum(stats.finite(vals)) for name, vals in counts.items()}
    out: dict[str, Any] = {name: round(v) for name, v in total.items()}
    if "max_fill_pct" in counts:  # a fill is not summed: the highest one
        fills = stats.finite(counts["max_fill_pct"])
        out["max_fill_pct"] = max(fills) if fills else None
    events, drops = total.get("events", 0.0), total.get("drops", 0.0)
    out["drop_pct"] = round(100.0 * drops / events, 3) if events > 0 else None
    out["rounds"] = max((len(stats.finite(v)) for v in counts.values()), default=0)
    return out


def _summary(r: Row, base: Row, unit: str, cost: str) -> dict[str, Any]:
    d = r.as_json(unit)
    if r.ok and base.ok and r is not base:
        if cost == "loss_pct":
            d["loss_pct"] = stats.loss_pct(r.runs, base.runs).as_json()
        else:
            d["added_ns"] = stats.added(r.runs, base.runs).as_json()
    return d


def summarise(rows: list[Row], micro_rows: list[Row] | None = None,
              counts: dict[str, dict[str, dict[str, list[float]]]] | None = None
              ) -> list[dict[str, Any]]:
    """Per configuration: requests/s with loss % against the guest's baseline
    (paired per round); with micro_rows, its ns per getppid with the added ns
    ("micro"); with counts (key -> phase -> counter -> per round), the
    tracer's events and drops per phase ("counts")."""
    out = [_summary(r, rows[0], "requests/s", "loss_pct") for r in rows]
    if micro_rows is not None:
        for d, m in zip(out, micro_rows, strict=True):
            d["micro"] = _summary(m, micro_rows[0], "ns/getppid", "added_ns")
    for d in out:
        phases = (counts or {}).get(d["key"])
        if phases:
            d["counts"] = {phase: counts_summary(c) for phase, c in phases.items()}
    return out


def not_comparable(row: dict[str, Any]) -> list[str]:
    """Phases in which this row's tracer lost most of its events."""
    return [phase for phase, c in row.get("counts", {}).items()
            if c.get("drop_pct") is not None and c["drop_pct"] > DROPS_NOT_COMPARABLE_PCT]


def run_time_notes(rows: list[dict[str, Any]]) -> list[str]:
    """How long each recording tracer ran per event in the getppid rounds
    (guest_tracer.sh's cpu_ms, from the scheduler's own sums). Its vCPU shares
    the one host thread with the loop's, so this time is taken from the loop;
    but a vCPU's run time also counts the other vCPU's turns, so it is time
    runnable, not time spent."""
    parts = []
    for r in rows:
        c = r.get("counts", {}).get("micro", {})
        if c.get("cpu_ms") and c.get("events"):
            parts.append(f"{r['name']} {c['cpu_ms'] * 1e6 / c['events']:.0f}")
    if not parts:
        return []
    return ["tracer run time per event in the getppid rounds, ns (runnable time: under TCG a "
            "vCPU's time also counts the other vCPU's turns on the host thread): "
            + "; ".join(parts)]


def result(lab: dict[str, Any] | None, why: str, quick: bool) -> dict[str, Any]:
    """The guest benchmark's result (as the other sub-benchmarks' results) from
    the lab's dict, or from why it did not run."""
    has_micro = any("micro" in r for r in (lab or {}).get("rows", []))
    counts = {str(r.get("key")): r["counts"] for r in (lab or {}).get("rows", [])
              if r.get("counts")}
    rows = summarise(rows_from(lab, why), micro_rows_from(lab, why) if has_micro else None,
                     counts)
    notes = [str(n) for n in (lab or {}).get("notes", [])]
    notes += run_time_notes(rows)
    for r in rows:
        for phase, c in r.get("counts", {}).items():
            pct = c.get("drop_pct")
            if pct is None or pct < DROPS_NOTE_PCT:
                continue
            if phase in not_comparable(r):
                notes.append(f"{r['name']} lost {pct:.0f} % of its events in the {phase} "
                             "rounds: it did much less work than the others, its numbers are "
                             "not comparable")
            else:
                notes.append(f"{r['name']} lost {pct:.0f} % of its events in the {phase} "
                             "rounds: its cost there is for recording the rest")
        key = str(r["key"])
        for phase, per in counts.get(key, {}).items():
            empty = sum(1 for x in per.get("trace_bytes", []) if x == 0)
            if empty:
                notes.append(f"{r['name']} wrote an empty trace in {empty} {phase} rounds")
    out: dict[str, Any] = {
        "benchmark": "guest",
        "method": (lab or {}).get("method", "nginx + ab inside one QEMU guest of kmod/lab"),
        "guest_kernel": (lab or {}).get("kernel"),
        "machine": harness.machine(),
        "quick": quick,
        "rows": rows,
    }
    if lab and lab.get("checks"):
        out["checks"] = lab["checks"]
    if notes:
        out["notes"] = notes
    return out


def run(quick: bool, rounds: int | None = None) -> dict[str, Any]:
    entry, why = lab_entry()
    lab: dict[str, Any] | None = None
    if entry is not None:
        try:
            lab = entry(quick) if rounds is None else entry(quick, rounds)
        except Exception as e:  # any lab failure becomes the rows' reason
            text = str(e).strip()
            why = f"the guest lab failed: {text.splitlines()[0] if text else repr(e)}"
    return result(lab, why, quick)


def _drops(row: dict[str, Any], phase: str) -> str:
    c = row.get("counts", {}).get(phase)
    if not c or c.get("drop_pct") is None:
        return "-"
    return f"{c['drop_pct']:.2f} %"


def _phase_lines(rows: list[dict[str, Any]], phase: str, cost: str, titles: tuple[str, str],
                 widths: tuple[int, int], digits: int) -> list[str]:
    """The header and one line per row of one phase: its median and interval,
    its cost against the baseline (cost key, with its interval) and drops. The
    nginx numbers sit in the row itself, the getppid ones under row["micro"]."""
    out = [f"  {'configuration':42} {'median':>9} {'interval':>19} {titles[0]:>{widths[0]}} "
           f"{titles[1]:>{widths[1]}} {'drops':>9}"]
    for r in rows:
        st = r if phase == "nginx" else r.get(phase, {})
        if st.get("status") != "ok":
            why = st.get("why") or ("" if phase == "nginx" else "no micro rounds")
            out.append(f"  {r['name']:42} {st.get('status', 'not run')}: {why}")
            continue
        c = st.get(cost)
        iv = f"[{st['interval'][0]:.0f}, {st['interval'][1]:.0f}]"
        civ = (f"[{c['interval'][0]:.{digits}f}, {c['interval'][1]:.{digits}f}]" if c
               else "-")
        out.append(f"  {r['name']:42} {st['median']:9.0f} {iv:>19} "
                   f"{harness.fmt(c['median'] if c else None, digits, widths[0])} "
                   f"{civ:>{widths[1]}} {_drops(r, phase):>9}")
    return out


# The guest goals, on the getppid rounds' added ns: (key, its limit as a
# multiple of the other key's added ns, the other key, what it says).
GOALS = (
    ("kmod", 0.5, "bpf", "the module's record added ns <= half the eBPF backend's"),
    ("kmodcount", 1.2, "kmodfloor",
     "the module's count mode added ns <= 1.2x the module's empty probes"),
)


# The records goal's ratio for other rows: the module on the monotonic clock
# (its choice where the kernel does not keep time with the TSC), and without
# the consumer: the recorder stopped once attached, so the rings hold the run
# and the loop pays for the probes alone.
BESIDE = (("kmodmono", "bpf", "the module's record on the monotonic clock against eBPF's"),
          ("kmodheld", "bpfheld",
           "the module's record probes' added ns against eBPF's, consumer stopped"))


def goal_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per guest goal whose two rows ran their micro rounds (the
    ratio of their added ns, its interval from stats.ratio_interval and the
    rounds behind it), and the records goal's ratio for the rows beside it
    (BESIDE)."""
    added = {str(r["key"]): r.get("micro", {}).get("added_ns") for r in rows}
    runs = {str(r["key"]): r.get("micro", {}).get("runs") for r in rows}
    out = []
    for key, limit, other, what in GOALS:
        a, b = added.get(key), added.get(other)
        if not a or not b or b["median"] <= 0:
            continue
        x = a["median"] / b["median"]
        num, den, base = runs.get(key), runs.get(other), runs.get("baseline")
        iv = stats.ratio_interval(num, den, base) if num and den and base else None
        n = f" ({a['n']} and {b['n']} rounds)" if a.get("n") and b.get("n") else ""
        out.append(f"  goal: {what}: {x:.2f}x{f' [{iv[0]:.2f}, {iv[1]:.2f}]' if iv else ''}{n}, "
                   f"{'met' if x <= limit else 'NOT met'}")
    for key, other, what in BESIDE:
        a, b = added.get(key), added.get(other)
        if a and b and b["median"] > 0:
            out.append(f"  beside it: {what}: {a['median'] / b['median']:.2f}x")
    return out


def table(result: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = result["rows"]
    m = result["machine"]
    out = ["guest: inside one QEMU (TCG) guest; compare only within it",
           f"  host {m['host']} kernel {m['kernel']}, guest kernel "
           f"{result.get('guest_kernel') or '-'}, {m['date']}",
           f"  {result['method']}",
           "  nginx + ab, requests/s (higher is better); drops: the tracer's lost events",
           *_phase_lines(rows, "nginx", "loss_pct", ("loss %", "loss interval"), (7, 15), 1)]
    if any("micro" in r for r in rows):
        out += ["  getppid, ns per call (lower is better)",
                *_phase_lines(rows, "micro", "added_ns", ("added ns", "added interval"), (9, 17),
                              0)]
    out += goal_lines(rows)
    checks = result.get("checks", {})
    if "no-modules" in checks and "modules-idle" in checks:
        out.append(f"  getppid before loading the modules {checks['no-modules']:.0f} ns, with "
                   f"both loaded and idle {checks['modules-idle']:.0f} ns")
    out += [f"  note: {n}" for n in result.get("notes", [])]
    return "\n".join(out)

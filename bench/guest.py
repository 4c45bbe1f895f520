"""guest: the kernel module's rows, measured inside one QEMU guest of kmod/lab.

This host cannot load modules, so the module is compared where it can run:
one guest boot running nginx + ab for baseline, syscap's kmod backend,
syscap's eBPF backend and sysdig (its own scap module). Under TCG the balance
of user and kernel cost differs from real hardware, so only ratios inside one
guest run mean anything, and only those are reported next to the host rows.

The lab owns the guest; this module only asks it. The contract, for
kmod/lab/lab.py:

    bench_guest(quick: bool) -> dict with
        "kernel": str                        # the guest's uname -r
        "method": str                        # one line: workload, sizes
        "rows": [{"key": str, "name": str,   # keys: baseline, kmod, bpf, sysdig
                  "runs": [float, ...],      # requests/s, one per interleaved round
                  "why": str}]               # non-empty: did not run, and why

With quick the lab should finish within a minute (syscap bench --quick must
stay under 3). The lab may raise an exception whose message says why the
guest cannot run.

The lab need not write the rounds itself: bench/guest_rounds.sh runs them in
the guest (tracers given as start/stop commands in its environment) and
from_console() turns the guest's console into the dict above.
Whatever happens, each of the four rows is printed, with numbers or a reason.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import sys
from collections.abc import Callable
from typing import Any

from bench import harness, stats
from bench.harness import Row
from bench.tracers import ROOT

LAB = ROOT / "kmod" / "lab" / "lab.py"
ROWS = (
    ("baseline", "baseline (guest, no tracing)"),
    ("kmod", "syscap record, kmod backend (guest)"),
    ("bpf", "syscap record, eBPF backend (guest)"),
    ("sysdig", "sysdig -w /dev/null, scap module (guest)"),
)


def lab_entry() -> tuple[Callable[[bool], dict[str, Any]] | None, str]:
    """The lab's bench_guest, or None and why it is not available."""
    if not LAB.exists():
        return None, f"{LAB.relative_to(ROOT)} is missing (the kernel module's guest lab)"
    if not shutil.which("qemu-system-x86_64"):
        return None, "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    spec = importlib.util.spec_from_file_location("syscap_kmod_lab", LAB)
    if spec is None or spec.loader is None:
        return None, f"cannot load {LAB}"
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses in the lab look their module up
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # the lab is another team's code: report, do not crash
        return None, f"loading {LAB.relative_to(ROOT)} failed: {e}"
    entry = getattr(mod, "bench_guest", None)
    if not callable(entry):
        return None, ("kmod/lab/lab.py offers no bench_guest() yet (the guest image with "
                      "nginx, ab, sysdig and syscap is the lab's; see bench/guest.py)")
    return entry, ""


SCRIPT = ROOT / "bench" / "guest_rounds.sh"


def from_console(text: str, method: str = "") -> dict[str, Any]:
    """bench_guest's result from the console of a guest that ran guest_rounds.sh."""
    names = dict(ROWS)
    runs: dict[str, dict[int, float]] = {}
    why: dict[str, str] = {}
    kernel = None
    for raw in text.splitlines():
        parts = raw.strip().split(maxsplit=4)
        if len(parts) < 3 or parts[0] != "SYSCAP-BENCH":
            continue
        if parts[1] == "KERNEL":
            kernel = parts[2]
        elif parts[1] == "RUN" and len(parts) == 5 and parts[2].isdigit():
            try:
                value = float(parts[4])
            except ValueError:
                value = math.nan
            runs.setdefault(parts[3], {})[int(parts[2])] = value
        elif parts[1] == "SKIP":
            why[parts[2]] = " ".join(parts[3:])
    rounds = max((r for rs in runs.values() for r in rs), default=0)
    rows = []
    for key in dict.fromkeys([*names, *runs, *why]):
        got = runs.get(key, {})
        rows.append({"key": key, "name": names.get(key, key),
                     "runs": [got.get(r, math.nan) for r in range(1, rounds + 1)] if got else [],
                     "why": why.get(key, "" if got else "the guest reported no runs")})
    return {"kernel": kernel, "method": method or "bench/guest_rounds.sh in one guest",
            "rows": rows}


def rows_from(result: dict[str, Any] | None, why: str) -> list[Row]:
    got = {r.get("key"): r for r in (result or {}).get("rows", [])}
    rows = []
    for key, name in ROWS:
        r = got.get(key)
        if r is None:
            rows.append(Row(key, name, why=why or "the lab returned no such row"))
        else:
            runs = [float(x) for x in r.get("runs", [])]
            rows.append(Row(key, str(r.get("name") or name), runs, why=str(r.get("why", ""))))
    return rows


def summarise(rows: list[Row]) -> list[dict[str, Any]]:
    base = rows[0]
    out: list[dict[str, Any]] = []
    for r in rows:
        d: dict[str, Any] = {"key": r.key, "name": r.name, "status": r.status(), "why": r.why,
                             "unit": "requests/s", "runs": r.runs}
        est = r.estimate()
        if est is not None:
            d.update(est.as_json())
            if base.ok and r is not base:
                d["loss_pct"] = stats.loss_pct(r.runs, base.runs).as_json()
        out.append(d)
    return out


def run(quick: bool) -> dict[str, Any]:
    entry, why = lab_entry()
    result: dict[str, Any] | None = None
    if entry is not None:
        try:
            result = entry(quick)
        except Exception as e:  # any lab failure becomes the rows' reason
            text = str(e).strip()
            why = f"the guest lab failed: {text.splitlines()[0] if text else repr(e)}"
    rows = rows_from(result, why)
    return {
        "benchmark": "guest",
        "method": (result or {}).get("method", "nginx + ab inside one QEMU guest of kmod/lab"),
        "guest_kernel": (result or {}).get("kernel"),
        "machine": harness.machine(),
        "quick": quick,
        "rows": summarise(rows),
    }


def table(result: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = result["rows"]
    m = result["machine"]
    out = ["guest: requests/s inside one QEMU (TCG) guest; compare only within it",
           f"  host {m['host']} kernel {m['kernel']}, guest kernel "
           f"{result.get('guest_kernel') or '-'}, {m['date']}",
           f"  {'configuration':42} {'median':>9} {'interval':>19} {'loss %':>7} "
           f"{'loss interval':>15}"]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"  {r['name']:42} {r['status']}: {r['why']}")
            continue
        loss = r.get("loss_pct")
        iv = f"[{r['interval'][0]:.0f}, {r['interval'][1]:.0f}]"
        liv = f"[{loss['interval'][0]:.1f}, {loss['interval'][1]:.1f}]" if loss else "-"
        out.append(f"  {r['name']:42} {r['median']:9.0f} {iv:>19} "
                   f"{harness.fmt(loss['median'] if loss else None, 1, 7)} {liv:>15}")
    return "\n".join(out)

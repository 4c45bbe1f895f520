"""What every sub-benchmark shares: rows, interleaved rounds, results files.

A Row is one configuration (usually one tracer). It either ran, with one value
per round, or says in one line why it did not (why). Rounds rotate the order
of the rows, so slow drift and a neighbour's bursts hit every row alike.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import Estimate, estimate, finite
from bench.tracers import HERE, BenchError, TracerError

RESULTS = HERE / "results"


@dataclass
class Row:
    key: str
    name: str
    runs: list[float] = field(default_factory=list)
    why: str = ""  # set: this row did not run (or stopped), and why
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.why and bool(finite(self.runs))

    def estimate(self) -> Estimate | None:
        xs = finite(self.runs)
        return estimate(xs) if xs and not self.why else None

    def status(self) -> str:
        if self.ok:
            return "ok"
        return "failed" if self.runs else "not run"

    def as_json(self, unit: str) -> dict[str, Any]:
        """The row in a result file: what it is, whether it ran and why not, its runs, and
        their median and interval when it ran."""
        d: dict[str, Any] = {"key": self.key, "name": self.name, "status": self.status(),
                             "why": self.why, "note": self.note, "unit": unit, "runs": self.runs}
        est = self.estimate()
        if est is not None:
            d.update(est.as_json())
        return d


def rotated(n: int, rnd: int) -> list[int]:
    """Round rnd's order of n rows: 0..n-1 rotated by rnd."""
    k = rnd % n if n else 0
    return [*range(k, n), *range(k)]


def interleave(rows: Sequence[Row], rounds: int, one: Callable[[int, int], float],
               progress: Callable[[str], None] | None = None) -> None:
    """rounds x every runnable row, rotated; one(row index, round) -> value.

    A row whose run fails gets NaN for that round; after two failures it stops
    and its why says what went wrong, so one broken tracer never ends the run."""
    failures = [0] * len(rows)
    for rnd in range(rounds):
        for i in rotated(len(rows), rnd):
            row = rows[i]
            if row.why:
                continue
            if progress:
                progress(f"round {rnd + 1}/{rounds}: {row.name}")
            try:
                row.runs.append(one(i, rnd))
            except TracerError as e:
                row.runs.append(math.nan)
                failures[i] += 1
                row.note = str(e)
                if failures[i] >= 2:
                    row.why = f"failed: {e}"


def machine() -> dict[str, Any]:
    u = os.uname()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "host": u.nodename,
        "arch": u.machine,
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": u.release,
        "distro": platform.freedesktop_os_release().get("PRETTY_NAME", "")
        if hasattr(platform, "freedesktop_os_release") else "",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


@dataclass(frozen=True)
class CpuSample:
    """System CPU time (/proc/stat) and ours (this process and its reaped children)."""

    wall: float
    busy: float  # user + nice + system, all CPUs, seconds
    steal: float
    ours: float

    @classmethod
    def now(cls) -> CpuSample:
        import resource

        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in fields] + [0] * 8
        hz = os.sysconf("SC_CLK_TCK")
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(time.monotonic(), (ticks[0] + ticks[1] + ticks[2]) / hz, ticks[7] / hz,
                   me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime)


def other_load(start: CpuSample, end: CpuSample) -> dict[str, float]:
    """CPUs' worth of work that was not ours during the run (a noise gauge:
    near 0 on a quiet machine), and the hypervisor's steal, averaged."""
    wall = max(end.wall - start.wall, 1e-9)
    other = (end.busy - start.busy) - (end.ours - start.ours)
    return {"other_cpus": round(max(other, 0.0) / wall, 2),
            "steal_cpus": round((end.steal - start.steal) / wall, 2)}


def syscall_hooks(exclude: int | None = None) -> dict[int, str]:
    """Processes (pid -> comm) holding BPF links on sys_enter/sys_exit, found in
    /proc/*/fdinfo. Left over from elsewhere, they slow every syscall, the
    baseline's too, and hide part of every tracer's cost."""
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == exclude:
            continue
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    if os.readlink(fd) != "anon_inode:bpf_link":
                        continue
                    info = (proc / "fdinfo" / fd.name).read_text()
                except OSError:
                    continue
                if any(line.split() in (["tp_name:", "sys_enter"], ["tp_name:", "sys_exit"])
                       for line in info.splitlines()):
                    found[int(proc.name)] = (proc / "comm").read_text().strip()
                    break
        except OSError:
            continue
    return found


def hooks_warning(hooks: dict[int, str]) -> str | None:
    if not hooks:
        return None
    who = ", ".join(f"{pid} ({comm})" for pid, comm in sorted(hooks.items()))
    return (f"{len(hooks)} other processes hold BPF programs on sys_enter/sys_exit: {who}; "
            "every row, the baseline too, pays for them: stop them for a clean run")


def load_warning() -> str | None:
    """A line to print when the machine is busy before we start (results noisy)."""
    one, _, _ = os.getloadavg()
    cpus = os.cpu_count() or 1
    if one > 0.5:
        return (f"load average {one:.2f} on {cpus} CPUs before starting: other work is "
                "running, these numbers are noisy (do not quote them)")
    return None


def write_result(name: str, result: dict[str, Any], out_dir: Path = RESULTS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(path)
    return path


def build_native() -> str | None:
    """make -C bench/native; None, or why it failed (one line)."""
    try:
        p = subprocess.run(["make", "-s", "-C", str(HERE / "native")], capture_output=True,
                           text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"building bench/native failed: {e}"
    if p.returncode:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return f"building bench/native failed: {last}"
    return None


def require_root() -> None:
    if os.geteuid() != 0:
        raise BenchError("not root: it attaches kernel tracers: run it as root")


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def fmt(value: float | None, digits: int = 1, width: int = 9) -> str:
    if value is None or not math.isfinite(value):
        return f"{'-':>{width}}"
    return f"{value:{width}.{digits}f}"


def fmt_interval(e: Estimate | None, digits: int = 1) -> str:
    if e is None:
        return "-"
    return f"[{e.low:.{digits}f}, {e.high:.{digits}f}]"


def header(title: str, info: dict[str, Any], rounds: int, level: float | None) -> list[str]:
    if level is None:
        lvl = ""
    elif level >= 0.95:
        lvl = f", intervals {100 * level:.1f} %"
    elif level > 0:
        lvl = f", intervals only {100 * level:.1f} % (95 % needs 6 or more rounds)"
    else:
        lvl = ", no intervals (one round)"
    return [
        f"{title}",
        f"  {info['host']} {info['arch']} ({info['cpus']} CPUs, {info['cpu_model']}), "
        f"kernel {info['kernel']}, {info['date']}; {rounds} interleaved rounds{lvl}",
    ]

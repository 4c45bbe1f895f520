"""micro: ns per getppid() under each tracer, pinned, interleaved, medians.

Every round runs every configuration once, in a rotated order, so drift on
this noisy machine hits all of them alike. The loop runs on CPU 1, tracers
and their consumers on CPU 0. Added cost = median - baseline median, both
from the same run; the goal is read against the floor's added cost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NATIVE = HERE / "native" / "build"
RESULTS = HERE / "results"
LOOP_CPU, TRACER_CPU = "1", "0"


@dataclass(frozen=True)
class Config:
    name: str
    calls: int  # per run: about a third of a second each
    start: Callable[[Path], subprocess.Popen[str] | None]  # None: no tracer
    wrap: Callable[[list[str]], list[str]] | None = None  # tracers that run the loop


@dataclass
class Row:
    name: str
    runs: list[float]
    median_ns: float = 0.0
    added_ns: float = 0.0
    vs_floor: float | None = None
    note: str = ""


def _wait_ready(proc: subprocess.Popen[str], word: str, stream: str = "stdout") -> None:
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = pipe.readline()
        if not line:
            break
        if word in line:
            return
    proc.kill()
    raise RuntimeError(f"tracer did not start (waited for {word!r})")


def _pinned(cmd: list[str]) -> list[str]:
    return ["taskset", "-c", TRACER_CPU, *cmd]


def _floor(tmp: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen(_pinned([str(NATIVE / "floor_loader"), str(NATIVE / "floor.bpf.o")]),
                         stdout=subprocess.PIPE, text=True)
    _wait_ready(p, "ready")
    return p


def _syscap(mode: str) -> Callable[[Path], subprocess.Popen[str]]:
    def start(tmp: Path) -> subprocess.Popen[str]:
        if mode == "record":
            cmd = [sys.executable, "-m", "capture_lib.cli", "record", "-a", "-o",
                   str(tmp / "micro.trace")]
            p = subprocess.Popen(_pinned(cmd), stderr=subprocess.PIPE, text=True, cwd=ROOT)
            _wait_ready(p, "recording to", "stderr")
        else:  # count mode: what `syscap top` runs, aggregation without a file
            code = ("import signal,sys; from capture_lib.live import Session; s=Session(); "
                    "s.aggregate(True); s.start(); print('ready', flush=True); "
                    "signal.sigwait({signal.SIGTERM}); s.stop(); s.close()")
            p = subprocess.Popen(_pinned([sys.executable, "-c", code]), stdout=subprocess.PIPE,
                                 text=True, cwd=ROOT)
            _wait_ready(p, "ready")
        return p
    return start


def _bpftrace(tmp: Path) -> subprocess.Popen[str]:
    prog = "tracepoint:raw_syscalls:sys_enter { @[pid, args->id] = count(); }"
    p = subprocess.Popen(_pinned(["bpftrace", "-e", prog]), stdout=subprocess.PIPE, text=True)
    _wait_ready(p, "Attaching")
    time.sleep(0.5)  # "Attaching" is printed just before the probes are live
    return p


def configs() -> list[Config]:
    def none(tmp: Path) -> None:
        return None

    cs = [
        Config("baseline", 2_000_000, none),
        Config("floor (empty tp_btf enter+exit)", 2_000_000, _floor),
        Config("syscap count (top)", 2_000_000, _syscap("count")),
        Config("syscap record -a to file", 2_000_000, _syscap("record")),
    ]
    if shutil.which("bpftrace"):
        cs.append(Config("bpftrace count per pid+syscall", 1_000_000, _bpftrace))
    if shutil.which("strace"):
        cs.append(Config("strace -f", 20_000, none,
                         wrap=lambda cmd: ["strace", "-f", "-qq", "-o", "/dev/null", *cmd]))
    return cs


def _stop(p: subprocess.Popen[str] | None) -> None:
    if p is None:
        return
    p.send_signal(signal.SIGTERM if p.args and "bpftrace" not in str(p.args) else signal.SIGINT)
    try:
        p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()


@contextmanager
def _tracer(cfg: Config, tmp: Path) -> Iterator[None]:
    p = cfg.start(tmp)
    try:
        yield
    finally:
        _stop(p)


def one_run(cfg: Config, tmp: Path) -> float:
    loop = ["taskset", "-c", LOOP_CPU, str(NATIVE / "getppid_loop"), str(cfg.calls)]
    with _tracer(cfg, tmp):
        cmd = cfg.wrap(loop) if cfg.wrap else loop
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def summarise(rows: list[Row]) -> list[Row]:
    """Medians, added cost over baseline, and ratio to the floor's added cost."""
    for r in rows:
        r.median_ns = statistics.median(r.runs)
    base = next(r for r in rows if r.name == "baseline").median_ns
    floor_rows = [r for r in rows if r.name.startswith("floor")]
    for r in rows:
        r.added_ns = r.median_ns - base
    if floor_rows and floor_rows[0].added_ns > 0:
        for r in rows:
            if r.name != "baseline":
                r.vs_floor = r.added_ns / floor_rows[0].added_ns
    return rows


def run(rounds: int = 5) -> dict[str, object]:
    subprocess.run(["make", "-s", "-C", str(HERE / "native")], check=True)
    cs = configs()
    rows = [Row(c.name, []) for c in cs]
    with tempfile.TemporaryDirectory() as d:
        for rnd in range(rounds):
            order = list(range(len(cs)))
            order = order[rnd % len(order):] + order[:rnd % len(order)]
            for i in order:
                rows[i].runs.append(one_run(cs[i], Path(d)))
    summarise(rows)
    u = os.uname()
    return {
        "benchmark": "micro",
        "machine": f"{u.nodename} {u.machine}, {os.cpu_count()} CPUs",
        "kernel": u.release,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "rounds": rounds,
        "rows": [asdict(r) for r in rows],
    }


def table(result: dict[str, object]) -> str:
    rows = result["rows"]
    assert isinstance(rows, list)
    out = [f"micro: getppid ns/call, median of {result['rounds']} interleaved rounds "
           f"({result['machine']}, kernel {result['kernel']})",
           f"{'configuration':34} {'median':>9} {'added':>9} {'x floor':>8}"]
    for r in rows:
        vs = f"{r['vs_floor']:.2f}" if r["vs_floor"] is not None else "-"
        out.append(f"{r['name']:34} {r['median_ns']:9.1f} {r['added_ns']:9.1f} {vs:>8}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    rounds = int(argv[0]) if argv else 5
    result = run(rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "micro.json").write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

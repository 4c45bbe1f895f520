"""syscap top at scale: UI CPU per refresh and bytes written to the terminal per refresh.

    .venv/bin/python -m bench.tui_bench [--processes 2000] [--ticks 10] [--size 120x40]

The app runs in a child process on a real pseudo-terminal (Textual's Linux driver,
the real refresh path: timer -> fetch thread -> message -> batch_update) with a
synthetic source of N processes where only one process's load changes each tick
(it is the top row, so one visible row changes). The parent reads the pty and
counts every byte; the child records, per tick, the CPU time of the app thread
(model, diff, render and terminal writes until the next tick) and of the fetch
thread. Ticks are matched to bytes by CLOCK_MONOTONIC, which both processes share.
Goals: < 30 ms UI CPU and < 2 KB per tick at 2 000 processes, 1 s refresh.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

WARMUP_TICKS = 10  # fills every row's trend history, so unchanged rows stop changing


def _child(result_path: str, processes: int, ticks: int, interval: float) -> None:
    """Runs in the pty child: syscap top on a synthetic source, instrumented."""
    from capture_lib.snapshot import Snapshot
    from tests.tui.synthetic import TABLE, SyntheticSource, synthetic_user
    from tui.app import SyscapTop, TopOptions
    from tui.panels import HostInfo

    total = WARMUP_TICKS + ticks
    marks: list[dict[str, float]] = []
    fetch_cpu: list[float] = []

    class TimedSource(SyntheticSource):
        def snapshot(self) -> Snapshot:
            t0 = time.thread_time()
            snap = super().snapshot()
            fetch_cpu.append(time.thread_time() - t0)
            return snap

    class BenchTop(SyscapTop):
        def apply_snapshot(self, snap: Snapshot) -> None:
            start = {"mono": time.monotonic(), "cpu": time.thread_time()}
            super().apply_snapshot(snap)
            start["apply_cpu"] = time.thread_time() - start["cpu"]
            marks.append(start)
            if len(marks) > total:
                self.exit()

    source = TimedSource(n=processes, only_one_changes=True)
    app = BenchTop(
        source,
        TopOptions(
            interval_s=interval,
            host=HostInfo("bench", os.uname().release),
            syscall_table=TABLE,
            user_of=synthetic_user,
        ),
    )
    app.run()
    Path(result_path).write_text(
        json.dumps({"marks": marks, "fetch_cpu": fetch_cpu, "threads": threading.active_count()})
    )


def _child_datatable(result_path: str, processes: int, ticks: int, interval: float) -> None:
    """The baseline: Textual's DataTable fed the same data (changed cells, then a sort)."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from tests.tui.synthetic import SyntheticSource, synthetic_user
    from tui.format import latency, rate

    total = WARMUP_TICKS + ticks
    marks: list[dict[str, float]] = []
    source = SyntheticSource(n=processes, only_one_changes=True)
    columns = ("PID", "USER", "COMM", "SYSC/s", "ERR/s", "TOP SYSCALL", "AVG", "P99")

    def cells(p: Any, interval_s: float) -> tuple[Any, ...]:
        top = p.syscalls[0].name if p.syscalls else ""
        avg = p.total_ns / p.count if p.count else 0
        return (p.pid, synthetic_user(p.pid), p.comm, rate(p.count / interval_s),
                rate(p.errors / interval_s), top, latency(avg), latency(p.p99_ns))  # fmt: skip

    class Baseline(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable(id="t")

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            self.keys = table.add_columns(*columns)
            self.shown: dict[int, tuple[Any, ...]] = {}
            # Made up front so that the measured ticks hold only table work.
            self.snaps = [source.snapshot() for _ in range(total + 2)]
            self.set_interval(interval, self.tick)

        def tick(self) -> None:
            start = {"mono": time.monotonic(), "cpu": time.thread_time()}
            snap = self.snaps[len(marks)]
            table = self.query_one(DataTable)
            with self.batch_update():
                for p in snap.processes:
                    row = cells(p, snap.interval_s)
                    old = self.shown.get(p.pid)
                    if old is None:
                        table.add_row(*row, key=str(p.pid))
                    else:
                        for key, a, b in zip(self.keys, old, row, strict=True):
                            if a != b:
                                table.update_cell(str(p.pid), key, b)
                    self.shown[p.pid] = row
                table.sort(self.keys[3], key=lambda v: float(str(v).rstrip("kM")), reverse=True)
            start["apply_cpu"] = time.thread_time() - start["cpu"]
            marks.append(start)
            if len(marks) > total:
                self.exit()

    Baseline().run()
    Path(result_path).write_text(json.dumps({"marks": marks, "fetch_cpu": [], "threads": 1}))


def run(
    processes: int, ticks: int, interval: float, cols: int, rows: int, datatable: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result_path = os.path.join(tmp, "result.json")
        pid, master = pty.fork()
        if pid == 0:  # child: the pty is its terminal
            os.environ["TERM"] = "xterm-256color"
            os.environ.pop("SSH_CONNECTION", None)
            code = 0
            try:
                child = _child_datatable if datatable else _child
                child(result_path, processes, ticks, interval)
            except BaseException:
                import traceback

                traceback.print_exc(file=open(os.path.join(tmp, "child.err"), "w"))
                code = 1
            os._exit(code)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        chunks: list[tuple[float, int]] = []
        deadline = time.monotonic() + (WARMUP_TICKS + ticks) * interval + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append((time.monotonic(), len(data)))
        _, status = os.waitpid(pid, 0)
        os.close(master)
        err = Path(tmp, "child.err")
        if not Path(result_path).exists():
            reason = err.read_text() if err.exists() else f"exit status {status}"
            raise SystemExit(f"tui_bench: the app did not finish: {reason}")
        result: dict[str, Any] = json.loads(Path(result_path).read_text())

    marks = result["marks"]
    steady = range(WARMUP_TICKS, len(marks) - 1)
    ui_cpu_ms = [(marks[i + 1]["cpu"] - marks[i]["cpu"]) * 1e3 for i in steady]
    apply_ms = [marks[i]["apply_cpu"] * 1e3 for i in steady]
    tick_bytes = [
        sum(n for t, n in chunks if marks[i]["mono"] <= t < marks[i + 1]["mono"]) for i in steady
    ]
    fetch_ms = [c * 1e3 for c in result["fetch_cpu"][WARMUP_TICKS:]]
    return {
        "table": "DataTable (baseline)" if datatable else "LiveTable",
        "processes": processes,
        "terminal": f"{cols}x{rows}",
        "interval_s": interval,
        "ticks_measured": len(ui_cpu_ms),
        "ui_cpu_ms_per_tick": {"median": statistics.median(ui_cpu_ms), "max": max(ui_cpu_ms)},
        "apply_cpu_ms_per_tick": {"median": statistics.median(apply_ms), "max": max(apply_ms)},
        "apply_cpu_ms_each": [round(v, 1) for v in apply_ms],
        "ui_cpu_ms_each": [round(v, 1) for v in ui_cpu_ms],
        "bytes_per_tick": {"median": statistics.median(tick_bytes), "max": max(tick_bytes)},
        "synthetic_source_ms_per_snapshot": statistics.median(fetch_ms) if fetch_ms else None,
        "first_paint_bytes": sum(n for t, n in chunks if t < marks[0]["mono"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tui_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--processes", type=int, default=2000)
    parser.add_argument("--ticks", type=int, default=10, help="measured ticks after warm-up")
    parser.add_argument("--interval", type=float, default=1.0, help="refresh interval, s")
    parser.add_argument("--size", default="120x40", help="terminal COLSxROWS")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--datatable", action="store_true",
        help="measure Textual's DataTable with the same data instead (the baseline)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    cols, rows = (int(v) for v in args.size.split("x"))
    r = run(args.processes, args.ticks, args.interval, cols, rows, args.datatable)
    if args.json:
        print(json.dumps(r))
        return 0
    ui, apply, nbytes = r["ui_cpu_ms_per_tick"], r["apply_cpu_ms_per_tick"], r["bytes_per_tick"]
    print(f"syscap top ({r['table']}), {r['processes']} processes, {r['terminal']}, "
          f"{r['interval_s']:g} s refresh, {r['ticks_measured']} ticks after warm-up")  # fmt: skip
    print(f"  UI CPU per tick (app thread): median {ui['median']:.1f} ms, max {ui['max']:.1f} ms"
          f"  (goal < 30 ms)")  # fmt: skip
    print(f"    of which apply_snapshot:    median {apply['median']:.1f} ms, "
          f"max {apply['max']:.1f} ms")  # fmt: skip
    print(f"  bytes to the terminal per tick: median {nbytes['median']:.0f}, "
          f"max {nbytes['max']:.0f}  (goal < 2048)")  # fmt: skip
    if r["synthetic_source_ms_per_snapshot"] is not None:
        print(f"  synthetic source (fetch thread, not UI): "
              f"{r['synthetic_source_ms_per_snapshot']:.1f} ms per snapshot")  # fmt: skip
    print(f"  first paint: {r['first_paint_bytes']} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The board's costs: syscap-agent's stream and `syscap top --ssh`.

    syscap bench board [--rounds N] [--quick]
    or  .venv/bin/python -m bench.board [--rounds N] [--window S]

This machine plays the box. A load of N active processes (200 and 2 000; each calls getppid
1 to 5 times and getuid, then sleeps 90 to 110 ms, so every one of the N is in
every interval, with counts that differ) runs while, in turn:
  - `syscap-agent stream --interval 1` writes to a pipe read here: bytes per second
    of stream (what crosses the ssh link), processes per interval, and the agent's
    CPU (utime + stime from /proc) and RSS over a window after a warm-up;
  - `syscap top --backend bpf -d 1` runs in a tmux terminal on the same load: its
    CPU and RSS the same way (what watching costs when top itself runs on the box).
Rounds interleave the two (order rotated) and the loads; medians are reported.
Then the time from starting `syscap top --ssh root@127.0.0.1` (a throw-away sshd on
loopback, bench/sshd.py) until its first screen with process rows: with no copy of
the agent on the box (it is sent) and with one (cached), and local `syscap top` for
comparison. And each agent's size. Goals: < 20 KB/s at 200 processes, the
agent's CPU and RSS below top's, < 2 MB per agent.
Writes bench/results/board.json (board.quick.json for --quick) and board.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import harness
from bench.procs import proc_table
from bench.sshd import Sshd
from bench.tracers import BenchError
from capture_lib.ssh import agent_path
from capture_lib.stream import StreamDecoder, StreamInterval

ROOT = Path(__file__).resolve().parent.parent
LOADS = (200, 2000)
WARMUP_S = 3.0

LOAD_PROGRAM = r"""
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = atoi(argv[1]);

	for (int i = 0; i < n; i++) {
		if (fork() == 0) {
			/* counts that differ from process to process, as a real box's do */
			struct timespec tick = { 0, (90 + i % 21) * 1000 * 1000 };

			for (;;) {
				for (int k = 0; k <= i % 5; k++)
					getppid();
				getuid();
				nanosleep(&tick, NULL);
			}
		}
	}
	pause();	/* the group is killed at the end */
	return 0;
}
"""


def _cpu_s(pid: int) -> float:
    """utime + stime of pid (all its threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Load:
    """N processes making syscalls, in their own process group."""

    def __init__(self, exe: Path, n: int) -> None:
        self.n = n
        self.proc = subprocess.Popen([str(exe), str(n)], start_new_session=True)
        deadline = time.monotonic() + 60
        while len(_children_of(self.proc.pid)) < n:
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"the load did not start {n} processes")
            time.sleep(0.05)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def _children_of(pid: int) -> list[int]:
    return [child for child, st in proc_table().items() if st.ppid == pid]


def measure_agent(window: float) -> dict[str, float]:
    """The agent's stream over a window: bytes/s, processes per interval, CPU %, RSS."""
    agent = agent_path(os.uname().machine)
    proc = subprocess.Popen([str(agent), "stream", "--interval", "1"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    got: list[tuple[float, int]] = []
    procs: list[tuple[float, int]] = []
    dec = StreamDecoder()

    def read() -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while data := os.read(fd, 65536):
            now = time.monotonic()
            got.append((now, len(data)))
            for item in dec.feed(data):
                if isinstance(item, StreamInterval):
                    procs.append((now, len(item.procs)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        time.sleep(WARMUP_S)  # a benchmark's window, not a synchronisation
        t0, c0 = time.monotonic(), _cpu_s(proc.pid)
        time.sleep(window)
        t1, c1 = time.monotonic(), _cpu_s(proc.pid)
        rss = _rss_bytes(proc.pid)
    finally:
        proc.stdin.close()  # the agent ends its stream
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
    in_window = sum(n for t, n in got if t0 <= t < t1)
    per_interval = [n for t, n in procs if t0 <= t < t1]
    return {
        "bytes_per_s": in_window / (t1 - t0),
        "cpu_pct": (c1 - c0) / (t1 - t0) * 100,
        "rss_mib": rss / 2**20,
        "procs_per_interval": statistics.median(per_interval) if per_interval else 0.0,
    }


def _syscap() -> list[str]:
    exe = Path(sys.executable).parent / "syscap"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "capture_lib.cli"]


class Tmux:
    """One command in a 120x40 tmux session; pid() is the command's."""

    made = 0

    def __init__(self, name: str, argv: list[str], tmp: Path) -> None:
        Tmux.made += 1
        self.name = f"{name}-{Tmux.made}"  # a session closing may linger a moment
        self.pidfile = tmp / f"{self.name}.pid"
        self.pidfile.unlink(missing_ok=True)
        script = f"echo $$ > {self.pidfile}; cd {ROOT}; exec {shlex.join(argv)}"
        self.started = time.monotonic()
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "120", "-y", "40",
                        f"sh -c {shlex.quote(script)}; sleep 600"], check=True)  # fmt: skip

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout  # fmt: skip

    def pid(self) -> int:
        deadline = time.monotonic() + 30
        while not (self.pidfile.exists() and self.pidfile.read_text().strip()):
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not start")
            time.sleep(0.02)
        return int(self.pidfile.read_text())

    def first_rows(self, timeout: float = 60) -> float:
        """Seconds from the start until the screen shows the header and process rows."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            now = time.monotonic()
            if "Traceback" in screen:
                raise BenchError(f"{self.name} failed:\n{screen}")
            if "backend" in screen and "SYSC/s" in screen and re.search(
                    r"^\s*\d+ +\S+ +\S+ +[\d.]+[kM]?\s", screen, re.M):  # fmt: skip
                return now - self.started
            time.sleep(0.01)
        raise BenchError(f"{self.name} never showed a live screen:\n{self.screen()}")

    def close(self, pid: int | None) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "q"], capture_output=True)
        deadline = time.monotonic() + 15
        while pid is not None and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def measure_top(window: float, tmp: Path) -> dict[str, float]:
    """syscap top (eBPF, 1 s) on this machine over a window: CPU %, RSS."""
    t = Tmux(f"board-bench-top-{os.getpid()}", [*_syscap(), "top", "--no-config",
                                                 "--backend", "bpf", "-d", "1"], tmp)  # fmt: skip
    pid = None
    try:
        pid = t.pid()
        t.first_rows()
        time.sleep(WARMUP_S)
        t0, c0 = time.monotonic(), _cpu_s(pid)
        time.sleep(window)
        t1, c1 = time.monotonic(), _cpu_s(pid)
        return {"cpu_pct": (c1 - c0) / (t1 - t0) * 100, "rss_mib": _rss_bytes(pid) / 2**20}
    finally:
        t.close(pid)


def time_to_screen(argv: list[str], tmp: Path) -> float:
    t = Tmux(f"board-bench-ssh-{os.getpid()}", argv, tmp)
    pid = None
    try:
        pid = t.pid()
        return t.first_rows()
    finally:
        t.close(pid)


def run(rounds: int, window: float, quick: bool) -> dict[str, Any]:
    harness.require_root()
    if shutil.which("tmux") is None:
        raise BenchError("tmux is missing: ./setup.sh --tests installs it")
    res: dict[str, Any] = {"machine": harness.machine(), "rounds": rounds, "window_s": window,
                           "quick": quick}  # fmt: skip
    res["agent_bytes"] = {a: agent_path(a).stat().st_size for a in ("x86_64", "aarch64")
                          if agent_path(a).exists()}  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="board-bench-") as tmpdir:
        tmp = Path(tmpdir)
        src = tmp / "load.c"
        src.write_text(LOAD_PROGRAM)
        exe = tmp / "board-load"
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True)
        for r in range(rounds):
            for n in LOADS if r % 2 == 0 else LOADS[::-1]:
                load = Load(exe, n)
                try:
                    for what in ("agent", "top") if r % 2 == 0 else ("top", "agent"):
                        m = measure_agent(window) if what == "agent" else measure_top(window, tmp)
                        runs.setdefault(f"{what}-{n}", []).append(m)
                        harness.say(
                            f"round {r + 1}: {what} at {n} processes: "
                            + ", ".join(f"{k} {v:.1f}" for k, v in m.items())
                        )
                finally:
                    load.stop()
        sshd_dir = tmp / "sshd"
        sshd_dir.mkdir()
        with Sshd(sshd_dir) as sshd:
            ssh = [
                *_syscap(),
                "top",
                "--no-config",
                "-d",
                "1",
                "--ssh",
                sshd.host,
                *(w for o in sshd.client_options for w in ("--ssh-option", o)),
            ]
            local = [*_syscap(), "top", "--no-config", "-d", "1", "--backend", "bpf"]
            cache = sshd.box_tmp / f"syscap-{os.geteuid()}"
            starts: dict[str, list[float]] = {"ssh-send": [], "ssh-cached": [], "local": []}
            for r in range(rounds):
                for i in harness.rotated(3, r):
                    key = ("ssh-send", "ssh-cached", "local")[i]
                    if key == "ssh-send":
                        shutil.rmtree(cache, ignore_errors=True)
                    elif key == "ssh-cached" and not cache.exists():
                        time_to_screen(ssh, tmp)  # makes the copy
                    starts[key].append(time_to_screen(local if key == "local" else ssh, tmp))
                    harness.say(f"round {r + 1}: first screen, {key}: {starts[key][-1]:.2f} s")
    res["runs"] = runs
    res["first_screen_s"] = starts
    res["median"] = {k: {f: statistics.median(m[f] for m in v) for f in v[0]}
                     for k, v in runs.items()}  # fmt: skip
    res["median"].update({f"first-screen-{k}": {"s": statistics.median(v)}
                          for k, v in starts.items()})  # fmt: skip
    res["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return res


def table(res: dict[str, Any]) -> str:
    med = res["median"]
    m = res["machine"]
    lines = [
        f"Board costs, {m['date']}, {m['cpu_model'] or m['arch']} x{m['cpus']}, Linux "
        f"{m['kernel']}; {res['rounds']} rounds, {res['window_s']:g} s windows, medians; "
        f"load average {m['loadavg_at_start']} at start, {res['loadavg_at_end']} at end",
        "",
        "| active processes | stream KB/s | processes per interval | agent CPU | agent RSS "
        "| syscap top CPU | syscap top RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in LOADS:
        a, t = med.get(f"agent-{n}"), med.get(f"top-{n}")
        if a is None or t is None:
            continue
        lines.append(f"| {n} | {a['bytes_per_s'] / 1000:.1f} | {a['procs_per_interval']:.0f} | "
                     f"{a['cpu_pct']:.1f} % | {a['rss_mib']:.1f} MiB | {t['cpu_pct']:.1f} % | "
                     f"{t['rss_mib']:.1f} MiB |")  # fmt: skip
    lines.append("")
    sizes = ", ".join(f"{a} {b / 1e6:.2f} MB" for a, b in res["agent_bytes"].items())
    lines.append(f"Agent size: {sizes}.")
    fs = {k.removeprefix("first-screen-"): v["s"] for k, v in med.items()
          if k.startswith("first-screen-")}  # fmt: skip
    lines.append(
        f"First live screen: `top --ssh` (loopback sshd) {fs['ssh-send']:.2f} s sending the "
        f"agent, {fs['ssh-cached']:.2f} s with its copy on the box; local `top` "
        f"{fs['local']:.2f} s."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None, results: Path = harness.RESULTS) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.board", description=__doc__.splitlines()[0] if __doc__ else None
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=float, default=10.0, help="seconds measured per run")
    ap.add_argument("--quick", action="store_true", help="one round, 5 s windows")
    args = ap.parse_args(argv)
    rounds, window = (1, 5.0) if args.quick else (args.rounds, args.window)
    res = run(rounds, window, args.quick)
    text = table(res)
    stem = "board.quick" if args.quick else "board"
    path = harness.write_result(stem, res, results)
    (results / f"{stem}.md").write_text(text + "\n")
    print(text)
    print(f"\n({path}, {results / (stem + '.md')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

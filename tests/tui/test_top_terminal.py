"""`syscap top` in a real terminal (tmux) on the live eBPF backend.

A helper process makes a known number of syscalls per second; the UI must show it
within 25 %, and `q` must leave no process behind. Needs root, tmux and a built
capture_lib (./setup.sh).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.procs import proc_stat
from tests.tui.tmux_screen import pane, settled, wait_for

ROOT = Path(__file__).resolve().parents[2]
HELPER_COMM = "sctop-helper"
CALLS_PER_TICK = 40  # getppid() calls every 10 ms ...
TICKS_PER_S = 100  # ... plus one clock_nanosleep per tick
EXPECTED_RATE = (CALLS_PER_TICK + 1) * TICKS_PER_S

HELPER_TEMPLATE = """
import os, time
with open("/proc/self/comm", "w") as f:
    f.write("{comm}")
next_t = time.monotonic()
while True:
    for _ in range({calls}):
        os.getppid()
    next_t += 1 / {ticks}
    delay = next_t - time.monotonic()
    if delay > 0:
        time.sleep(delay)
"""
HELPER = HELPER_TEMPLATE.format(comm=HELPER_COMM, calls=CALLS_PER_TICK, ticks=TICKS_PER_S)
NOISE_RATE = (200 + 1) * TICKS_PER_S  # another process, which a pid filter must drop
NOISE = HELPER_TEMPLATE.format(comm="sctop-noise", calls=200, ticks=TICKS_PER_S)


def _live_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root for the eBPF backend"
    if shutil.which("tmux") is None:
        return "needs tmux"
    try:
        import capture_lib.live  # noqa: F401
    except Exception as exc:  # not built here
        return f"capture_lib.live is not usable: {exc}"
    return None


pytestmark = pytest.mark.skipif(_live_available() is not None, reason=str(_live_available()))


def _top_command() -> list[str]:
    syscap = Path(sys.executable).parent / "syscap"
    if syscap.exists():
        return [str(syscap), "top"]
    return [sys.executable, "-m", "tui", "top"]


def _alive(pid: int) -> bool:
    """Whether pid runs (a zombie is not "behind": it has exited)."""
    st = proc_stat(pid)
    return st is not None and st.state != "Z"


def _python(code: str) -> Iterator[subprocess.Popen[bytes]]:
    """A Python process running code for the duration of a test."""
    proc = subprocess.Popen([sys.executable, "-c", code])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def helper() -> Iterator[subprocess.Popen[bytes]]:
    yield from _python(HELPER)


@pytest.fixture
def noise() -> Iterator[subprocess.Popen[bytes]]:
    yield from _python(NOISE)


@pytest.fixture
def tmux_session(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"syscap-top-test-{os.getpid()}"
    yield name, tmp_path
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def _helper_rate(screen: str, pid: int) -> float | None:
    """The SYSC/s cell of the helper's row (right-aligned under the column title)."""
    lines = screen.splitlines()
    header = next((ln for ln in lines if "SYSC/s" in ln and "PID" in ln), None)
    if header is None:
        return None
    end = header.index("SYSC/s") + len("SYSC/s") + 1
    for line in lines:
        if re.match(rf"\s*{pid}\s", line):
            return _rate(line[:end].split()[-1])
    return None


def start_top(session: str, tmp: Path, *top_args: str) -> tuple[int, Path]:
    """syscap top TOP_ARGS (1 s refreshes, no saved config) in a 140x40 tmux session:
    (its pid, a file made at its exit)."""
    pidfile, donefile = tmp / "top.pid", tmp / "done"
    cmd = shlex.join([*_top_command(), "--no-config", "-d", "1", *top_args])
    script = f"echo $$ > {pidfile}; cd {ROOT}; exec {cmd}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "40",
                    f"sh -c {shlex.quote(script)}; touch {donefile}; sleep 60"],
                   check=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, pane(session)
        time.sleep(0.05)
    return int(pidfile.read_text()), donefile


def quit_top(session: str, top_pid: int, donefile: Path) -> None:
    """q: top exits within 15 s, without a traceback."""
    subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
    deadline = time.monotonic() + 15
    while not donefile.exists():
        assert time.monotonic() < deadline, "syscap top did not exit on q\n" + pane(session)
        time.sleep(0.1)
    assert not _alive(top_pid)
    assert "Traceback" not in pane(session)


def rate_shown(session: str, pid: int) -> float:
    """pid's rate once its row is on screen (polled, at most 30 s)."""
    deadline = time.monotonic() + 30
    while (rate := _helper_rate(pane(session), pid)) is None:
        assert time.monotonic() < deadline, pane(session)
        time.sleep(0.2)
    return rate


def filter_to_pid(session: str, pid: int, dropped: int) -> None:
    """F4, the pid field, pid, save; then wait (at most 30 s) until the refreshes hold
    no call of process dropped."""
    for keys in (["F4"], ["Tab"], ["Tab"], [str(pid)], ["C-s"]):
        subprocess.run(["tmux", "send-keys", "-t", session, *keys], check=True)
        settled(session)
    wait_for(session, f"filter: pid {pid}")
    deadline = time.monotonic() + 30
    while _helper_rate(pane(session), dropped) not in (None, 0.0):
        assert time.monotonic() < deadline, pane(session)
        time.sleep(0.2)


def connection_lost(session: str) -> str:
    """The screen once the header says the connection is lost, which it must within
    2 s of the call (the backend name stays)."""
    t0 = time.monotonic()
    screen = wait_for(session, "connection lost", timeout=5)
    lost_after = time.monotonic() - t0
    assert lost_after < 2, f"shown after {lost_after:.1f} s"
    head = screen.splitlines()[0]
    assert "backend bpf" in head and "connection lost" in head, screen
    return screen


def _rate(text: str) -> float:
    scale = {"k": 1e3, "M": 1e6}.get(text[-1], 1.0)
    return float(text.rstrip("kM")) * scale


def test_live_top_shows_helper_rate_and_q_leaves_nothing_behind(
    helper: subprocess.Popen[bytes], tmux_session: tuple[str, Path]
) -> None:
    session, tmp = tmux_session
    top_pid, donefile = start_top(session, tmp, "--backend", "bpf")
    deadline = time.monotonic() + 30

    rates: list[float] = []
    screen = ""
    while len(rates) < 4 and time.monotonic() < deadline:
        time.sleep(1)
        screen = pane(session)
        assert "Traceback" not in screen, screen
        rate = _helper_rate(screen, helper.pid)
        if rate is not None and rate > 0:
            rates.append(rate)
    size = subprocess.run(
        ["tmux", "display", "-p", "-t", session, "#{window_width}x#{window_height}"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert len(rates) >= 4, f"helper {helper.pid} never shown ({size}):\n{screen}"
    measured = sorted(rates[1:])[1]  # median of the last three refreshes
    assert abs(measured - EXPECTED_RATE) <= 0.25 * EXPECTED_RATE, (
        f"shown {measured}/s, expected {EXPECTED_RATE}/s (samples {rates})"
    )
    print(f"helper shown at {rates}/s, expected {EXPECTED_RATE}/s")
    assert "LIVE" in screen and "backend bpf" in screen

    children = subprocess.run(["pgrep", "-P", str(top_pid)], capture_output=True,
                              text=True).stdout.split()  # fmt: skip
    quit_top(session, top_pid, donefile)
    assert not [p for p in children if _alive(int(p))]


def _events_per_s(session: str) -> tuple[float, str]:
    """The median of three refreshes' events/s, and the last screen."""
    events: list[float] = []
    screen = ""
    for _ in range(3):
        time.sleep(1)
        screen = pane(session)
        m = re.search(r"events (\S+)/s", screen)
        assert m, screen
        events.append(_rate(m.group(1)))
    return sorted(events)[1], screen


def test_live_pid_filter_is_applied_in_the_kernel(
    helper: subprocess.Popen[bytes],
    noise: subprocess.Popen[bytes],
    tmux_session: tuple[str, Path],
) -> None:
    """F4, pids = the helper: events/s (counted in the kernel) fall to the helper's rate."""
    session, tmp = tmux_session
    top_pid, donefile = start_top(session, tmp, "--backend", "bpf")
    rate_shown(session, noise.pid)
    before, screen = _events_per_s(session)
    assert before >= 0.75 * (EXPECTED_RATE + NOISE_RATE), screen
    filter_to_pid(session, helper.pid, dropped=noise.pid)
    after, screen = _events_per_s(session)
    assert f"filter: pid {helper.pid}" in screen, screen
    print(f"events/s before the pid filter {before}, after {after}; helper {EXPECTED_RATE}")
    assert abs(after - EXPECTED_RATE) <= 0.25 * EXPECTED_RATE, (
        f"events/s {after} under a pid filter (before {before}), helper makes "
        f"{EXPECTED_RATE}/s\n{screen}"
    )
    quit_top(session, top_pid, donefile)

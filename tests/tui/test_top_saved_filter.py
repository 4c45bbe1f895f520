"""A filter tuned in `syscap top`'s dialog, saved with its name, records exactly
that filter in `syscap record --filter NAME` (real terminal, live eBPF backend)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import build_c

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = ROOT / "tests" / "capture_lib" / "workloads" / "workload.c"
ARGS = ("1000", "50", "20", "30", "200", "300")  # getppid: 1000 + child 200 + thread 300

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("tmux") is None,
    reason="needs root (eBPF) and tmux")


def pane(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                          capture_output=True, text=True).stdout


def wait_for(session: str, text: str, timeout: float = 30) -> str:
    """The screen once it shows text (polled, at most timeout seconds)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = pane(session)
        assert "Traceback" not in screen, screen
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never showed:\n{screen}")


def settled(session: str, quiet: float = 0.3, timeout: float = 10) -> str:
    """The screen once it has stopped changing for `quiet` seconds: the app has
    handled every key sent so far (a key sent while a dialog still mounts can
    land before its focus is set)."""
    deadline = time.monotonic() + timeout
    last, since = pane(session), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        screen = pane(session)
        if screen != last:
            last, since = screen, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return screen
    raise AssertionError(f"the screen never settled:\n{last}")


def keys(session: str, *k: str, literal: bool = False) -> str:
    """Send keys one at a time, each once the app has handled the one before."""
    for key in k:
        subprocess.run(["tmux", "send-keys", "-t", session, *(["-l"] if literal else []), key],
                       check=True)
        screen = settled(session)
    return screen


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"syscap-filter-test-{os.getpid()}"
    yield name, tmp_path
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_tuned_filter_saved_in_top_records_exactly_that_filter(
        session: tuple[str, Path], c_build_dir: Path) -> None:
    name, tmp = session
    config = tmp / "config"
    syscap = Path(sys.executable).parent / "syscap"
    script = (f"cd {ROOT}; XDG_CONFIG_HOME={config} exec {syscap} top --backend bpf "
              "--no-config")
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40",
                    f"sh -c '{script}'; sleep 60"], check=True)
    wait_for(name, "LIVE")
    keys(name, "F4")
    wait_for(name, "In-kernel filter")
    settled(name)
    # focus: groups -> syscalls -> pids -> not pids -> comms -> not comms -> failed -> save as
    keys(name, "Tab")
    assert "syscalls  getppid" in keys(name, "getppid", literal=True)
    keys(name, "Tab", "Tab", "Tab")
    assert "comms     workload" in keys(name, "workload", literal=True)
    keys(name, "Tab", "Tab", "Tab")
    assert "save as   tuned" in keys(name, "tuned", literal=True)
    screen = keys(name, "Enter")
    assert "saved 'tuned'" in screen and "syscap record --filter tuned" in screen, screen
    saved = json.loads((config / "syscap" / "filters" / "tuned.json").read_text())
    assert (saved["syscalls"], saved["comms"]) == (["getppid"], ["workload"])
    keys(name, "Escape", "q")

    workload = build_c(WORKLOAD, c_build_dir, "-lpthread")
    trace = tmp / "t.trace"
    subprocess.run([str(syscap), "record", "--filter", "tuned", "-o", str(trace), "--",
                    str(workload), *ARGS], check=True, cwd=ROOT,
                   env={**os.environ, "XDG_CONFIG_HOME": str(config)})
    rep = json.loads(subprocess.run([str(syscap), "report", str(trace), "--json"],
                                    check=True, capture_output=True, text=True).stdout)
    assert {n: (s["count"], s["errors"]) for n, s in rep["syscalls"].items()} == {
        "getppid": (1500, 0)}
    assert rep["dropped"] == 0

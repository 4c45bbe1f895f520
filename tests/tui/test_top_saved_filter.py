"""A filter tuned in `syscap top`'s dialog, saved with its name, records exactly
that filter in `syscap record --filter NAME` (real terminal, live eBPF backend)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import build_c
from tests.tui.tmux_screen import settled, wait_for

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = ROOT / "tests" / "capture_lib" / "workloads" / "workload.c"
ARGS = ("1000", "50", "20", "30", "200", "300")  # getppid: 1000 + child 200 + thread 300

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("tmux") is None,
    reason="needs root (eBPF) and tmux")


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

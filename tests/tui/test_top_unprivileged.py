"""`syscap top` as an unprivileged user (nobody) in a real terminal (tmux).

- Live capture cannot start: the app says why and offers replay, no traceback.
- A trace recorded as root replays as nobody and shows the recorded processes,
  in 16 colours with --low-color.

The venv's interpreter lives under /root (not reachable by nobody), so these run
Debian's /usr/bin/python3 (same 3.11 ABI) with the venv's site-packages on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tui.tmux_screen import pane, wait_for

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
RECORDER = """
import os, time
end = time.monotonic() + 2.5
while time.monotonic() < end:
    os.getppid()
    time.sleep(0.001)
"""


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root to switch to nobody (and to record)"
    for tool in ("tmux", "runuser"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not SYSTEM_PYTHON.exists():
        return "needs /usr/bin/python3 (the venv's python is not reachable by nobody)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nobody can read (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="syscap-top-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def session() -> Iterator[str]:
    name = f"syscap-top-nobody-{os.getpid()}"
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def _start_as_nobody(
    session: str, args: list[str], done: Path, size: tuple[int, int] = (100, 30)
) -> None:
    pythonpath = f"{ROOT}:{SITE / 'site-packages'}"
    command = (
        f"cd /tmp && runuser -u nobody -- env PYTHONPATH={pythonpath} "
        f"PYTHONDONTWRITEBYTECODE=1 HOME=/tmp {SYSTEM_PYTHON} -m tui top {' '.join(args)}; "
        f"touch {done}; sleep 60"
    )
    width, height = size
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command],
        check=True,
    )


def _wait_done(done: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.exists(), "syscap top did not exit"


def _app_user() -> set[str]:
    out = subprocess.run(["ps", "-eo", "user:20,args"], capture_output=True, text=True).stdout
    return {ln.split()[0] for ln in out.splitlines() if "-m tui top" in ln and "runuser" not in ln}


def _calls(syscalls: object) -> int:
    """report --json gives a process's syscalls as a count or as name -> stats."""
    if isinstance(syscalls, int):
        return syscalls
    if isinstance(syscalls, dict):
        return sum(int(v["count"]) if isinstance(v, dict) else int(v) for v in syscalls.values())
    return 0


def test_without_privileges_it_says_what_is_missing_and_offers_replay(
    session: str, shared_dir: Path
) -> None:
    done = shared_dir / "done"
    _start_as_nobody(session, ["--backend", "bpf"], done)
    screen = wait_for(session, "Live capture is not available")
    assert _app_user() == {"nobody"}
    assert "replay" in screen.lower()
    assert "syscap info" in screen
    reason = screen.split("Live capture is not available", 1)[1].strip().splitlines()[0]
    assert reason.strip(), "the reason line is empty"
    subprocess.run(["tmux", "send-keys", "-t", session, "F10"], check=True)
    _wait_done(done)
    assert "Traceback" not in pane(session)


def test_recorded_trace_replays_as_nobody_in_16_colours(session: str, shared_dir: Path) -> None:
    syscap = Path(sys.executable).parent / "syscap"
    if not syscap.exists():
        pytest.skip("the syscap command is not installed in the venv")
    trace = shared_dir / "rec.trace"
    rec = subprocess.run(
        [str(syscap), "record", "-o", str(trace), "--", str(SYSTEM_PYTHON), "-c", RECORDER],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if rec.returncode != 0:
        pytest.skip(f"cannot record here: {rec.stderr.strip()[-300:]}")
    trace.chmod(0o644)

    report = subprocess.run(
        [str(syscap), "report", "--json", str(trace)], capture_output=True, text=True, check=True
    )
    busiest = max(json.loads(report.stdout)["processes"], key=lambda p: _calls(p["syscalls"]))

    done = shared_dir / "done"
    # 80 columns: the header still has room for the state next to this kernel's release.
    _start_as_nobody(session, ["--replay", str(trace), "--low-color"], done, size=(80, 24))
    screen = wait_for(session, "getppid")  # the recorder's own loop
    assert _app_user() == {"nobody"}
    assert "REPLAY" in screen.splitlines()[0] and "rec.trace" in screen
    row = next(ln for ln in screen.splitlines() if re.match(rf"\s*{busiest['pid']}\s", ln))
    assert busiest["comm"][:8] in row and "getppid" in row, row

    coloured = pane(session, escapes=True)
    assert "\x1b[" in coloured
    assert not re.search(r"\x1b\[[0-9;]*[34]8;[25];", coloured), "more than 16 colours used"

    subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
    _wait_done(done)
    assert _app_user() == set()

"""What a tmux session shows, for tests that run `syscap top` in a real terminal."""

from __future__ import annotations

import subprocess
import time


def pane(session: str, escapes: bool = False) -> str:
    """The session's screen as text (with escapes: its colours as escape sequences)."""
    cmd = ["tmux", "capture-pane", "-p", "-t", session] + (["-e"] if escapes else [])
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def wait_for(session: str, text: str, timeout: float = 30) -> str:
    """The screen once it shows text (polled, at most timeout seconds); a
    traceback on the screen fails at once."""
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

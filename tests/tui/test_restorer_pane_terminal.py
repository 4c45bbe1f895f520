"""The restorer pane in a real terminal (tmux), on a restored core of the demo program
(tests/tui/restorer_demo.py): a breakpoint on a function set from the code view, continue
stops there; three reverse-steps give back every register of three steps before; a register
edited before continuing changes the program's output as predicted.

Addresses come from the program's symbols (nm); registers are read off the screen. Keys
go through tmux as a user types them. Needs root, tmux, gcc (static glibc).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tui.restorer_demo import build_program, symbol_address, trap_core
from tui.restorer_session import REG_ORDER

ROOT = Path(__file__).resolve().parents[2]
# A tmux server of our own: another one on the machine may hold other size settings.
TMUX = ["tmux", "-L", f"syscap-pane-test-{os.getpid()}"]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("tmux") is None, reason="needs root and tmux"
)


@pytest.fixture(scope="module")
def program() -> Iterator[Path]:
    path = build_program()
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture
def session(program: Path) -> Iterator[str]:
    """The pane open on a fresh trap core, in a 120x40 tmux session."""
    core = trap_core(program)
    name = "pane"
    # COLUMNS and LINES, if tmux hands them down, would win over the real size.
    cmd = (f"cd {ROOT} && exec env -u COLUMNS -u LINES {sys.executable} "
           f"-m tests.tui.restorer_pane_app {core}")  # fmt: skip
    subprocess.run([*TMUX, "new-session", "-d", "-s", name, "-x", "120", "-y", "40", cmd],
                   check=True)  # fmt: skip
    try:
        wait_for(name, "core dumped by SIGTRAP")
        yield name
    finally:
        subprocess.run([*TMUX, "kill-server"], capture_output=True)
        left = processes_of(program.parent)
        for pid in left:
            os.kill(pid, 9)
        shutil.rmtree(core.parent, ignore_errors=True)
    assert not left, f"processes left running: {left}"


def processes_of(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "exe").startswith(str(directory)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def screen(session: str) -> str:
    return subprocess.run(
        [*TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def wait_for(
    session: str, pattern: str, regs: dict[str, int] | None = None, timeout: float = 30
) -> str:
    """The screen once a line matches `pattern` (and, with `regs`, the registers panel
    shows exactly those). A capture can catch the terminal between the status line and
    the panels of one update, so the whole condition is waited for."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = screen(session)
        assert "Traceback" not in text, text
        if re.search(pattern, text) and (regs is None or shown_registers(text) == regs):
            return text
        time.sleep(0.05)
    if regs is not None and re.search(pattern, text):
        assert shown_registers(text) == regs, f"other registers than expected:\n{text}"
    raise AssertionError(f"{pattern!r} never shown:\n{text}")


def wait_for_end(session: str, timeout: float = 30) -> None:
    """Until the program in the tmux session has exited (and the session with it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run([*TMUX, "has-session", "-t", session], capture_output=True).returncode:
            return
        time.sleep(0.05)
    raise AssertionError("syscap top did not exit on q")


def keys(session: str, *typed: str) -> None:
    subprocess.run([*TMUX, "send-keys", "-t", session, *typed], check=True)


def settled(session: str, pattern: str, timeout: float = 30) -> dict[str, int]:
    """The registers once the status matches `pattern`, the PC in the status is the one in
    the registers panel, and the screen has not changed over three captures."""
    deadline = time.monotonic() + timeout
    last: list[str] = []
    text = ""
    while time.monotonic() < deadline:
        text = screen(session)
        assert "Traceback" not in text, text
        m = re.search(pattern, text)
        pc = re.search(r" at (0x[0-9a-f]+)", text.splitlines()[0]) if m else None
        regs = shown_registers(text)
        last = [*last[-2:], text]
        if pc and regs.get("rip") == int(pc.group(1), 16) and last.count(text) == 3:
            return registers(text)
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} never settled:\n{text}")


def shown_registers(text: str) -> dict[str, int]:
    """The registers the registers panel shows (name, 16 hex digits)."""
    found = {}
    for line in text.splitlines():
        for name, value in re.findall(r"\b([a-z][a-z0-9_]*) +([0-9a-f]{16})\b", line):
            if name in REG_ORDER:
                found[name] = int(value, 16)
    return found


def registers(text: str) -> dict[str, int]:
    """Every register, from the screen."""
    found = shown_registers(text)
    assert set(found) == set(REG_ORDER), f"registers missing from the screen:\n{text}"
    return found


def test_breakpoint_reverse_steps_and_an_edited_register(program: Path, session: str) -> None:
    work = symbol_address(program, "work")

    keys(session, "g")
    wait_for(session, "show the code of")  # the prompt has the keys from here
    keys(session, "work", "Enter")
    wait_for(session, rf"code at {work:#x} <work>")
    keys(session, "Space")  # the cursor is on the first line of the code gone to
    text = wait_for(session, rf"breakpoint set at {work:#x}")
    assert f"{work:#x} <work>" in text  # listed in the breakpoints panel

    keys(session, "c")
    stop = rf"breakpoint \(stopped by SIGTRAP\) at {work:#x}"
    seen = [settled(session, stop)]
    assert seen[0]["rip"] == work
    for n in (1, 2, 3):
        keys(session, "s")
        seen.append(settled(session, rf"step {n} +step \(stopped by SIGTRAP\) at 0x"))
        assert seen[n]["rip"] != seen[n - 1]["rip"]
    assert seen[3]["rip"] != work

    for back in (2, 1, 0):
        keys(session, "S")  # every register as it was `back` steps after the breakpoint
        wait_for(session, rf"reverse-step to {seen[back]['rip']:#x}", seen[back])

    # At work's entry rdi is its n: work(30) instead of work(20) makes the program print
    # 135 + 3 * (0 + 1 + ... + 29) = 1440 instead of 705.
    keys(session, "r")
    wait_for(session, "register and value")
    keys(session, "rdi 30", "Enter")
    wait_for(session, "rdi = 0x1e")
    keys(session, "c")
    wait_for(session, "process exited with status 7")
    text = wait_for(session, r"after: \d+")  # the output panel may be drawn a moment later
    assert "after: 1440" in text and "after: 705" not in text, text

    keys(session, "q")  # quitting leaves nothing running (checked by the fixture)
    wait_for_end(session)

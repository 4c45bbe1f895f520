"""`syscap top --readonly` blocks every action that changes the system, and says so.

Blocked: sending signals (k/F9) and the coredump restorer (c/F8: taking a core stops the
process briefly and writes a file; restoring a core starts its program). Filters stay.
A real process sits under the cursor; after each blocked key it must be alive, not
stopped or traced, and no core may have been written.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from tests.tui.synthetic import SyntheticSource
from tests.tui.top_fakes import drive, make_app, one_process
from tui.app import SyscapTop
from tui.restorer_pane import RestorerPane, TakeCoreScreen
from tui.screens import FilterScreen, HelpScreen, KillScreen


@pytest.fixture
def target() -> Iterator[subprocess.Popen[bytes]]:
    """A live process to aim at: blocked in read() on a pipe the test holds."""
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    yield proc
    proc.kill()
    proc.wait()


def status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The restorer pane makes its core directory with tempfile: here, in a
    directory of this test, so other syscap runs on the machine cannot touch it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def restorer_dirs() -> set[Path]:
    """Where the restorer pane puts the cores it takes."""
    return set(Path(tempfile.gettempdir()).glob("syscap-restorer-*"))


def toasts(app: SyscapTop) -> str:
    return "\n".join(str(t.render()) for t in app.screen.query("Toast"))


def run(app: SyscapTop, target: subprocess.Popen[bytes], keys: tuple[str, ...]) -> str:
    snap = one_process(target.pid, "cat")
    shown = ""

    async def main() -> None:
        nonlocal shown
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            app.apply_snapshot(snap)
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
                assert not isinstance(app.screen, (TakeCoreScreen, RestorerPane, KillScreen))
            shown = toasts(app)

    asyncio.run(main())
    return shown


@pytest.mark.parametrize(
    ("keys", "what"),
    [
        (("c",), "taking a core"),
        (("f8",), "taking a core"),
        (("k",), "sending signals"),
        (("f9",), "sending signals"),
    ],
)
def test_blocked_key_changes_nothing_and_says_why(
    target: subprocess.Popen[bytes], keys: tuple[str, ...], what: str
) -> None:
    before = restorer_dirs()
    sent: list[tuple[int, int]] = []
    app = make_app(
        SyntheticSource(n=5), readonly=True, send_signal=lambda p, s: sent.append((p, s))
    )

    shown = run(app, target, keys)

    assert "read-only mode (--readonly)" in shown and what in shown, shown
    assert target.poll() is None
    st = status(target.pid)
    assert st["State"][0] == "S", st["State"]  # asleep in read(), not stopped
    assert st["TracerPid"] == "0"
    assert sent == []
    assert restorer_dirs() == before  # no core taken, nothing written


def test_without_readonly_the_same_keys_act(target: subprocess.Popen[bytes]) -> None:
    app = make_app(SyntheticSource(n=5))
    snap = one_process(target.pid, "cat")

    async def script(pilot: Pilot[None]) -> None:
        app.apply_snapshot(snap)
        await pilot.pause()
        await pilot.press("c")
        assert isinstance(app.screen, TakeCoreScreen) and app.screen.pid == target.pid
        await pilot.press("escape")
        await pilot.press("k")
        assert isinstance(app.screen, KillScreen)
        await pilot.press("escape")

    drive(app, script)


def test_filters_stay_on_in_readonly_mode(target: subprocess.Popen[bytes]) -> None:
    app = make_app(SyntheticSource(n=5), readonly=True)

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("f4")
        assert isinstance(app.screen, FilterScreen)

    drive(app, script)


def test_help_says_what_readonly_blocks() -> None:
    app = make_app(SyntheticSource(n=5), readonly=True)

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        note = str(app.screen.query_one("#help-readonly", Static).render())
        assert "--readonly" in note
        assert "sending signals" in note and "taking a core" in note
        assert "Filters stay" in note

    drive(app, script)

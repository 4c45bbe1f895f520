"""top remembers its view, sorts, stable order and keys between runs
($XDG_CONFIG_HOME/syscap/top.json); --no-config neither reads nor writes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.tui.synthetic import SyntheticSource
from tests.tui.top_fakes import drive, feed, make_app, top_args
from tui import cli, settings
from tui.app import SyscapTop
from tui.settings import TopSettings

TRACE = Path(__file__).parents[1] / "capture_lib" / "c" / "corpus" / "trace" / "true.trace"


def run(app: SyscapTop, keys: tuple[str, ...] = ()) -> None:
    async def script(pilot: Pilot[None]) -> None:
        if app.source is not None:
            feed(app, app.source)  # type: ignore[arg-type]
        for key in keys:
            await pilot.press(key)
        await pilot.pause()

    drive(app, script)


def test_view_and_sorts_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "top.json"
    first = make_app(SyntheticSource(n=40), settings_file=path)
    # processes by PID, inverted; then the syscalls view sorted by errors
    run(first, ("N", "I", "v", "E"))
    remembered = settings.load(path)
    assert remembered.view == "syscalls"
    pid_desc = first.model.processes.column("pid").descending
    assert remembered.sorts["processes"] == ("pid", not pid_desc)

    second = make_app(SyntheticSource(n=40), settings=remembered, settings_file=path)
    shown: list[tuple[str, str, bool]] = []

    async def look(pilot: Pilot[None]) -> None:
        v = second.model.view
        shown.append((v.kind, v.sort_key, v.sort_descending))
        await pilot.press("v")
        v = second.model.view
        shown.append((v.kind, v.sort_key, v.sort_descending))

    drive(second, look)
    assert shown[0][1:] == (first.model.syscalls.sort_key, first.model.syscalls.sort_descending)
    assert shown[0][1] == "errors"
    assert shown[1][1:] == remembered.sorts["processes"]


def test_a_broken_settings_file_leaves_the_defaults() -> None:
    for text in ("{", "[]", '{"version": 9, "view": "syscalls"}',
                 '{"version": 1, "view": "nonsense", "sorts": {"processes": {"key": 1}}}'):
        assert TopSettings.from_json(text) == TopSettings()


def test_remembered_keys_remap_bindings_and_the_environment_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    settings.save(settings.settings_path(), TopSettings(keys={"quit": "x", "help": "j"}))
    args = top_args(["top", "--replay", str(TRACE)])  # every option top has
    env = {"SYSCAP_TOP_KEYS": "help=k"}
    for no_config, keymap in ((False, {"quit": "x", "help": "k"}), (True, {"help": "k"})):
        args.no_config = no_config
        prepared = cli.prepare(args, env)
        assert not isinstance(prepared, int)
        source, options = prepared
        assert source is not None
        source.close()
        assert options.keymap == keymap
        assert (options.settings_file is None) == no_config

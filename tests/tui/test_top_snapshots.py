"""SVG snapshots of syscap top at a narrow (80x24) and a wide (120x40) terminal.

Deterministic: the synthetic source advances a virtual clock one interval per
snapshot, the host, kernel and syscap's own CPU use are fixed, the fetch thread is
off, and the UI shows no wall-clock time. Update with `pytest --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from textual.pilot import Pilot

from tests.tui.synthetic import SyntheticSource
from tests.tui.top_fakes import FakeReplay, feed, make_app
from tui.app import SyscapTop

SnapCompare = Callable[..., bool]


def _app(ticks: int = 8, **options: object) -> tuple[SyscapTop, Callable[[Pilot[None]], None]]:
    source = SyntheticSource(n=60)
    app = make_app(source, **options)

    def before(pilot: Pilot[None]) -> None:
        feed(app, source, ticks)

    return app, before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_main_view(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    app, before = _app()
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("drill_process", ["down", "enter"]),
        ("syscalls_view", ["v"]),
        ("filter_dialog", ["f4", "space", "down", "space"]),
        ("help", ["question_mark"]),
        ("paused_sorted_by_pid", ["p", "N"]),
    ],
)
def test_screens_80x24(snap_compare: SnapCompare, name: str, keys: Iterable[str]) -> None:
    app, before = _app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=before, press=list(keys))


def test_low_color_replay_120x40(snap_compare: SnapCompare) -> None:
    replay = FakeReplay(n=20)
    app = make_app(replay, low_color=True, replay_path="/var/tmp/nginx-load.trace")

    def before(pilot: Pilot[None]) -> None:
        feed(app, replay, 8)

    assert snap_compare(app, terminal_size=(120, 40), run_before=before)

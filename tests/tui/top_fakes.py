"""Helpers for syscap top tests: a replay-like fake, an app with the fetch thread off, and
top's command line parsed."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

from textual.pilot import Pilot

from capture_lib.cli import build_parser
from capture_lib.snapshot import ProcessStats, Snapshot
from tests.tui.synthetic import TABLE, SyntheticSource, synthetic_user
from tui.app import SyscapTop, TopOptions
from tui.panels import HostInfo

Script = Callable[[Pilot[None]], Awaitable[None]]


def top_args(argv: list[str]) -> argparse.Namespace:
    """argv (["top", OPTIONS...]) parsed by syscap's own parser, as `syscap` parses it."""
    return build_parser("top").parse_args(argv)


def drive(app: SyscapTop, script: Script, size: tuple[int, int] = (120, 40)) -> None:
    """Run the app headless at `size` and hand its pilot to script once it has started."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await script(pilot)

    asyncio.run(main())


def one_process(pid: int, comm: str) -> Snapshot:
    """A one-second snapshot in which only process pid (named comm) made syscalls."""
    proc = ProcessStats(pid, comm, 10, 0, 1000, 100, 100, ())
    return Snapshot(0, 10**9, (proc,), (), (), 10, 0)


class FakeReplay(SyntheticSource):
    """SyntheticSource with the replay controls of capture_lib.replay.ReplaySource."""

    def __init__(self, n: int = 12) -> None:
        super().__init__(n=n, backend="replay")
        self.speed = 1.0
        self.paused = False
        self.at_end = False
        self.steps = 0
        self.info = SimpleNamespace(kernel="6.1.0-recorded-arm64")  # as TraceInfo

    def step(self) -> Snapshot:
        self.steps += 1
        return self.snapshot()


class FakeLive(SyntheticSource):
    """SyntheticSource with LiveSource's durations switch (off, sampled, all)."""

    def __init__(self, n: int = 12, offered: tuple[str, ...] = ("off", "sampled", "all")) -> None:
        super().__init__(n=n)
        self.offered = offered
        self.durations = "off"
        self.sample_period = 0
        self.switches: list[str] = []

    def set_durations(self, durations: str) -> None:
        self.switches.append(durations)
        self.durations = durations
        self.sample_period = 64 if durations == "sampled" else 0


def make_app(source: SyntheticSource | None, **overrides: object) -> SyscapTop:
    options = TopOptions(
        threaded=False,
        host=HostInfo("testhost", "6.1.0-test-amd64"),
        syscall_table=TABLE,
        user_of=synthetic_user,
        cpu_meter=lambda: 1.5,
    )
    for key, value in overrides.items():
        setattr(options, key, value)
    return SyscapTop(source, options)


def feed(app: SyscapTop, source: SyntheticSource, ticks: int = 3) -> None:
    for _ in range(ticks):
        app.apply_snapshot(source.snapshot())

"""The parts under the UI: formatting, filters, ordering, the fetch thread, the CLI, and
LiveTable's repaint-only-what-changed promise."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from textual.content import Content
from textual.pilot import Pilot

from capture_lib.filter_spec import FilterSpec
from capture_lib.snapshot import Filter, Snapshot
from tests.conftest import ROOT
from tests.tui.synthetic import TABLE, SyntheticSource, group_numbers
from tests.tui.top_fakes import drive, feed, make_app, top_args
from tui import format as fmt
from tui.filters import parse_pids, parse_syscalls
from tui.panels import HostInfo, header_markup
from tui.refresh import SnapshotFetcher
from tui.table import LiveTable
from tui.views import ProcessesView, Row, View, order_rows


def test_rates_and_latencies_fit_their_columns() -> None:
    assert fmt.rate(0) == "0"
    assert fmt.rate(2.54) == "2.5"
    assert fmt.rate(1234.4) == "1234"
    assert fmt.rate(123_456) == "123.5k"
    assert fmt.rate(12_345_678) == "12.3M"
    assert fmt.latency(850) == "850ns"
    assert fmt.latency(12_345) == "12.3µs"
    assert fmt.latency(4_500_000) == "4.5ms"
    assert fmt.latency(0) == "-"
    assert fmt.errno_name(2) == "ENOENT"
    assert fmt.sparkline([0, 5, 10], 4) == " ▁▄█"
    assert fmt.gauge(0.5, 4) == "██  "


def test_filter_choice_turns_groups_and_names_into_numbers() -> None:
    choice = FilterSpec(groups=frozenset({"memory"}), syscalls=frozenset({"openat"}))
    flt = choice.to_filter(TABLE)
    assert flt.syscalls == group_numbers("memory") | {257}
    assert FilterSpec().to_filter(TABLE) == Filter()
    with pytest.raises(ValueError, match="opneat"):
        FilterSpec(syscalls=frozenset({"opneat"})).to_filter(TABLE)
    assert FilterSpec(failed_only=True, exclude_comms=frozenset({"x"})).describe() == (
        "not comm x; failed only"
    )


def test_parsers_split_groups_names_and_pids() -> None:
    assert parse_syscalls(["file", "%network", "openat"]) == (
        frozenset({"file", "network"}),
        frozenset({"openat"}),
    )
    assert parse_pids("12, 34 56") == frozenset({12, 34, 56})
    with pytest.raises(ValueError, match="abc"):
        parse_pids("12 abc")


def _rows() -> tuple[ProcessesView, list[Row]]:
    view = ProcessesView()
    view.observe(SyntheticSource(n=6).snapshot())
    return view, view.rows()


def test_order_rows_sorts_searches_and_keeps_stable_order() -> None:
    view, rows = _rows()
    ordered = order_rows(view, rows, None, "")
    assert [r.values[3] for r in ordered] == sorted((r.values[3] for r in rows), reverse=True)
    view.set_sort("pid")
    assert view.sort_descending is False
    previous = [r.key for r in reversed(order_rows(view, rows, None, ""))]
    stable = order_rows(view, rows[1:], previous, "")  # one row gone
    assert [r.key for r in stable] == [k for k in previous if k != rows[0].key]
    assert {r.values[2] for r in order_rows(view, rows, None, "NGINX")} == {"nginx"}


def test_idle_process_lingers_at_zero_then_goes() -> None:
    src = SyntheticSource(n=3)
    view = ProcessesView()
    view.observe(src.snapshot())
    assert len(view.rows()) == 3
    src.set_filter(Filter(exclude_pids=frozenset({1000})))
    view.observe(src.snapshot())
    idle = next(r for r in view.rows() if r.key == 1000)
    assert idle.faded and idle.values[3] == 0.0
    for _ in range(6):
        view.observe(src.snapshot())
    assert 1000 not in {r.key for r in view.rows()}


class _SlowSource(SyntheticSource):
    def __init__(self) -> None:
        super().__init__(n=2)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def snapshot(self) -> Snapshot:
        self.calls += 1
        self.entered.set()
        self.release.wait(5)
        return super().snapshot()


def test_fetcher_keeps_one_fetch_in_flight_and_serialises_set_filter() -> None:
    src = _SlowSource()
    got: list[Snapshot] = []
    done = threading.Event()

    def on_snapshot(snap: Snapshot) -> None:
        got.append(snap)
        done.set()

    fetcher = SnapshotFetcher(src, on_snapshot, lambda exc: None)
    fetcher.start()
    try:
        assert fetcher.request() is True
        assert src.entered.wait(5)
        assert fetcher.request() is False  # one in flight: dropped, not queued
        fetcher.set_filter(Filter(failed_only=True))
        assert src.filters == []  # applied on the fetch thread, after the current fetch
        src.release.set()
        assert done.wait(5)
        deadline = threading.Event()
        for _ in range(50):
            if src.filters:
                break
            deadline.wait(0.02)
        assert src.filters == [Filter(failed_only=True)]
        assert src.calls == 1 and len(got) == 1
    finally:
        fetcher.stop()


def test_fetcher_reports_backend_errors() -> None:
    src = SyntheticSource(n=1)
    src.fail_with = RuntimeError("kaputt")
    errors: list[BaseException] = []
    seen = threading.Event()

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        seen.set()

    fetcher = SnapshotFetcher(src, lambda s: None, on_error)
    fetcher.start()
    try:
        fetcher.request()
        assert seen.wait(5)
        assert str(errors[0]) == "kaputt"
    finally:
        fetcher.stop()


def test_cli_accepts_the_documented_options() -> None:
    args = top_args(
        ["top", "--backend", "bpf", "-p", "1", "-p", "22", "--comm", "nginx", "-e",
         "file,openat", "-d", "0.5", "--no-mouse", "--low-color", "--readonly"]
    )  # fmt: skip
    assert args.backend == "bpf" and args.pids == [1, 22] and args.comms == ["nginx"]
    assert args.syscalls == "file,openat" and args.delay == 0.5
    assert args.no_mouse and args.low_color and args.readonly
    assert top_args(["top", "--replay", "x.trace"]).replay == "x.trace"
    assert callable(args.func)


def test_cli_rejects_a_bad_delay_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = top_args(["top", "-d", "0"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-d" in err


def top_in_a_terminal(*argv: str) -> subprocess.CompletedProcess[str]:
    """`syscap top ARGV` run with a terminal (a pty nobody reads) as stdin and stdout,
    as a person runs it; stderr kept."""
    master, slave = pty.openpty()
    try:
        return subprocess.run([sys.executable, "-m", "capture_lib.cli", "top", "--no-config",
                               *argv], stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT, timeout=60)  # fmt: skip
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.parametrize("kind", ["missing", "not a trace", "a directory"])
def test_a_trace_top_cannot_replay_is_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "t.trace"
    if kind == "not a trace":
        path.write_text("hello\n")
    elif kind == "a directory":
        path.mkdir()
    p = top_in_a_terminal("--replay", str(path))
    assert p.returncode == 1, p.stderr
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert p.stderr.startswith(f"syscap top: cannot replay {path}: "), p.stderr
    assert "syscap record" in p.stderr  # how to get a trace


@pytest.mark.skipif(os.path.exists("/dev/syscap"), reason="the module is loaded here")
def test_a_backend_that_cannot_start_is_the_apps_one_line() -> None:
    """Through the real open_source: the app starts and shows why (no exit)."""
    from tui.cli import prepare

    prepared = prepare(top_args(["top", "--no-config", "--backend", "kmod"]), {})
    assert not isinstance(prepared, int)
    source, options = prepared
    assert source is None
    assert options.startup_error is not None
    assert options.startup_error.startswith("/dev/syscap does not exist: load the module")
    assert "\n" not in options.startup_error


def test_the_record_size_is_unknown_where_capture_is_not_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from capture_lib import native
    from tui.cli import _record_size

    assert _record_size() == native.require()[1].SYSCAP_REC_SIZE + 8
    monkeypatch.setattr(native, "lib", None)  # as where the extension failed to import
    assert _record_size() is None


@pytest.mark.parametrize(("where", "argv"), [
    ("tui.cli.open_remote", ["--remote", "x"]),
    ("tui.cli.check_comms", ["--comm", "nginx"]),
    ("tui.cli.open_replay", ["--replay", "t.trace"]),
    ("capture_lib.live.open_source", ["--backend", "bpf"]),
])  # fmt: skip
def test_a_bug_while_top_starts_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch, where: str, argv: list[str]
) -> None:
    """Only SyscapError's are the user's: anything else is not turned into a line."""
    from tui.cli import prepare

    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(where, bug)
    with pytest.raises(KeyError):
        prepare(top_args(["top", "--no-config", *argv]), {})


def test_table_repaints_only_the_line_that_changed() -> None:
    source = SyntheticSource(n=2000, only_one_changes=True)
    app = make_app(source)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            feed(app, source, 10)  # fill the trend history so other rows stop changing
            await pilot.pause()
            table = app.query_one("#table", LiveTable)
            assert len(table.rows) == 2000
            before = table.lines_refreshed
            feed(app, source, 1)
            await pilot.pause()
            assert table.lines_refreshed - before == 1
            first = table.rows[0]
            assert first.key == 1000  # the one process whose load changes
            feed(app, source, 1)
            await pilot.pause()
            assert table.lines_refreshed - before == 2

    asyncio.run(main())


def test_table_redraws_cursor_lines_only_when_cursor_moves() -> None:
    source = SyntheticSource(n=50, only_one_changes=True)
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source, 10)
        await pilot.pause()
        table = app.query_one("#table", LiveTable)
        before = table.lines_refreshed
        await pilot.press("down")
        assert table.lines_refreshed - before == 2  # old and new cursor line

    drive(app, script, size=(100, 30))


def test_cli_without_live_capture_starts_the_app_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import capture_lib.live
    from capture_lib.errors import CaptureError
    from tui.cli import prepare

    def refuse(backend: str = "auto", flt: Filter | None = None, durations: str = "all",
               sample_budget: float = 1.0) -> None:
        raise CaptureError("the eBPF backend needs CAP_BPF and CAP_PERFMON: run as root")

    monkeypatch.setattr(capture_lib.live, "open_source", refuse)
    env = {"SSH_CONNECTION": "10.0.0.1 5555 10.0.0.2 22"}
    prepared = prepare(top_args(["top", "--readonly", "-M", "-d", "2", "-p", "7"]), env)
    assert not isinstance(prepared, int)
    source, options = prepared
    assert source is None
    assert options.startup_error is not None and "CAP_BPF" in options.startup_error
    assert options.animations is False  # over SSH
    assert options.readonly and not options.mouse and options.interval_s == 2
    assert options.initial_filter.pids == frozenset({7})
    assert options.open_replay is not None


def test_cli_low_color_selects_16_colours_before_textual_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tui.cli
    from tests.tui.top_fakes import FakeReplay

    replay = FakeReplay()
    monkeypatch.setattr(tui.cli, "open_replay", lambda path: replay)
    env: dict[str, str] = {}
    prepared = tui.cli.prepare(
        top_args(["top", "--replay", "t.trace", "--low-color", "--comm", "nginx"]), env
    )
    assert replay.filters == [Filter(comms=frozenset({"nginx"}))]  # -p/--comm/-e apply too
    assert not isinstance(prepared, int)
    source, options = prepared
    assert env["TEXTUAL_COLOR_SYSTEM"] == "standard"
    assert options.low_color and options.animations
    assert source is not None and source.backend == "replay"
    assert options.user_of(1234) == "-"  # recorded pids are not looked up here


def test_cli_rejects_unknown_syscall(capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli import prepare

    assert prepare(top_args(["top", "-e", "opneat"]), {}) == 2
    assert "opneat" in capsys.readouterr().err


def test_syscall_numbers_are_accepted_in_filters() -> None:
    assert FilterSpec(syscalls=frozenset({"257"})).to_filter(TABLE).syscalls == {257}


def test_no_animations_when_asked() -> None:
    assert make_app(SyntheticSource(n=1), animations=False).animation_level == "none"
    assert make_app(SyntheticSource(n=1)).animation_level != "none"


def test_many_cpus_fit_one_line_at_80_columns() -> None:
    from capture_lib.snapshot import RingStats
    from tui.panels import rings_markup

    rings = tuple(RingStats(c, 1000, 10 * c, 0, 0, 0) for c in range(64))
    snap = Snapshot(0, 10**9, (), (), rings, events=5, drops=0)
    text, dropping = rings_markup(snap, 80)
    first = Content.from_markup(text).plain.splitlines()[0]
    assert len(first) <= 80 and "cpu0-63" in first and "max 63% cpu63" in first
    assert not dropping


def test_cli_needs_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    args = top_args(["top", "--replay", "missing.trace"])
    assert args.func(args) == 2  # pytest's stdin and stdout are not terminals
    assert "needs a terminal" in capsys.readouterr().err


def test_consumer_lag_is_also_given_as_time() -> None:
    from capture_lib.snapshot import RingStats
    from tui.panels import rings_markup

    rings = (RingStats(0, 1 << 20, 96 * 960, 0, 0, 0),)  # 960 records unread
    snap = Snapshot(0, 10**9, (), (), rings, events=96_000, drops=0)  # 96 000 records/s
    text, _ = rings_markup(snap, 100, record_size=96)
    assert "lag 90 KiB unread ≈ 10.0ms" in Content.from_markup(text).plain


def test_keymap_from_environment() -> None:
    from tui.cli import parse_keymap

    assert parse_keymap("quit=ctrl+x; filter=f5,x;;bad") == {"quit": "ctrl+x", "filter": "f5,x"}
    assert parse_keymap("") == {}


def test_keys_can_be_remapped_by_binding_id() -> None:
    from tui.screens import HelpScreen

    app = make_app(SyntheticSource(n=3), keymap={"help": "f12"})

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("question_mark")
            assert not isinstance(app.screen, HelpScreen)  # the old keys are replaced
            await pilot.press("f12")
            assert isinstance(app.screen, HelpScreen)

    asyncio.run(main())


def test_cost_line_says_when_the_hook_cost_is_unknown() -> None:
    from tui.panels import cost_markup

    snap = SyntheticSource(n=2).snapshot()
    assert "not measurable" in cost_markup(1.0, 0.0, snap)
    assert "n/a (replay)" in cost_markup(1.0, 130.0, snap, replay=True)
    assert "hooks: n/a" in cost_markup(1.0, None, snap)
    assert "hooks ≈" in cost_markup(1.0, 130.0, snap)


def test_drilled_process_that_goes_quiet_says_so() -> None:
    from tui.views import ProcessSyscallsView

    src = SyntheticSource(n=3)
    view = ProcessSyscallsView(1007, "postgres")
    view.observe(src.snapshot())
    assert view.rows() and "syscalls" in view.totals(view.rows(), len(view.rows()))
    src.set_filter(Filter(exclude_pids=frozenset({1007})))
    view.observe(src.snapshot())
    assert view.rows() == []
    assert "1007 made no syscalls" in view.totals([], 0)


def test_cli_rejects_a_comm_the_kernel_cannot_hold(capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli import prepare

    assert prepare(top_args(["top", "--comm", "a-very-long-command-name"]), {}) == 2
    assert "1 to 15 bytes" in capsys.readouterr().err


def test_cli_failed_and_long_syscalls_option(monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.cli
    from tests.tui.top_fakes import FakeReplay

    replay = FakeReplay()
    monkeypatch.setattr(tui.cli, "open_replay", lambda path: replay)
    argv = ["top", "--replay", "t", "--failed", "--syscalls", "openat"]
    prepared = tui.cli.prepare(top_args(argv), {})
    assert not isinstance(prepared, int)
    from capture_lib import syscalls

    openat = syscalls.number("openat")  # this machine's number
    assert replay.filters == [Filter(syscalls=frozenset({openat}), failed_only=True)]
    assert prepared[1].initial_filter.failed_only


# -- the header ---------------------------------------------------------------------------

LONG_RELEASE = "6.18.44-fc-v1098-with-a-very-long-suffix"  # 40 characters


@pytest.mark.parametrize(
    "state", ["LIVE", "FAILED", "REPLAY 0.25x PAUSED", "PAUSED (table frozen)", "REPLAY END"]
)
def test_header_keeps_the_state_and_shortens_a_long_release_at_80_columns(state: str) -> None:
    assert len(LONG_RELEASE) == 40
    info = HostInfo("build-host-01", LONG_RELEASE)
    text = Content.from_markup(header_markup(info, "bpf", 1.0, state, width=78)).plain

    assert len(text) <= 78, text
    assert text.endswith(state)
    assert "Linux 6.1" in text and "…" in text


def test_header_shortens_the_release_before_the_host() -> None:
    info = HostInfo("build-host-01", LONG_RELEASE)
    text = Content.from_markup(header_markup(info, "bpf", 1.0, "LIVE", width=78)).plain
    assert text.startswith("syscap top  build-host-01  Linux 6.18.44-fc-"), text
    assert "…  backend bpf" in text and len(text) == 78, text  # all the room it has


def test_header_leaves_a_release_that_fits_alone() -> None:
    info = HostInfo("demo", "6.18.44-fc-v1098")
    text = Content.from_markup(header_markup(info, "bpf", 1.0, "LIVE", width=78)).plain
    assert "Linux 6.18.44-fc-v1098  " in text and "…" not in text


def test_header_on_screen_at_80_columns_shows_the_state() -> None:
    app = make_app(SyntheticSource(n=5), host=HostInfo("testhost", LONG_RELEASE))

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            feed(app, SyntheticSource(n=5))
            await pilot.pause()
            line = app.query_one("#header").render_line(0).text
            assert line.rstrip().endswith("LIVE"), line
            assert "…" in line

    asyncio.run(main())


def test_each_view_formats_its_cells_and_totals_from_one_snapshot() -> None:
    from capture_lib.snapshot import ProcessStats, SyscallStats
    from tui.views import SyscallProcessesView, SyscallsView

    read = SyscallStats(0, "read", 40, 4, 80_000, 1000, 5000, 11)  # last failure EAGAIN
    write = SyscallStats(1, "write", 10, 0, 10_000, 900, 1200, 0)
    procs = (
        ProcessStats(7, "nginx", 50, 4, 90_000, 1000, 5000, (read, write)),
        ProcessStats(8, "curl", 40, 4, 80_000, 1000, 5000, (read,)),
    )
    both_read = SyscallStats(0, "read", 80, 8, 160_000, 1000, 5000, 11)
    snap = Snapshot(0, 10**9, procs, (both_read, write), (), 90, 0)  # one second

    def shown(view: View, key: object) -> tuple[tuple[str, str], ...]:
        cells = view.cells(next(r for r in view.rows() if r.key == key))
        assert cells[-1][1] == "accent"  # the trend
        return cells[:-1]

    processes = ProcessesView()
    processes.observe(snap)
    assert shown(processes, 7) == (
        ("7", ""),
        ("", ""),
        ("nginx", ""),
        ("50", ""),
        ("4.0", "alarm"),
        ("read", ""),
        ("1.8µs", ""),
        ("5.0µs", ""),
    )
    assert processes.totals(processes.rows(), 1) == (
        "2 processes (1 shown)  90 syscalls/s  8.0 errors/s"
    )

    syscalls = SyscallsView()
    syscalls.observe(snap)
    assert shown(syscalls, 0) == (
        ("read", ""),
        ("0", ""),
        ("80", ""),
        ("8.0", "alarm"),
        ("2.0µs", ""),
        ("5.0µs", ""),
        ("EAGAIN", "alarm"),
    )
    assert shown(syscalls, 1)[3:] == (("0", ""), ("1.0µs", ""), ("1.2µs", ""), ("", ""))
    assert syscalls.totals(syscalls.rows(), 2) == "2 syscalls  90 calls/s  8.0 errors/s"

    callers = SyscallProcessesView(0, "read")
    callers.observe(snap)
    assert shown(callers, 8) == (
        ("8", ""),
        ("", ""),
        ("curl", ""),
        ("40", ""),
        ("4.0", "alarm"),
        ("2.0µs", ""),
        ("5.0µs", ""),
        ("EAGAIN", "alarm"),
    )
    assert callers.totals(callers.rows(), 2) == "2 processes calling read  80 calls/s"

"""syscap top driven through Textual's Pilot with a deterministic snapshot source."""

from __future__ import annotations

import io
import re
import signal
import time

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, SelectionList, Static

from capture_lib.errors import CaptureError
from capture_lib.filter_spec import FilterSpec
from capture_lib.snapshot import Filter
from tests.tui.synthetic import SYSCALLS, SyntheticSource, group_numbers
from tests.tui.top_fakes import FakeLive, FakeReplay, drive, feed, make_app
from tui.app import SyscapTop
from tui.restorer_pane import RestorerPane
from tui.screens import FilterScreen, HelpScreen, KillScreen, NoCaptureScreen
from tui.table import LiveTable
from tui.views import ProcessSyscallsView, SyscallProcessesView, SyscallsView


def plain(renderable: object) -> str:
    console = Console(width=120, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def table(app: SyscapTop) -> LiveTable:
    return app.query_one("#table", LiveTable)


def text_of(app: SyscapTop, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def column(app: SyscapTop, key: str) -> list[object]:
    idx = [c.key for c in app.model.view.columns].index(key)
    return [r.values[idx] for r in table(app).rows]


# -- sorting -----------------------------------------------------------------------------


def test_default_sort_is_syscall_rate_highest_first(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        rates = column(app, "rate")
        assert len(rates) == 40
        assert rates == sorted(rates, reverse=True)  # type: ignore[type-var]

    drive(app, script)


def test_sort_keys_pid_comm_and_invert(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("N")
        pids = column(app, "pid")
        assert pids == sorted(pids)  # type: ignore[type-var]
        await pilot.press("I")
        assert column(app, "pid") == sorted(pids, reverse=True)  # type: ignore[type-var]
        await pilot.press("C")
        comms = [str(c) for c in column(app, "comm")]
        assert comms == sorted(comms, key=str.casefold)
        await pilot.press("E")
        errors = column(app, "errors")
        assert errors == sorted(errors, reverse=True)  # type: ignore[type-var]

    drive(app, script)


def test_sort_cycles_with_greater_and_less_than(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        assert app.model.view.sort_key == "rate"
        await pilot.press("greater_than_sign")
        assert app.model.view.sort_key == "errors"
        await pilot.press("f6")
        assert app.model.view.sort_key == "top"
        await pilot.press("less_than_sign", "less_than_sign")
        assert app.model.view.sort_key == "rate"

    drive(app, script)


def test_header_click_sorts_and_second_click_reverses(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        t = table(app)
        x = next(x for x in range(t.size.width) if t.column_at(x) == "comm")
        await pilot.click("#table", offset=(x, 0))
        comms = [str(c) for c in column(app, "comm")]
        assert app.model.view.sort_key == "comm"
        assert comms == sorted(comms, key=str.casefold)
        await pilot.click("#table", offset=(x, 0))
        assert [str(c) for c in column(app, "comm")] == sorted(
            comms, key=str.casefold, reverse=True
        )

    drive(app, script)


def test_cursor_stays_on_pid_when_rows_reorder(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("down", "down", "down")
        t = table(app)
        pid = t.cursor_key
        assert pid == t.rows[3].key
        await pilot.press("N")  # re-sort: the row moves, the cursor follows it
        assert t.cursor_key == pid
        assert t.cursor_row is not None and t.cursor_row.key == pid
        assert [r.key for r in t.rows].index(pid) != 3
        feed(app, source, 2)  # new data: still on the same process
        assert t.cursor_key == pid

    drive(app, script)


def test_stable_order_keeps_rows_in_place(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("o")
        before = [r.key for r in table(app).rows]
        changed = False
        for _ in range(4):
            feed(app, source, 1)
            rates = column(app, "rate")
            changed |= rates != sorted(rates, reverse=True)  # type: ignore[type-var]
            assert [r.key for r in table(app).rows] == before
        assert changed, "the data should have moved so that stability is tested"
        await pilot.press("o")
        rates = column(app, "rate")
        assert rates == sorted(rates, reverse=True)  # type: ignore[type-var]

    drive(app, script)


# -- search --------------------------------------------------------------------------------


def test_search_narrows_rows_and_escape_clears(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"nginx")
        comms = {str(c) for c in column(app, "comm")}
        assert comms == {"nginx"}
        assert "nginx" in text_of(app, "#status")
        await pilot.press("enter")  # keep the search, back to the table
        assert isinstance(app.focused, LiveTable)
        feed(app, source, 1)
        assert {str(c) for c in column(app, "comm")} == {"nginx"}
        await pilot.press("escape")  # first Esc in the table clears the search
        assert len(table(app).rows) == 40

    drive(app, script)


# -- filters --------------------------------------------------------------------------------


def test_filter_group_toggle_reaches_set_filter(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        events_before = app.model.latest.events if app.model.latest else 0
        await pilot.press("f4")
        assert isinstance(app.screen, FilterScreen)
        await pilot.press("space")  # first group: file
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, FilterScreen)
        assert len(source.filters) == 1
        file_nrs = group_numbers("file")
        assert source.filters[-1].syscalls == file_nrs
        feed(app, source, 1)
        assert app.model.latest is not None
        assert 0 < app.model.latest.events < events_before  # the effect is visible
        assert {s.nr for s in app.model.latest.syscalls} <= file_nrs
        assert "filter: file" in text_of(app, "#status")

    drive(app, script)


def test_filter_pids_comms_and_failed_only_reach_set_filter(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("backslash")
        screen = app.screen
        assert isinstance(screen, FilterScreen)
        screen.query_one("#filter-syscalls", Input).value = "openat, read"
        screen.query_one("#filter-xpids", Input).value = "1007"
        screen.query_one("#filter-xcomms", Input).value = "sshd"
        screen.query_one("#filter-comms", Input).value = "nginx postgres"
        screen.query_one("#filter-failed", Checkbox).value = True
        await pilot.click("#apply")
        flt = source.filters[-1]
        assert flt.syscalls == frozenset({SYSCALLS["openat"], SYSCALLS["read"]})
        assert flt.exclude_pids == frozenset({1007})
        assert flt.exclude_comms == frozenset({"sshd"})
        assert flt.comms == frozenset({"nginx", "postgres"})
        assert flt.failed_only is True
        assert flt.pids == frozenset()

    drive(app, script)


def test_filter_rejects_unknown_syscall_and_keeps_dialog_open(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, FilterScreen)
        screen.query_one("#filter-syscalls", Input).value = "opneat"
        await pilot.press("ctrl+s")
        assert app.screen is screen
        assert "opneat" in str(screen.query_one("#filter-error").render())
        assert source.filters == []
        await pilot.press("escape")
        assert not isinstance(app.screen, FilterScreen)
        assert source.filters == []

    drive(app, script)


def test_filter_clear_sends_empty_filter(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("f4")
        sel: SelectionList[str] = app.screen.query_one("#filter-groups", SelectionList)
        sel.select("network")
        await pilot.press("ctrl+s")
        assert source.filters[-1].syscalls
        await pilot.press("f4")
        await pilot.click("#clear")
        assert source.filters[-1].syscalls == frozenset()
        assert "filter: none" in text_of(app, "#status")

    drive(app, script)


# -- drill-down -------------------------------------------------------------------------------


def test_enter_drills_into_process_and_backspace_returns(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("down")
        pid = table(app).cursor_key
        await pilot.press("enter")
        view = app.model.view
        assert isinstance(view, ProcessSyscallsView) and view.pid == pid
        proc = next(p for p in source.snapshot().processes if p.pid == pid)
        feed(app, source, 1)
        assert {r.values[0] for r in table(app).rows} == {s.name for s in proc.syscalls}
        assert str(pid) in text_of(app, "#status")
        await pilot.press("backspace")
        assert app.model.view is app.model.processes
        assert table(app).cursor_key == pid

    drive(app, script)


def test_syscalls_view_drills_into_processes_and_escape_returns(
    source: SyntheticSource,
) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("v")
        assert isinstance(app.model.view, SyscallsView)
        top = table(app).cursor_row
        assert top is not None
        name, nr = top.values[0], top.values[1]
        await pilot.press("enter")
        view = app.model.view
        assert isinstance(view, SyscallProcessesView) and view.nr == nr
        snap = source.snapshot()
        feed(app, source, 0)
        app.apply_snapshot(snap)
        expected = {p.pid for p in snap.processes if any(s.nr == nr for s in p.syscalls)}
        assert {r.key for r in table(app).rows} == expected
        assert name in text_of(app, "#status")
        await pilot.press("enter")  # and on into one of those processes
        assert isinstance(app.model.view, ProcessSyscallsView)
        await pilot.press("escape", "escape")
        assert isinstance(app.model.view, SyscallsView)
        await pilot.press("f2")
        assert app.model.view is app.model.processes

    drive(app, script)


# -- pause -------------------------------------------------------------------------------------


def test_pause_freezes_table_but_not_gauges(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("p")
        assert "PAUSED" in text_of(app, "#header")
        frozen = [r.values for r in table(app).rows]
        rings_before = text_of(app, "#rings")
        source.set_filter(source.flt.__class__(failed_only=True))  # a big visible change
        feed(app, source, 1)
        assert [r.values for r in table(app).rows] == frozen
        assert text_of(app, "#rings") != rings_before  # gauges stay live
        await pilot.press("space")
        assert "LIVE" in text_of(app, "#header")
        assert [r.values for r in table(app).rows] != frozen

    drive(app, script)


# -- help, other screens ------------------------------------------------------------------------


def test_help_lists_keys_and_closes(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        for key in ("question_mark", "f1", "h"):
            await pilot.press(key)
            assert isinstance(app.screen, HelpScreen)
            text = plain(app.screen.query_one("#help-text", Static).content)
            for shown in ("F4/\\ ", "F10/q ", "F9/k ", "F1/?/h ", "Stable ordering", "Drill into"):
                assert shown in text
            assert "F4/\\\\" not in text
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

    drive(app, script)


def test_every_binding_has_id_and_tooltip() -> None:
    from textual.binding import Binding
    from textual.dom import DOMNode

    from tui import screens
    from tui.app import SearchInput

    classes: list[type[DOMNode]] = [
        SyscapTop, LiveTable, SearchInput, screens.HelpScreen, screens.KillScreen,
        screens.FilterScreen, RestorerPane, screens.NoCaptureScreen,
    ]  # fmt: skip
    for cls in classes:
        for b in cls.BINDINGS:
            assert isinstance(b, Binding)
            assert b.id, f"{cls.__name__}: {b.key} has no id"
            assert b.tooltip, f"{cls.__name__}: {b.key} has no tooltip"


def test_every_f_key_has_a_letter_alias_in_its_footer_label() -> None:
    from textual.binding import Binding

    for b in SyscapTop.BINDINGS:
        assert isinstance(b, Binding)
        keys = b.key.split(",")
        if any(k.startswith("f") and k[1:].isdigit() for k in keys):
            assert len(keys) > 1, b.key
            assert b.show and b.key_display and "/" in b.key_display, b.key


def test_restorer_slot_opens_and_returns(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        await pilot.press("c")
        assert isinstance(app.screen, RestorerPane)
        assert "no core open" in str(app.screen.query_one("#rp-status").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, RestorerPane)
        await pilot.press("f8")
        assert isinstance(app.screen, RestorerPane)

    drive(app, script)


def test_kill_asks_then_sends_the_chosen_signal(source: SyntheticSource) -> None:
    sent: list[tuple[int, int]] = []
    app = make_app(source, send_signal=lambda pid, sig: sent.append((pid, sig)))

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        pid = table(app).cursor_key
        comm = next(r.values[2] for r in app.model.rows if r.key == pid)
        await pilot.press("k")
        assert isinstance(app.screen, KillScreen)
        assert (app.screen.pid, app.screen.comm) == (pid, comm)  # the row under the cursor
        assert sent == []
        await pilot.press("escape")
        assert sent == []
        await pilot.press("f9")
        await pilot.click("#sigterm")
        assert sent == [(pid, int(signal.SIGTERM))]

    drive(app, script)


def test_kill_is_off_with_readonly(source: SyntheticSource) -> None:
    sent: list[tuple[int, int]] = []
    app = make_app(source, readonly=True, send_signal=lambda pid, sig: sent.append((pid, sig)))

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, KillScreen)
        assert sent == []

    drive(app, script)


# -- terminal size ------------------------------------------------------------------------------


def test_resize_to_80x24_keeps_table_and_footer_usable(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        t = table(app)
        assert t.size.height >= 14  # header line + at least 13 processes
        titles = [t.column_at(x) for x in range(t.size.width)]
        for key in ("pid", "comm", "rate", "errors", "avg", "p99"):
            assert key in titles
        from textual.widgets._footer import FooterKey

        keys = [k for k in app.screen.query(FooterKey) if k.display]
        labels = {k.key_display for k in keys}
        assert {"F1/?", "F4/\\", "F6/>", "F9/k", "F10/q", "p"} <= labels
        for k in keys:
            assert k.region.right <= 80, f"{k.key_display} is cut off"
        line = t.render_line(1).text
        assert len(line) <= t.size.width

    drive(app, script, size=(120, 40))


# -- faults and replay ---------------------------------------------------------------------


def test_backend_failure_while_running_shows_message_not_traceback() -> None:
    source = SyntheticSource(n=5)
    app = make_app(source, threaded=True, interval_s=0.05)

    async def script(pilot: Pilot[None]) -> None:
        deadline = time.monotonic() + 5
        while app.model.latest is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert app.model.latest is not None
        source.fail_with = CaptureError("BPF ring buffer map vanished: restart syscap top")
        while app.failure is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert app.failure is not None and "ring buffer map vanished" in app.failure
        assert "capture stopped" in text_of(app, "#status")
        assert "FAILED" in text_of(app, "#header")
        assert app.is_running

    drive(app, script)
    assert source.closed


def test_without_capture_it_explains_and_offers_replay() -> None:
    opened: list[str] = []
    replay = FakeReplay()

    def open_replay(path: str) -> FakeReplay:
        if path != "good.trace":
            raise FileNotFoundError(f"no such trace: {path}")
        opened.append(path)
        return replay

    app = make_app(
        None,
        startup_error="the eBPF backend needs CAP_BPF and CAP_PERFMON (run as root)",
        open_replay=open_replay,
        initial_filter=FilterSpec(comms=frozenset({"nginx"})),
    )

    async def script(pilot: Pilot[None]) -> None:
        screen = app.screen
        assert isinstance(screen, NoCaptureScreen)
        assert "CAP_BPF" in str(screen.query_one("#nocap-reason").render())
        await pilot.press(*"bad.trace", "enter")
        assert app.screen is screen
        assert "no such trace" in str(screen.query_one("#nocap-error").render())
        screen.query_one("#nocap-path", Input).value = "good.trace"
        await pilot.press("enter")
        assert opened == ["good.trace"]
        assert not isinstance(app.screen, NoCaptureScreen)
        assert app.source is replay
        assert replay.filters == [Filter(comms=frozenset({"nginx"}))]  # the CLI's filter
        feed(app, replay, 2)
        assert {r.values[2] for r in table(app).rows} == {"nginx"}

    drive(app, script)


def test_replay_keys_control_speed_pause_and_step() -> None:
    replay = FakeReplay()
    app = make_app(replay, replay_path="/tmp/demo.trace")

    async def script(pilot: Pilot[None]) -> None:
        feed(app, replay, 2)
        assert "REPLAY 1x" in text_of(app, "#header")
        assert "demo.trace" in text_of(app, "#header")
        await pilot.press("plus")
        assert replay.speed == 2.0
        await pilot.press("minus", "minus")
        assert replay.speed == 0.5
        await pilot.press("p")
        assert replay.paused is True
        assert "PAUSED" in text_of(app, "#header")
        tick = replay.tick
        await pilot.press("full_stop")
        await pilot.pause()
        assert replay.steps == 1
        assert app.model.latest is not None
        assert app.model.latest.end_ns == (tick + 1) * replay.interval_ns  # the step is shown
        await pilot.press("k")  # the recorded processes are not on this machine
        assert not isinstance(app.screen, KillScreen)
        assert "hooks: n/a" in text_of(app, "#cost")

    drive(app, script)


class _PickySource(SyntheticSource):
    def set_filter(self, flt: Filter) -> None:
        if flt.failed_only:
            raise CaptureError("this kernel cannot filter failed calls: update to 5.8")
        super().set_filter(flt)


def test_filter_rejected_by_backend_is_reported_and_capture_goes_on() -> None:
    source = _PickySource(n=10)
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        await pilot.press("f4")
        app.screen.query_one("#filter-failed", Checkbox).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert source.filters == []
        assert app.failure is None
        assert app.filter_choice.failed_only is False
        assert "filter: none" in text_of(app, "#status")
        feed(app, source, 1)
        assert "LIVE" in text_of(app, "#header")

    drive(app, script)


def test_ring_panel_raises_the_alarm_while_dropping() -> None:
    source = SyntheticSource(n=40, ring_size=3 << 18)  # small rings: CPU 1 overflows
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source, 2)
        rings = app.query_one("#rings", Static)
        assert rings.has_class("-dropping")
        text = text_of(app, "#rings")
        assert re.search(r"drops [1-9]\d*/s", text), text
        total = app.model.latest.total_drops if app.model.latest else 0
        assert total > 0 and f"total drops {total}" in text
        assert "100%" in text  # CPU 1's gauge
        source.set_filter(Filter(syscalls=frozenset({SYSCALLS["futex"]})))
        feed(app, source, 1)  # filtering in the kernel: the ring drains, the alarm stops
        assert not rings.has_class("-dropping")
        assert "drops 0/s" in text_of(app, "#rings")

    drive(app, script)


def test_cost_of_watching_is_hook_cost_times_syscall_rate(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source, 1)
        snap = app.model.latest
        assert snap is not None
        per_s = (snap.events + snap.drops) / snap.interval_s
        percent = source.hook_cost_ns * per_s / 1e9 * 100
        cost = text_of(app, "#cost")
        assert "syscap 1.5% CPU" in cost  # the injected own-CPU meter
        assert f"hooks ≈ {percent:.1f}% CPU" in cost
        source.set_filter(Filter(comms=frozenset({"cron"})))
        feed(app, source, 1)
        assert f"hooks ≈ {percent:.1f}% CPU" not in text_of(app, "#cost")  # a filter saves

    drive(app, script)


def test_q_queued_right_after_slash_does_not_quit(source: SyntheticSource) -> None:
    """'/' then 'q' in one terminal read (fast typing, paste, tmux) must not quit."""
    from textual import events

    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        driver = app._driver
        assert driver is not None
        for key, char in (("slash", "/"), ("q", "q")):
            event = events.Key(key, char)  # queued together, as from one terminal read
            event.set_sender(app)
            driver.send_message(event)
        await pilot.pause()
        await pilot.pause()
        assert app.is_running
        assert isinstance(app.focused, Input)
        await pilot.press("n", "g")
        assert app.query_one("#search", Input).value.endswith("ng")

    drive(app, script)


def test_paging_and_clicks_move_the_cursor_and_scroll(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source)
        t = table(app)
        body = t.size.height - 1
        await pilot.press("pagedown")
        assert t.rows.index(t.cursor_row) == body - 1  # type: ignore[arg-type]
        await pilot.press("end")
        assert t.cursor_row is t.rows[-1]
        assert round(t.scroll_y) == len(t.rows) - body  # the last row is on screen
        await pilot.press("home")
        assert t.cursor_row is t.rows[0] and round(t.scroll_y) == 0
        await pilot.click("#table", offset=(3, 3))  # third data line
        assert t.cursor_row is t.rows[2]
        pid = t.cursor_key
        await pilot.click("#table", offset=(3, 3), times=2)  # double click drills in
        view = app.model.view
        assert isinstance(view, ProcessSyscallsView) and view.pid == pid

    drive(app, script, size=(100, 20))


def test_l_cycles_a_live_source_through_counts_sampled_and_all_durations() -> None:
    source = FakeLive()
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source, 1)
        assert "durations off (l)" in text_of(app, "#cost")
        await pilot.press("l")
        assert source.switches == ["sampled"]
        assert "durations sampled 1/64 (~, l)" in text_of(app, "#cost")
        await pilot.press("l")
        assert "durations all (l)" in text_of(app, "#cost")
        await pilot.press("l")
        assert source.switches == ["sampled", "all", "off"]

    drive(app, script)


def test_l_skips_what_the_backend_lacks() -> None:
    source = FakeLive(offered=("off", "all"))  # the module: no sampled mode
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source, 1)
        await pilot.press("l")
        await pilot.press("l")
        assert source.switches == ["all", "off"]

    drive(app, script)


def test_l_does_nothing_to_a_source_without_the_switch(source: SyntheticSource) -> None:
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        feed(app, source, 1)
        assert "durations" not in text_of(app, "#cost")
        await pilot.press("l")  # no error, nothing to switch

    drive(app, script)

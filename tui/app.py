"""SyscapTop: the `syscap top` application.

The refresh path, in one place:

    timer (every -d s) -> SnapshotFetcher.request()      [app thread: only signals]
    fetch thread: source.snapshot() -> post SnapshotReady [one fetch in flight]
    on_snapshot_ready -> apply_snapshot(): inside batch_update(), the model takes
    the snapshot, the panels redraw, and LiveTable repaints only changed lines.

Pause freezes the table but not the header, gauges and cost line. Tests call
`apply_snapshot` directly with the thread off (`threaded=False`).
"""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.message import Message
from textual.widgets import Footer, Input, Static

from capture_lib.errors import one_line
from capture_lib.filter_spec import FilterSpec, SyscallTable
from capture_lib.snapshot import Filter, Snapshot, SnapshotSource
from tui.model import TopModel, local_user
from tui.panels import HostInfo, cost_markup, header_markup, rings_markup
from tui.refresh import SnapshotFetcher
from tui.restorer_pane import RestorerPane, TakeCoreScreen
from tui.screens import FilterScreen, HelpScreen, KillScreen, NoCaptureScreen
from tui.settings import TopSettings
from tui.settings import save as save_settings
from tui.table import LiveTable
from tui.views import UserOf

# Sort keys (htop-like): letter -> column keys it means, first one the view has wins.
# What the `l` key says when it switches (capture_lib.live.DURATIONS).
DURATION_NOTES = {
    "off": "durations off: exact counts only, least cost",
    "sampled": "durations sampled: avg and p99 (marked ~) from a sample, counts exact",
    "all": "durations of every syscall: exact avg and p99, most cost",
}

SORT_KEYS: dict[str, tuple[str, ...]] = {
    "P": ("rate",),
    "E": ("errors",),
    "T": ("avg",),
    "L": ("p99",),
    "N": ("pid", "nr"),
    "C": ("comm", "name"),
    "U": ("user",),
}


@runtime_checkable
class DurationSwitch(Protocol):
    """What capture_lib.live.LiveSource adds: whose durations are measured,
    "off" (counts only), "sampled" or "all", among the settings it offers."""

    offered: tuple[str, ...]

    @property
    def durations(self) -> str: ...

    @property
    def sample_period(self) -> int: ...

    def set_durations(self, durations: str) -> None: ...


@runtime_checkable
class ReplayControls(Protocol):
    """What capture_lib.replay.ReplaySource adds to SnapshotSource."""

    speed: float
    paused: bool

    @property
    def at_end(self) -> bool: ...

    def step(self) -> Snapshot | None:
        """Advance one interval while paused; returns that interval's snapshot."""
        ...


@runtime_checkable
class RemoteLink(Protocol):
    """What capture_lib.remote.RemoteSource adds: a box watched through a command."""

    host: str

    @property
    def kernel(self) -> str: ...

    @property
    def lost(self) -> str | None:
        """None while connected, else 'connection lost: why'."""
        ...


def own_cpu_meter() -> Callable[[], float | None]:
    """syscap's own CPU use in percent of one CPU since the previous call (psutil)."""
    try:
        import psutil

        proc = psutil.Process(os.getpid())
        proc.cpu_percent(None)
    except Exception:
        return lambda: None

    def measure() -> float | None:
        try:
            return float(proc.cpu_percent(None))
        except Exception:
            return None

    return measure


def _send_signal(pid: int, sig: int) -> None:
    os.kill(pid, sig)


# What --readonly blocks (binding id -> what it would do): every action that changes the
# system. Filters, the latency switch, pause and replay controls stay: they change only
# what syscap itself captures and shows.
READONLY_BLOCKED: dict[str, str] = {
    "kill": "sending signals to processes",
    "restorer": "taking a core of a process (gcore stops it briefly and writes a file) and "
    "restoring cores (that starts the core's program)",
}
READONLY_NOTE = (
    "Read-only mode (--readonly): off are "
    + "; ".join(READONLY_BLOCKED.values())
    + ". Filters stay on: they change only what syscap captures."
)


@dataclass
class TopOptions:
    interval_s: float = 1.0
    readonly: bool = False
    low_color: bool = False
    animations: bool = True
    mouse: bool = True
    host: HostInfo = field(
        default_factory=lambda: HostInfo(socket.gethostname(), os.uname().release)
    )
    syscall_table: SyscallTable | None = None
    initial_filter: FilterSpec = field(default_factory=FilterSpec)
    user_of: UserOf = local_user
    cpu_meter: Callable[[], float | None] | None = None  # None: psutil on this process
    send_signal: Callable[[int, int], None] = _send_signal
    threaded: bool = True  # False: no timer or thread; call apply_snapshot yourself
    startup_error: str | None = None  # live capture failed: show it and offer replay
    open_replay: Callable[[str], SnapshotSource] | None = None
    replay_path: str | None = None  # shown in the header instead of this host
    record_size: int | None = None  # bytes per ring record: consumer lag as time
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys (remapping)
    # view, sorts and stable order remembered between runs; written back to
    # settings_file on exit (None: --no-config, nothing read or written)
    settings: TopSettings = field(default_factory=TopSettings)
    settings_file: Path | None = None


class SnapshotReady(Message):
    """A snapshot from the fetch thread. A newer one replaces an unhandled older one."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class SourceFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class FilterFailed(Message):
    """The backend rejected a filter: capture goes on with the previous one."""

    def __init__(self, previous: FilterSpec, error: str) -> None:
        super().__init__()
        self.previous = previous
        self.error = error


class SearchInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Clear search", id="search.cancel",
                tooltip="Clear the search and return to the table"),
    ]  # fmt: skip

    class Cancelled(Message):
        pass

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


class SyscapTop(App[None]):
    CSS_PATH = Path(__file__).with_name("top.tcss")  # absolute: subclasses live elsewhere
    TITLE = "syscap top"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark,h", "help", "Help", key_display="F1/?", id="help",
                tooltip="Show every key"),
        Binding("f2,v", "toggle_view", "View", key_display="F2/v", id="view",
                tooltip="Switch between the processes and the syscalls view"),
        Binding("f4,backslash", "filter", "Filter", key_display="F4/\\", id="filter",
                tooltip="In-kernel filter: syscall groups and names, pids, comms, failed only"),
        Binding("slash", "search", "Search", key_display="/", id="search", show=False,
                tooltip="Show only rows matching a text (Esc clears)"),
        Binding("f6,greater_than_sign", "sort(1)", "Sort", key_display="F6/>", id="sort.next",
                tooltip="Sort by the next column"),
        Binding("less_than_sign", "sort(-1)", "Sort back", show=False, id="sort.prev",
                tooltip="Sort by the previous column"),
        Binding("I", "invert_sort", "Invert", show=False, id="sort.invert",
                tooltip="Reverse the sort order"),
        *[
            Binding(letter, f"sort_by('{letter}')", f"Sort {letter}", show=False,
                    id=f"sort.{letter}", tooltip=f"Sort by {'/'.join(cols).upper()}")
            for letter, cols in SORT_KEYS.items()
        ],
        Binding("o", "toggle_stable", "Stable", show=False, id="order.stable",
                tooltip="Stable ordering: rows keep their place between refreshes"),
        Binding("l", "cycle_durations", "Durations", show=False, id="latency",
                tooltip="Durations: off (count only, cheapest), sampled (avg, p99 from a "
                "sample), all (every call timed)"),
        Binding("p,space", "pause", "Pause", key_display="p", id="pause",
                tooltip="Pause: freeze the table (gauges stay live); replay: pause playback"),
        Binding("backspace,escape", "go_back", "Back", show=False, id="back",
                tooltip="Back out of a drill-down (Enter drills into the row)"),
        Binding("full_stop", "replay_step", "Step", key_display=".", id="replay.step",
                tooltip="Replay: advance one interval while paused"),
        Binding("plus,right_square_bracket", "replay_speed(2.0)", "Faster", key_display="+",
                id="replay.faster", tooltip="Replay: play twice as fast"),
        Binding("minus,left_square_bracket", "replay_speed(0.5)", "Slower", key_display="-",
                id="replay.slower", tooltip="Replay: play half as fast"),
        Binding("f9,k", "kill", "Kill", key_display="F9/k", id="kill",
                tooltip="Send a signal to the selected process (asks first)"),
        Binding("f8,c", "restorer", "Core", key_display="F8/c", id="restorer",
                tooltip="Coredump restorer pane"),
        Binding("f10,q", "quit", "Quit", key_display="F10/q", id="quit", tooltip="Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="quit.interrupt",
                tooltip="Quit (as in other terminal tools)"),
    ]  # fmt: skip

    def __init__(self, source: SnapshotSource | None, options: TopOptions | None = None) -> None:
        super().__init__()
        self.options = options = options or TopOptions()
        self.source = source
        self.model = TopModel(options.user_of)
        self.filter_choice = options.initial_filter
        self.failure: str | None = None
        self.fetcher: SnapshotFetcher | None = None
        self._cpu_meter = options.cpu_meter
        self._own_cpu: float | None = None
        self._cursor_memory: dict[int, Hashable | None] = {}
        self._shown_text: dict[str, str] = {}
        self._gc_frozen = not options.threaded  # tests (unthreaded) leave the collector alone
        if not options.animations:
            self.animation_level = "none"

    # -- layout ----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="rings")
        yield Static(id="cost")
        yield Static(id="status")
        yield LiveTable(id="table")
        yield Static(id="totals")
        yield SearchInput(placeholder="search (Enter keeps it, Esc clears)", id="search")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def table(self) -> LiveTable:
        return self.query_one("#table", LiveTable)

    def on_mount(self) -> None:
        if self.options.keymap:
            self.set_keymap(self.options.keymap)
        if self.options.low_color:
            self.theme = "ansi-dark"
        self.query_one("#search", SearchInput).display = False
        s = self.options.settings
        self.model.restore(s.view, s.sorts, s.stable)
        self._show_view()
        self.table.focus()
        self._update_panels()
        if self.source is not None:
            self._start(self.source)
        elif self.options.startup_error is not None:
            self.push_screen(
                NoCaptureScreen(self.options.startup_error, self._open_replay),
            )

    def _start(self, source: SnapshotSource) -> None:
        self.source = source
        if self._cpu_meter is None:
            self._cpu_meter = own_cpu_meter()
        if not self.options.threaded:
            return
        self.fetcher = SnapshotFetcher(
            source,
            on_snapshot=self._post_snapshot,
            on_error=self._post_failure,
        )
        self.fetcher.start()
        interval = self.options.interval_s
        self.set_interval(interval, self._tick)
        self.set_timer(min(0.5, interval), self._tick)

    def _post_snapshot(self, snap: Snapshot) -> None:
        self.post_message(SnapshotReady(snap))  # from the fetch thread: thread-safe

    def _post_failure(self, exc: BaseException) -> None:
        self.post_message(SourceFailed(one_line(exc)))

    def _open_replay(self, path: str) -> str | None:
        """NoCaptureScreen's replay offer: open the trace, or say why not."""
        if self.options.open_replay is None:
            return "replay is not available"
        try:
            source = self.options.open_replay(path)
            if not self.filter_choice.is_empty:  # -p/--comm/-e given on the command line
                source.set_filter(self.filter_choice.to_filter(self.options.syscall_table))
        except Exception as exc:
            return one_line(exc)
        self.options.cpu_meter = self._cpu_meter
        self.options.replay_path = path
        self.model.set_user_lookup(lambda pid: "-")  # recorded pids are not this machine's
        self._start(source)
        self._update_panels()
        return None

    def on_unmount(self) -> None:
        if self.options.settings_file is not None:
            s = self.options.settings
            s.view, s.sorts, s.stable = self.model.settings()
            try:
                save_settings(self.options.settings_file, s)
            except OSError:
                pass  # preferences only: never fail an exit over them
        stopped = self.fetcher.stop() if self.fetcher is not None else True
        if self.source is not None and stopped:  # never close under a running snapshot()
            try:
                self.source.close()
            except Exception:
                pass

    # -- refresh path ------------------------------------------------------------------
    def _tick(self) -> None:
        if self.fetcher is None or self.failure is not None:
            return
        replay = self.replay
        if replay is not None and (replay.paused or replay.at_end):
            self._update_panels()
            return
        self.fetcher.request()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        snap = message.snapshot
        if snap.end_ns == snap.start_ns and self.remote is not None:
            # No interval arrived from the box since the last tick (its clock and
            # ours are not in step): keep the table as it is rather than blank it.
            self._update_panels()
            return
        self.apply_snapshot(snap)

    def on_source_failed(self, message: SourceFailed) -> None:
        self.failure = message.error
        self._update_panels()
        self.notify(message.error, title="capture stopped", severity="error", timeout=15)

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Take one snapshot into the model and the screen (app thread)."""
        with self.batch_update():
            if self._cpu_meter is not None:
                self._own_cpu = self._cpu_meter()
            changed = self.model.apply(snap)
            self._update_panels()
            if changed:
                self._update_table()
        if not self._gc_frozen:
            # Everything built so far (Textual's DOM, styles, caches) lives as long as
            # the app: keep it out of the collector's full passes, which otherwise
            # stall a tick by ~20-35 ms at 2 000 processes (bench/tui_bench.py).
            gc.freeze()
            self._gc_frozen = True

    # -- drawing --------------------------------------------------------------------------
    @property
    def replay(self) -> ReplayControls | None:
        src = self.source
        if src is not None and src.backend == "replay" and isinstance(src, ReplayControls):
            return src
        return None

    @property
    def remote(self) -> RemoteLink | None:
        src = self.source
        return src if isinstance(src, RemoteLink) else None

    def state_text(self) -> str:
        if self.failure is not None:
            # a box's lost connection says why in the header ("connection lost: ...")
            return self.failure if self.remote is not None else "FAILED"
        replay = self.replay
        if replay is not None:
            if replay.at_end:
                return "REPLAY END"
            return f"REPLAY {replay.speed:g}x" + (" PAUSED" if replay.paused else "")
        if self.source is None:
            return "NO CAPTURE"
        return "PAUSED (table frozen)" if self.model.paused else "LIVE"

    def _set_text(self, selector: str, markup: str) -> Static:
        """Update a one-line panel only when its text changed (an update repaints it)."""
        widget = self.query_one(selector, Static)
        if self._shown_text.get(selector) != markup:
            self._shown_text[selector] = markup
            widget.update(markup, layout=False)  # fixed-height lines: no layout pass
        return widget

    def _update_panels(self) -> None:
        backend = self.source.backend if self.source is not None else "-"
        width = self.size.width - 2  # the header's padding
        header = header_markup(
            self._host_info(), backend, self.options.interval_s, self.state_text(), width
        )
        self._set_text("#header", header)
        recorded = getattr(self.source, "drops", None) if self.replay is not None else None
        text, dropping = rings_markup(
            self.model.latest,
            max(self.size.width, 40),
            recorded_drops=recorded if isinstance(recorded, int) else None,
            record_size=self.options.record_size,
        )
        self._set_text("#rings", text).set_class(dropping, "-dropping")
        hook = getattr(self.source, "hook_cost_ns", None)
        self._set_text(
            "#cost",
            cost_markup(
                self._own_cpu,
                float(hook) if isinstance(hook, int | float) else None,
                self.model.latest,
                replay=self.replay is not None,
                durations=self._durations_state(),
                agent=self._agent_cost(),
            ),
        )
        self._update_status()

    def _agent_cost(self) -> tuple[float, int] | None:
        """A box's agent: its CPU (percent) and memory (bytes), once known."""
        cost = getattr(self.remote, "agent_cost", None)
        if isinstance(cost, tuple) and len(cost) == 2:
            return float(cost[0]), int(cost[1])
        return None

    def _host_info(self) -> HostInfo:
        """This machine, the box watched, or for a replay the trace and the kernel it
        was recorded on."""
        remote = self.remote
        if remote is not None:
            return HostInfo(remote.host, remote.kernel)
        if self.replay is None:
            return self.options.host
        kernel = getattr(getattr(self.source, "info", None), "kernel", None)
        path = self.options.replay_path
        return HostInfo(
            os.path.basename(path) if path else "trace",
            kernel if isinstance(kernel, str) else "?",
        )

    def _update_status(self) -> None:
        view = self.model.view
        col = view.column(view.sort_key)
        parts = [
            f"[b]{_esc(self.model.breadcrumb())}[/]",
            f"sort {col.title}{'▼' if view.sort_descending else '▲'}",
            f"filter: {_esc(self.filter_choice.describe())}",
        ]
        if self.model.search:
            parts.append(f"search: [b]{_esc(self.model.search)}[/]")
        if self.model.stable:
            parts.append("stable order")
        if self.failure is not None:
            parts = [f"[b $error]capture stopped: {_esc(self.failure)}[/]  (q quits)"]
        self._set_text("#status", "  ".join(parts))

    def _show_view(self) -> None:
        view = self.model.view
        self.table.set_view(view.columns, view.cells, view.sort_key, view.sort_descending)
        self._update_table()

    def _update_table(self) -> None:
        latest = self.model.latest
        sampled = latest is not None and latest.sampled
        self.table.mark_estimated(frozenset({"avg", "p99"}) if sampled else frozenset())
        self.table.set_rows(self.model.rows)
        self._set_text("#totals", _esc(self.model.totals()))
        self._update_status()

    # -- actions: views and sorting ---------------------------------------------------------
    def on_live_table_row_activated(self, message: LiveTable.RowActivated) -> None:
        depth = len(self.model.stack)
        self._cursor_memory[depth] = self.table.cursor_key
        if self.model.drill(message.row):
            self._show_view()

    def action_go_back(self) -> None:
        if self.model.search:
            self._clear_search()
            return
        depth = len(self.model.stack) - 1
        if self.model.back():
            self._show_view()
            key = self._cursor_memory.pop(depth, None)
            if key is not None:
                self.table.move_cursor_to(key)

    def action_toggle_view(self) -> None:
        base = "syscalls" if self.model.stack[0] is self.model.processes else "processes"
        self.model.show_view(base)
        self._cursor_memory.clear()
        self.query_one("#search", SearchInput).value = ""
        self._show_view()

    def _resort(self) -> None:
        view = self.model.view
        self.table.set_view(view.columns, view.cells, view.sort_key, view.sort_descending)
        self._update_table()

    def on_live_table_header_clicked(self, message: LiveTable.HeaderClicked) -> None:
        self.model.set_sort(message.column)
        self._resort()

    def action_sort(self, step: int) -> None:
        self.model.cycle_sort(step)
        self._resort()

    def action_sort_by(self, letter: str) -> None:
        keys = {c.key for c in self.model.view.columns if c.sortable}
        for key in SORT_KEYS.get(letter, ()):
            if key in keys:
                self.model.set_sort(key, self.model.view.column(key).descending)
                self._resort()
                return

    def action_invert_sort(self) -> None:
        self.model.invert_sort()
        self._resort()

    def action_toggle_stable(self) -> None:
        self.model.toggle_stable()
        self._update_table()

    # -- search -------------------------------------------------------------------------------
    def action_search(self) -> None:
        box = self.query_one("#search", SearchInput)
        box.display = True
        # Focus now, not later (Widget.focus defers): the next keys may already be
        # queued (typed fast, pasted, or sent by tmux) and must not reach 'q' = quit.
        self.screen.set_focus(box)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self.model.set_search(event.value.strip())
            self._update_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            event.input.display = False
            self.table.focus()

    def on_search_input_cancelled(self) -> None:
        self._clear_search()

    def _clear_search(self) -> None:
        box = self.query_one("#search", SearchInput)
        box.value = ""
        box.display = False
        self.model.set_search("")
        self._update_table()
        self.table.focus()

    # -- pause, replay --------------------------------------------------------------------------
    def action_pause(self) -> None:
        replay = self.replay
        if replay is not None:
            paused = not replay.paused
            self._source_call(lambda: setattr(replay, "paused", paused))
        else:
            self.model.set_paused(not self.model.paused)
            if not self.model.paused:
                self._update_table()
        self._update_panels()

    def action_replay_step(self) -> None:
        replay = self.replay
        if replay is None:
            return
        if not replay.paused:
            self._source_call(lambda: setattr(replay, "paused", True))

        def step() -> None:
            snap = replay.step()
            if snap is not None:
                self._post_snapshot(snap)

        self._source_call(step)
        self._update_panels()

    def action_replay_speed(self, factor: float) -> None:
        replay = self.replay
        if replay is None:
            return
        speed = min(max(replay.speed * factor, 0.125), 64.0)
        self._source_call(lambda: setattr(replay, "speed", speed))
        self._update_panels()
        self.notify(f"replay speed {speed:g}x", timeout=2)

    def _durations_state(self) -> tuple[str, int] | None:
        """The live source's durations setting and sample period; None if it
        cannot switch."""
        source = self.source
        if not isinstance(source, DurationSwitch):
            return None
        return source.durations, source.sample_period

    def action_cycle_durations(self) -> None:
        source = self.source
        if not isinstance(source, DurationSwitch) or not source.offered:
            if self.remote is not None:
                self.notify("durations on a box are the agent's to measure: start it with "
                            "'syscap-agent stream --durations' (or --sampled)", severity="warning")
            return
        offered = source.offered
        current = source.durations
        nxt = offered[(offered.index(current) + 1) % len(offered)] if current in offered \
            else offered[0]

        def switched() -> None:
            source.set_durations(nxt)

        self._source_call(switched)
        self.notify(DURATION_NOTES[nxt], timeout=3)
        self._update_panels()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "quit" and any(isinstance(s, RestorerPane) for s in self.screen_stack):
            return False  # the live view's keys do nothing under the restorer pane
        if action.startswith("replay_"):
            return self.replay is not None
        if action == "kill" and (self.replay is not None or self.remote is not None):
            return False  # the recorded or remote processes are not on this machine
        # --readonly keeps its blocked keys live so that pressing one says why it is off.
        return True

    def _refused_readonly(self, binding_id: str) -> bool:
        """With --readonly, say that this action is off (and return True)."""
        if not self.options.readonly or binding_id not in READONLY_BLOCKED:
            return False
        self.notify(
            f"read-only mode (--readonly): {READONLY_BLOCKED[binding_id]} is off",
            severity="warning",
        )
        return True

    # -- filter ----------------------------------------------------------------------------------
    def action_filter(self) -> None:
        if self.source is None:
            return
        self.push_screen(
            FilterScreen(self.filter_choice, self._validate_filter), self._filter_chosen
        )

    def _validate_filter(self, choice: FilterSpec) -> str | None:
        try:
            choice.to_filter(self.options.syscall_table)
        except ValueError as exc:
            return str(exc)
        return None

    def _filter_chosen(self, choice: FilterSpec | None) -> None:
        if choice is None:
            return
        flt = choice.to_filter(self.options.syscall_table)
        previous, self.filter_choice = self.filter_choice, choice
        self.apply_filter(flt, previous)
        self._update_status()

    def apply_filter(self, flt: Filter, previous: FilterSpec | None = None) -> None:
        """Hand `flt` to the backend (on the fetch thread); a rejection is reported."""
        source = self.source
        if source is None:
            return
        before = previous if previous is not None else self.filter_choice

        def rejected(exc: BaseException) -> None:
            self.post_message(FilterFailed(before, one_line(exc)))

        self._source_call(lambda: source.set_filter(flt), rejected)

    def on_filter_failed(self, message: FilterFailed) -> None:
        self.filter_choice = message.previous
        self._update_status()
        self.notify(message.error, title="filter not applied", severity="error", timeout=10)

    def _source_call(
        self, fn: Callable[[], None], on_error: Callable[[BaseException], None] | None = None
    ) -> None:
        """Run a source call on the fetch thread (one caller), or here without a thread."""
        if self.fetcher is not None:
            self.fetcher.call(fn, on_error)
            return
        try:
            fn()
        except Exception as exc:
            if on_error is not None:
                on_error(exc)
            else:
                self.post_message(SourceFailed(one_line(exc)))

    # -- other screens -----------------------------------------------------------------------------
    def action_help(self) -> None:
        keys = [*self.BINDINGS, *LiveTable.BINDINGS]
        if self.options.readonly:
            self.push_screen(HelpScreen(keys, READONLY_BLOCKED, READONLY_NOTE))
        else:
            self.push_screen(HelpScreen(keys))

    def _comm_of(self, pid: int) -> str:
        """The command name of pid in the latest snapshot ("?" if it is not there)."""
        latest = self.model.latest
        return next((p.comm for p in latest.processes if p.pid == pid), "?") if latest else "?"

    def action_restorer(self) -> None:
        """The restorer pane; on a live process, offer to take a core of it first."""
        if self._refused_readonly("restorer"):
            return
        pid = None
        if self.source is not None and self.replay is None and self.remote is None:
            pid = self.model.view.pid_of(self.table.cursor_row)
        if pid is None:
            self.push_screen(RestorerPane())
            return
        comm = self._comm_of(pid)

        def chosen(choice: str | None) -> None:
            if choice == "take":
                self.push_screen(RestorerPane(take_pid=pid))
            elif choice == "open":
                self.push_screen(RestorerPane())

        self.push_screen(TakeCoreScreen(pid, comm), chosen)

    def action_kill(self) -> None:
        if self._refused_readonly("kill"):
            return
        pid = self.model.view.pid_of(self.table.cursor_row)
        if pid is None:
            self.notify("select a process first", severity="warning")
            return
        comm = self._comm_of(pid)

        def chosen(sig: int | None) -> None:
            if sig is None:
                return
            try:
                self.options.send_signal(pid, sig)
            except OSError as exc:
                self.notify(f"signal to {pid} failed: {exc.strerror}", severity="error")
            else:
                self.notify(f"sent signal {sig} to {pid} ({comm})")

        self.push_screen(KillScreen(pid, comm), chosen)

    def on_resize(self) -> None:
        self._update_panels()


def _esc(text: str) -> str:
    return escape(text)

"""Screens over the main view: help, filter, signal confirm, no-capture, restorer slot."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, SelectionList, Static

from capture_lib import filter_spec
from capture_lib.errors import UsageError
from capture_lib.filter_spec import GROUP_ORDER, FilterSpec
from tui.filters import check_comms, parse_pids, split_words

_CLOSE = "escape,q,question_mark,f1,h"


def key_display(binding: Binding) -> str:
    """Every key of a binding, readable: 'F1/?/h'."""
    names = {"question_mark": "?", "backslash": "\\", "slash": "/", "less_than_sign": "<",
             "greater_than_sign": ">", "space": "Space", "full_stop": ".", "plus": "+",
             "minus": "-", "left_square_bracket": "[", "right_square_bracket": "]",
             "backspace": "Bksp", "escape": "Esc", "enter": "Enter"}  # fmt: skip
    return "/".join(names.get(k, k.upper() if k.startswith("f") and k[1:].isdigit() else k)
                    for k in binding.key.split(","))  # fmt: skip


class HelpScreen(ModalScreen[None]):
    """Every key the app knows, generated from the bindings themselves."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(_CLOSE, "dismiss", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(
        self,
        bindings: Iterable[BindingType],
        blocked: Iterable[str] = (),
        note: str | None = None,
    ) -> None:
        """`bindings`: a screen's BINDINGS (only Binding objects are listed); `blocked`:
        binding ids that are off (--readonly), `note` says why."""
        super().__init__()
        self._keys = [b for b in bindings if isinstance(b, Binding)]
        self._blocked = frozenset(blocked)
        self._note = note

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        keys.add_column(style="dim", no_wrap=True)
        for b in self._keys:
            what = b.tooltip or b.description
            if b.id in self._blocked:
                what = f"{what} (off: --readonly)"
            keys.add_row(key_display(b), what, b.id or "")
        with VerticalScroll(id="help-body"):
            yield Static(Text("syscap top: keys", style="bold"), id="help-title")
            if self._note is not None:
                yield Static(Text(self._note, style="bold"), id="help-readonly")
            yield Static(keys, id="help-text")
            yield Static(
                "Click a column title to sort by it; click again to reverse.\n"
                "Remap keys by id: SYSCAP_TOP_KEYS='quit=ctrl+x;filter=f5,x'\n"
                "Esc, q or ? closes this help.",
                id="help-foot",
            )


class KillScreen(ModalScreen[int | None]):
    """Confirm before sending a signal; returns the signal number or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "dismiss(None)", "Cancel", id="kill.cancel", tooltip="Send nothing"),
    ]

    def __init__(self, pid: int, comm: str) -> None:
        super().__init__()
        self.pid, self.comm = pid, comm

    def compose(self) -> ComposeResult:
        with Vertical(id="kill-box"):
            yield Label(f"Send a signal to PID {self.pid} ({escape(self.comm)})?")
            with Horizontal(id="kill-buttons"):
                yield Button("SIGTERM", id="sigterm", variant="warning")
                yield Button("SIGKILL", id="sigkill", variant="error")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        chosen = {"sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}.get(event.button.id or "")
        self.dismiss(int(chosen) if chosen is not None else None)


class FilterScreen(ModalScreen[FilterSpec | None]):
    """Edit the in-kernel filter: groups, single syscalls, pids, comms, failed-only."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="filter.cancel",
                tooltip="Close without changing the filter"),
        Binding("ctrl+s,f4", "apply", "Apply", id="filter.apply",
                tooltip="Apply the filter in the kernel"),
        Binding("w", "save", "Save", id="filter.save",
                tooltip="Save the filter under the name typed in 'save as', for --filter NAME"),
    ]  # fmt: skip

    def __init__(self, current: FilterSpec, validate: Callable[[FilterSpec], str | None]):
        super().__init__()
        self.current = current
        self._validate = validate

    def compose(self) -> ComposeResult:
        c = self.current
        with Vertical(id="filter-box"):
            yield Label("[b]In-kernel filter[/]  (Space toggles, Tab moves, Ctrl+S applies)")
            with Horizontal(id="filter-columns"):
                yield SelectionList[str](
                    *[(g, g, g in c.groups) for g in GROUP_ORDER], id="filter-groups"
                )
                with Vertical(id="filter-fields"):
                    for ident, label, value in (
                        ("syscalls", "syscalls", ",".join(sorted(c.syscalls))),
                        ("pids", "pids", ",".join(map(str, sorted(c.pids)))),
                        ("xpids", "not pids", ",".join(map(str, sorted(c.exclude_pids)))),
                        ("comms", "comms", ",".join(sorted(c.comms))),
                        ("xcomms", "not comms", ",".join(sorted(c.exclude_comms))),
                    ):
                        with Horizontal(classes="filter-row"):
                            yield Label(label, classes="filter-label")
                            yield Input(value, id=f"filter-{ident}", compact=True,
                                        placeholder="any")  # fmt: skip
                    yield Checkbox("failed calls only", c.failed_only, id="filter-failed")
                    with Horizontal(classes="filter-row"):
                        yield Label("save as", classes="filter-label")
                        yield Input("", id="filter-name", compact=True,
                                    placeholder="a name, then Enter (or w)")  # fmt: skip
            yield Label("", id="filter-error")
            with Horizontal(id="filter-buttons"):
                yield Button("Apply", id="apply", variant="primary")
                yield Button("Save", id="save")
                yield Button("Clear", id="clear")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#filter-groups", SelectionList).focus()

    def _value(self, ident: str) -> str:
        return self.query_one(f"#filter-{ident}", Input).value

    def choice(self) -> FilterSpec:
        """What the form says now. Raises ValueError for a malformed pid list."""
        groups: SelectionList[str] = self.query_one("#filter-groups", SelectionList)
        check_comms(split_words(self._value("comms")) + split_words(self._value("xcomms")))
        return FilterSpec(
            groups=frozenset(groups.selected),
            syscalls=frozenset(split_words(self._value("syscalls"))),
            pids=parse_pids(self._value("pids")),
            exclude_pids=parse_pids(self._value("xpids")),
            comms=frozenset(split_words(self._value("comms"))),
            exclude_comms=frozenset(split_words(self._value("xcomms"))),
            failed_only=self.query_one("#filter-failed", Checkbox).value,
        )

    def action_apply(self) -> None:
        try:
            choice = self.choice()
        except ValueError as exc:
            self.query_one("#filter-error", Label).update(f"[$error]{escape(str(exc))}[/]")
            return
        problem = self._validate(choice)
        if problem:
            self.query_one("#filter-error", Label).update(f"[$error]{escape(problem)}[/]")
            return
        self.dismiss(choice)

    def action_save(self) -> None:
        """Save what the form says under its name and show the command lines that
        use it; the dialog stays open."""
        message = self.query_one("#filter-error", Label)
        name_input = self.query_one("#filter-name", Input)
        name = name_input.value.strip()
        if not name:
            name_input.focus()
            message.update("[$warning]type a name in 'save as', then Enter[/]")
            return
        try:
            choice = self.choice()
            problem = self._validate(choice)
            if problem:
                raise ValueError(problem)
            filter_spec.save(name, choice)
        except (ValueError, UsageError, OSError) as exc:
            message.update(f"[$error]{escape(str(exc))}[/]")
            return
        options = choice.options()
        same = f"  (= syscap record {' '.join(options)} -a)" if options else ""
        message.update(escape(f"saved '{name}': syscap record --filter {name} -a, "
                              f"syscap exporter --filter {name}, syscap top --filter {name}"
                              f"{same}"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter-name":
            self.action_save()
        else:
            self.action_apply()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "apply":
            self.action_apply()
        elif event.button.id == "clear":
            self.dismiss(FilterSpec())
        else:
            self.dismiss(None)


class NoCaptureScreen(Screen[str | None]):
    """Live capture failed to start: say why, and offer replay of a recorded trace."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f10,ctrl+q", "app.quit", "Quit", id="nocap.quit", key_display="F10",
                tooltip="Quit syscap top"),
    ]  # fmt: skip

    def __init__(self, reason: str, open_replay: Callable[[str], str | None]) -> None:
        super().__init__()
        self.reason = reason
        self._open_replay = open_replay

    def compose(self) -> ComposeResult:
        with Vertical(id="nocap-box"):
            yield Static("[b $error]Live capture is not available[/]", id="nocap-title")
            yield Static(escape(self.reason), id="nocap-reason")
            yield Static(
                "syscap top needs root, or CAP_BPF and CAP_PERFMON (eBPF), or the syscap "
                "kernel module loaded (kmod). Run [b]syscap info[/] to see which backend "
                "works here.\n\nA recorded trace needs no privileges: "
                "type its path and press Enter to replay it "
                "(record one with [b]syscap record -o TRACE[/]).",
                id="nocap-help",
            )
            yield Input(placeholder="path to a trace (syscap record -o ...)", id="nocap-path")
            yield Label("", id="nocap-error")
            with Horizontal(id="nocap-buttons"):
                yield Button("Replay", id="replay", variant="primary")
                yield Button("Quit", id="quit")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#nocap-path", Input).focus()

    def _try_replay(self) -> None:
        path = self.query_one("#nocap-path", Input).value.strip()
        if not path:
            self.query_one("#nocap-error", Label).update("[$error]type a trace path first[/]")
            return
        problem = self._open_replay(path)
        if problem:
            self.query_one("#nocap-error", Label).update(f"[$error]{escape(problem)}[/]")
        else:
            self.dismiss(path)

    def on_input_submitted(self) -> None:
        self._try_replay()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "replay":
            self._try_replay()
        else:
            self.app.exit()

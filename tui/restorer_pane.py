"""The slot for the coredump restorer pane, reachable from syscap top with F8 or c.

restorer/ (a library without Textual) restores a process from a core; its pane
belongs here, in tui/, and replaces the placeholder below.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static


class RestorerPane(Screen[None]):
    """The slot for the coredump restorer (restorer/ fills it in)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,f8,c", "dismiss", "Back", id="restorer.back",
                key_display="Esc", tooltip="Back to the live view"),
        Binding("f10,q", "app.quit", "Quit", id="restorer.quit", key_display="F10/q",
                tooltip="Quit syscap top"),
    ]  # fmt: skip

    def compose(self) -> ComposeResult:
        yield Static(
            "[b]Coredump restorer[/]\n\n"
            "The restorer pane is not wired yet.\n\n"
            "Meanwhile: [b]syscap restore CORE [--exe PATH] [--run | --hold][/]\n\n"
            "Esc goes back to the live view.",
            id="restorer-placeholder",
        )
        yield Footer()

"""The coredump restorer pane of syscap top (F8 or c): open a core, run it again, inspect it.

The pane never calls the restorer itself: a RestorerSession (tui/restorer_session.py) owns
the restored process on one worker thread and hands back a DebugState per request, which
arrives here as a StateReady message and is drawn in one place (`_draw`). Stop (i) is the
one request that goes straight to the process, from this thread, while a continue runs.
Closing the pane (or the app) kills the restored process and every checkpoint.

Keys follow gdb's: s/n/c step, next, continue (F7/F6/F5 as in most debuggers' TUIs), S and C
(Shift-F7, Shift-F5) their reverse, u (F4) runs to the code line under the cursor (Up/Down
move it; g shows the code of a symbol), Space (F9) sets or removes a breakpoint there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.suggester import Suggester
from textual.widgets import Button, DirectoryTree, Footer, Input, Label, Static

from tui.restorer_session import DebugState, RestorerSession
from tui.screens import HelpScreen

NO_CORE = (
    "no core open: press [b]o[/] to open one, or [b]c[/] on a process in the live view "
    "to take a core of it"
)


class StateReady(Message):
    def __init__(self, state: DebugState) -> None:
        super().__init__()
        self.state = state


class SessionFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class SessionBusy(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class PathSuggester(Suggester):
    """Completes a path from the file system: the first entry that starts with the text."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        folder, _, stem = value.rpartition("/")
        where = Path(os.path.expanduser(folder or ".")) if folder or not value else Path(".")
        if value.startswith("/") and not folder:
            where = Path("/")
        try:
            names = sorted(e.name for e in os.scandir(where) if e.name.startswith(stem))
        except OSError:
            return None
        for name in names:
            if name != stem:
                sep = "/" if (where / name).is_dir() else ""
                return f"{folder}/{name}{sep}" if value.count("/") else f"{name}{sep}"
        return None


class OpenCoreScreen(ModalScreen[tuple[str, str | None] | None]):
    """Pick a core file (tree or typed path with completion) and optionally the executable."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="restorer.open.cancel",
                tooltip="Close without opening a core"),
    ]  # fmt: skip

    def __init__(self, start: str | None = None) -> None:
        super().__init__()
        self.start = start or os.getcwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="rp-open-box"):
            yield Label("[b]Open a core[/]  (Enter on a file picks it; Tab moves; "
                        "Right accepts a completion)")  # fmt: skip
            yield DirectoryTree(self.start, id="rp-open-tree")
            with Horizontal(classes="rp-open-row"):
                yield Label("core", classes="rp-open-label")
                yield Input(id="rp-open-core", compact=True, suggester=PathSuggester(),
                            placeholder="path to an ELF core (kernel or gcore)")  # fmt: skip
            with Horizontal(classes="rp-open-row"):
                yield Label("exe", classes="rp-open-label")
                yield Input(id="rp-open-exe", compact=True, suggester=PathSuggester(),
                            placeholder="executable (default: the path in the core)")  # fmt: skip
            yield Label("", id="rp-open-error")
            with Horizontal(id="rp-open-buttons"):
                yield Button("Open", id="rp-open-ok", variant="primary")
                yield Button("Cancel", id="rp-open-cancel")

    def on_mount(self) -> None:
        self.query_one("#rp-open-core", Input).focus()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#rp-open-core", Input).value = str(event.path)

    def _open(self) -> None:
        core = self.query_one("#rp-open-core", Input).value.strip()
        exe = self.query_one("#rp-open-exe", Input).value.strip() or None
        problem = None
        if not core:
            problem = "type or pick the path of a core first"
        elif not os.path.isfile(os.path.expanduser(core)):
            problem = f"{core}: no such file"
        elif exe is not None and not os.path.isfile(os.path.expanduser(exe)):
            problem = f"{exe}: no such file"
        if problem is not None:
            self.query_one("#rp-open-error", Label).update(f"[$error]{escape(problem)}[/]")
            return
        self.dismiss((os.path.expanduser(core), os.path.expanduser(exe) if exe else None))

    def on_input_submitted(self) -> None:
        self._open()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "rp-open-ok":
            self._open()
        else:
            self.dismiss(None)


class TakeCoreScreen(ModalScreen[str | None]):
    """Confirm taking a core of a live process: 'take', 'open' (the pane only) or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "dismiss(None)", "Cancel", id="restorer.take.cancel",
                tooltip="Take no core"),
    ]  # fmt: skip

    def __init__(self, pid: int, comm: str) -> None:
        super().__init__()
        self.pid, self.comm = pid, comm

    def compose(self) -> ComposeResult:
        with Vertical(id="rp-take-box"):
            yield Label(f"Take a core of PID {self.pid} ({escape(self.comm)}) and open it?")
            yield Label(
                "gcore stops it for a moment and writes the core; the process keeps running. "
                "The restored copy runs under the restorer, apart from the original.",
                id="rp-take-note",
            )
            with Horizontal(id="rp-take-buttons"):
                yield Button("Take core", id="rp-take-ok", variant="warning")
                yield Button("Open pane only", id="rp-take-pane")
                yield Button("Cancel", id="rp-take-cancel")

    def on_mount(self) -> None:
        self.query_one("#rp-take-cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        choice = {"rp-take-ok": "take", "rp-take-pane": "open"}.get(event.button.id or "")
        self.dismiss(choice)


class RestorerPane(Screen[None]):
    """Registers, code around PC, memory, stack and checkpoints of a restored core."""

    AUTO_FOCUS = ""  # nothing: keys go to the pane's bindings until an input is asked for

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Live view", id="restorer.back", key_display="Esc",
                tooltip="Back to the live view (kills the restored process)"),
        Binding("f1,question_mark,h", "help", "Help", key_display="F1/?", id="restorer.help",
                tooltip="Show the restorer pane's keys"),
        Binding("o", "open", "Open", id="restorer.open",
                tooltip="Open a core file (file picker; optional executable path)"),
        Binding("f7,s", "step", "Step", key_display="F7/s", id="restorer.step",
                tooltip="Execute one instruction"),
        Binding("f6,n", "step_over", "Next", key_display="F6/n", id="restorer.next",
                tooltip="Step over: one instruction, a call runs until it returns"),
        Binding("f5,c", "cont", "Cont", key_display="F5/c", id="restorer.cont",
                tooltip="Continue until a signal, the end, or Stop"),
        Binding("shift+f7,S", "reverse_step", "Rev step", key_display="S-F7/S",
                id="restorer.reverse_step",
                tooltip="Reverse-step: back to the state before the last instruction "
                "(re-executed from a checkpoint; recorded syscalls are replayed)"),
        Binding("shift+f5,C", "reverse_cont", "Rev cont", key_display="S-F5/C",
                id="restorer.reverse_cont",
                tooltip="Reverse-continue: back to the previous breakpoint hit "
                "(or the start of the history)"),
        Binding("f9,space", "toggle_break", "Break", key_display="F9/Spc",
                id="restorer.break",
                tooltip="Set or remove a breakpoint on the code line under the cursor"),
        Binding("f4,u", "until", "Until", key_display="F4/u", id="restorer.until",
                tooltip="Run to the code line under the cursor (or an earlier stop)"),
        Binding("up", "cursor(-1)", "Up", show=False, id="restorer.cursor_up",
                tooltip="Move the code cursor up"),
        Binding("down", "cursor(1)", "Down", show=False, id="restorer.cursor_down",
                tooltip="Move the code cursor down"),
        Binding("g", "goto", "Go to", id="restorer.goto",
                tooltip="Show the code of a symbol or address (empty: follow the PC)"),
        Binding("r", "edit_register", "Set reg", id="restorer.set_register",
                tooltip="Change a register: NAME VALUE (decimal, or hex with 0x)"),
        Binding("e", "edit_memory", "Set mem", id="restorer.set_memory",
                tooltip="Write a 64-bit word: ADDRESS VALUE (address: hex, symbol or $reg)"),
        Binding("i", "stop", "Stop", id="restorer.stop",
                tooltip="Stop (interrupt) the running process"),
        Binding("j", "jump", "Jump", id="restorer.jump",
                tooltip="Set the PC to an address (hex), symbol[+off] or $reg"),
        Binding("w", "next_thread", "Thread", id="restorer.thread",
                tooltip="Select the next thread (registers, code, stack and steps follow it; "
                "continue runs every thread)"),
        Binding("W", "pick_thread", "Pick thread", show=False, id="restorer.pick_thread",
                tooltip="Select a thread by its TID"),
        Binding("t", "checkpoint", "Checkpoint", id="restorer.checkpoint",
                tooltip="Take a checkpoint: a forked copy of the process, kept stopped"),
        Binding("b", "rewind", "Go back", id="restorer.rewind",
                tooltip="Go back to a checkpoint (asks which; Enter: the latest)"),
        Binding("m", "memory", "Memory", id="restorer.memory",
                tooltip="Show memory at an address, symbol or $reg (empty: follow SP)"),
        Binding("f10,q", "app.quit", "Quit", key_display="F10/q", id="restorer.quit",
                tooltip="Quit syscap top (kills the restored process)"),
    ]  # fmt: skip

    def __init__(
        self,
        core: str | None = None,
        exe: str | None = None,
        take_pid: int | None = None,
    ) -> None:
        super().__init__()
        self._initial = (core, exe, take_pid)
        self.session: RestorerSession | None = None
        self.state: DebugState | None = None
        self.error: str | None = None
        self.busy: str | None = None
        self._prompt_mode: str | None = None
        self._log_size = -1
        self.cursor: int | None = None  # address of the code line under the cursor

    # -- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(NO_CORE, id="rp-status")
        with Horizontal(id="rp-top"):
            with Vertical(id="rp-left"):
                yield Static(id="rp-regs", classes="rp-panel")
                yield Static(id="rp-breaks", classes="rp-panel")
            yield Static(id="rp-code", classes="rp-panel")
        with Horizontal(id="rp-bottom"):
            with Vertical(id="rp-memory-box", classes="rp-panel"):
                yield Input(id="rp-mem-addr", compact=True,
                            placeholder="address, symbol or $reg (empty: follow SP)")  # fmt: skip
                yield Static(id="rp-memory")
            with Vertical(id="rp-side"):
                yield Static(id="rp-stack", classes="rp-panel")
                yield Static(id="rp-timeline", classes="rp-panel")
                yield Static(id="rp-log", classes="rp-panel")
        yield Input(id="rp-prompt", compact=True)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        titles = {"#rp-regs": "registers", "#rp-code": "code", "#rp-memory-box": "memory",
                  "#rp-stack": "stack", "#rp-timeline": "checkpoints",
                  "#rp-breaks": "breakpoints",
                  "#rp-log": "process output"}  # fmt: skip
        for sel, title in titles.items():
            self.query_one(sel).border_title = title
        self.query_one("#rp-prompt", Input).display = False
        self.session = RestorerSession(
            on_state=lambda s: self.post_message(StateReady(s)),
            on_error=lambda e: self.post_message(SessionFailed(e)),
            on_busy=lambda t: self.post_message(SessionBusy(t)),
        )
        self._draw()
        self.set_interval(0.5, self._refresh_log)
        core, exe, pid = self._initial
        if pid is not None:
            self._set_busy(f"taking a core of pid {pid} ...")
            self.session.take_and_open(pid)
        elif core is not None:
            self.open_core(core, exe)

    def on_unmount(self) -> None:
        self.close_session()

    def close_session(self) -> None:
        """Kill the restored process and its checkpoints; stop the worker thread."""
        if self.session is not None:
            self.session.close()

    # -- requests ------------------------------------------------------------------------
    def open_core(self, core: str, exe: str | None = None) -> None:
        assert self.session is not None
        self._set_busy(f"restoring {core} ...")
        self.session.open(core, exe)

    def _set_busy(self, text: str | None) -> None:
        self.busy = text
        self._draw_status()
        self.refresh_bindings()

    def _request(self, what: str) -> None:
        self.error = None
        self._set_busy(what)

    def action_open(self) -> None:
        def chosen(choice: tuple[str, str | None] | None) -> None:
            if choice is not None:
                self.error = None
                self.open_core(*choice)

        start = os.path.dirname(self.state.core) if self.state and self.state.core else None
        self.app.push_screen(OpenCoreScreen(start), chosen)

    def action_step(self) -> None:
        assert self.session is not None
        self._request("stepping ...")
        self.session.step()

    def action_step_over(self) -> None:
        assert self.session is not None
        self._request("stepping over ...")
        self.session.step_over()

    def action_cont(self) -> None:
        assert self.session is not None
        self._request("running (i stops it)")
        self.session.cont()

    def action_reverse_step(self) -> None:
        assert self.session is not None
        self._request("reverse-stepping ...")
        self.session.reverse_step()

    def action_reverse_cont(self) -> None:
        assert self.session is not None
        self._request("reverse-continuing ...")
        self.session.reverse_cont()

    def action_toggle_break(self) -> None:
        assert self.session is not None
        if self.cursor is None:
            return
        self._request("setting the breakpoint ...")
        self.session.toggle_breakpoint(self.cursor)

    def action_until(self) -> None:
        assert self.session is not None
        if self.cursor is None:
            return
        self._request("running to the cursor (i stops it)")
        self.session.run_to(self.cursor)

    def action_cursor(self, delta: int) -> None:
        """Move the code cursor; past the lines shown, the code view moves with it."""
        st = self.state
        if st is None or not st.code or self.busy is not None:
            return
        addrs = [c.addr for c in st.code]
        at = addrs.index(self.cursor) if self.cursor in addrs else 0
        want = at + delta
        if 0 <= want < len(addrs):
            self.cursor = addrs[want]
            self._set("#rp-code", _code_markup(st, self.cursor))
            return
        assert self.session is not None
        edge = addrs[0] if want < 0 else addrs[-1]
        self._request("moving the code view ...")
        self.session.show_code(f"{edge:#x}")

    def action_goto(self) -> None:
        self._prompt("goto", "show the code of: symbol, address (hex) or $reg; "
                     "empty: follow the PC")  # fmt: skip

    def action_edit_register(self) -> None:
        self._prompt("reg", "register and value, e.g. rdi 30 or rax 0x10; Esc cancels")

    def action_edit_memory(self) -> None:
        self._prompt("poke", "address and 64-bit value, e.g. counter 5 or $rsp+8 0x10")

    def action_pick_thread(self) -> None:
        tids = " ".join(str(t) for t in self.state.threads) if self.state else ""
        self._prompt("thread", f"select thread (TID): {tids}")

    def action_stop(self) -> None:
        if self.session is not None:
            self.session.interrupt()

    def action_next_thread(self) -> None:
        assert self.session is not None
        self._request("selecting the next thread ...")
        self.session.next_thread()

    def action_checkpoint(self) -> None:
        assert self.session is not None
        self._request("taking a checkpoint ...")
        self.session.checkpoint()

    def action_jump(self) -> None:
        self._prompt("jump", "jump to: address (hex), symbol[+off] or $reg; Esc cancels")

    def action_rewind(self) -> None:
        marks = self.state.checkpoints if self.state else ()
        latest = marks[-1].id if marks else "?"
        ids = ", ".join(str(m.id) for m in marks)
        self._prompt("back", f"back to checkpoint ({ids}); Enter: the latest ({latest})")

    def action_memory(self) -> None:
        box = self.query_one("#rp-mem-addr", Input)
        self.set_focus(box)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.BINDINGS))

    def action_close(self) -> None:
        prompt = self.query_one("#rp-prompt", Input)
        if prompt.display:
            self._hide_prompt()
            return
        if isinstance(self.focused, Input):
            self.set_focus(None)
            return
        self.dismiss()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.session is not None and self.session.running
        if action == "stop":
            return True if running else None
        if action in ("step", "step_over", "cont", "jump", "checkpoint", "memory", "until",
                      "edit_register", "edit_memory", "goto", "cursor"):  # fmt: skip
            ok = self.state is not None and self.state.alive and self.busy is None
            return True if ok else None
        if action in ("reverse_step", "reverse_cont", "toggle_break"):  # also once it ended
            ok = self.state is not None and self.busy is None
            return True if ok else None
        if action == "pick_thread":
            if self.state is None or len(self.state.threads) < 2:
                return False
            return True if self.state.alive and self.busy is None else None
        if action == "next_thread":  # hidden for a single-threaded process
            if self.state is None or len(self.state.threads) < 2:
                return False
            return True if self.state.alive and self.busy is None else None
        if action == "rewind":
            ok = self.state is not None and bool(self.state.checkpoints) and self.busy is None
            return True if ok else None
        if action == "open":
            return True if not running else None
        return True

    # -- the prompt (jump, back) -----------------------------------------------------------
    def _prompt(self, mode: str, placeholder: str) -> None:
        box = self.query_one("#rp-prompt", Input)
        self._prompt_mode = mode
        box.value = ""
        box.placeholder = placeholder
        box.display = True
        self.set_focus(box)

    def _hide_prompt(self) -> None:
        box = self.query_one("#rp-prompt", Input)
        box.display = False
        self._prompt_mode = None
        self.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        assert self.session is not None
        text = event.value.strip()
        if event.input.id == "rp-mem-addr":
            self.set_focus(None)
            if self.state is not None and self.state.alive:
                self._request("reading memory ...")
                self.session.show_memory(text or None)
            return
        if event.input.id != "rp-prompt":
            return
        mode = self._prompt_mode
        self._hide_prompt()
        words = text.split()
        if mode == "jump" and text:
            self._request(f"jumping to {text} ...")
            self.session.jump(text)
        elif mode == "goto":
            self._request("showing the code ...")
            self.cursor = None
            self.session.show_code(text or None)
        elif mode in ("reg", "poke") and text:
            if len(words) != 2:
                what = "a register and a value" if mode == "reg" else "an address and a value"
                self._fail(f"type {what}, separated by a space")
                return
            self._request("writing ...")
            if mode == "reg":
                self.session.set_register(words[0], words[1])
            else:
                self.session.write_word(words[0], words[1])
        elif mode == "thread" and text:
            if not text.isdigit():
                self._fail(f"{text!r} is not a thread id")
                return
            self._request(f"selecting thread {text} ...")
            self.session.select_thread(int(text))
        elif mode == "back":
            if text and not text.isdigit():
                self._fail(f"{text!r} is not a checkpoint number")
                return
            self._request("going back ...")
            self.session.back(int(text) if text else None)

    # -- results (posted from the session's thread) ---------------------------------------------
    def on_state_ready(self, message: StateReady) -> None:
        self.show(message.state)

    def show(self, state: DebugState) -> None:
        """Draw `state` (the session's answer to the last request)."""
        old = self.state
        addrs = [c.addr for c in state.code]
        pc = next((c.addr for c in state.code if c.is_pc), None)
        on_pc = old is not None and any(c.is_pc and c.addr == self.cursor for c in old.code)
        if on_pc and state.code_follows_pc and pc is not None:
            self.cursor = pc  # a cursor on the PC line moves with the PC
        elif self.cursor not in addrs:
            self.cursor = state.code_at if state.code_at in addrs else pc
        self.state = state
        self.busy = None
        self._draw()
        self.refresh_bindings()

    def on_session_failed(self, message: SessionFailed) -> None:
        self._fail(message.error)

    def on_session_busy(self, message: SessionBusy) -> None:
        self._set_busy(message.text)

    def _fail(self, error: str) -> None:
        self.error = error
        self.busy = None
        self._draw_status()
        self.refresh_bindings()

    # -- drawing --------------------------------------------------------------------------------
    def _draw(self) -> None:
        with self.app.batch_update():
            self._draw_status()
            st = self.state
            self._set("#rp-regs", _regs_markup(st))
            self._set("#rp-breaks", _breaks_markup(st))
            self._set("#rp-code", _code_markup(st, self.cursor))
            self._set("#rp-memory", _memory_markup(st))
            self._set("#rp-stack", _stack_markup(st))
            self._set("#rp-timeline", _timeline_markup(st))
            box = self.query_one("#rp-memory-box")
            if st is not None and st.memory_addr is not None:
                follow = " (follows SP)" if st.memory_follows_sp else ""
                box.border_title = f"memory at {st.memory_addr:#x}{follow}"
            else:
                box.border_title = "memory"
            self._refresh_log(force=True)

    def _draw_status(self) -> None:
        st = self.state
        if self.error is not None:
            text = f"[b $error]error: {escape(self.error)}[/]"
        elif self.busy is not None:
            text = f"[b $warning]{escape(self.busy)}[/]"
        elif st is None:
            text = NO_CORE
        else:
            pid = f"pid {st.pid}" if st.pid is not None else "no process"
            if st.threads:  # the selected thread highlighted; w selects the next
                pid += "  threads " + " ".join(
                    f"[reverse]{t}[/]" if t == st.thread else str(t) for t in st.threads
                )
            text = (f"[b]{escape(os.path.basename(st.core))}[/]  {pid}  step {st.steps}  "
                    f"{escape(st.status)}")  # fmt: skip
            if st.warnings:
                text += f"  [$warning]({len(st.warnings)} warning"
                text += "s" if len(st.warnings) > 1 else ""
                text += ": see output)[/]"
        self._set("#rp-status", text)

    def _refresh_log(self, force: bool = False) -> None:
        if self.session is None:
            return
        try:
            size = self.session.log_path.stat().st_size
        except OSError:
            size = 0
        if size == self._log_size and not force:
            return
        self._log_size = size
        warnings = self.state.warnings if self.state else ()
        lines = [f"[$warning]warning: {escape(w)}[/]" for w in warnings]
        lines += [escape(x) for x in self.session.log_tail().splitlines()]
        shown = max(1, self.query_one("#rp-log", Static).content_size.height)
        self._set("#rp-log", "\n".join(lines[-shown:]) or "[$text-muted](no output yet)[/]")

    def _set(self, selector: str, markup: str) -> None:
        self.query_one(selector, Static).update(markup)


def _regs_markup(st: DebugState | None) -> str:
    """Every register, in two columns (names padded so the values line up)."""
    if st is None or not st.registers:
        return "[$text-muted]-[/]"
    cells = []
    for name, value, changed in st.registers:
        v = f"{value:016x}"
        cell = f"{name:<7} [$warning]{v}[/]" if changed else f"{name:<7} {v}"
        cells.append((cell, len(f"{name:<7} {v}")))
    rows = (len(cells) + 1) // 2
    lines = []
    for i in range(rows):
        left, width = cells[i]
        line = left
        if i + rows < len(cells):
            line += " " * (26 - width) + cells[i + rows][0]
        lines.append(line)
    return "\n".join(lines)


def _breaks_markup(st: DebugState | None) -> str:
    if st is None or not st.breakpoints:
        return "[$text-muted]none: Space (F9) on a code line sets one[/]"
    return "\n".join(escape(f"{a:#x} <{where}>") for a, where in st.breakpoints)


def _code_markup(st: DebugState | None, cursor: int | None = None) -> str:
    """The code around the PC (or a place gone to): ▶ marks the PC, ● a breakpoint, and
    the line under the cursor is highlighted."""
    if st is None:
        return "[$text-muted]-[/]"
    if not st.code:
        return f"[$text-muted]{escape(st.status)}[/]"
    lines = []
    width = min(max(len(c.location) for c in st.code) + 2, 32)
    for line in st.code:
        where = f"<{line.location}>" if line.location else ""
        text = f"{line.addr:#014x} {escape(f'{where:<{width}}')} {escape(line.text)}"
        mark = ("▶" if line.is_pc else " ") + ("●" if line.breakpoint else " ")
        if line.is_pc:
            text = f"[b $text on $accent-muted]{mark}{text}[/]"
        elif line.breakpoint:
            text = f"[$error]{mark}[/]{text}"
        else:
            text = f"{mark}{text}"
        if line.addr == cursor and not line.is_pc:
            text = f"[reverse]{text}[/]"
        elif line.addr == cursor:
            text = f"[u]{text}[/]"
        lines.append(text)
    return "\n".join(lines)


def _memory_markup(st: DebugState | None) -> str:
    if st is None or st.memory_addr is None:
        return "[$text-muted]-[/]"
    if not st.memory:
        return f"[$error]{st.memory_addr:#x} is not mapped[/]"
    lines = []
    base = st.memory_addr
    for off in range(0, len(st.memory), 16):
        chunk = st.memory[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk[:8]) + "  "
        hexes += " ".join(f"{b:02x}" for b in chunk[8:])
        # memory is anything: every "[" is escaped, not only those that close a tag
        # on this line (escape() leaves "[/..b" alone, and a "]" on a later line
        # would close it); a backslash, which escapes, shows as "."
        text = "".join(chr(b) if 32 <= b < 127 and b != 0x5C else "." for b in chunk)
        lines.append(f"{base + off:012x}  {hexes:<48}  {text.replace('[', chr(92) + '[')}")
    return "\n".join(lines)


def _stack_markup(st: DebugState | None) -> str:
    if st is None or not st.stack:
        return "[$text-muted]-[/]"
    return "\n".join(escape(f) for f in st.stack)


def _timeline_markup(st: DebugState | None) -> str:
    lines = []
    if st is not None and st.reverse:
        auto = f", {st.automatic} automatic checkpoints" if st.automatic else ""
        lines.append(f"[$text-muted]{escape(st.reverse)}{auto}[/]")
    if st is None or not st.checkpoints:
        lines.append("[$text-muted]none yet: t takes one, b goes back[/]")
    else:
        lines += [f"[b]#{m.id}[/] step {m.step} {escape(m.location)}" for m in st.checkpoints]
    return "\n".join(lines)

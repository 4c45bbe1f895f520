"""The restorer pane of syscap top, driven through Pilot with real cores of a small C program.

The program and its core come from tests/tui/restorer_demo.py (static, non-PIE, dumped with ASLR
off), so the core's addresses are the same on every run and the SVG snapshot, the same
picture as screenshots/restorer-120x40, is deterministic; only the PID is masked. Needs
root, gcc (static glibc) and gdb's gcore.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Static

from restorer.core import Core
from tests.cores import cores_in_cwd, unlimited_cores
from tests.processes import running_from
from tests.tui.restorer_demo import build_program, demo_app, press, settle, symbol_address
from tests.tui.restorer_demo import trap_core as demo_trap_core
from tests.tui.synthetic import SyntheticSource
from tests.tui.top_fakes import drive, make_app, one_process
from tui.app import SyscapTop
from tui.restorer_pane import OpenCoreScreen, RestorerPane, TakeCoreScreen
from tui.screens import HelpScreen

SnapCompare = Callable[..., bool]


@pytest.fixture(scope="module")
def program() -> Iterator[Path]:
    """The demo program (static, non-PIE) in /tmp/syscap-pane-XXXXXXXX."""
    path = build_program()
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def trap_core(program: Path) -> Path:
    """A kernel core of the demo at its int3, dumped with ASLR off and an empty environment."""
    return demo_trap_core(program)


@pytest.fixture(autouse=True)
def no_leftovers(program: Path) -> Iterator[None]:
    before = set(running_from(program.parent))
    yield
    left = [p for p in running_from(program.parent) if p not in before]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left running: {left}"


async def open_pane(pilot: Pilot[None], app: SyscapTop, **kwargs: object) -> RestorerPane:
    pane = RestorerPane(**kwargs)  # type: ignore[arg-type]
    await app.push_screen(pane)
    await settle(pilot, pane)
    return pane


def on_pane(steps: Callable[[Pilot[None], RestorerPane], Awaitable[None]],
            app: SyscapTop | None = None, **pane_args: object) -> None:
    """Open the pane (pane_args: core=, exe=, take_pid=) over app (default: a synthetic
    top) and run steps in it."""
    top = app or make_app(SyntheticSource(n=5))

    async def script(pilot: Pilot[None]) -> None:
        await steps(pilot, await open_pane(pilot, top, **pane_args))

    drive(top, script)


def text(pane: RestorerPane, selector: str) -> str:
    return str(pane.query_one(selector, Static).render())


def reg(pane: RestorerPane, name: str) -> int:
    assert pane.state is not None
    return next(v for n, v, _ in pane.state.registers if n == name)


def core_pc(core: Path) -> int:
    with Core(core) as c:
        return c.signal_thread.regs.pc


# -- open, step, checkpoints, continue --------------------------------------------------


def test_open_shows_the_cores_pc_in_registers_and_code(trap_core: Path) -> None:
    pc = core_pc(trap_core)

    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        assert pane.error is None
        assert reg(pane, "rip") == pc
        assert f"rip     {pc:016x}" in text(pane, "#rp-regs")
        code = text(pane, "#rp-code")
        marked = [line for line in code.splitlines() if line.startswith("▶")]
        assert len(marked) == 1 and f"{pc:#014x} <main+" in marked[0]
        assert "core dumped by SIGTRAP" in text(pane, "#rp-status")
        assert "main+" in text(pane, "#rp-stack")

    on_pane(steps, core=str(trap_core))


def test_step_advances_the_pc_to_the_next_instruction(trap_core: Path) -> None:
    pc = core_pc(trap_core)

    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        assert pane.state is not None
        addrs = [c.addr for c in pane.state.code]
        following = addrs[addrs.index(pc) + 1]  # the instruction at the PC is a mov

        await press(pilot, pane, "s")

        assert reg(pane, "rip") == following
        assert pane.state.steps == 1
        assert "step 1" in text(pane, "#rp-status")

    on_pane(steps, core=str(trap_core))


def test_checkpoint_then_back_returns_to_the_checkpointed_pc(trap_core: Path) -> None:
    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        await press(pilot, pane, "s")
        at_checkpoint = reg(pane, "rip")
        await press(pilot, pane, "t")
        assert "#1" in text(pane, "#rp-timeline")
        for _ in range(3):
            await press(pilot, pane, "s")
        assert reg(pane, "rip") != at_checkpoint

        await pilot.press("b")
        assert pane.query_one("#rp-prompt", Input).display
        await press(pilot, pane, "enter")  # the latest checkpoint

        assert pane.error is None
        assert reg(pane, "rip") == at_checkpoint
        assert pane.state is not None and pane.state.steps == 1
        assert "back at checkpoint 1" in text(pane, "#rp-status")

    on_pane(steps, core=str(trap_core))


def test_continue_runs_to_exit_and_the_pane_says_so(trap_core: Path) -> None:
    app = make_app(SyntheticSource(n=5))

    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        await press(pilot, pane, "c")

        assert pane.state is not None and not pane.state.alive
        assert "process exited with status 7" in text(pane, "#rp-status")
        # The process's stdout went to the log panel, not to the terminal.
        assert "after: 705" in text(pane, "#rp-log")
        assert app.screen is pane
        await pilot.press("s")  # nothing to step: the key is off, nothing breaks
        assert pane.error is None and pane.busy is None

    on_pane(steps, app, core=str(trap_core))


def test_stop_interrupts_a_running_process_and_jump_moves_the_pc(
    program: Path, tmp_path: Path
) -> None:
    app = make_app(SyntheticSource(n=5))
    spinner = subprocess.Popen([program, "spin"], stdout=subprocess.DEVNULL)

    async def script(pilot: Pilot[None]) -> None:
        pane = await open_pane(pilot, app, take_pid=spinner.pid)
        spinner.kill()
        assert pane.error is None, pane.error
        await pilot.press("c")
        await pilot.pause(0.2)
        assert pane.busy is not None and "running" in pane.busy

        await press(pilot, pane, "i")

        assert pane.state is not None and pane.state.alive
        assert "interrupted" in text(pane, "#rp-status")
        await press(pilot, pane, "j", *"work", "enter")
        assert "jumped to" in text(pane, "#rp-status")
        assert "<work>" in text(pane, "#rp-code").splitlines()[0]

    try:
        drive(app, script)
    finally:
        spinner.kill()
        spinner.wait()


@pytest.fixture(scope="module")
def threads_core(program: Path) -> Path:
    """A kernel core of tests/restorer/programs/token_ring.c: four threads, three asleep."""
    source = Path(__file__).resolve().parents[1] / "restorer" / "programs" / "token_ring.c"
    exe = program.parent / "token_ring"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", exe, source], check=True)
    cwd = program.parent / "thread-cores"
    cwd.mkdir(exist_ok=True)
    with cores_in_cwd():
        p = subprocess.run([exe, "kernel"], cwd=cwd, capture_output=True, check=False,
                           preexec_fn=unlimited_cores)  # fmt: skip
    assert p.returncode == -signal.SIGQUIT, p
    return next(cwd.glob("core*"))


def test_a_multithreaded_core_shows_its_threads_and_w_selects_the_next(
    threads_core: Path,
) -> None:
    app = make_app(SyntheticSource(n=5))
    with Core(threads_core) as c:
        tids = [t.tid for t in c.threads]
        first = c.signal_thread.tid

    async def script(pilot: Pilot[None]) -> None:
        pane = await open_pane(pilot, app, core=str(threads_core))
        assert pane.state is not None and pane.error is None, pane.error
        assert sorted(pane.state.threads) == sorted(tids)
        assert pane.state.thread == first
        status = text(pane, "#rp-status")
        assert all(str(t) in status for t in tids), status

        await press(pilot, pane, "w")

        order = list(pane.state.threads)
        assert pane.state.thread == order[(order.index(first) + 1) % len(order)]
        assert f"thread {pane.state.thread} selected" in text(pane, "#rp-status")
        await press(pilot, pane, "c")
        assert "process exited with status 0" in text(pane, "#rp-status")
        assert "done after 24 turns" in text(pane, "#rp-log")

    drive(app, script)


# -- breakpoints, run to cursor, reverse, edits, threads ---------------------------------


def test_space_sets_a_listed_breakpoint_on_the_cursor_line_and_u_runs_to_the_cursor(
    trap_core: Path,
) -> None:
    pc = core_pc(trap_core)

    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        assert pane.state is not None and pane.cursor == pc
        addrs = [c.addr for c in pane.state.code]
        target = addrs[addrs.index(pc) + 3]
        await pilot.press("down", "down", "down")
        assert pane.cursor == target

        await press(pilot, pane, "space")
        assert [a for a, _ in pane.state.breakpoints] == [target]
        assert f"{target:#x} <main+" in text(pane, "#rp-breaks")
        await press(pilot, pane, "space")
        assert not pane.state.breakpoints

        await press(pilot, pane, "u")
        assert reg(pane, "rip") == target
        assert not pane.state.breakpoints  # the stop at the cursor was a temporary one

    on_pane(steps, core=str(trap_core))


def test_reverse_continue_goes_back_to_the_breakpoint_and_output_is_not_repeated(
    trap_core: Path, program: Path
) -> None:
    work = symbol_address(program, "work")

    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        await press(pilot, pane, "g", *"work", "enter")
        assert pane.cursor == work and "<work>" in text(pane, "#rp-code")
        await press(pilot, pane, "space")
        await press(pilot, pane, "c")
        assert reg(pane, "rip") == work
        await press(pilot, pane, "c")
        assert "exited with status 7" in text(pane, "#rp-status")

        await press(pilot, pane, "C")  # reverse-continue: from the end back to work's entry
        assert pane.error is None, pane.error
        assert reg(pane, "rip") == work
        assert f"reverse-continue to {work:#x} <work>" in text(pane, "#rp-status")
        assert "replayed from the record" in text(pane, "#rp-status")
        await press(pilot, pane, "c")

        assert "exited with status 7" in text(pane, "#rp-status")
        assert pane.session is not None
        assert pane.session.log_tail().count("after: 705") == 1  # written once

    on_pane(steps, core=str(trap_core))


def test_e_writes_a_memory_word_and_the_output_changes_as_predicted(
    trap_core: Path, program: Path
) -> None:
    counter = symbol_address(program, "counter")

    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        await press(pilot, pane, "e", *"counter 5", "enter")
        assert f"wrote 0x5 at {counter:#x}" in text(pane, "#rp-status")
        await press(pilot, pane, "c")  # counter += work(20): 5 + 570
        assert pane.session is not None and "after: 575" in pane.session.log_tail()

    on_pane(steps, core=str(trap_core))


def test_a_bad_register_edit_is_one_line(trap_core: Path) -> None:
    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        await press(pilot, pane, "r", *"rxx 1", "enter")
        assert pane.error == "no register 'rxx'"
        await press(pilot, pane, "r", *"rdi zz", "enter")
        assert pane.error is not None and "is not a number" in pane.error

    on_pane(steps, core=str(trap_core))


def test_a_multithreaded_core_refuses_reverse_in_one_line_and_w_picks_a_thread(
    threads_core: Path,
) -> None:
    app = make_app(SyntheticSource(n=5))
    with Core(threads_core) as c:
        last = c.threads[-1].tid

    async def script(pilot: Pilot[None]) -> None:
        pane = await open_pane(pilot, app, core=str(threads_core))
        assert "reverse: off" in text(pane, "#rp-timeline")

        await press(pilot, pane, "S")
        assert pane.error is not None and "single-threaded" in pane.error
        status = text(pane, "#rp-status")
        assert len(status.splitlines()) == 1 and "--tid" in status

        await press(pilot, pane, "W", *str(last), "enter")
        assert pane.error is None and pane.state is not None and pane.state.thread == last

    drive(app, script)


# -- errors and cleanup ------------------------------------------------------------------


def test_a_bad_core_file_shows_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-core"
    bad.write_text("this is not an ELF core\n")
    app = make_app(SyntheticSource(n=5))

    async def script(pilot: Pilot[None]) -> None:
        pane = RestorerPane()
        await app.push_screen(pane)
        await pilot.press("o")
        assert isinstance(app.screen, OpenCoreScreen)
        app.screen.query_one("#rp-open-core", Input).value = str(bad)
        await pilot.press("enter")
        assert pane.is_current
        await settle(pilot, pane)

        assert pane.error is not None and "\n" not in pane.error
        status = text(pane, "#rp-status")
        assert status.startswith("error: ") and len(status.splitlines()) == 1
        assert "Traceback" not in status

    drive(app, script)


def test_a_wrong_executable_shows_a_one_line_error(trap_core: Path) -> None:
    app = make_app(SyntheticSource(n=5))

    async def script(pilot: Pilot[None]) -> None:
        pane = await open_pane(pilot, app, core=str(trap_core), exe="/bin/true")

        assert pane.state is None
        status = text(pane, "#rp-status")
        assert status.startswith("error: /bin/true is not the program that wrote this core")
        assert len(status.splitlines()) == 1

    drive(app, script)


def test_the_open_dialog_refuses_a_missing_file(tmp_path: Path) -> None:
    app = make_app(SyntheticSource(n=5))

    async def script(pilot: Pilot[None]) -> None:
        await app.push_screen(RestorerPane())
        await pilot.press("o")
        dialog = app.screen
        assert isinstance(dialog, OpenCoreScreen)
        dialog.query_one("#rp-open-core", Input).value = str(tmp_path / "nothing")
        await pilot.press("enter")
        assert app.screen is dialog
        assert "no such file" in str(dialog.query_one("#rp-open-error").render())

    drive(app, script)


def test_closing_the_pane_kills_the_process_and_its_checkpoints(
    program: Path, trap_core: Path
) -> None:
    app = make_app(SyntheticSource(n=5))

    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        await press(pilot, pane, "t")
        assert pane.state is not None
        # the process, its checkpoint, and those reverse execution keeps
        assert len(running_from(program.parent)) == 2 + pane.state.automatic

        await pilot.press("escape")
        await pilot.pause()

        assert not isinstance(app.screen, RestorerPane)
        assert running_from(program.parent) == []

    on_pane(steps, app, core=str(trap_core))


def test_closing_the_pane_while_the_process_runs_leaves_nothing_running(program: Path) -> None:
    app = make_app(SyntheticSource(n=5))
    spinner = subprocess.Popen([program, "spin"], stdout=subprocess.DEVNULL)

    async def script(pilot: Pilot[None]) -> None:
        pane = await open_pane(pilot, app, take_pid=spinner.pid)
        assert pane.state is not None and pane.state.alive
        await pilot.press("c")
        await pilot.pause(0.2)
        assert pane.session is not None and pane.session.running

        await pilot.press("escape")
        await pilot.pause()

        assert not isinstance(app.screen, RestorerPane)
        assert running_from(program.parent) == [spinner.pid]

    try:
        drive(app, script)
    finally:
        spinner.kill()
        spinner.wait()


def test_quitting_the_app_with_the_pane_open_leaves_nothing_running(
    program: Path, trap_core: Path
) -> None:
    async def steps(pilot: Pilot[None], pane: RestorerPane) -> None:
        await press(pilot, pane, "t")
        await pilot.press("q")

    on_pane(steps, core=str(trap_core))
    assert running_from(program.parent) == []


# -- taking a core of a live process ----------------------------------------------------------


def test_c_on_a_live_process_takes_a_core_and_the_process_keeps_running(program: Path) -> None:
    proc = subprocess.Popen(
        [program, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == b"before: 135\n"
    assert proc.stdout.readline() == b"waiting\n"
    source = SyntheticSource(n=5)
    app = make_app(source)
    snap = one_process(proc.pid, "pane")

    async def script(pilot: Pilot[None]) -> None:
        app.apply_snapshot(snap)
        await pilot.pause()
        await pilot.press("c")
        dialog = app.screen
        assert isinstance(dialog, TakeCoreScreen)
        assert (dialog.pid, dialog.comm) == (proc.pid, "pane")
        await pilot.click("#rp-take-ok")
        pane = app.screen
        assert isinstance(pane, RestorerPane)
        await settle(pilot, pane)

        assert pane.error is None, pane.error
        assert pane.state is not None and pane.state.alive
        assert pane.state.pid != proc.pid
        assert proc.poll() is None  # the original runs on
        await press(pilot, pane, "c")  # the copy's stdin is /dev/null: its read() returns 0
        assert "exited with status 7" in text(pane, "#rp-status")
        assert "read 0" in text(pane, "#rp-log")

    try:
        drive(app, script)
        proc.stdin.write(b"live\n")
        proc.stdin.close()
        assert proc.stdout.read().startswith(b"read 5\n")
        assert proc.wait(timeout=10) == 7
    finally:
        proc.kill()
        proc.wait()


def test_the_take_core_dialog_can_be_cancelled() -> None:
    source = SyntheticSource(n=5)
    app = make_app(source)

    async def script(pilot: Pilot[None]) -> None:
        app.apply_snapshot(source.snapshot())
        await pilot.pause()
        await pilot.press("c")
        assert isinstance(app.screen, TakeCoreScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, (TakeCoreScreen, RestorerPane))

    drive(app, script)


# -- keys ---------------------------------------------------------------------------------------


def test_help_lists_the_pane_keys_and_every_binding_has_id_and_tooltip() -> None:
    from textual.binding import Binding

    for cls in (RestorerPane, OpenCoreScreen, TakeCoreScreen):
        for b in cls.BINDINGS:
            assert isinstance(b, Binding)
            assert b.id and b.tooltip, f"{cls.__name__}: {b.key}"
    app = make_app(SyntheticSource(n=5))

    async def script(pilot: Pilot[None]) -> None:
        await app.push_screen(RestorerPane())
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=120, file=io.StringIO(), record=True)
        console.print(app.screen.query_one("#help-text", Static).content)
        shown = console.export_text()
        for words in ("Execute one instruction", "Take a checkpoint", "Go back to a checkpoint",
                      "Stop (interrupt)", "Set the PC"):  # fmt: skip
            assert words in shown

    drive(app, script)


def test_live_view_keys_do_nothing_under_the_pane() -> None:
    sent: list[tuple[int, int]] = []
    source = SyntheticSource(n=5)
    app = make_app(source, send_signal=lambda pid, sig: sent.append((pid, sig)))

    async def script(pilot: Pilot[None]) -> None:
        app.apply_snapshot(source.snapshot())
        view = app.model.stack[0]
        await app.push_screen(RestorerPane())
        await pilot.press("k", "v", "f4")
        assert isinstance(app.screen, RestorerPane)  # no signal dialog, no filter dialog
        assert app.model.stack[0] is view and sent == []

    drive(app, script)


# -- snapshot ----------------------------------------------------------------------------------


def test_pane_snapshot_120x40(snap_compare: SnapCompare, trap_core: Path, program: Path) -> None:
    """After a step and a checkpoint, memory shown at `message`; the PID is masked."""
    app, before = demo_app(trap_core, symbol_address(program, "message"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=before)


def test_memory_that_looks_like_markup_shows_as_it_is() -> None:
    """A dump's text column is memory: "[/..b" with a "]" on a later line once made
    the whole pane fail to render (a closing tag that escape() leaves alone)."""
    from dataclasses import dataclass

    from textual.markup import to_content

    from tui.restorer_pane import _memory_markup

    @dataclass
    class State:
        memory_addr: int
        memory: bytes

    data = b"[/..b" + bytes(11) + b"xx]yy[b]zz\\[q" + bytes(3)
    plain = to_content(_memory_markup(State(0x1000, data))).plain  # type: ignore[arg-type]
    assert plain.splitlines()[0].endswith("[/..b...........")
    assert plain.splitlines()[1].endswith("xx]yy[b]zz.[q...")

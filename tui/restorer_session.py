"""The restorer pane's engine: one dedicated thread owns the restored process (no Textual).

ptrace binds a tracee to the thread that attached it, so restore() and every Controller
call run on this session's single worker thread; the pane only submits requests and
receives a `DebugState` (a frozen picture of registers, code, memory, stack, timeline)
or a one-line error through callbacks, which run on the worker thread (the pane posts
them on as messages). `interrupt()` is the one call made from the UI thread.

The restored process's stdin is /dev/null and its stdout and stderr go to a log file
the pane shows, so its output never reaches the terminal the UI draws on.

A single-threaded process gets a timeline as soon as it is restored (Controller.record):
reverse-step and reverse-continue work from the start, and the syscalls it makes are
recorded so that going back and on again repeats none of its output.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from restorer.arch import REGS
from restorer.control import ControlError, Controller, Event
from restorer.core import Core
from restorer.errors import RestoreError, one_line
from restorer.restore import restore
from restorer.tracee import signal_name

# Every register (x86-64: struct user_regs_struct), in the order the pane shows them.
REG_ORDER = REGS.DISPLAY
MEMORY_BYTES = 224  # 14 lines of 16
LOG_TAIL_BYTES = 4096
REVERSE_EVERY = 200  # instructions between automatic checkpoints


@dataclass(frozen=True, slots=True)
class CodeLine:
    addr: int
    location: str
    text: str  # mnemonic and operands
    is_pc: bool
    breakpoint: bool = False


@dataclass(frozen=True, slots=True)
class CheckpointMark:
    id: int
    step: int
    pc: int
    location: str


@dataclass(frozen=True, slots=True)
class DebugState:
    """What the pane shows after a request. Registers etc. are empty once the process ended."""

    core: str
    pid: int | None
    alive: bool
    status: str  # one line: why it stopped, or how it ended
    steps: int
    registers: tuple[tuple[str, int, bool], ...]  # name, value, changed by the last request
    code: tuple[CodeLine, ...]
    memory_addr: int | None
    memory: bytes
    memory_follows_sp: bool
    stack: tuple[str, ...]
    checkpoints: tuple[CheckpointMark, ...]
    warnings: tuple[str, ...]
    threads: tuple[int, ...] = ()  # TIDs of a multi-threaded process (empty: one thread)
    thread: int | None = None  # the selected one: registers, code, stack and steps
    breakpoints: tuple[tuple[int, str], ...] = ()  # address, location
    code_follows_pc: bool = True  # False: the code shown is around a place gone to (g)
    reverse: str = ""  # one line on reverse execution: how, or why not
    automatic: int = 0  # checkpoints the timeline keeps (not in `checkpoints`)
    code_at: int | None = None  # the address the code is shown around (PC, or gone to)


class RestorerSession:
    """A core restored and controlled on one worker thread.

    on_state and on_error are called on the worker thread after each request.
    """

    def __init__(
        self,
        on_state: Callable[[DebugState], object],
        on_error: Callable[[str], object],
        on_busy: Callable[[str], object] | None = None,
    ) -> None:
        self._on_state = on_state
        self._on_error = on_error
        self._on_busy = on_busy or (lambda _text: None)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restorer")
        self._dir = Path(tempfile.mkdtemp(prefix="syscap-restorer-"))
        self.log_path = self._dir / "output.log"
        self.log_path.touch()
        self._ctl: Controller | None = None
        self._core: Core | None = None
        self._core_path = ""
        self._warnings: list[str] = []
        self._memory_expr: str | None = None  # None: follow SP
        self._code_addr: int | None = None  # None: follow PC
        self._reverse = ""
        self._last_regs: dict[str, int] = {}
        self._changed: set[str] = set()
        self._pending_signal = 0
        self._running = threading.Event()
        self._closed = False

    # -- called from the UI thread ---------------------------------------------------
    @property
    def running(self) -> bool:
        """A continue is in flight (only interrupt() gets through)."""
        return self._running.is_set()

    def open(self, core_path: str, exe: str | None = None) -> Future[None]:
        return self._submit(lambda: self._open(core_path, exe))

    def take_and_open(self, pid: int) -> Future[None]:
        """gcore the live process `pid` (it keeps running), then restore that core."""
        return self._submit(lambda: self._take(pid))

    def step(self) -> Future[None]:
        return self._control(lambda c: c.step())

    def step_over(self) -> Future[None]:
        """A call runs until it returns: that can take long, so Stop works here too."""
        return self._control(lambda c: self._running_call(c.step_over))

    def cont(self) -> Future[None]:
        return self._control(self._cont)

    def jump(self, where: str) -> Future[None]:
        def go(c: Controller) -> str:
            addr = c.resolve(where)
            c.jump(addr)
            return f"jumped to {addr:#x} <{c.location(addr)}>"

        return self._control(go)

    def next_thread(self) -> Future[None]:
        """Select the next thread of a multi-threaded process (in TID list order)."""

        def pick(c: Controller) -> str:
            tids = [t.pid for t in c.threads if t.alive]
            at = tids.index(c.tracee.pid) if c.tracee.pid in tids else -1
            c.select(tids[(at + 1) % len(tids)])
            self._last_regs = {}  # another thread's registers: nothing "changed"
            return f"thread {c.tracee.pid} selected"

        return self._control(pick)

    def select_thread(self, tid: int) -> Future[None]:
        def pick(c: Controller) -> str:
            c.select(tid)
            self._last_regs = {}
            return f"thread {tid} selected"

        return self._control(pick)

    def toggle_breakpoint(self, addr: int) -> Future[None]:
        def toggle(c: Controller) -> str:
            on = c.toggle_breakpoint(addr)
            where = f"{addr:#x} <{c.location(addr)}>"
            return f"breakpoint set at {where}" if on else f"breakpoint at {where} removed"

        return self._control(toggle, ran=False, allow_ended=True)

    def run_to(self, addr: int) -> Future[None]:
        """Continue to `addr` (the code line under the cursor)."""
        return self._control(lambda c: self._running_call(lambda: c.run_to(addr)))

    def reverse_step(self) -> Future[None]:
        return self._control(lambda c: self._reverse_call(c.reverse_step), allow_ended=True)

    def reverse_cont(self) -> Future[None]:
        return self._control(lambda c: self._reverse_call(c.reverse_cont), allow_ended=True)

    def set_register(self, name: str, value: str) -> Future[None]:
        def set_it(c: Controller) -> str:
            v = _number(value) % (1 << 64)
            c.set_regs(**{name: v})
            return f"{name} = {v:#x}"

        return self._control(set_it, ran=False)

    def write_word(self, where: str, value: str) -> Future[None]:
        """Write a 64-bit little-endian word at `where` (address, symbol, $reg)."""

        def write(c: Controller) -> str:
            addr = c.resolve(where)
            v = _number(value) % (1 << 64)
            c.write_memory(addr, v.to_bytes(8, "little"))
            return f"wrote {v:#x} at {addr:#x}"

        return self._control(write, ran=False)

    def show_code(self, where: str | None) -> Future[None]:
        """Show the code at `where` (symbol, address, $reg), or follow the PC with None."""

        def show(c: Controller) -> str:
            if where is None:
                self._code_addr = None
                return "code follows the PC"
            addr = c.resolve(where)
            c.disassemble(addr, 1)  # an address with no code is an error here
            self._code_addr = addr
            return f"code at {addr:#x} <{c.location(addr)}>"

        return self._control(show, ran=False)

    def checkpoint(self) -> Future[None]:
        def take(c: Controller) -> str:
            cp = c.checkpoint()
            return f"checkpoint {cp.id} at step {cp.step}, {cp.pc:#x}"

        return self._control(take, ran=False)

    def back(self, checkpoint_id: int | None = None) -> Future[None]:
        def go(c: Controller) -> str:
            c.back(checkpoint_id)
            cp = c.checkpoints.get(checkpoint_id)[0]
            return f"back at checkpoint {cp.id} (step {cp.step})"

        return self._control(go, allow_ended=True)

    def show_memory(self, expr: str | None) -> Future[None]:
        """Show memory at `expr` (address, symbol, $reg), or follow SP with None."""

        def show(c: Controller) -> str | None:
            if expr is not None:
                c.resolve(expr)  # a bad address is an error here, not a blank view
            self._memory_expr = expr
            return None

        return self._control(show, keep_status=True, ran=False)

    def interrupt(self) -> None:
        """Stop a running continue (UI thread)."""
        ctl = self._ctl
        if ctl is not None and self._running.is_set():
            try:
                ctl.interrupt()
            except ProcessLookupError:
                pass

    def close(self, timeout: float = 10.0) -> None:
        """Kill the process and its checkpoints, end the thread, remove the files."""
        if self._closed:
            return
        self._closed = True
        self.interrupt()
        done = self._pool.submit(self._shutdown)
        try:
            done.result(timeout=timeout)
        except Exception:
            # The thread is stuck (a wait that does not end): kill what it controls from
            # here, so its wait returns and nothing is left running.
            for pid in self._pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._pool.shutdown(wait=done.done(), cancel_futures=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _pids(self) -> list[int]:
        ctl = self._ctl
        if ctl is None:
            return []
        return [ctl.leader.pid, *(cp.pid for cp in ctl.checkpoints.timeline())]

    def log_tail(self, limit: int = LOG_TAIL_BYTES) -> str:
        """The end of the restored process's output (any thread)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - limit))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- the worker thread -----------------------------------------------------------
    def _submit(self, fn: Callable[[], None]) -> Future[None]:
        if self._closed:
            done: Future[None] = Future()
            done.set_result(None)
            return done

        def guarded() -> None:
            try:
                fn()
            except Exception as exc:  # every failure is one line in the pane
                self._on_error(one_line(exc))

        return self._pool.submit(guarded)

    def _control(
        self,
        op: Callable[[Controller], str | Event | None],
        allow_ended: bool = False,
        keep_status: bool = False,
        ran: bool = True,
    ) -> Future[None]:
        def run() -> None:
            ctl = self._ctl
            if ctl is None:
                raise ValueError("no core is open: press o to open one")
            if not ctl.alive and not allow_ended:
                raise ValueError("the process has ended: go back to a checkpoint or open a core")
            if ran:  # the process moved: the code view follows its PC again
                self._code_addr = None
            result = op(ctl)
            if isinstance(result, Event):
                status = self._describe(result)
            elif result is None and keep_status and ctl.last is not None:
                status = self._describe(ctl.last)
            else:
                status = result or ""
            self._publish(status, ran=ran)

        return self._submit(run)

    def _open(self, core_path: str, exe: str | None) -> None:
        self._on_busy(f"restoring {core_path} ...")
        self._drop()
        self._warnings = []
        core = Core(core_path)
        try:
            log = open(self.log_path, "ab")
            null = os.open(os.devnull, os.O_RDONLY)
            try:
                restored = restore(
                    core, exe or None, warn=self._warnings.append,
                    stdio=(null, log.fileno(), log.fileno()),
                )  # fmt: skip
            finally:
                os.close(null)
                log.close()
        except BaseException:
            core.close()
            raise
        if restored.report.left_out:
            left = ", ".join(str(t) for t in restored.report.left_out)
            self._warnings.append(
                f"restored thread {restored.report.tid} only; threads not restored: {left}"
            )
        self._core, self._core_path = core, core_path
        self._ctl = Controller(restored)
        self._memory_expr = None
        self._code_addr = None
        if self._ctl.multithreaded:
            self._reverse = ("reverse: off (a checkpoint is a fork, which copies one thread; "
                             "restore one thread with --tid)")  # fmt: skip
        else:
            try:
                self._ctl.record(REVERSE_EVERY)
                self._reverse = "reverse: on (recorded syscalls are replayed, not repeated)"
            except (ControlError, RestoreError, OSError) as exc:
                self._reverse = f"reverse: off ({one_line(exc)})"
        self._last_regs, self._changed = {}, set()
        self._pending_signal = 0
        sig = core.signal_thread.cursig
        why = f"core dumped by {signal_name(sig)}" if sig else "core restored"
        self._publish(f"{why}; stopped at {self._ctl.pc:#x} <{self._ctl.location(self._ctl.pc)}>")

    def _take(self, pid: int) -> None:
        from restorer.live import take_core

        self._on_busy(f"taking a core of pid {pid} (gcore; it keeps running) ...")
        path = take_core(pid, self._dir)
        if not self._closed:  # the pane went away while gcore ran
            self._open(str(path), None)

    def _reverse_call(self, run: Callable[[], Event]) -> str:
        """Going back re-executes the program, which can take long: i stops it there."""
        self._running.set()
        self._on_busy("going back: re-executing from a checkpoint (i stops it)")
        try:
            ev = run()
        finally:
            self._running.clear()
        ctl = self._ctl
        assert ctl is not None
        self._code_addr = None
        if ev.reason == "start":
            text = f"no earlier breakpoint hit: at the start of the history, {ev.pc or 0:#x}"
        else:
            text = f"{ev.reason} to {ev.pc or 0:#x} <{ctl.location(ev.pc or 0)}>"
        note = ctl.timeline.last_note if ctl.timeline is not None else ""
        return f"{text}; {note}" if note else text

    def _cont(self, ctl: Controller) -> Event:
        sig, self._pending_signal = self._pending_signal, 0
        return self._running_call(lambda: ctl.cont(sig))

    def _running_call(self, run: Callable[[], Event]) -> Event:
        """`run` lets the process run: interrupt() may stop it meanwhile."""
        self._running.set()
        self._on_busy("running (i stops it)")
        try:
            return run()
        finally:
            self._running.clear()

    def _describe(self, ev: Event) -> str:
        stop = ev.stop
        self._pending_signal = 0
        if not stop.alive:
            return f"process {stop.describe()}"
        if ev.reason == "signal" and stop.signal not in (signal.SIGTRAP, signal.SIGSTOP):
            self._pending_signal = stop.signal
            return (f"stopped by {signal_name(stop.signal)} at {ev.pc:#x}; continue passes it "
                    "on, jump moves past it")  # fmt: skip
        return ev.describe()

    def _publish(self, status: str, ran: bool = True) -> None:
        ctl = self._ctl
        assert ctl is not None
        cps = ctl.checkpoints.timeline()
        marks = tuple(
            CheckpointMark(cp.id, cp.step, cp.pc, str(ctl.location(cp.pc)))
            for cp in cps
            if not cp.auto
        )
        automatic = sum(1 for cp in cps if cp.auto)
        bps = tuple((a, str(loc)) for a, loc in ctl.breakpoint_list())
        if not ctl.alive:
            ended = DebugState(
                self._core_path, None, False, status, ctl.steps, (), (), None, b"",
                self._memory_expr is None, (), marks, tuple(self._warnings),
                breakpoints=bps, reverse=self._reverse, automatic=automatic,
            )  # fmt: skip
            self._on_state(ended)
            return
        regs = ctl.regs().as_dict()
        if ran:  # changed by this request; other requests keep the marks of the last one
            self._changed = {n for n in REG_ORDER if self._last_regs.get(n, regs[n]) != regs[n]}
            self._last_regs = regs
        shown = tuple((n, regs[n], n in self._changed) for n in REG_ORDER)
        pc = regs[REG_ORDER[0]]
        at = pc if self._code_addr is None else self._code_addr
        try:
            code = tuple(
                CodeLine(i.addr, str(i.location), f"{i.mnemonic} {i.op_str}".strip(),
                         i.addr == pc, i.addr in ctl.breakpoints)
                for i in ctl.disassemble_around(at, before=6, after=14)
            )  # fmt: skip
        except Exception as exc:
            code = (CodeLine(at, "", f"({one_line(exc)})", at == pc),)
        mem_addr = (
            regs[REG_ORDER[1]] if self._memory_expr is None else ctl.resolve(self._memory_expr)
        )
        try:
            memory = ctl.read_memory(mem_addr, MEMORY_BYTES)
        except Exception:
            memory = b""
        stack = tuple(str(f) for f in ctl.backtrace())
        threads = tuple(t.pid for t in ctl.threads if t.alive) if ctl.multithreaded else ()
        state = DebugState(
            self._core_path, ctl.leader.pid, True, status, ctl.steps, shown, code, mem_addr,
            memory, self._memory_expr is None, stack, marks, tuple(self._warnings), threads,
            ctl.tracee.pid, bps, self._code_addr is None, self._reverse, automatic, at,
        )  # fmt: skip
        self._on_state(state)

    def _drop(self) -> None:
        """Kill the current process and its checkpoints; close its core."""
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._core is not None:
            self._core.close()
            self._core = None

    def _shutdown(self) -> None:
        try:
            self._drop()
        except Exception:
            pass


def _number(text: str) -> int:
    """A value typed by the user: decimal, 0x hex, or negative."""
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number (decimal, or hex with 0x)") from None

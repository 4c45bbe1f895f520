"""Control a restored process: the Python API under the console and the UI pane.

All calls are synchronous: the process is stopped between calls. `cont` returns at the next
stop (breakpoint, signal, exit); `interrupt` (from another thread) stops a running process.
Breakpoints are int3 bytes written only while the process runs, so memory read at a stop
is the program's own.

ptrace binds a tracee to the tracer *thread*: call restore() and every Controller method
from one thread (a UI uses one worker thread for them); only interrupt() may come from
another.

A multi-threaded process is controlled all-stop, as gdb does by default: between calls
every thread is stopped. `cont` resumes them all and, at the first stop of any thread,
stops the others (SIGSTOP through tgkill, not delivered) and selects the thread that
stopped. `step` moves only the selected thread (`select`); the others stay stopped, so a
step into a wait for another thread blocks until `interrupt`. Threads the program creates
meanwhile are traced too (PTRACE_O_TRACECLONE); threads that end drop out of the list.

`record()` starts a timeline (restorer/timeline.py) for a single-threaded process: from
then on its syscalls are recorded, and `reverse_step` / `reverse_cont` go back in it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from restorer import ptrace
from restorer.arch import (
    ARM64,
    BREAKPOINT_INSN,
    BREAKPOINT_PC_OFFSET,
    CALL_MNEMONICS,
    REGS,
    SYS_EXIT_GROUP,
    SYSCALL_INSN,
    Registers,
)
from restorer.checkpoint import Checkpoint, Checkpoints
from restorer.errors import RestoreError
from restorer.restore import Restored
from restorer.symbols import Location, SymbolTable
from restorer.timeline import SetRegs, Timeline, WriteMemory
from restorer.tracee import WALL, Stop, Tracee, stop_from_status, wait_stop


@contextmanager
def ignoring_signals(*sigs: int) -> Iterator[None]:
    """Ignore `sigs` in this process for the duration (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class ControlError(RestoreError):
    """A control request that cannot be done (process gone, bad address, ...):
    a RestoreError like every error of the restorer, so one handler takes all."""


@dataclass(frozen=True, slots=True)
class Instruction:
    addr: int
    size: int
    mnemonic: str
    op_str: str
    raw: bytes
    location: Location

    def __str__(self) -> str:
        return f"{self.addr:#x} <{self.location}>: {self.mnemonic} {self.op_str}".rstrip()


@dataclass(frozen=True, slots=True)
class Frame:
    index: int
    pc: int
    location: Location

    def __str__(self) -> str:
        return f"#{self.index} {self.pc:#x} in {self.location}"


@dataclass(frozen=True, slots=True)
class Event:
    """Result of a control step: the stop, where it happened, and why in words."""

    stop: Stop
    pc: int | None
    reason: str  # "step", "breakpoint", "signal", "interrupted", "exited", "killed"
    tid: int = 0  # the thread that stopped (0: the process ended)

    def describe(self) -> str:
        if self.pc is None:
            return f"process {self.stop.describe()}"
        return f"{self.reason} ({self.stop.describe()}) at {self.pc:#x}"


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    tid: int
    pc: int
    location: Location
    selected: bool

    def __str__(self) -> str:
        mark = "*" if self.selected else " "
        return f"{mark} {self.tid} {self.pc:#x} in {self.location}"


class Controller:
    def __init__(self, restored: Restored, checkpoint_every: int | None = None) -> None:
        self.restored = restored
        self.core = restored.core
        self.leader: Tracee = restored.tracee  # the process
        self.tracee: Tracee = restored.tracee  # the selected thread
        self.symbols = SymbolTable(restored.core, restored.path_map)
        self.breakpoints: set[int] = set()
        # The timeline's clock: instructions single-stepped since restore. cont() and
        # run_to() do not advance it, so replay to a step is exact only along steps.
        self.steps = 0
        self.checkpoints = Checkpoints(self)
        self.checkpoint_every = checkpoint_every
        self.timeline: Timeline | None = None
        self.last: Event | None = None
        self._interrupted = False
        self._interrupt_tid = 0
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # tid -> signal to deliver on its next resume
        self._sigstop_queued: set[int] = set()  # tids with an unreported SIGSTOP of ours
        if self.leader.group:
            for t in self.threads:
                ptrace.setoptions(t.pid, ptrace.PTRACE_O_EXITKILL | ptrace.PTRACE_O_TRACECLONE)
            # Start where a debugger of the core would: at the thread that took the signal.
            first = restored.core.signal_thread.tid
            for rt in restored.report.threads:
                if rt.core_tid == first:
                    self.select(rt.tid)

    # -- state -------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.leader.alive

    @property
    def threads(self) -> list[Tracee]:
        """The process's traced threads, the leader first."""
        return [self.leader, *self.leader.group]

    @property
    def multithreaded(self) -> bool:
        return bool(self.leader.group)

    def _need_alive(self) -> None:
        if not self.leader.alive:
            raise ControlError("the process has ended; go back to a checkpoint or quit")

    def thread_list(self) -> list[ThreadInfo]:
        """Every live thread with its PC (all are stopped between calls)."""
        self._need_alive()
        out = []
        for t in self.threads:
            if t.alive:
                pc = t.regs().pc
                out.append(ThreadInfo(t.pid, pc, self.location(pc), t is self.tracee))
        return out

    def select(self, tid: int) -> None:
        """Make thread `tid` the one regs, memory, step and backtrace act on."""
        self._need_alive()
        for t in self.threads:
            if t.pid == tid and t.alive:
                self.tracee = t
                return
        tids = ", ".join(str(t.pid) for t in self.threads if t.alive)
        raise ControlError(f"no thread {tid}; threads are {tids}")

    def regs(self) -> Registers:
        self._need_alive()
        return self.tracee.regs()

    def set_regs(self, **changes: int) -> Registers:
        self._need_alive()
        bad = [n for n in changes if n not in (*REGS.NAMES, *REGS.DISPLAY)]
        if bad:
            raise ControlError(f"no register {bad[0]!r}")
        if any(not 0 <= v < 1 << 64 for v in changes.values()):
            raise ControlError("a register holds 0 .. 2**64-1 (negative: add 2**64)")
        regs = self.tracee.regs().replace(**changes)
        self.tracee.set_regs(regs)
        if self.timeline is not None:
            self.timeline.note_edit(SetRegs(tuple(sorted(changes.items()))))
        return regs

    @property
    def pc(self) -> int:
        return self.regs().pc

    def read_memory(self, addr: int, size: int) -> bytes:
        self._need_alive()
        try:
            return self.tracee.read(addr, size)
        except OSError as e:
            raise ControlError(f"cannot read {size} bytes at {addr:#x}: not mapped") from e

    def write_memory(self, addr: int, data: bytes) -> None:
        self._need_alive()
        try:
            self.tracee.write(addr, data)
        except OSError as e:
            raise ControlError(f"cannot write {len(data)} bytes at {addr:#x}: not mapped") from e
        if self.timeline is not None:
            self.timeline.note_edit(WriteMemory(addr, bytes(data)))

    def jump(self, addr: int) -> None:
        """Set the PC; the next cont/step starts there."""
        self.set_regs(**{"rip" if "rip" in REGS.NAMES else "pc": addr})

    def location(self, addr: int) -> Location:
        return self.symbols.lookup(addr)

    def resolve(self, text: str) -> int:
        """An address from '0x1234', '1234' (hex), '$reg', 'symbol' or 'symbol+0x10'."""
        text = text.strip()
        base, _, off = text.partition("+")
        extra = int(off, 0) if off else 0
        if base.startswith("$"):
            regs = self.regs().as_dict()
            if base[1:] not in regs:
                raise ControlError(f"no register {base[1:]!r}")
            return regs[base[1:]] + extra
        try:
            return int(text, 16)
        except ValueError:
            pass
        addr = self.symbols.resolve(base)
        if addr is None:
            raise ControlError(f"no symbol or address {text!r}")
        return addr + extra

    # -- breakpoints -------------------------------------------------------------------
    def add_breakpoint(self, addr: int) -> None:
        if self.alive:  # (an ended process keeps its breakpoints for reverse-continue)
            self.read_memory(addr, 1)  # must be mapped
        self.breakpoints.add(addr)

    def remove_breakpoint(self, addr: int) -> None:
        self.breakpoints.discard(addr)

    def toggle_breakpoint(self, addr: int) -> bool:
        """Set a breakpoint at `addr`, or remove the one there; True if one is set now."""
        if addr in self.breakpoints:
            self.remove_breakpoint(addr)
            return False
        self.add_breakpoint(addr)
        return True

    def breakpoint_list(self) -> list[tuple[int, Location]]:
        """The breakpoints in address order, each with its symbol."""
        return [(a, self.location(a)) for a in sorted(self.breakpoints)]

    def _insert(self, breakpoints: frozenset[int] | set[int]) -> dict[int, bytes]:
        saved = {}
        for a in breakpoints:
            saved[a] = self.tracee.read(a, len(BREAKPOINT_INSN))
            self.tracee.write(a, BREAKPOINT_INSN)
        return saved

    def _remove(self, saved: dict[int, bytes]) -> None:
        live = [t for t in (self.tracee, *self.threads) if t.alive]
        if live:  # any thread's view of the memory will do: they share it
            for a, b in saved.items():
                live[0].write(a, b)

    # -- running -----------------------------------------------------------------------
    def _event(self, stop: Stop, reason: str) -> Event:
        if not stop.alive and (not self.multithreaded or not self.leader.alive):
            ev = Event(stop, None, "exited" if stop.kind == "exited" else "killed")
        elif not stop.alive:  # only the selected thread ended; the process is stopped
            self._forget_dead()
            self.tracee = self.leader if self.leader.alive else self.threads[-1]
            ev = Event(stop, None, "thread " + ("exited" if stop.kind == "exited" else "killed"))
        else:
            ev = Event(stop, self.tracee.regs().pc, reason, self.tracee.pid)
        self.last = ev
        return ev

    def step(self, count: int = 1) -> Event:
        """Execute `count` instructions (fewer if the process stops otherwise)."""
        self._need_alive()
        ev: Event | None = None
        for _ in range(count):
            ends_all = self.multithreaded and self._at_exit_group()
            stop = self._step_insn()
            if not stop.alive and ends_all:  # the others die too: reap them, then report
                self.leader.kill()
                return self._after_stop(None, stop, {})
            while stop.alive and stop.event == ptrace.PTRACE_EVENT_CLONE:
                # Stepped over a thread's creation: the new thread is kept stopped, like
                # every other one, and the step finishes.
                new = Tracee(ptrace.geteventmsg(self.tracee.pid))
                self.leader.group.append(new)
                first = wait_stop(new.pid)
                new.alive = first.alive
                stop = self._step_insn()
            if stop.alive and stop.signal == signal.SIGTRAP and not stop.event:
                self.steps += 1
                if self.timeline is not None:
                    self.timeline.note_step()
                ev = self._event(stop, "step")
                if self.checkpoint_every and self.steps % self.checkpoint_every == 0:
                    self.checkpoints.take()
                continue
            return self._event(stop, "signal")
        assert ev is not None
        return ev

    def _at_exit_group(self) -> bool:
        """The selected thread's next instruction ends the whole process (exit_group)."""
        regs = self.tracee.regs()
        if regs.pending_nr != SYS_EXIT_GROUP:
            return False
        try:
            return self.tracee.read(regs.pc, len(SYSCALL_INSN)) == SYSCALL_INSN
        except OSError:
            return False

    def _step_insn(self, sig: int = 0) -> Stop:
        """One instruction of the selected thread (through the syscall record if any)."""
        return self._resume(sig, step=True)

    def _resume(self, sig: int, step: bool) -> Stop:
        """Step or continue the selected thread, through the syscall record if there is one,
        until it stops for a reason of its own (not the end of one of our checkpoints)."""
        rec = self.timeline.recorder if self.timeline is not None else None
        while True:
            if rec is not None:
                stop = rec.step(self.tracee, sig) if step else rec.cont(self.tracee, sig)
            else:
                stop = self.tracee.step(sig) if step else self.tracee.cont(sig)
            if not self._from_a_copy(stop):
                return stop
            sig = 0

    def _from_a_copy(self, stop: Stop) -> bool:
        """A SIGCHLD for the end of one of our checkpoints (forks of this process): not
        the program's business, and not delivered."""
        if not stop.alive or stop.signal != signal.SIGCHLD or stop.event:
            return False
        try:
            info = ptrace.getsiginfo(self.tracee.pid)
        except OSError:
            return False
        return int.from_bytes(info[16:20], "little", signed=True) in self.checkpoints.pids

    def record(self, every: int = 1000) -> Timeline:
        """Start the timeline: from here on, reverse_step and reverse_cont can go back
        (single-threaded processes only). A checkpoint every `every` instructions."""
        self._need_alive()
        if self.timeline is None:
            from restorer.checkpoint import require_single_thread

            require_single_thread(self)
            tl = Timeline(self, every)
            self.timeline = tl
            try:
                tl.start()
            except BaseException:
                self.timeline = None
                raise
        return self.timeline

    def reverse_step(self) -> Event:
        """Back to the state before the last instruction executed."""
        return self._need_timeline().reverse_step()

    def reverse_cont(self) -> Event:
        """Back to the latest earlier stop at a breakpoint (or the start of the history)."""
        return self._need_timeline().reverse_cont()

    def _need_timeline(self) -> Timeline:
        if self.timeline is None:
            from restorer.checkpoint import require_single_thread

            require_single_thread(self)  # the reason there is none, if that is it
            raise ControlError("reverse execution needs a recorded history: start `record`")
        return self.timeline

    def cont(self, sig: int = 0) -> Event:
        """Run until a breakpoint, a signal or the end. `sig` is delivered on resuming."""
        self._need_alive()
        if self.multithreaded:
            return self._cont_all(sig)
        bps = frozenset(self.breakpoints)
        if self.timeline is not None:
            self.timeline.before_cont()
        ev = self._cont_one(sig, bps)
        if self.timeline is not None:
            self.timeline.note_cont(sig, bps, ev)
        return ev

    def _cont_one(self, sig: int, breakpoints: frozenset[int]) -> Event:
        """cont() of a single-threaded process with these breakpoints."""
        pc = self.tracee.regs().pc
        if pc in breakpoints:  # step off the breakpoint first, without it inserted
            stop = self._step_insn(sig)
            sig = 0
            if not (stop.alive and stop.signal == signal.SIGTRAP):
                return self._event(stop, "signal")
        saved = self._insert(breakpoints)
        try:
            stop = self._resume(sig, step=False)
        finally:
            self._remove(saved)
        if not stop.alive:
            return self._event(stop, "exited")
        regs = self.tracee.regs()
        if stop.signal == signal.SIGTRAP and regs.pc - BREAKPOINT_PC_OFFSET in saved:
            self.tracee.set_regs(regs.with_pc(regs.pc - BREAKPOINT_PC_OFFSET))
            return self._event(stop, "breakpoint")
        if stop.signal == signal.SIGSTOP:
            with self._lock:
                asked, self._interrupted = self._interrupted, False
            if asked:  # our SIGSTOP: reported, and not delivered on the next cont
                return self._event(stop, "interrupted")
        return self._event(stop, "signal")

    def _take_interrupt(self) -> bool:
        """Whether interrupt() was called since the last look (and forget it)."""
        with self._lock:
            asked, self._interrupted = self._interrupted, False
        return asked

    def interrupt(self) -> None:
        """Stop a process running in cont() (call from another thread)."""
        with self._lock:
            self._interrupted = True
            self._interrupt_tid = self.tracee.pid
        if self.multithreaded:
            ptrace.tgkill(self.leader.pid, self.tracee.pid, signal.SIGSTOP)
        else:
            os.kill(self.tracee.pid, signal.SIGSTOP)

    # -- all threads -------------------------------------------------------------------
    def _cont_all(self, sig: int) -> Event:
        sel = self.tracee
        if sel.regs().pc in self.breakpoints:  # step off it alone, without it inserted
            stop = sel.step(sig)
            sig = 0
            if not (stop.alive and stop.signal == signal.SIGTRAP):
                return self._after_stop(sel, stop, {})
        saved = self._insert(self.breakpoints)
        try:
            for x in self.threads:
                ptrace.cont(x.pid, sig if x is sel else self._pending.pop(x.pid, 0))
            t, stop = self._wait_any()
            if t is not None and stop.alive:
                self._stop_others(t, saved)
        finally:
            self._remove(saved)
        return self._after_stop(t, stop, saved)

    def _after_stop(self, t: Tracee | None, stop: Stop, saved: dict[int, bytes]) -> Event:
        if t is None or not stop.alive:  # the process ended
            for x in self.threads:
                x.alive = False
                x.close_mem()
            self.leader.group = []
            self.tracee = self.leader
            return self._event(stop, "exited")
        self.tracee = t
        regs = t.regs()
        if stop.signal == signal.SIGTRAP and regs.pc - BREAKPOINT_PC_OFFSET in saved:
            t.set_regs(regs.with_pc(regs.pc - BREAKPOINT_PC_OFFSET))
            return self._event(stop, "breakpoint")
        if stop.signal == signal.SIGSTOP:
            with self._lock:
                asked = self._interrupted and self._interrupt_tid == t.pid
                if asked:
                    self._interrupted = False
            if asked:
                return self._event(stop, "interrupted")
        if stop.signal == signal.SIGTRAP:
            return self._event(stop, "step")
        return self._event(stop, "signal")

    def _by_tid(self, tid: int) -> Tracee | None:
        for t in self.threads:
            if t.pid == tid:
                return t
        return None

    def _wait_any(self) -> tuple[Tracee | None, Stop]:
        """The next stop of any thread that is not ours to absorb; (None, stop) when the
        process has ended."""
        while True:
            tid, status = os.waitpid(-1, WALL)
            stop = stop_from_status(status)
            t = self._by_tid(tid)
            if t is None:
                if stop.alive and _thread_of(tid) == self.leader.pid:
                    self._adopt(tid)  # a thread the program just created (TRACECLONE)
                    ptrace.cont(tid, 0)
                continue
            if not stop.alive:
                t.alive = False
                t.close_mem()
                if t is self.leader:
                    return None, stop
                self._forget_dead()
                continue
            if stop.event == ptrace.PTRACE_EVENT_CLONE:
                new = ptrace.geteventmsg(tid)
                if self._by_tid(new) is None:
                    self._adopt(new)
                    self._sigstop_queued.add(new)  # it starts with a SIGSTOP to absorb
                ptrace.cont(tid, 0)
                continue
            if stop.signal == signal.SIGSTOP and tid in self._sigstop_queued:
                self._sigstop_queued.discard(tid)
                ptrace.cont(tid, 0)
                continue
            return t, stop

    def _adopt(self, tid: int) -> None:
        new = Tracee(tid)
        self.leader.group.append(new)

    def _forget_dead(self) -> None:
        self.leader.group = [t for t in self.leader.group if t.alive]

    def _stop_others(self, stopped: Tracee, saved: dict[int, bytes]) -> None:
        """SIGSTOP every other running thread and wait for its stop. A thread that stops for
        another reason first keeps that reason for later: a breakpoint is hit again on the
        next resume (PC moved back onto it), a signal is delivered then."""
        done: set[int] = {stopped.pid}
        while True:
            todo = [t for t in self.threads if t.alive and t.pid not in done]
            if not todo:
                break
            t = todo[0]
            done.add(t.pid)
            if t.pid not in self._sigstop_queued:
                try:
                    ptrace.tgkill(self.leader.pid, t.pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
                self._sigstop_queued.add(t.pid)
            while True:
                stop = wait_stop(t.pid)
                if not stop.alive:
                    t.alive = False
                    t.close_mem()
                    self._sigstop_queued.discard(t.pid)
                    break
                if stop.event == ptrace.PTRACE_EVENT_CLONE:
                    new = ptrace.geteventmsg(t.pid)
                    if self._by_tid(new) is None:
                        self._adopt(new)  # its own first SIGSTOP is the stop we want from it
                        self._sigstop_queued.add(new)
                    ptrace.cont(t.pid, 0)
                    continue
                if stop.signal == signal.SIGSTOP:
                    self._sigstop_queued.discard(t.pid)
                    break
                regs = t.regs()
                if stop.signal == signal.SIGTRAP:
                    if regs.pc - BREAKPOINT_PC_OFFSET in saved:
                        t.set_regs(regs.with_pc(regs.pc - BREAKPOINT_PC_OFFSET))
                else:
                    self._pending[t.pid] = stop.signal
                break
        self._forget_dead()

    def run_to(self, addr: int) -> Event:
        """Continue until `addr` (a temporary breakpoint), or an earlier stop."""
        had = addr in self.breakpoints
        self.breakpoints.add(addr)
        try:
            return self.cont()
        finally:
            if not had:
                self.breakpoints.discard(addr)

    def step_over(self) -> Event:
        """One instruction, treating a call as one instruction."""
        insn = self.disassemble(self.pc, 1)[0]
        if insn.mnemonic in CALL_MNEMONICS:
            return self.run_to(insn.addr + insn.size)
        return self.step()

    def run_to_exit(self) -> Event:
        """Continue, passing signals on, until the process ends."""
        sig = 0
        while True:
            ev = self.cont(sig)
            if not ev.stop.alive:
                return ev
            sig = 0 if ev.stop.signal == signal.SIGTRAP else ev.stop.signal

    def run_detached(self) -> int:
        """Let the process go (no tracing) and wait for its end: a shell-style exit code."""
        self._need_alive()
        pid = self.leader.pid
        if pid != self.restored.report.pid:  # not our child (a checkpoint's fork)
            return self.run_to_exit().stop.exit_code
        for t in self.threads:
            t.detach()
            t.alive = False
        self.leader.group = []
        # Like a shell waiting for its job: ^C and ^\ are for the process, not for us.
        with ignoring_signals(signal.SIGINT, signal.SIGQUIT):
            while True:
                stop = wait_stop(pid)
                if not stop.alive:
                    return stop.exit_code

    # -- inspection --------------------------------------------------------------------
    def disassemble(self, addr: int, count: int = 10) -> list[Instruction]:
        import capstone

        md = (
            capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
            if ARM64
            else capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        )
        data = b""
        for size in (count * 15, 64, 16):
            try:
                data = self.read_memory(addr, size)
                break
            except ControlError:
                continue
        out = []
        for insn in md.disasm(data, addr):
            out.append(
                Instruction(
                    insn.address,
                    insn.size,
                    insn.mnemonic,
                    insn.op_str,
                    bytes(insn.bytes),
                    self.location(insn.address),
                )
            )
            if len(out) == count:
                break
        if not out:
            raise ControlError(f"no instruction can be decoded at {addr:#x}")
        return out

    def disassemble_around(
        self, addr: int | None = None, before: int = 4, after: int = 6
    ) -> list[Instruction]:
        """Instructions around `addr` (default PC); earlier ones found from the symbol start."""
        pc = self.pc if addr is None else addr
        loc = self.location(pc)
        prior: list[Instruction] = []
        if loc.symbol is not None and 0 < pc - loc.symbol.addr < 4096:
            start = loc.symbol.addr
            n = pc - start
            try:
                prior = [i for i in self.disassemble(start, n) if i.addr < pc][-before:]
            except ControlError:
                prior = []
        return prior + self.disassemble(pc, after)

    def backtrace(self, limit: int = 32) -> list[Frame]:
        """PC, then return addresses along the frame-pointer chain (rbp, x29) while it is sane."""
        regs = self.regs()
        frames = [Frame(0, regs.pc, self.location(regs.pc))]
        fp = regs.fp
        while len(frames) < limit and fp and fp % 8 == 0:
            try:
                raw = self.read_memory(fp, 16)
            except ControlError:
                break
            nxt = int.from_bytes(raw[:8], "little")
            ret = int.from_bytes(raw[8:], "little")
            if ret == 0 or self.core.file_at(ret) is None:
                break
            frames.append(Frame(len(frames), ret, self.location(ret)))
            if nxt <= fp:
                break
            fp = nxt
        return frames

    # -- going back --------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        return self.checkpoints.take()

    def back(self, checkpoint_id: int | None = None, to_step: int | None = None) -> Event:
        """Make a fresh copy of a checkpoint the running process, then replay to `to_step`."""
        return self.checkpoints.back(checkpoint_id, to_step)

    def _switch(self, tracee: Tracee, steps: int) -> None:
        old = self.leader
        old.kill()
        self.tracee = self.leader = tracee
        self.steps = steps

    def close(self) -> None:
        """Kill the process and every checkpoint."""
        try:
            self.leader.kill()
        finally:
            self.checkpoints.close()


def _thread_of(tid: int) -> int | None:
    """The process (Tgid) thread `tid` belongs to, or None if it is gone."""
    try:
        with open(f"/proc/{tid}/status") as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None

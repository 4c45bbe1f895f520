"""Run system calls inside a ptrace-stopped process.

Point the registers at a `syscall` instruction, load the number and arguments, single-step
once: the kernel reports the single-step trap on the way back from the syscall, before the
next instruction is fetched, so the instruction after the gadget does not even need to be
mapped (that is what lets the restorer unmap its own gadget last).
"""

from __future__ import annotations

import os
import signal

from restorer import ptrace
from restorer.arch import SYSCALL_INSN, Registers
from restorer.errors import RestoreError
from restorer.tracee import Tracee, wait_stop


class InjectionError(RestoreError):
    pass


class SyscallInjector:
    """Executes syscalls in `tracee` at `gadget`, an address holding SYSCALL_INSN."""

    def __init__(self, tracee: Tracee, gadget: int, base: Registers) -> None:
        self.tracee = tracee
        self.gadget = gadget
        self.base = base
        self.forked: list[int] = []  # children reported through PTRACE_EVENT_FORK/_CLONE
        self.dropped: list[int] = []  # signals that arrived meanwhile (a live process wants them)

    def __call__(self, nr: int, *args: int) -> int:
        """The raw result: >= 0, or -errno."""
        t = self.tracee
        t.set_regs(
            self.base.syscall_call(nr, tuple(a & ((1 << 64) - 1) for a in args), self.gadget)
        )
        ptrace.singlestep(t.pid)
        while True:
            stop = wait_stop(t.pid)
            if not stop.alive:
                t.alive = False
                raise InjectionError(
                    f"the process died ({stop.describe()}) while running syscall {nr}; "
                    "this is a restorer bug - please report it with the core"
                )
            if stop.event in (ptrace.PTRACE_EVENT_FORK, ptrace.PTRACE_EVENT_CLONE):
                self.forked.append(ptrace.geteventmsg(t.pid))
                ptrace.singlestep(t.pid)
                continue
            if stop.signal == signal.SIGTRAP:
                break
            # Another signal stopped it first (e.g. SIGCHLD): it is dropped; step on.
            if stop.signal and not stop.event:
                self.dropped.append(stop.signal)
            ptrace.singlestep(t.pid)
        return t.regs().syscall_result

    def check(self, nr: int, *args: int, what: str) -> int:
        """Like calling, but a -errno result becomes an InjectionError naming `what`."""
        ret = self(nr, *args)
        if ret < 0 and ret > -4096:
            raise InjectionError(f"{what} failed in the new process: {os.strerror(-ret)}")
        return ret


class PatchedSyscall:
    """A temporary `syscall` instruction written over the bytes at `addr` (restored on exit).

    Used once a restored process is running and has no gadget page of the restorer's own.
    """

    def __init__(self, tracee: Tracee, addr: int) -> None:
        self.tracee = tracee
        self.addr = addr
        self.saved = b""

    def __enter__(self) -> int:
        self.saved = self.tracee.read(self.addr, len(SYSCALL_INSN))
        self.tracee.write(self.addr, SYSCALL_INSN)
        return self.addr

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if not self.tracee.alive:
            return
        try:
            self.tracee.write(self.addr, self.saved)
        except OSError:
            if exc is None:
                raise
            # An error is on its way out already: it, not this one, says what went wrong.

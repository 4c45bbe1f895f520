"""A process stopped under ptrace: wait for stops, read and write its registers and memory."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from restorer import ptrace
from restorer.arch import (
    ARM64,
    ATOMIC_SEQUENCE_MAX,
    BREAKPOINT_INSN,
    PAGE_SIZE,
    Registers,
    atomic_sequence_exits,
)

WALL = 0x40000000  # __WALL: wait for all children, clone or not


@dataclass(frozen=True, slots=True)
class Stop:
    """What waitpid reported: a ptrace stop, an exit, or death by a signal."""

    kind: str  # "stopped", "exited", "killed"
    signal: int = 0  # stop signal, or the killing signal
    status: int = 0  # exit status
    event: int = 0  # PTRACE_EVENT_* for event stops

    @property
    def alive(self) -> bool:
        return self.kind == "stopped"

    def describe(self) -> str:
        if self.kind == "exited":
            return f"exited with status {self.status}"
        if self.kind == "killed":
            return f"killed by {signal_name(self.signal)}"
        if self.event:
            return f"stopped at ptrace event {self.event}"
        return f"stopped by {signal_name(self.signal)}"

    @property
    def exit_code(self) -> int:
        """A shell-style exit code: the status, or 128+signal."""
        if self.kind == "exited":
            return self.status
        if self.kind == "killed":
            return 128 + self.signal
        return 0


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def wait_stop(pid: int) -> Stop:
    """Block until `pid` stops or ends; EINTR is retried by Python."""
    _, status = os.waitpid(pid, WALL)
    return stop_from_status(status)


def stop_from_status(status: int) -> Stop:
    """A waitpid status as a Stop."""
    if os.WIFEXITED(status):
        return Stop("exited", status=os.WEXITSTATUS(status))
    if os.WIFSIGNALED(status):
        return Stop("killed", signal=os.WTERMSIG(status))
    sig = os.WSTOPSIG(status)
    return Stop("stopped", signal=sig & 0x7F, event=(status >> 16) & 0xFF)


class Tracee:
    """A ptrace-stopped thread. The caller owns it: kill() or detach() when done.

    On a thread-group leader, `group` lists the process's other traced threads: kill()
    reaps them too (the kernel reports the leader's death only once every traced thread
    of its group has been waited for).
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._mem: int | None = None
        self.alive = True
        self.group: list[Tracee] = []

    # memory through /proc/PID/mem: works on read-only pages (FOLL_FORCE), one syscall per
    # run; large writes through process_vm_writev first (one copy instead of two)
    def _mem_fd(self) -> int:
        if self._mem is None:
            self._mem = os.open(f"/proc/{self.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
        return self._mem

    def read(self, addr: int, size: int) -> bytes:
        data = os.pread(self._mem_fd(), size, addr)
        if len(data) != size:
            raise OSError(f"short read of {size} bytes at {addr:#x} in pid {self.pid}")
        return data

    def write(self, addr: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        done = 0
        if len(view) >= PAGE_SIZE:
            # Large writes (a restore's memory) in one copy where the pages are writable.
            try:
                done = ptrace.vm_write(self.pid, addr, view)
            except OSError:
                done = 0  # a read-only page first: /proc/PID/mem writes those (FOLL_FORCE)
        fd = self._mem_fd()
        while done < len(view):
            n = os.pwrite(fd, view[done:], addr + done)
            if n <= 0:
                raise OSError(f"cannot write {len(view)} bytes at {addr:#x} in pid {self.pid}")
            done += n

    def regs(self) -> Registers:
        return ptrace.getregs(self.pid)

    def set_regs(self, regs: Registers) -> None:
        ptrace.setregs(self.pid, regs)

    def step(self, sig: int = 0) -> Stop:
        """One instruction; on arm64 a whole exclusive load/store sequence (see
        arch.atomic_sequence_exits), which single steps would never get through."""
        exits = self._atomic_sequence_exits() if ARM64 else ()
        if exits:
            return self._run_to(exits, sig)
        ptrace.singlestep(self.pid, sig)
        return self._after(wait_stop(self.pid))

    def _atomic_sequence_exits(self) -> tuple[int, ...]:
        try:
            pc = self.regs().pc
            return atomic_sequence_exits(pc, self.read(pc, 4 * (ATOMIC_SEQUENCE_MAX + 1)))
        except OSError:  # the code ends within that: no sequence to run over
            return ()

    def _run_to(self, places: tuple[int, ...], sig: int) -> Stop:
        """Continue with a breakpoint at each of `places` until the first stop."""
        saved = {a: self.read(a, len(BREAKPOINT_INSN)) for a in places}
        for a in places:
            self.write(a, BREAKPOINT_INSN)
        try:
            ptrace.cont(self.pid, sig)
            stop = wait_stop(self.pid)
        finally:
            if self.alive:
                for a, original in saved.items():
                    try:
                        self.write(a, original)
                    except OSError:
                        pass  # it ended meanwhile
        return self._after(stop)

    def cont(self, sig: int = 0) -> Stop:
        ptrace.cont(self.pid, sig)
        return self._after(wait_stop(self.pid))

    def _after(self, stop: Stop) -> Stop:
        if not stop.alive:
            self.alive = False
            self.close_mem()
        return stop

    def close_mem(self) -> None:
        if self._mem is not None:
            os.close(self._mem)
            self._mem = None

    def kill(self) -> None:
        """SIGKILL the process and reap it (it is our child or our tracee)."""
        self.close_mem()
        if not self.alive and not any(t.alive for t in self.group):
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for t in [*self.group, self]:
            t.close_mem()
            if t.alive:
                t._reap()
        self.group = []

    def _reap(self) -> None:
        try:
            while True:
                stop = wait_stop(self.pid)
                if not stop.alive:
                    break
        except ChildProcessError:
            pass
        self.alive = False

    def detach(self, sig: int = 0) -> None:
        self.close_mem()
        ptrace.detach(self.pid, sig)

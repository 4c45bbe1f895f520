"""Run a traced thread with its syscalls recorded, or replayed from the record.

Reverse execution (restorer/timeline.py) re-executes the program from a checkpoint, a
fork()ed copy. Re-executed as they are, its syscalls would act a second time: a write()
would print again, a read() from a pipe would take other bytes. So every syscall made while
the timeline runs the program forward is stopped at (PTRACE_SYSCALL) and recorded: its
number and result, and the bytes an input syscall stored in the process. Re-executing,
the same syscall at the same place in the sequence is, depending on what it does:

- replayed: skipped in the kernel (its number set to -1 at entry) and given the recorded
  result and bytes. For syscalls whose effect is outside the process (writes, sends, file
  and directory changes, seeks on shared file offsets, sleeps) or that consume input
  (reads, receives, getrandom). Nothing is written twice, nothing is read again.
- re-executed: syscalls that rebuild the copy's own state (mmap, brk, open, close, signal
  actions, ...), which a fork of the checkpoint does not have yet; open's O_TRUNC and
  O_EXCL are dropped, the file exists now. Any other syscall is re-executed too and named
  in `repeated` (its effect happens again): the screen says so.

A syscall that differs from the record (another number at that place) means the program
took another path (it read the clock through the vDSO, or memory was edited); the record
from there on is dropped and the syscalls run for real again.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from dataclasses import dataclass

from restorer import ptrace
from restorer.arch import ARM64, SYSCALL_INSN, Registers
from restorer.errors import RestoreError
from restorer.tracee import WALL, Stop, Tracee, stop_from_status

SYSCALL_STOP = signal.SIGTRAP | 0x80  # PTRACE_O_TRACESYSGOOD
MASK64 = (1 << 64) - 1
O_CREAT, O_EXCL, O_TRUNC = 0o100, 0o200, 0o1000

# Per architecture (x86-64: arch/x86/entry/syscalls/syscall_64.tbl; arm64: the generic
# table, include/uapi/asm-generic/unistd.h, which has no open, rename, mkdir, unlink,
# chmod or chown but their *at forms only).
#
# REPLAYED: skipped and given their recorded result. The value says where an input
# syscall stored bytes: ("buf", argument index of the buffer) or ("iov", that of the iovec).
# LOCAL: re-executed, acting only on the process itself (its memory, descriptor table,
# signal state) or only reading.
# OPENS: the open syscalls, with the index of their flags argument.
if ARM64:
    REPLAYED: dict[int, tuple[str, int] | None] = {
        63: ("buf", 1),  # read
        67: ("buf", 1),  # pread64
        65: ("iov", 1),  # readv
        207: ("buf", 1),  # recvfrom
        69: ("iov", 1),  # preadv
        278: ("buf", 0),  # getrandom
        64: None, 68: None, 66: None, 70: None,  # write, pwrite64, writev, pwritev
        206: None, 211: None,  # sendto, sendmsg
        62: None,  # lseek: the file offset is shared with the checkpoints (fork semantics)
        101: None, 115: None,  # nanosleep, clock_nanosleep
        82: None, 83: None, 45: None, 46: None,  # fsync, fdatasync, truncate, ftruncate
        38: None, 276: None,  # renameat, renameat2
        34: None,  # mkdirat
        35: None,  # unlinkat (rmdir too: AT_REMOVEDIR)
        52: None, 53: None, 55: None, 54: None,  # fchmod, fchmodat, fchown, fchownat
    }  # fmt: skip
    LOCAL = frozenset({
        56, 57, 80, 79, 222, 226, 215, 214, 134, 135, 139, 48, 124, 216, 233, 23, 24, 172,
        93, 160, 25, 17, 78, 169, 163, 165, 179, 174, 176, 175, 177, 173, 132, 178, 130,
        98, 123, 96, 113, 114, 94, 131, 99, 261, 291, 293, 439,
    })  # fmt: skip
    # openat, close, fstat, newfstatat, mmap, mprotect, munmap, brk, rt_sigaction,
    # rt_sigprocmask, rt_sigreturn, faccessat, sched_yield, mremap, madvise, dup, dup3,
    # getpid, exit, uname, fcntl, getcwd, readlinkat, gettimeofday, getrlimit, getrusage,
    # sysinfo, getuid, getgid, geteuid, getegid, getppid, sigaltstack, gettid, tkill,
    # futex, sched_getaffinity, set_tid_address, clock_gettime, clock_getres, exit_group,
    # tgkill, set_robust_list, prlimit64, statx, rseq, faccessat2
    OPENS = {56: 2}  # openat
    NAMES = {
        63: "read", 64: "write", 57: "close", 62: "lseek", 29: "ioctl", 59: "pipe2",
        198: "socket", 203: "connect", 200: "bind", 201: "listen", 220: "clone",
        221: "execve", 260: "wait4", 129: "kill", 56: "openat", 435: "clone3",
    }  # fmt: skip
else:
    REPLAYED = {
        0: ("buf", 1),  # read
        17: ("buf", 1),  # pread64
        19: ("iov", 1),  # readv
        45: ("buf", 1),  # recvfrom
        295: ("iov", 1),  # preadv
        318: ("buf", 0),  # getrandom
        1: None, 18: None, 20: None, 296: None,  # write, pwrite64, writev, pwritev
        44: None, 46: None,  # sendto, sendmsg
        8: None,  # lseek: the file offset is shared with the checkpoints (fork semantics)
        35: None, 230: None,  # nanosleep, clock_nanosleep
        74: None, 75: None, 76: None, 77: None,  # fsync, fdatasync, truncate, ftruncate
        82: None, 264: None, 316: None,  # rename, renameat, renameat2
        83: None, 258: None, 84: None,  # mkdir, mkdirat, rmdir
        87: None, 263: None,  # unlink, unlinkat
        90: None, 91: None, 92: None, 93: None, 94: None,  # chmod, fchmod, chown, fchown, lchown
    }  # fmt: skip
    LOCAL = frozenset({
        2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 21, 24, 25, 28, 32, 33, 39, 60, 63, 72, 79,
        89, 96, 97, 98, 99, 102, 104, 107, 108, 110, 131, 158, 186, 200, 201, 202, 204, 218,
        228, 229, 231, 234, 257, 262, 267, 269, 273, 292, 302, 332, 334, 439,
    })  # fmt: skip
    OPENS = {2: 1, 257: 2}  # open, openat
    NAMES = {
        0: "read", 1: "write", 2: "open", 3: "close", 8: "lseek", 16: "ioctl", 22: "pipe",
        41: "socket", 42: "connect", 49: "bind", 50: "listen", 56: "clone", 57: "fork",
        59: "execve", 61: "wait4", 62: "kill", 85: "creat", 257: "openat", 293: "pipe2",
        435: "clone3",
    }  # fmt: skip


def syscall_name(nr: int) -> str:
    return NAMES.get(nr, f"syscall {nr}")


@dataclass(frozen=True, slots=True)
class SyscallRecord:
    nr: int
    result: int  # the result register after the call, raw
    output: tuple[tuple[int, bytes], ...]  # (address, bytes) an input syscall stored

    @property
    def replayed(self) -> bool:
        return self.nr in REPLAYED


class ReplayDiverged(RestoreError):
    """Re-execution made another syscall than the record holds at that place (the
    timeline reports it as a ControlError)."""


class SyscallRecorder:
    """The syscall record of one timeline and the thread's position in it."""

    def __init__(self) -> None:
        self.log: list[SyscallRecord] = []
        self.next = 0  # index in `log` of the next syscall the thread makes
        self.strict = False  # re-executing the past: a difference is an error
        self.replayed = 0  # counted since the last reset()
        self.repeated: Counter[str] = Counter()
        self._in_syscall: tuple[Registers, SyscallRecord | None] | None = None

    def reset_counts(self) -> None:
        self.replayed = 0
        self.repeated = Counter()

    def drop_future(self) -> None:
        """The program changes course (an edit, a fresh run): the record from here is void."""
        del self.log[self.next :]

    def moved_to(self, index: int) -> None:
        """The thread is now a fresh copy at syscall `index` of the record."""
        self.next = index
        self._in_syscall = None

    # -- running ---------------------------------------------------------------------------
    def step(self, t: Tracee, sig: int = 0) -> Stop:
        """One instruction; a syscall instruction goes through the record."""
        self._in_syscall = None  # a syscall interrupted earlier restarts unrecorded
        try:
            at_syscall = t.read(t.regs().pc, len(SYSCALL_INSN)) == SYSCALL_INSN
        except OSError:
            at_syscall = False
        if not at_syscall:
            return t.step(sig)
        self._trace(t)
        ptrace.syscall(t.pid, sig)
        raw, stop = self._wait(t)
        if raw != SYSCALL_STOP:
            return stop  # a signal came first (the syscall did not run), or the end
        self._enter(t)
        # A single-step from the entry stop reports its trap when the syscall returns.
        ptrace.singlestep(t.pid)
        _, stop = self._wait(t)
        if stop.alive:
            self._exit(t)
        return stop

    def cont(self, t: Tracee, sig: int = 0) -> Stop:
        """Run until a stop that is not a syscall's (breakpoint, signal, end)."""
        self._trace(t)
        ptrace.syscall(t.pid, sig)
        while True:
            raw, stop = self._wait(t)
            if raw != SYSCALL_STOP:
                return stop
            if self._in_syscall is None:
                self._enter(t)
            else:
                self._exit(t)
            ptrace.syscall(t.pid, 0)

    # -- the record ------------------------------------------------------------------------
    def _enter(self, t: Tracee) -> None:
        regs = t.regs()
        nr = regs.syscall_nr
        rec: SyscallRecord | None = None
        if self.next < len(self.log):
            rec = self.log[self.next]
            if rec.nr != nr:
                if self.strict:
                    raise ReplayDiverged(
                        f"re-execution made {syscall_name(nr)} where the record has "
                        f"{syscall_name(rec.nr)}: the program depends on something outside "
                        "it (time, other processes)"
                    )
                self.drop_future()
                rec = None
        if rec is not None and rec.replayed:
            ptrace.skip_syscall(t.pid, regs)  # the kernel skips the call
        elif rec is not None:
            if nr in OPENS:  # the file was created the first time
                arg = regs.ARGS[OPENS[nr]]
                flags = regs.arg(OPENS[nr])
                if flags & (O_TRUNC | O_EXCL):
                    t.set_regs(regs.replace(**{arg: flags & ~(O_TRUNC | O_EXCL)}))
            elif nr not in LOCAL:
                self.repeated[syscall_name(nr)] += 1
        self._in_syscall = (regs, rec)

    def _exit(self, t: Tracee) -> None:
        assert self._in_syscall is not None
        entry, rec = self._in_syscall
        self._in_syscall = None
        if rec is not None:
            if rec.replayed:
                for addr, data in rec.output:
                    t.write(addr, data)
                t.set_regs(t.regs().with_result(rec.result))
                self.replayed += 1
            self.next += 1
            return
        result = t.regs().result
        self.log.append(SyscallRecord(entry.syscall_nr, result, _outputs(t, entry, result)))
        self.next += 1

    # -- ptrace ----------------------------------------------------------------------------
    @staticmethod
    def _trace(t: Tracee) -> None:
        # Every time: taking a checkpoint (fork_copy) sets the thread's options anew.
        ptrace.setoptions(t.pid, ptrace.PTRACE_O_EXITKILL | ptrace.PTRACE_O_TRACESYSGOOD)

    @staticmethod
    def _wait(t: Tracee) -> tuple[int, Stop]:
        """(the stop signal with ptrace's 0x80 bit, or 0 at the end; the stop)."""
        _, status = os.waitpid(t.pid, WALL)
        stop = stop_from_status(status)
        if not stop.alive:
            t.alive = False
            t.close_mem()
            return 0, stop
        return os.WSTOPSIG(status), stop


def _outputs(t: Tracee, entry: Registers, result: int) -> tuple[tuple[int, bytes], ...]:
    """The bytes an input syscall stored in the process (result: its raw result register)."""
    where = REPLAYED.get(entry.syscall_nr)
    if where is None or result >= 1 << 63 or result == 0:
        return ()
    kind, arg = where
    addr = entry.arg(arg)
    if kind == "buf":
        return ((addr, t.read(addr, result)),)
    count = entry.arg(2)
    raw = t.read(addr, 16 * count)
    out = []
    left = result
    for i in range(count):
        if left <= 0:
            break
        base = int.from_bytes(raw[16 * i : 16 * i + 8], "little")
        size = min(int.from_bytes(raw[16 * i + 8 : 16 * i + 16], "little"), left)
        if size:
            out.append((base, t.read(base, size)))
        left -= size
    return tuple(out)

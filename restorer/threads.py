"""Rebuild the threads of a restored process: each one beyond the first made by an injected
clone3 with its core TID, its kernel-side state (clear_child_tid, rseq) registered again,
and its registers, FP state, signal mask and interrupted syscall loaded.
"""

from __future__ import annotations

import os
import signal
import struct

from restorer import ptrace
from restorer.arch import (
    ARM64,
    ERESTART_RESTARTBLOCK,
    NT_X86_XSTATE,
    PAGE_SIZE,
    RSEQ_MIN_LEN,
    RSEQ_SIG,
    SYS_CLONE3,
    SYS_RSEQ,
    SYS_SET_TID_ADDRESS,
    SYSCALL_INSN,
)
from restorer.core import AT_BASE, Core, ThreadState
from restorer.errors import RestoreError
from restorer.inject import SyscallInjector
from restorer.sidecar import Sidecar
from restorer.symbols import SymbolTable
from restorer.tracee import Tracee, wait_stop

# A thread as pthread_create makes one (glibc's create_thread), less the flags whose state
# the restorer sets itself afterwards (TLS, tid addresses).
CLONE_THREAD_FLAGS = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000
# CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
CLONE_CHILD_CLEARTID = 0x200000
CLONE_ARGS_SIZE = 80  # CLONE_ARGS_SIZE_VER1: up to set_tid_size


class ThreadBuilder:
    """The thread part of a restore (a mixin of the restore's orchestration)."""

    core: Core
    path_map: dict[str, str]
    sidecar: Sidecar | None
    _syms: SymbolTable | None
    _said_no_sigmask: bool

    def _warn(self, msg: str) -> None:
        raise NotImplementedError

    def _clone_threads(
        self,
        tracee: Tracee,
        sys: SyscallInjector,
        others: list[ThreadState],
        scratch: int,
        tid_field: int | None,
    ) -> list[tuple[Tracee, ThreadState]]:
        """Create one thread per entry of `others` by injecting clone3 into the process.

        Each new thread is auto-attached (PTRACE_O_TRACECLONE) and stops with SIGSTOP before
        its first instruction; its registers are loaded later. set_tid asks for the core's
        TID (glibc keeps it in the thread descriptor: raise, pthread_kill, mutex owners).
        """
        if not others:
            return []
        out: list[tuple[Tracee, ThreadState]] = []
        ptrace.setoptions(tracee.pid, ptrace.PTRACE_O_EXITKILL | ptrace.PTRACE_O_TRACECLONE)
        want_at, args_at = scratch + 256, scratch + 512
        for state in others:
            ret = 0
            for set_tid in (True, False):
                tracee.write(want_at, struct.pack("<i", state.tid))
                tracee.write(args_at, struct.pack(
                    "<10Q", CLONE_THREAD_FLAGS, 0, 0, 0, 0, 0, 0, 0,
                    want_at if set_tid else 0, 1 if set_tid else 0,
                ))  # fmt: skip
                ret = sys(SYS_CLONE3, args_at, CLONE_ARGS_SIZE)
                if ret >= 0 or not set_tid:
                    break
            if ret < 0:
                raise RestoreError(
                    f"cannot create thread {state.tid} in the new process (clone3: "
                    f"{os.strerror(-ret)}); restore one thread with --tid"
                )
            new = Tracee(ret)
            tracee.group.append(new)
            stop = wait_stop(new.pid)
            if not stop.alive or stop.signal != signal.SIGSTOP:
                new.alive = stop.alive
                raise RestoreError(
                    f"the new thread for {state.tid} did not stop as expected "
                    f"({stop.describe()}); this is a restorer bug - please report it with the core"
                )
            if new.pid != state.tid:
                fixed = "glibc's copy is updated; " if tid_field is not None else ""
                self._warn(
                    f"thread {state.tid} runs as tid {new.pid} (its tid is in use, or a "
                    f"non-root process may not choose one): {fixed}other copies of the old "
                    "tid (a mutex's owner field) stay stale"
                )
                if tid_field is not None:
                    tracee.write(state.regs.tls + tid_field, struct.pack("<i", new.pid))
            out.append((new, state))
        ptrace.setoptions(tracee.pid, ptrace.PTRACE_O_EXITKILL)
        return out

    def _tid_field(self, tracee: Tracee, thread: ThreadState) -> int | None:
        """Offset of glibc's struct pthread `tid` from the thread pointer (fs_base, tpidr_el0).

        libc describes its own layout for libthread_db: `_thread_db_pthread_tid` is
        (size in bits, count, offset) in struct pthread. On x86-64 the thread pointer is
        the struct pthread; on arm64 (TLS_DTV_AT_TP) the struct sits right below it, so
        the offset is less `_thread_db_sizeof_pthread`. Without those symbols (a static or
        non-glibc program), None: the threads then have no clear_child_tid, and
        pthread_join() on a restored thread waits forever.
        """
        syms = self._symbols()
        libcs = [f for f in self.core.files if os.path.basename(f.path).startswith("libc")]
        places: list[int | None] = [f.start for f in libcs] or [None]
        for at in places:
            desc_at = syms.data_symbol("_thread_db_pthread_tid", at)
            if desc_at is None:
                continue
            try:  # read-only data of a file mapping: in the process, not always in the core
                bits, _count, offset = struct.unpack("<III", tracee.read(desc_at, 12))
                if bits != 32 or offset >= PAGE_SIZE:
                    continue
                if ARM64:
                    size_at = syms.data_symbol("_thread_db_sizeof_pthread", at)
                    if size_at is None:
                        continue
                    offset -= struct.unpack("<I", tracee.read(size_at, 4))[0]
                saved = tracee.read(thread.regs.tls + offset, 4)
            except OSError:
                continue
            if struct.unpack("<i", saved)[0] == thread.tid:
                return int(offset)
        return None

    def _symbols(self) -> SymbolTable:
        if self._syms is None:
            self._syms = SymbolTable(self.core, self.path_map)
        return self._syms

    def _thread_kernel_state(
        self,
        t: Tracee,
        sys: SyscallInjector,
        state: ThreadState,
        tid_field: int | None,
        path_map: dict[str, str],
    ) -> None:
        """What the kernel keeps per thread for glibc, set again from inside the thread:
        clear_child_tid (pthread_join waits for the kernel to clear the descriptor's tid
        at thread exit) and the rseq area."""
        if tid_field is not None:
            sys(SYS_SET_TID_ADDRESS, state.regs.tls + tid_field)
        self._register_rseq(t, sys, state, path_map)

    def _register_rseq(
        self, tracee: Tracee, sys: SyscallInjector, thread: ThreadState, path_map: dict[str, str]
    ) -> None:
        """Register glibc's rseq area of the thread again, as glibc did at thread start.

        glibc (2.35+) reads the current CPU from it (sched_getcpu); unregistered, it would
        keep the CPU of the dump forever. The area is at the thread pointer + __rseq_offset.
        """
        interp = self.core.auxv.get(AT_BASE)  # ld.so defines both; static programs: none
        if not interp:
            return
        syms = self._symbols()
        off_addr = syms.data_symbol("__rseq_offset", interp)
        size_addr = syms.data_symbol("__rseq_size", interp)
        if off_addr is None or size_addr is None:
            return
        offset = int.from_bytes(tracee.read(off_addr, 8), "little", signed=True)
        size = int.from_bytes(tracee.read(size_addr, 4), "little")
        if size == 0:  # glibc did not register one (tunable glibc.pthread.rseq=0)
            return
        area = thread.regs.tls + offset
        ret = sys(SYS_RSEQ, area, max(size, RSEQ_MIN_LEN), 0, RSEQ_SIG)
        if ret < 0:
            self._warn(
                f"rseq area not registered again ({os.strerror(-ret)}); sched_getcpu() may "
                "report the CPU of the dump"
            )

    def _load_thread(self, tracee: Tracee, thread: ThreadState) -> int | None:
        regs = thread.regs
        restarted = regs.interrupted_syscall
        if restarted is not None and -regs.syscall_result == ERESTART_RESTARTBLOCK:
            self._warn(
                f"syscall {restarted} was interrupted with ERESTART_RESTARTBLOCK; it is "
                "restarted from the beginning with its original arguments"
            )
        if ARM64 and _insn_at(tracee, regs.pc) == SYSCALL_INSN:
            # The kernel rewound it before the dump (or stands before it): pc on the svc,
            # x0 its first argument again. Resuming there runs it again, as a restart does.
            restarted = regs.syscall_nr
        tracee.set_regs(regs.for_resume())
        if thread.fpregs is not None:
            ptrace.setfpregs(tracee.pid, thread.fpregs)
        if thread.xstate is not None and not ARM64:
            try:
                # The kernel takes only a whole buffer of its own size; gdb writes a shorter
                # one (up to the features it knows), the rest stays in init state.
                size = len(ptrace.getregset(tracee.pid, NT_X86_XSTATE, 1 << 16))
                ptrace.setregset(tracee.pid, NT_X86_XSTATE, thread.xstate[:size].ljust(size, b"\0"))
            except OSError as e:
                self._warn(f"extended FP state not restored ({e.strerror}); SSE state was")
        mask = thread.sighold
        saved = self.sidecar.blocked.get(thread.tid) if self.sidecar is not None else None
        if self.core.from_gdb and mask == 0 and saved is not None:
            mask = saved  # gcore writes no mask; the sidecar has the thread's SigBlk
        ptrace.setsigmask(tracee.pid, mask)
        if self.core.from_gdb and saved is None and mask == 0 and not self._said_no_sigmask:
            self._said_no_sigmask = True
            self._warn("gcore does not save the signal mask; the thread runs with none blocked")
        return restarted


def _insn_at(tracee: Tracee, pc: int) -> bytes | None:
    try:  # the code is mapped by now (from its file: a kernel core has no copy of it)
        return tracee.read(pc, len(SYSCALL_INSN))
    except OSError:
        return None

"""Rebuild a live process from an ELF core.

Start the executable under ptrace, stopped at exec (with the PID of the restored thread
where clone3 allows it, and without ASLR: see start_stopped). Through injected syscalls:
map a one-page gadget, move the fresh process's own vDSO and vvar pages to the core's vDSO
address (the vDSO reads vvar relative to itself, so a live pair keeps clock_gettime
working even for gcore cores, which leave [vvar] out), unmap everything else, rebuild
every mapping of the core (anonymous, or from its file via NT_FILE, including file
mappings gcore left out), write the saved bytes (MADV_DONTDUMP ranges stay zero), move brk
where the kernel allows it, create the core's other threads with clone3 (with their own
TIDs where set_tid allows it; each is auto-attached through PTRACE_O_TRACECLONE and stops
before it runs an instruction), register glibc's rseq area and clear_child_tid of every
thread again, unmap the gadget. Then load every thread's registers (fs_base included),
FP state and signal mask, and set up the restart of a syscall the dump interrupted.

By default every thread of the core comes back; the process is the core's thread-group
leader (or, if the core has none, the thread that took the signal). With `tid`, only that
thread comes back, as the whole process.

The process runs as the user and group the core names (NT_PRPSINFO's pr_uid/pr_gid, with
that user's supplementary groups): the fresh child takes them before its exec, so every
injected syscall (opening the mapped files, PR_SET_MM_MAP, rseq) already runs with the
rights the dumped process had, and nothing it opens was opened as root. The tracer stays
root; root may ptrace and write the memory of any process.

Not restored, because a core does not hold them: file descriptors beyond the restorer's
stdio, signal handlers, pending signals, robust-futex lists, alternate signal stacks,
shared mappings (they come back private). For cores syscap took of a live process, the
sidecar file CORE.syscap.json (restorer/sidecar.py) brings back descriptors of regular
files, signal actions, the cwd and resource limits; it is read and checked before the
process starts.

The jobs live in their own modules: checks.py (everything checked before a process
exists), launch.py (the fresh process), layout.py (the mappings to create), mapping.py
(memory, vDSO, brk), threads.py (threads and their state), sidecar.py (what the sidecar
brings back); this module runs them in order and reports.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from restorer import ptrace
from restorer.arch import (
    PAGE_SIZE,
    SYS_CLOSE,
    SYS_MMAP,
    SYS_MUNMAP,
    SYS_OPENAT,
    SYS_PERSONALITY,
    SYS_PRCTL,
    SYSCALL_INSN,
    TASK_SIZE,
)
from restorer.checks import check_restorable
from restorer.core import Core, ThreadState
from restorer.errors import RestoreError
from restorer.inject import PatchedSyscall, SyscallInjector
from restorer.launch import (
    RunAs,
    run_as_for,
    start_stopped,
)
from restorer.layout import (
    AT_FDCWD,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN,
    MAP_PRIVATE,
    O_CLOEXEC,
    O_RDONLY,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    Warn,
    free_range,
    plan_regions,
    read_maps,
    specials_span,
)
from restorer.mapping import MappingBuilder
from restorer.sidecar import Sidecar, SidecarError, SidecarReport, sidecar_path
from restorer.sidecar import apply as apply_sidecar
from restorer.sidecar import load as load_sidecar
from restorer.symbols import SymbolTable
from restorer.threads import ThreadBuilder
from restorer.tracee import Tracee

__all__ = ["RestoreReport", "Restored", "RestoredThread", "check_restorable", "restore"]


@dataclass(frozen=True, slots=True)
class RestoredThread:
    core_tid: int  # the thread's id in the core
    tid: int  # its id now
    restarted_syscall: int | None


@dataclass(frozen=True, slots=True)
class RestoreReport:
    pid: int
    tid: int
    run_as: RunAs | None  # None: it runs as the restorer's own user
    exe: str
    left_out: tuple[int, ...]
    warnings: tuple[str, ...]
    brk_restored: bool
    brk: int | None
    restarted_syscall: int | None
    regions: int
    bytes_written: int
    seconds: float
    threads: tuple[RestoredThread, ...] = ()  # every thread restored, the process's first
    sidecar: SidecarReport | None = None  # what CORE.syscap.json brought back, if there was one


@dataclass
class Restored:
    """A restored process, stopped under ptrace, ready to continue.

    `tracee` is the process (its thread-group leader); `tracee.group` holds its other
    restored threads, each stopped under ptrace too.
    """

    tracee: Tracee
    report: RestoreReport
    core: Core
    exe: str
    path_map: dict[str, str] = field(default_factory=dict)

    @property
    def threads(self) -> list[Tracee]:
        """Every traced thread, the leader first."""
        return [self.tracee, *self.tracee.group]


class _Restorer(MappingBuilder, ThreadBuilder):
    def __init__(
        self,
        core: Core,
        warn: Warn,
        set_brk: bool = True,
        stdio: tuple[int, int, int] | None = None,
        as_core_user: bool = True,
        use_sidecar: bool = True,
    ) -> None:
        self.use_sidecar = use_sidecar
        self.sidecar: Sidecar | None = None
        self.sidecar_where = ""
        self.stdio = stdio
        self.as_core_user = as_core_user
        self.run_as: RunAs | None = None
        self.core = core
        self.warn = warn
        self.set_brk = set_brk
        self.warnings: list[str] = []
        self.all_threads = True
        self._syms: SymbolTable | None = None
        self.path_map: dict[str, str] = {}
        self._said_no_sigmask = False

    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.warn(msg)

    def run(self, exe: str | None, tid: int | None) -> Restored:
        t0 = time.perf_counter()
        self.all_threads = tid is None
        thread, exe_path, path_map, main_sp = check_restorable(self.core, exe, tid, self._warn)
        self.path_map = path_map
        self._load_sidecar()
        run_as = self.run_as = run_as_for(self.core) if self.as_core_user else None
        tracee, why = start_stopped(exe_path, self.stdio, thread.tid, run_as)
        if why is not None:
            self._warn(
                f"the process runs as pid {tracee.pid}, not {thread.tid} ({why}): code that "
                "cached its pid or tid (raise, pthread) sees a stale value"
            )
        try:
            restored = self._rebuild(tracee, thread, exe_path, path_map, main_sp, run_as, t0)
        except BaseException:
            try:
                tracee.kill()
            except OSError:
                pass  # the error on its way out is the one to report
            raise
        return restored

    def _load_sidecar(self) -> None:
        """The sidecar beside the core, checked before any process exists."""
        if not self.use_sidecar:
            return
        path = sidecar_path(self.core.path)
        self.sidecar_where = str(path)
        sc = load_sidecar(path)
        if sc is not None and sc.pid != self.core.pid:
            raise SidecarError(
                f"{path} was written for pid {sc.pid}, but the core is of pid "
                f"{self.core.pid}; remove it or pass --no-sidecar"
            )
        self.sidecar = sc

    def _rebuild(
        self,
        tracee: Tracee,
        thread: ThreadState,
        exe: str,
        path_map: dict[str, str],
        main_sp: int | None,
        run_as: RunAs | None,
        t0: float,
    ) -> Restored:
        core = self.core
        fresh = read_maps(tracee.pid)
        span = specials_span(core, fresh)
        regions = plan_regions(core, path_map, span, main_sp, self._warn)
        busy = [(r.start, r.end) for r in regions] + [(m.start, m.end) for m in fresh]
        busy += [(f.start, f.end) for f in core.files]
        if span is not None:
            busy.append(span)
        gadget = free_range(PAGE_SIZE, busy)

        base = tracee.regs()
        boot = SyscallInjector(tracee, base.pc, base)
        with PatchedSyscall(tracee, base.pc):
            got = boot.check(
                SYS_MMAP, gadget, PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0, what="mmap of the gadget",
            )  # fmt: skip
        if got != gadget:
            raise RestoreError(f"gadget page landed at {got:#x}, not {gadget:#x}")
        tracee.write(gadget, SYSCALL_INSN)
        sys = SyscallInjector(tracee, gadget, base)
        scratch = gadget + 64

        self._place_specials(tracee, sys, fresh, span, [*busy, (gadget, gadget + PAGE_SIZE)])
        keep = [(gadget, gadget + PAGE_SIZE)]
        if span is not None:
            keep.append(span)
        pos = 0x1000
        for lo, hi in sorted(keep):
            if lo > pos:
                sys.check(SYS_MUNMAP, pos, lo - pos, what="munmap of the fresh layout")
            pos = hi
        if pos < TASK_SIZE:
            sys.check(SYS_MUNMAP, pos, TASK_SIZE - pos, what="munmap of the fresh layout")

        fds: dict[str, int] = {}
        for r in regions:
            flags = MAP_PRIVATE | MAP_FIXED
            fd = -1
            if r.path is None:
                flags |= MAP_ANONYMOUS | (MAP_GROWSDOWN if r.grows_down else 0)
            else:
                fd = fds.get(r.path, -1)
                if fd < 0:
                    raw = os.fsencode(r.path) + b"\0"
                    if len(raw) > PAGE_SIZE - 1024:
                        raise RestoreError(f"path too long to open: {r.path}")
                    tracee.write(scratch, raw)
                    fd = sys.check(
                        SYS_OPENAT, AT_FDCWD, scratch, O_RDONLY | O_CLOEXEC, 0,
                        what=f"open of {r.path}",
                    )  # fmt: skip
                    fds[r.path] = fd
            got = sys.check(
                SYS_MMAP, r.start, r.end - r.start, r.prot, flags, fd, r.offset,
                what=f"mmap of {r.start:#x}-{r.end:#x} ({r.path or 'anonymous'})",
            )  # fmt: skip
            if got != r.start:
                raise RestoreError(f"mapping {r.start:#x} landed at {got:#x}")
        for fd in fds.values():
            sys(SYS_CLOSE, fd)

        written = self._write_memory(tracee, regions)
        brk_ok, brk = self._set_brk(tracee, sys, exe, regions, scratch)
        # Children it execs later get randomization back; it outlives us in --run.
        sys(SYS_PERSONALITY, ptrace.personality(0xFFFFFFFF))
        sys(SYS_PRCTL, ptrace.PR_SET_PDEATHSIG, 0)
        others = [t for t in core.threads if t.tid != thread.tid] if self.all_threads else []
        tid_field = self._tid_field(tracee, thread)
        pairs = [(tracee, thread)]
        pairs += self._clone_threads(tracee, sys, others, scratch, tid_field)
        for t, state in pairs:
            inj = sys if t is tracee else SyscallInjector(t, gadget, t.regs())
            self._thread_kernel_state(t, inj, state, tid_field, path_map)
        side = None
        if self.sidecar is not None:
            # After the threads exist: a restored RLIMIT_NPROC must not stop their clone3.
            code = [(r.start, r.end) for r in regions if r.prot & PROT_EXEC]
            side = apply_sidecar(
                self.sidecar, self.sidecar_where, tracee, sys, scratch,
                lambda a: any(lo <= a < hi for lo, hi in code), self._warn,
            )  # fmt: skip
        sys.check(SYS_MUNMAP, gadget, PAGE_SIZE, what="munmap of the gadget")
        done = tuple(
            RestoredThread(state.tid, t.pid, self._load_thread(t, state)) for t, state in pairs
        )
        left_out = tuple(t.tid for t in core.threads if t.tid != thread.tid and not others)
        report = RestoreReport(
            pid=tracee.pid, tid=thread.tid, run_as=run_as, exe=exe, left_out=left_out,
            warnings=tuple(self.warnings), brk_restored=brk_ok, brk=brk,
            restarted_syscall=done[0].restarted_syscall, regions=len(regions),
            bytes_written=written, seconds=time.perf_counter() - t0, threads=done, sidecar=side,
        )  # fmt: skip
        return Restored(tracee, report, core, exe, path_map)


def restore(
    core: Core,
    exe: str | None = None,
    tid: int | None = None,
    warn: Warn | None = None,
    set_brk: bool = True,
    stdio: tuple[int, int, int] | None = None,
    as_core_user: bool = True,
    sidecar: bool = True,
) -> Restored:
    """Restore `core` into a new process stopped under ptrace (see the module docstring).

    Raises RestoreError with a one-line, actionable message for bad input; no process is
    left behind then. set_brk=False leaves brk alone (as where PR_SET_MM is refused).
    stdio: file descriptors to become the process's 0, 1, 2 (default: the caller's).
    as_core_user=False: the process keeps the restorer's uid/gid instead of the core's.
    sidecar=False: CORE.syscap.json, if there is one, is not read (see restorer/sidecar.py).
    """
    restorer = _Restorer(core, warn or (lambda _m: None), set_brk, stdio, as_core_user, sidecar)
    return restorer.run(exe, tid)

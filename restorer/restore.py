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
FP/xstate and signal mask, and set up the restart of a syscall the dump interrupted.

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
"""

from __future__ import annotations

import bisect
import errno
import os
import pwd
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from restorer import ptrace
from restorer.arch import (
    EM_X86_64,
    ERESTART_RESTARTBLOCK,
    PAGE_SIZE,
    RSEQ_MIN_LEN,
    RSEQ_SIG,
    SYS_CLONE3,
    SYS_CLOSE,
    SYS_MMAP,
    SYS_MREMAP,
    SYS_MUNMAP,
    SYS_OPENAT,
    SYS_PERSONALITY,
    SYS_PRCTL,
    SYS_RSEQ,
    SYS_SET_TID_ADDRESS,
    SYSCALL_INSN,
    VSYSCALL_ADDR,
)
from restorer.core import AT_BASE, Core, Segment, ThreadState, page_align_down, page_align_up
from restorer.elf_file import read_elf
from restorer.errors import RestoreError
from restorer.inject import PatchedSyscall, SyscallInjector
from restorer.sidecar import Sidecar, SidecarError, SidecarReport, sidecar_path
from restorer.sidecar import apply as apply_sidecar
from restorer.sidecar import load as load_sidecar
from restorer.symbols import SymbolTable
from restorer.tracee import Tracee, wait_stop

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_GROWSDOWN = 0x100
MAP_FIXED_NOREPLACE = 0x100000
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
AT_FDCWD = -100
O_RDONLY, O_CLOEXEC = 0, 0o2000000
PR_SET_MM, PR_SET_MM_MAP = 35, 14
TASK_SIZE = 0x7FFFFFFFF000
SPECIAL_NAMES = ("[vvar]", "[vvar_vclock]", "[vdso]")
CAP_SYS_RESOURCE = 24
ADDR_NO_RANDOMIZE = 0x0040000
# A thread as pthread_create makes one (glibc's create_thread), less the flags whose state
# the restorer sets itself afterwards (TLS, tid addresses).
CLONE_THREAD_FLAGS = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000
# CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
CLONE_CHILD_CLEARTID = 0x200000
CLONE_ARGS_SIZE = 80  # CLONE_ARGS_SIZE_VER1: up to set_tid_size

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Region:
    """One mapping to create in the restored process."""

    start: int
    end: int
    prot: int
    path: str | None  # None: anonymous
    offset: int  # file offset when path is set
    dump: Segment | None  # bytes saved in the core for [start, start+dump.filesz)
    grows_down: bool = False


@dataclass(frozen=True, slots=True)
class MapsEntry:
    start: int
    end: int
    perms: str
    name: str


@dataclass(frozen=True, slots=True)
class RunAs:
    """The identity the restored process takes before its exec."""

    uid: int
    gid: int
    groups: tuple[int, ...]


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


def read_maps(pid: int) -> list[MapsEntry]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = parts[0].split("-")
            name = parts[5].strip() if len(parts) > 5 else ""
            out.append(MapsEntry(int(lo, 16), int(hi, 16), parts[1], name))
    return out


def has_cap_sys_resource() -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
    return False


# ---------------------------------------------------------------------------------------
# planning (pure: core + files on disk -> list of regions)


def choose_thread(core: Core, tid: int | None) -> ThreadState:
    """The thread `tid`; without one, the thread-group leader (the one whose TID is the
    process's PID), or the thread that took the signal if the core has no leader."""
    if tid is None:
        return core.thread(core.pid) or core.signal_thread
    t = core.thread(tid)
    if t is None:
        tids = ", ".join(str(x.tid) for x in core.threads)
        raise RestoreError(f"thread {tid} is not in the core; it has threads {tids} (use --tid)")
    return t


def resolve_exe(core: Core, exe: str | None) -> tuple[str, dict[str, str]]:
    """The executable to start and a map core path -> path to use."""
    core_exe = core.exe_path
    path_map: dict[str, str] = {}
    if exe is None:
        if core_exe is None:
            raise RestoreError(
                f"{core.path} names no executable (no NT_FILE note); pass it with --exe PATH"
            )
        exe = core_exe
    elif core_exe is not None:
        path_map[core_exe] = exe
    if not os.path.isfile(exe):
        raise RestoreError(
            f"executable {exe} not found; pass the program that produced the core with --exe PATH"
        )
    info = read_elf(exe)
    if info is None:
        raise RestoreError(f"{exe} is not a 64-bit ELF executable; pass the right one with --exe")
    if info.machine != EM_X86_64:
        raise RestoreError(f"{exe} is not an x86-64 executable; pass the right one with --exe")
    if core_exe is not None:
        want = core.build_id_in_memory(core_exe)
        if want is not None and info.build_id is not None and want != info.build_id:
            raise RestoreError(
                f"{exe} is not the program that wrote this core (build-id {info.build_id.hex()}, "
                f"core has {want.hex()}); pass the right one with --exe PATH"
            )
        if want is None:
            _check_layout(core, core_exe, exe)
    return exe, path_map


def _check_layout(core: Core, core_exe: str, exe: str) -> None:
    """Without a build-id: the core's copy of the program's ELF and program headers (the
    kernel and gcore dump the first page of a mapped ELF file) must be the file's, and its
    file mappings must fall inside the file's load segments."""
    info = read_elf(exe)
    assert info is not None
    first = [f for f in core.files if f.path == core_exe and f.offset == 0]
    saved = core.read(first[0].start, 64) if first else None
    if saved is not None:
        phoff, phnum = (
            struct.unpack_from("<Q", saved, 32)[0],
            struct.unpack_from("<H", saved, 56)[0],
        )
        # Headers beyond the first page may not be in the core; they are not compared.
        saved_ph = core.read(first[0].start + phoff, phnum * 56) if phoff < PAGE_SIZE else None
        with open(exe, "rb") as fh:
            head = fh.read(64)
            fh.seek(phoff if saved_ph is not None else 0)
            file_ph = fh.read(len(saved_ph)) if saved_ph is not None else None
        if saved != head or saved_ph != file_ph:
            raise RestoreError(
                f"{exe} does not match the core's executable {core_exe} (its ELF headers "
                "differ from the ones in the core); pass the right one with --exe PATH"
            )
    size = os.path.getsize(exe)
    for f in core.files:
        if f.path != core_exe:
            continue
        if f.offset >= size or info.prot_for_offset(f.offset) is None:
            raise RestoreError(
                f"{exe} does not match the core's executable {core_exe} (its mapping at "
                f"{f.start:#x} is not a load segment of {exe}); pass the right one with --exe"
            )


def specials_span(core: Core, fresh: list[MapsEntry]) -> tuple[int, int] | None:
    """Where the live [vvar]..[vdso] block will go: same offsets around the core's vDSO."""
    vdso = core.vdso_addr
    specials = [m for m in fresh if m.name in SPECIAL_NAMES]
    fresh_vdso = [m for m in specials if m.name == "[vdso]"]
    if vdso is None or not fresh_vdso:
        return None
    lo = min(m.start for m in specials)
    hi = max(m.end for m in specials)
    delta = vdso - fresh_vdso[0].start
    return lo + delta, hi + delta


def plan_regions(
    core: Core,
    path_map: dict[str, str],
    skip: tuple[int, int] | None,
    main_sp: int | None,
    warn: Warn,
) -> list[Region]:
    """Every mapping to rebuild, sorted by address."""
    regions: list[Region] = []
    missing: dict[str, int] = {}

    def usable(path: str) -> str | None:
        real = path_map.get(path, path)
        return real if os.path.isfile(real) else None

    for seg in core.segments:
        if seg.vaddr == VSYSCALL_ADDR or seg.vaddr >= TASK_SIZE:
            continue
        if skip is not None and skip[0] <= seg.vaddr < skip[1]:
            continue
        f = core.file_at(seg.vaddr)
        grows = main_sp is not None and seg.vaddr <= main_sp < seg.end and f is None
        if f is not None:
            real = usable(f.path)
            if real is None:
                if seg.filesz < seg.memsz:
                    missing.setdefault(f.path, seg.vaddr)
                    continue
                warn(f"{f.path} is missing; its mapping at {seg.vaddr:#x} comes back anonymous")
                regions.append(Region(seg.vaddr, seg.end, seg.prot, None, 0, seg))
                continue
            off = f.offset + (seg.vaddr - f.start)
            regions.append(Region(seg.vaddr, seg.end, seg.prot, real, off, seg))
        else:
            regions.append(Region(seg.vaddr, seg.end, seg.prot, None, 0, seg, grows))
    # NT_FILE ranges with no PT_LOAD (gcore leaves out untouched library text).
    starts = [s.vaddr for s in core.segments]
    for f in core.files:
        for lo, hi in _uncovered(f.start, f.end, core.segments, starts):
            real = usable(f.path)
            if real is None:
                missing.setdefault(f.path, lo)
                continue
            off = f.offset + (lo - f.start)
            info = read_elf(real)
            prot = info.prot_for_offset(off) if info is not None else None
            regions.append(Region(lo, hi, prot if prot is not None else PROT_READ, real, off, None))
    if missing:
        path, addr = next(iter(missing.items()))
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise RestoreError(
            f"{path} (mapped at {addr:#x}) is missing{more} and the core does not hold its "
            "contents; install it at that path or restore on the machine that wrote the core"
        )
    regions.sort(key=lambda r: r.start)
    return regions


def _uncovered(
    lo: int, hi: int, segs: tuple[Segment, ...], starts: list[int]
) -> list[tuple[int, int]]:
    out = []
    pos = lo
    i = max(bisect.bisect_right(starts, lo) - 1, 0)
    while pos < hi and i < len(segs):
        s = segs[i]
        if s.end <= pos:
            i += 1
            continue
        if s.vaddr >= hi:
            break
        if s.vaddr > pos:
            out.append((pos, s.vaddr))
        pos = max(pos, s.end)
        i += 1
    if pos < hi:
        out.append((pos, hi))
    return out


def check_build_ids(core: Core, path_map: dict[str, str], warn: Warn) -> None:
    for path in core.mapped_paths():
        real = path_map.get(path, path)
        want = core.build_id_in_memory(path)
        if want is None or not os.path.isfile(real):
            continue
        info = read_elf(real)
        if info is not None and info.build_id is not None and info.build_id != want:
            warn(
                f"{real} differs from the file the core was made with (build-id "
                f"{info.build_id.hex()}, core has {want.hex()}); code from it may not match"
            )


def _free_range(size: int, busy: list[tuple[int, int]], start: int = 0x100000) -> int:
    addr = start
    for lo, hi in sorted(busy):
        if addr + size <= lo:
            return addr
        addr = max(addr, page_align_up(hi))
    return addr


# ---------------------------------------------------------------------------------------
# doing it


def run_as_for(core: Core) -> RunAs | None:
    """The core's uid/gid (and that user's groups) when they differ from ours, else None.

    The user database is read here, not in the forked child (NSS may take locks another
    thread held at fork)."""
    if core.uid is None or core.gid is None:
        return None
    if (core.uid, core.gid) == (os.getuid(), os.getgid()):
        return None
    if os.geteuid() != 0:
        raise RestoreError(
            f"the core's process ran as uid {core.uid} gid {core.gid}; only root can restore "
            "it as that user: run as root, or pass --as-root to restore it as yourself"
        )
    try:
        name = pwd.getpwuid(core.uid).pw_name
        groups = tuple(os.getgrouplist(name, core.gid))
    except (KeyError, OSError):  # a uid with no entry here (a core from another machine)
        groups = (core.gid,)
    return RunAs(core.uid, core.gid, groups)


CHILD_EXEC_FAILED = 127
CHILD_SETID_FAILED = 126


def start_stopped(
    exe: str,
    stdio: tuple[int, int, int] | None = None,
    want_pid: int | None = None,
    run_as: RunAs | None = None,
) -> tuple[Tracee, str | None]:
    """fork + PTRACE_TRACEME + execve: the child stops right after exec.

    With `run_as`, the child takes those groups, gid and uid before it execs.

    With `want_pid`, the child gets that PID if it is free and the kernel allows it
    (clone3 set_tid), so the thread's cached TID in glibc (raise, pthread) and getpid()
    stay right. Returns the tracee and, if the PID could not be had, why.

    The child execs without address randomization, so its initial brk sits at the lowest
    address a PIE or non-PIE program's heap can have. Where brk cannot be moved to the core's
    heap, every later brk() from glibc then fails cleanly (the kernel returns a value below
    the request) and glibc grows the heap with mmap. A randomized fresh brk above the core's
    heap would instead be returned as "success" for requests below it, and glibc would write
    past the heap.
    """
    why: str | None = None
    pid = -1
    if want_pid is not None:
        try:
            pid = ptrace.fork_with_pid(want_pid)
        except OSError as e:
            why = "it is in use" if e.errno == errno.EEXIST else e.strerror
    if pid < 0:
        pid = os.fork()
    if pid == 0:  # child: nothing but exec
        try:
            if stdio is not None:
                high = [os.dup(fd) for fd in stdio]  # so (1, 0, 2) cannot clobber itself
                for target, fd in enumerate(high):
                    os.dup2(fd, target)
                    os.close(fd)
            if run_as is not None:
                try:
                    os.setgroups(list(run_as.groups))
                    os.setresgid(run_as.gid, run_as.gid, run_as.gid)
                    os.setresuid(run_as.uid, run_as.uid, run_as.uid)
                except OSError:
                    os._exit(CHILD_SETID_FAILED)
            # After the uid change: a credential change clears the parent death signal.
            ptrace.personality(ptrace.personality(0xFFFFFFFF) | ADDR_NO_RANDOMIZE)
            # Until PTRACE_O_EXITKILL is set, a dying restorer must not leave the fresh
            # program running on its own; cleared again during the restore.
            ptrace.set_parent_death_signal(signal.SIGKILL)
            ptrace.traceme()
            os.execv(exe, [exe])
        finally:
            os._exit(CHILD_EXEC_FAILED)
    stop = wait_stop(pid)
    if not stop.alive:
        if run_as is None:
            raise RestoreError(f"cannot start {exe} ({stop.describe()}); check it runs on its own")
        who = f"uid {run_as.uid} gid {run_as.gid}"
        if stop.kind == "exited" and stop.status == CHILD_SETID_FAILED:
            raise RestoreError(
                f"cannot take the core's {who} for the restored process; pass --as-root to "
                "restore it as root"
            )
        raise RestoreError(
            f"cannot start {exe} as the core's {who} ({stop.describe()}); check that user "
            "can run it, or pass --as-root to restore it as root"
        )
    ptrace.setoptions(pid, ptrace.PTRACE_O_EXITKILL)
    return Tracee(pid), why


def check_restorable(
    core: Core, exe: str | None, tid: int | None, warn: Warn
) -> tuple[ThreadState, str, dict[str, str], int | None]:
    """Everything about `core` that can be checked before a process exists.

    Returns (thread to restore, executable, core path -> path to use, main thread's stack
    pointer); raises RestoreError for bad input. Nothing here touches a process.
    """
    thread = choose_thread(core, tid)
    exe_path, path_map = resolve_exe(core, exe)
    check_build_ids(core, path_map, warn)
    main = core.thread(core.pid)
    main_sp = main.regs.rsp if main is not None else None
    # Plan once without knowing the fresh specials, to fail early on bad input.
    plan_regions(core, path_map, None, main_sp, lambda _m: None)
    return thread, exe_path, path_map, main_sp


class _Restorer:
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
        gadget = _free_range(PAGE_SIZE, busy)

        base = tracee.regs()
        boot = SyscallInjector(tracee, base.rip, base)
        with PatchedSyscall(tracee, base.rip):
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
                    tracee.write(state.regs.fs_base + tid_field, struct.pack("<i", new.pid))
            out.append((new, state))
        ptrace.setoptions(tracee.pid, ptrace.PTRACE_O_EXITKILL)
        return out

    def _tid_field(self, tracee: Tracee, thread: ThreadState) -> int | None:
        """Offset of glibc's struct pthread `tid` from the thread pointer (fs_base).

        libc describes its own layout for libthread_db: `_thread_db_pthread_tid` is
        (size in bits, count, offset). Without that symbol (a static or non-glibc program),
        None: the threads then have no clear_child_tid, and pthread_join() on a restored
        thread waits forever.
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
                saved = tracee.read(thread.regs.fs_base + offset, 4)
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
            sys(SYS_SET_TID_ADDRESS, state.regs.fs_base + tid_field)
        self._register_rseq(t, sys, state, path_map)

    def _place_specials(
        self,
        tracee: Tracee,
        sys: SyscallInjector,
        fresh: list[MapsEntry],
        span: tuple[int, int] | None,
        busy: list[tuple[int, int]],
    ) -> None:
        specials = [m for m in fresh if m.name in SPECIAL_NAMES]
        if span is None:
            if self.core.vdso_addr is not None:
                self._warn("this kernel has no vDSO to give the restored process")
            return
        self._compare_vdso(tracee, specials)
        lo = min(m.start for m in specials)
        delta = span[0] - lo
        if delta == 0:
            return
        size = span[1] - span[0]
        moves = [delta]
        if span[0] < lo + size and lo < span[1]:  # overlapping: go through a free spot
            tmp = _free_range(size, busy)
            moves = [tmp - lo, delta]
        cur = 0
        for d in moves:
            for m in specials:
                size_m = m.end - m.start
                sys.check(
                    SYS_MREMAP, m.start + cur, size_m, size_m, MREMAP_MAYMOVE | MREMAP_FIXED,
                    m.start + d, what=f"mremap of {m.name}",
                )  # fmt: skip
            cur = d

    def _compare_vdso(self, tracee: Tracee, specials: list[MapsEntry]) -> None:
        """Warn when the core's vDSO code is not this kernel's (a core from another kernel)."""
        vdso = [m for m in specials if m.name == "[vdso]"]
        core_vdso = self.core.vdso_addr
        if not vdso or core_vdso is None:
            return
        size = vdso[0].end - vdso[0].start
        saved = self.core.read(core_vdso, size)
        if saved is None or saved == tracee.read(vdso[0].start, size):
            return
        self._warn(
            "the core's vDSO differs from this kernel's (a core from another kernel?): the "
            "live one is used, so time functions work, but a thread stopped inside the vDSO "
            "would resume in different code"
        )

    def _write_memory(self, tracee: Tracee, regions: list[Region]) -> int:
        data = self.core.data
        zero = bytes(PAGE_SIZE)
        written = 0
        for r in regions:
            seg = r.dump
            if seg is None or seg.filesz == 0:
                continue
            if r.path is not None:
                tracee.write(r.start, data[seg.offset : seg.offset + seg.filesz])
                written += seg.filesz
                continue
            # Anonymous memory starts zeroed: write only the runs of non-zero pages.
            run_start = -1
            n = seg.filesz
            for off in range(0, n + PAGE_SIZE, PAGE_SIZE):
                is_zero = off >= n or data[seg.offset + off : seg.offset + off + PAGE_SIZE] == zero
                if not is_zero and run_start < 0:
                    run_start = off
                elif is_zero and run_start >= 0:
                    end = min(off, n)
                    tracee.write(
                        r.start + run_start, data[seg.offset + run_start : seg.offset + end]
                    )
                    written += end - run_start
                    run_start = -1
        return written

    def _set_brk(
        self, tracee: Tracee, sys: SyscallInjector, exe: str, regions: list[Region], scratch: int
    ) -> tuple[bool, int | None]:
        """Move the kernel's brk to the core's heap with prctl(PR_SET_MM_MAP).

        kernel/sys.c checks CAP_SYS_RESOURCE for the single-field PR_SET_MM_START_BRK/_BRK
        options, but PR_SET_MM_MAP (all fields at once, made for checkpoint/restore) is
        handled before that check on kernels with CONFIG_CHECKPOINT_RESTORE, as here: root
        without CAP_SYS_RESOURCE can still use it. Without that config it fails with EPERM;
        then the heap keeps growing in a new area (see start_stopped).
        """
        heap = find_heap(self.core, exe, regions)
        if heap is None:  # the program never used brk: nothing to continue
            return False, None
        if not self.set_brk:
            return False, heap[1]
        start_brk, brk, code, data_ = heap
        stat = _stat_fields(tracee.pid)
        values = [
            code[0], code[1], data_[0], data_[1], start_brk, brk,
            stat["start_stack"], stat["arg_start"], stat["arg_end"], stat["env_start"],
            stat["env_end"],
        ]  # fmt: skip
        blob = struct.pack("<11QQII", *values, 0, 0, 0xFFFFFFFF)
        tracee.write(scratch, blob)
        ret = sys(SYS_PRCTL, PR_SET_MM, PR_SET_MM_MAP, scratch, len(blob), 0)
        if ret == 0:
            return True, brk
        why = os.strerror(-ret)
        # The prctl runs in the process: with the core's uid it has no capabilities at all.
        if ret == -1 and (self.run_as is not None or not has_cap_sys_resource()):  # EPERM
            why = "EPERM: no CONFIG_CHECKPOINT_RESTORE and no CAP_SYS_RESOURCE"
        self._warn(
            f"brk not restored (prctl PR_SET_MM: {why}); the heap keeps its contents and "
            "grows in a new area (glibc handles this)"
        )
        return False, brk

    def _register_rseq(
        self, tracee: Tracee, sys: SyscallInjector, thread: ThreadState, path_map: dict[str, str]
    ) -> None:
        """Register glibc's rseq area of the thread again, as glibc did at thread start.

        glibc (2.35+) reads the current CPU from it (sched_getcpu); unregistered, it would
        keep the CPU of the dump forever. The area is at fs_base + __rseq_offset.
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
        area = thread.regs.fs_base + offset
        ret = sys(SYS_RSEQ, area, max(size, RSEQ_MIN_LEN), 0, RSEQ_SIG)
        if ret < 0:
            self._warn(
                f"rseq area not registered again ({os.strerror(-ret)}); sched_getcpu() may "
                "report the CPU of the dump"
            )

    def _load_thread(self, tracee: Tracee, thread: ThreadState) -> int | None:
        regs = thread.regs
        restarted = regs.interrupted_syscall
        if restarted is not None:
            if -regs.syscall_result == ERESTART_RESTARTBLOCK:
                self._warn(
                    f"syscall {restarted} was interrupted with ERESTART_RESTARTBLOCK; it is "
                    "restarted from the beginning with its original arguments"
                )
            # What the kernel does on restart: run the same syscall again.
            regs = regs.replace(rax=regs.orig_rax, rip=regs.rip - 2)
        regs = regs.replace(orig_rax=(1 << 64) - 1)
        tracee.set_regs(regs)
        if thread.fpregs is not None:
            ptrace.setfpregs(tracee.pid, thread.fpregs)
        if thread.xstate is not None:
            try:
                # The kernel takes only a whole buffer of its own size; gdb writes a shorter
                # one (up to the features it knows), the rest stays in init state.
                size = len(ptrace.getregset(tracee.pid, ptrace.NT_X86_XSTATE, 1 << 16))
                ptrace.setregset(
                    tracee.pid, ptrace.NT_X86_XSTATE, thread.xstate[:size].ljust(size, b"\0")
                )
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


def _stat_fields(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()

    # fields[0] is field 3 (state); field N is fields[N - 3]
    def fld(n: int) -> int:
        return int(fields[n - 3])

    return {
        "start_stack": fld(28), "arg_start": fld(48), "arg_end": fld(49),
        "env_start": fld(50), "env_end": fld(51),
    }  # fmt: skip


def find_heap(
    core: Core, exe: str, regions: list[Region]
) -> tuple[int, int, tuple[int, int], tuple[int, int]] | None:
    """(start_brk, brk, code range, data range) from the exe's segments and the core's maps.

    The heap is the first anonymous mapping at or after the end of the exe's bss (the kernel
    puts start_brk there, up to 1 GiB further when randomized: arch_randomize_brk).
    """
    core_exe = core.exe_path
    info = read_elf(exe)
    if core_exe is None or info is None or not info.segments:
        return None
    first = [f for f in core.files if f.path == core_exe and f.offset == 0]
    if not first:
        return None
    lowest = min(info.segments, key=lambda s: s.vaddr)
    bias = first[0].start - page_align_down(lowest.vaddr)
    exec_segs = [s for s in info.segments if s.prot & PROT_EXEC]
    data_segs = [s for s in info.segments if s.prot & PROT_WRITE]
    if not exec_segs or not data_segs:
        return None
    code = (bias + exec_segs[0].vaddr, bias + exec_segs[0].vaddr + exec_segs[0].memsz)
    data = (bias + data_segs[-1].vaddr, bias + data_segs[-1].vaddr + data_segs[-1].filesz)
    bss_end = page_align_up(bias + max(s.vaddr + s.memsz for s in info.segments))
    for r in regions:
        if (
            r.path is None
            and bss_end <= r.start < bss_end + (1 << 30) + PAGE_SIZE
            and (r.prot == PROT_READ | PROT_WRITE)
        ):
            return r.start, r.end, code, data
    return None


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

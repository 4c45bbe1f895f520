"""What an ELF core leaves out, saved beside cores syscap takes: CORE.syscap.json.

A core holds memory and registers; the kernel state a process keeps elsewhere is lost:
open file descriptors (which file, flags, offset), signal dispositions and handlers, the
working directory, resource limits. capture() reads them from a live process: /proc for
descriptors, cwd and limits, and rt_sigaction(sig, NULL, &old) run inside the process
under ptrace for handlers (/proc shows only the SigCgt/SigIgn masks, not addresses).
apply() puts them back into a restored process through injected syscalls.

The file is untrusted input, like the core: parse() checks every field (types, ranges,
NUL-free paths, unique and sane descriptor numbers) and raises SidecarError, one line.
The format is described in restorer/README.md.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restorer import ptrace
from restorer.arch import (
    ARM64,
    INSN_ALIGN,
    PAGE_SIZE,
    SYS_CHDIR,
    SYS_CLOSE,
    SYS_DUP3,
    SYS_FCNTL,
    SYS_LSEEK,
    SYS_OPENAT,
    SYS_PRLIMIT64,
    SYS_RT_SIGACTION,
    SYSCALL_INSN,
    TASK_SIZE,
)
from restorer.errors import RestoreError
from restorer.inject import InjectionError, SyscallInjector
from restorer.tracee import Tracee, signal_name, wait_stop

SUFFIX = ".syscap.json"
FORMAT = "syscap core sidecar"
VERSION = 1
MAX_BYTES = 16 << 20  # a process with a million descriptors fits
MAX_FD = 0x7FFFFFFF
MAX_FDS = 1 << 20
MAX_THREADS = 1 << 22
PID_MAX = 1 << 22  # PID_MAX_LIMIT on 64-bit
PATH_MAX = 4096
NSIG = 64
U64 = (1 << 64) - 1
RLIM_INFINITY = U64
SIG_DFL, SIG_IGN = 0, 1
SA_RESTORER = 0x04000000
SIGSET_SIZE = 8
USER_TOP = TASK_SIZE  # above: x86-64's [vsyscall], which traps instead of running its syscall

KINDS = ("file", "directory", "device", "fifo", "socket", "pipe", "anon_inode", "deleted", "other")
# resource numbers 0..15 (include/uapi/asm-generic/resource.h), named as in prlimit(1)
RLIMIT_NAMES = (
    "cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile", "memlock", "as",
    "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime",
)  # fmt: skip
# Devices that are safe to open again: no side effects, no hardware behind them.
SAFE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")

O_ACCMODE = 0o3
O_NOCTTY = 0o400
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DSYNC = 0o10000
# Four flags have other values on arm64 (arch/arm64/include/uapi/asm/fcntl.h).
O_DIRECT = 0o200000 if ARM64 else 0o40000
O_LARGEFILE = 0o400000 if ARM64 else 0o100000
O_DIRECTORY = 0o40000 if ARM64 else 0o200000
O_NOFOLLOW = 0o100000 if ARM64 else 0o400000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
O_SYNC = 0o4010000
O_PATH = 0o10000000
# What an open() may be given again: never O_CREAT, O_EXCL, O_TRUNC or O_TMPFILE.
REOPEN_FLAGS = (
    O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_DIRECT | O_LARGEFILE | O_DIRECTORY
    | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_SYNC | O_PATH
)  # fmt: skip
AT_FDCWD = -100
F_SETFL = 4
SEEK_SET = 0

Warn = Callable[[str], None]


class SidecarError(RestoreError):
    """The sidecar file is unusable; the message names the field and says what to do."""


@dataclass(frozen=True, slots=True)
class FdEntry:
    fd: int
    path: str  # readlink of /proc/PID/fd/N: a path, or socket:[ino], pipe:[ino], anon_inode:...
    kind: str  # one of KINDS
    flags: int  # /proc/PID/fdinfo/N flags (open flags, O_CLOEXEC included)
    pos: int
    dev: int | None = None  # of the file, to notice a different file at the same path
    ino: int | None = None


@dataclass(frozen=True, slots=True)
class SignalAction:
    """The kernel's struct sigaction for one signal (the same layout on x86-64 and arm64)."""

    signal: int
    handler: int  # SIG_DFL (0), SIG_IGN (1) or the handler's address
    flags: int
    restorer: int
    mask: int


@dataclass(frozen=True, slots=True)
class Rlimit:
    resource: int
    soft: int | None  # None: unlimited
    hard: int | None

    @property
    def name(self) -> str:
        return RLIMIT_NAMES[self.resource]


@dataclass(frozen=True, slots=True)
class Sidecar:
    pid: int
    cwd: str | None
    fds: tuple[FdEntry, ...]
    signals: tuple[SignalAction, ...] | None  # None: not captured (see not_captured)
    rlimits: tuple[Rlimit, ...] | None
    not_captured: dict[str, str] = field(default_factory=dict)
    blocked: dict[int, int] = field(default_factory=dict)  # tid -> blocked signals (SigBlk)


@dataclass(frozen=True, slots=True)
class SidecarReport:
    """What apply() brought back; everything else was named through `warn`."""

    path: str
    fds: tuple[int, ...]
    signals: int
    cwd: str | None
    rlimits: int
    not_restored: tuple[str, ...]


def sidecar_path(core_path: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(core_path) + SUFFIX)


# ---------------------------------------------------------------------------------------
# capture (a live process)


def capture(pid: int) -> Sidecar:
    """Everything this module saves, from live process `pid` (root, or its owner with
    ptrace allowed). What cannot be read is left out and named in not_captured; a process
    that is gone raises RestoreError."""
    missing: dict[str, str] = {}
    try:
        cwd: str | None = os.readlink(f"/proc/{pid}/cwd")
        fds = read_fds(pid)
    except FileNotFoundError as e:
        raise RestoreError(f"pid {pid} ended before its descriptors could be saved") from e
    except PermissionError as e:
        raise RestoreError(f"cannot read /proc/{pid} ({e.strerror}); run as root") from e
    rlimits: tuple[Rlimit, ...] | None = None
    try:
        rlimits = read_rlimits(pid)
    except OSError as e:
        missing["rlimits"] = f"prlimit: {e.strerror}"
    blocked = read_blocked(pid)
    signals: tuple[SignalAction, ...] | None = None
    try:
        signals = read_signal_actions(pid)
    except InjectionError as e:  # its message is about restored processes
        missing["signals"] = f"pid {pid} ended while they were read ({e.__class__.__name__})"
    except RestoreError as e:
        missing["signals"] = str(e)
    except OSError as e:
        missing["signals"] = f"ptrace: {e.strerror or e}"
    return Sidecar(pid, cwd, fds, signals, rlimits, missing, blocked)


def read_blocked(pid: int) -> dict[int, int]:
    """Each thread's blocked-signal mask: gcore does not write it into the core."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("SigBlk:"):
                        out[int(tid)] = int(line.split()[1], 16)
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return dict(sorted(out.items()))


def read_fds(pid: int) -> tuple[FdEntry, ...]:
    base = f"/proc/{pid}/fd"
    out = []
    for name in sorted(os.listdir(base), key=int):
        link = f"{base}/{name}"
        try:
            target = os.readlink(link)
            pos, flags = _fdinfo(pid, name)
            kind, dev, ino = _kind(link, target)
        except FileNotFoundError:  # closed meanwhile
            continue
        out.append(FdEntry(int(name), target, kind, flags, pos, dev, ino))
    return tuple(out)


def _fdinfo(pid: int, fd: str) -> tuple[int, int]:
    pos = flags = 0
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "pos":
                pos = int(value)
            elif key == "flags":
                flags = int(value, 8)
    return pos, flags


def _kind(link: str, target: str) -> tuple[str, int | None, int | None]:
    for prefix, kind in (("socket:", "socket"), ("pipe:", "pipe"), ("anon_inode:", "anon_inode")):
        if target.startswith(prefix):
            return kind, None, None
    if not target.startswith("/"):  # net:[...], mnt:[...], and other pseudo files
        return "other", None, None
    st = os.stat(link)  # the open file itself, through the magic link
    if st.st_nlink == 0 and target.endswith(" (deleted)"):
        return "deleted", None, None
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind = "file"
    elif stat.S_ISDIR(mode):
        kind = "directory"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "device"
    elif stat.S_ISFIFO(mode):
        kind = "fifo"
    elif stat.S_ISSOCK(mode):
        kind = "socket"
    else:
        kind = "other"
    return kind, st.st_dev, st.st_ino


def read_rlimits(pid: int) -> tuple[Rlimit, ...]:
    out = []
    for res in range(len(RLIMIT_NAMES)):
        soft, hard = resource.prlimit(pid, res)
        out.append(Rlimit(res, _limit(soft), _limit(hard)))
    return tuple(out)


def _limit(value: int) -> int | None:
    return None if value == resource.RLIM_INFINITY or value < 0 or value >= U64 else value


def read_signal_actions(pid: int) -> tuple[SignalAction, ...]:
    """Every signal's action, read by rt_sigaction(sig, NULL, &old) inside the process.

    One thread is seized and interrupted (PTRACE_SEIZE sends no signal; the others keep
    running: actions are per process). The syscall instruction used is one already in
    the process's code (the vDSO has one), so no code is changed under the other threads;
    the result goes below the thread's red zone, as a signal frame would. A syscall the
    thread sleeps in is restarted as after any signal; signals that arrive meanwhile are
    sent again on detach.
    """
    tid = _stoppable_thread(pid)
    ptrace.seize(tid)
    tracee = Tracee(tid)
    resend: list[int] = []
    saved = None
    try:
        ptrace.interrupt(tid)
        resend += _wait_for_interrupt(tid)
        saved = tracee.regs()
        gadget = _find_syscall_insn(tracee, pid)
        buf = (saved.sp - 128 - 64) & ~15
        kept = tracee.read(buf, 32)
        sys = SyscallInjector(tracee, gadget, saved)
        out = []
        try:
            for sig in range(1, NSIG + 1):
                if sig in (signal.SIGKILL, signal.SIGSTOP):
                    continue
                ret = sys(SYS_RT_SIGACTION, sig, 0, buf, SIGSET_SIZE)
                if ret < 0:
                    raise RestoreError(f"rt_sigaction({sig}) failed: {os.strerror(-ret)}")
                handler, flags, restorer, mask = struct.unpack("<4Q", tracee.read(buf, 32))
                out.append(SignalAction(sig, handler, flags, restorer, mask))
        finally:
            resend += sys.dropped
            if tracee.alive:
                tracee.write(buf, kept)
        return tuple(out)
    finally:
        tracee.close_mem()
        if tracee.alive:
            try:
                if saved is not None:
                    tracee.set_regs(saved)
                ptrace.detach(tid)
            except OSError:
                pass  # it died meanwhile: nothing to give back
            for sig in resend:
                try:
                    ptrace.tgkill(pid, tid, sig)
                except OSError:
                    pass


def _stoppable_thread(pid: int) -> int:
    """A thread of `pid` that is not a zombie (the leader may have exited alone)."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError as e:
        raise RestoreError(f"pid {pid} has ended") from e
    tids.sort(key=lambda t: t != pid)
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        if text[text.rindex(")") + 2] not in "ZX":
            return tid
    raise RestoreError(f"pid {pid} has no live thread")


def _wait_for_interrupt(tid: int) -> list[int]:
    """Wait for the PTRACE_INTERRUPT stop; a signal that comes first is passed on."""
    while True:
        stop = wait_stop(tid)
        if not stop.alive:
            raise RestoreError(f"thread {tid} ended ({stop.describe()})")
        if stop.event == ptrace.PTRACE_EVENT_STOP:
            return []
        ptrace.cont(tid, stop.signal if not stop.event else 0)


def _find_syscall_insn(tracee: Tracee, pid: int) -> int:
    with open(f"/proc/{pid}/maps") as f:
        maps = [line.split() for line in f]
    code = []
    for parts in maps:
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        name = parts[5] if len(parts) > 5 else ""
        if "x" in parts[1] and hi <= USER_TOP:
            code.append((name != "[vdso]", lo, hi))
    for _, lo, hi in sorted(code):
        for at in range(lo, hi, 1 << 20):
            try:
                chunk = tracee.read(at, min(hi, at + (1 << 20) + 1) - at)
            except OSError:
                break
            i = chunk.find(SYSCALL_INSN)
            while i >= 0 and (at + i) % INSN_ALIGN:  # arm64: only at an instruction's start
                i = chunk.find(SYSCALL_INSN, i + 1)
            if i >= 0:
                return at + i
    raise RestoreError("no syscall instruction found in the process's code")


# ---------------------------------------------------------------------------------------
# the file


def to_json(sc: Sidecar) -> dict[str, Any]:
    def handler(h: int) -> int | str:
        return {SIG_DFL: "SIG_DFL", SIG_IGN: "SIG_IGN"}.get(h, h)

    return {
        "format": FORMAT,
        "version": VERSION,
        "pid": sc.pid,
        "cwd": sc.cwd,
        "fds": [
            {
                "fd": e.fd, "path": e.path, "kind": e.kind, "flags": e.flags, "pos": e.pos,
                "dev": e.dev, "ino": e.ino,
            }
            for e in sc.fds
        ],
        "signals": None if sc.signals is None else [
            {
                "signal": a.signal, "handler": handler(a.handler), "flags": a.flags,
                "mask": a.mask, "restorer": a.restorer,
            }
            for a in sc.signals
        ],
        "rlimits": None if sc.rlimits is None else [
            {"resource": r.name, "soft": r.soft, "hard": r.hard} for r in sc.rlimits
        ],
        "not_captured": dict(sc.not_captured),
        "threads": [{"tid": tid, "blocked": mask} for tid, mask in sc.blocked.items()],
    }  # fmt: skip


def write(sc: Sidecar, path: str | os.PathLike[str]) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = Path(os.fspath(path) + ".tmp")
    tmp.write_text(json.dumps(to_json(sc), indent=1) + "\n")
    os.replace(tmp, path)


def load(path: str | os.PathLike[str]) -> Sidecar | None:
    """The sidecar at `path`, None if there is none; SidecarError if it is unusable."""
    where = os.fspath(path)
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise SidecarError(f"cannot open {where}: {e.strerror}; {_FIX}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SidecarError(f"{where} is not a regular file; {_FIX}")
        if st.st_size > MAX_BYTES:
            raise SidecarError(f"{where} is larger than {MAX_BYTES >> 20} MiB; {_FIX}")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    return parse(data, where)


_FIX = "remove it or pass --no-sidecar"


def parse(data: bytes, where: str = "sidecar") -> Sidecar:
    """A Sidecar from the file's bytes; SidecarError (one line) for anything malformed."""
    if len(data) > MAX_BYTES:
        raise SidecarError(f"{where} is larger than {MAX_BYTES >> 20} MiB; {_FIX}")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        what = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SidecarError(f"{where} is not JSON ({what[:120]}); {_FIX}") from e
    try:
        return _Parser().sidecar(obj)
    except _Bad as e:
        raise SidecarError(f"{where} is not a valid syscap sidecar: {e}; {_FIX}") from None


class _Bad(RestoreError):
    """What is wrong with one field; parse() says it as a SidecarError with the fix."""


class _Parser:
    def sidecar(self, obj: object) -> Sidecar:
        top = self._dict(obj, "the file")
        if top.get("format") != FORMAT:
            raise _Bad(f'"format" is not "{FORMAT}"')
        version = self._int(top.get("version"), "version", 1, 1 << 31)
        if version != VERSION:
            raise _Bad(f"version {version} is not {VERSION} (written by another syscap)")
        pid = self._int(top.get("pid"), "pid", 1, PID_MAX)
        cwd = top.get("cwd")
        cwd = None if cwd is None else self._path(cwd, "cwd")
        fds_raw = self._list(top.get("fds"), "fds", MAX_FDS)
        fds = tuple(self._fd(x, f"fds[{i}]") for i, x in enumerate(fds_raw))
        if len({e.fd for e in fds}) != len(fds):
            raise _Bad("fds lists a descriptor number twice")
        signals = None
        if top.get("signals") is not None:
            sig_raw = self._list(top["signals"], "signals", NSIG)
            signals = tuple(self._signal(x, f"signals[{i}]") for i, x in enumerate(sig_raw))
            if len({a.signal for a in signals}) != len(signals):
                raise _Bad("signals lists a signal twice")
        rlimits = None
        if top.get("rlimits") is not None:
            lim_raw = self._list(top["rlimits"], "rlimits", len(RLIMIT_NAMES))
            rlimits = tuple(self._rlimit(x, f"rlimits[{i}]") for i, x in enumerate(lim_raw))
            if len({r.resource for r in rlimits}) != len(rlimits):
                raise _Bad("rlimits lists a resource twice")
        nc = self._dict(top.get("not_captured", {}), "not_captured")
        not_captured = {
            printable(str(k)[:64]): self._str(v, f"not_captured.{printable(str(k)[:64])}", 1000)
            for k, v in nc.items()
        }
        blocked: dict[int, int] = {}
        for i, x in enumerate(self._list(top.get("threads", []), "threads", MAX_THREADS)):
            d = self._dict(x, f"threads[{i}]")
            tid = self._int(d.get("tid"), f"threads[{i}].tid", 1, PID_MAX)
            if tid in blocked:
                raise _Bad("threads lists a thread twice")
            blocked[tid] = self._int(d.get("blocked"), f"threads[{i}].blocked", 0, U64)
        return Sidecar(pid, cwd, fds, signals, rlimits, not_captured, blocked)

    def _fd(self, obj: object, at: str) -> FdEntry:
        d = self._dict(obj, at)
        kind = d.get("kind")
        if kind not in KINDS:
            raise _Bad(f"{at}.kind is not one of {', '.join(KINDS)}")
        return FdEntry(
            fd=self._int(d.get("fd"), f"{at}.fd", 0, MAX_FD),
            path=self._path(d.get("path"), f"{at}.path"),
            kind=str(kind),
            flags=self._int(d.get("flags"), f"{at}.flags", 0, 0xFFFFFFFF),
            pos=self._int(d.get("pos"), f"{at}.pos", 0, (1 << 63) - 1),
            dev=self._opt_int(d.get("dev"), f"{at}.dev", U64),
            ino=self._opt_int(d.get("ino"), f"{at}.ino", U64),
        )

    def _signal(self, obj: object, at: str) -> SignalAction:
        d = self._dict(obj, at)
        sig = self._int(d.get("signal"), f"{at}.signal", 1, NSIG)
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            raise _Bad(f"{at}.signal is SIGKILL or SIGSTOP, whose action cannot change")
        h = d.get("handler")
        handler = {"SIG_DFL": SIG_DFL, "SIG_IGN": SIG_IGN}.get(h) if isinstance(h, str) else None
        if handler is None:
            handler = self._int(h, f"{at}.handler (SIG_DFL, SIG_IGN or an address)", 2, U64)
        return SignalAction(
            sig, handler, self._int(d.get("flags"), f"{at}.flags", 0, U64),
            self._int(d.get("restorer"), f"{at}.restorer", 0, U64),
            self._int(d.get("mask"), f"{at}.mask", 0, U64),
        )  # fmt: skip

    def _rlimit(self, obj: object, at: str) -> Rlimit:
        d = self._dict(obj, at)
        name = d.get("resource")
        if name not in RLIMIT_NAMES:
            raise _Bad(f"{at}.resource is not one of {', '.join(RLIMIT_NAMES)}")
        soft = self._opt_int(d.get("soft"), f"{at}.soft", U64 - 1)
        hard = self._opt_int(d.get("hard"), f"{at}.hard", U64 - 1)
        if hard is not None and (soft is None or soft > hard):
            raise _Bad(f"{at}: soft limit above the hard limit")
        return Rlimit(RLIMIT_NAMES.index(str(name)), soft, hard)

    @staticmethod
    def _dict(obj: object, at: str) -> dict[str, object]:
        if not isinstance(obj, dict):
            raise _Bad(f"{at} is not an object")
        return obj

    @staticmethod
    def _list(obj: object, at: str, most: int) -> list[object]:
        if not isinstance(obj, list):
            raise _Bad(f"{at} is not a list")
        if len(obj) > most:
            raise _Bad(f"{at} has more than {most} entries")
        return obj

    @staticmethod
    def _int(obj: object, at: str, lo: int, hi: int) -> int:
        if not isinstance(obj, int) or isinstance(obj, bool) or not lo <= obj <= hi:
            raise _Bad(f"{at} is not an integer in {lo}..{hi}")
        return obj

    def _opt_int(self, obj: object, at: str, hi: int) -> int | None:
        return None if obj is None else self._int(obj, at, 0, hi)

    @staticmethod
    def _str(obj: object, at: str, most: int) -> str:
        if not isinstance(obj, str) or len(obj) > most:
            raise _Bad(f"{at} is not a string of at most {most} characters")
        return obj

    def _path(self, obj: object, at: str) -> str:
        s = self._str(obj, at, PATH_MAX)
        if not s or "\0" in s:
            raise _Bad(f"{at} is empty or holds a NUL")
        try:
            if len(os.fsencode(s)) >= PATH_MAX:
                raise _Bad(f"{at} is longer than {PATH_MAX - 1} bytes")
        except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
            raise _Bad(f"{at} is not a file name") from None
        return s


# ---------------------------------------------------------------------------------------
# apply (a restored process, stopped, with a syscall gadget)


class _Applier:
    def __init__(
        self,
        tracee: Tracee,
        sys: SyscallInjector,
        scratch: int,
        executable: Callable[[int], bool],
        warn: Warn,
    ) -> None:
        self.tracee = tracee
        self.sys = sys
        self.scratch = scratch
        self.room = PAGE_SIZE - (scratch % PAGE_SIZE) - 1
        self.executable = executable
        self.warn = warn
        self.lost: list[str] = []

    def not_restored(self, msg: str) -> None:
        msg = printable(msg)
        self.lost.append(msg)
        self.warn(msg)

    def put_path(self, path: str) -> bool:
        raw = os.fsencode(path) + b"\0"
        if len(raw) > self.room:
            return False
        self.tracee.write(self.scratch, raw)
        return True

    def rlimits(self, limits: tuple[Rlimit, ...]) -> int:
        done = 0
        for r in limits:
            soft = RLIM_INFINITY if r.soft is None else r.soft
            hard = RLIM_INFINITY if r.hard is None else r.hard
            self.tracee.write(self.scratch, struct.pack("<QQ", soft, hard))
            ret = self.sys(SYS_PRLIMIT64, 0, r.resource, self.scratch, 0)
            if ret < 0:
                why = os.strerror(-ret)
                if ret == -1:  # EPERM
                    why += ": raising a hard limit needs CAP_SYS_RESOURCE"
                self.not_restored(
                    f"rlimit {r.name} ({_lim(r.soft)}/{_lim(r.hard)}) not restored: {why}"
                )
            else:
                done += 1
        return done

    def fd(self, e: FdEntry) -> bool:
        def lost(why: str) -> bool:
            self.not_restored(f"fd {e.fd} ({e.path}) not restored: {why}")
            return False

        why = _why_not(e)
        if why is not None:
            return lost(why)
        try:
            st = os.stat(e.path)
        except OSError as err:
            return lost(f"cannot find it ({err.strerror})")
        want = {"file": stat.S_ISREG, "directory": stat.S_ISDIR, "device": stat.S_ISCHR}[e.kind]
        if not want(st.st_mode):
            return lost(f"it is no longer a {'character device' if e.kind == 'device' else e.kind}")
        if e.ino is not None and (st.st_dev, st.st_ino) != (e.dev, e.ino):
            self.warn(
                f"fd {e.fd} ({printable(e.path)}): the file at that path is not the one the "
                "process had open (another device or inode); it is reopened anyway"
            )
        if not self.put_path(e.path):
            return lost("its path is too long to open here")
        flags = e.flags & REOPEN_FLAGS
        # Non-blocking and without a controlling terminal: the restorer must not hang in
        # an open() or give the process a terminal; the saved flags are set afterwards.
        flags |= O_NONBLOCK | O_NOCTTY | (O_DIRECTORY if e.kind == "directory" else 0)
        got = self.sys(SYS_OPENAT, AT_FDCWD, self.scratch, flags, 0)
        if got < 0:
            return lost(f"cannot open it ({os.strerror(-got)})")
        if got != e.fd:
            ret = self.sys(SYS_DUP3, got, e.fd, e.flags & O_CLOEXEC)
            self.sys(SYS_CLOSE, got)
            if ret < 0:
                return lost(f"cannot make it fd {e.fd} ({os.strerror(-ret)})")
        if e.flags & O_PATH:
            return True
        if not e.flags & O_NONBLOCK:
            self.sys(SYS_FCNTL, e.fd, F_SETFL, e.flags)
        if e.pos:
            ret = self.sys(SYS_LSEEK, e.fd, e.pos, SEEK_SET)
            if ret < 0:
                self.not_restored(
                    f"fd {e.fd} ({e.path}) is open again, but not at offset {e.pos} "
                    f"({os.strerror(-ret)})"
                )
        return True

    def signal(self, a: SignalAction) -> bool:
        name = signal_name(a.signal) if a.signal < 32 else f"signal {a.signal}"
        if a.handler > SIG_IGN and not self.executable(a.handler):
            self.not_restored(
                f"{name} handler at {a.handler:#x} not restored: that is not code in the core"
            )
            return False
        flags, restorer = a.flags, a.restorer
        if a.handler <= SIG_IGN and flags & SA_RESTORER and not self.executable(restorer):
            flags, restorer = flags & ~SA_RESTORER, 0  # no handler runs: no return path needed
        if flags & SA_RESTORER and not self.executable(restorer):
            self.not_restored(
                f"{name} action not restored: its sa_restorer {a.restorer:#x} is not code in "
                "the core"
            )
            return False
        self.tracee.write(self.scratch, struct.pack("<4Q", a.handler, flags, restorer, a.mask))
        ret = self.sys(SYS_RT_SIGACTION, a.signal, self.scratch, 0, SIGSET_SIZE)
        if ret < 0:
            self.not_restored(f"{name} action not restored: {os.strerror(-ret)}")
            return False
        return True

    def cwd(self, path: str) -> bool:
        if not self.put_path(path):
            self.not_restored(f"cwd {path} not restored: the path is too long")
            return False
        ret = self.sys(SYS_CHDIR, self.scratch)
        if ret < 0:
            self.not_restored(f"cwd {path} not restored: {os.strerror(-ret)}")
            return False
        return True


def printable(text: str) -> str:
    """`text` on one line: control characters (a newline in a file name, or put in the
    sidecar) are shown as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _lim(v: int | None) -> str:
    return "unlimited" if v is None else str(v)


def _why_not(e: FdEntry) -> str | None:
    """Why descriptor `e` cannot be opened again, or None if it can be tried."""
    if e.kind == "socket":
        return "sockets cannot be rebuilt"
    if e.kind == "pipe":
        return "pipes cannot be rebuilt (the other end is not in the core)"
    if e.kind == "anon_inode":
        return "anonymous inodes (eventfd, epoll, timerfd, signalfd, ...) cannot be rebuilt"
    if e.kind == "deleted":
        return "the file was deleted"
    if e.kind == "fifo":
        return "named pipes are not reopened (an open waits for the other end)"
    if e.kind == "device" and e.path not in SAFE_DEVICES:
        return "devices are not reopened (opening one can have side effects)"
    if e.kind == "other" or not e.path.startswith("/"):
        return "this kind of file cannot be rebuilt"
    return None


def apply(
    sc: Sidecar,
    where: str,
    tracee: Tracee,
    sys: SyscallInjector,
    scratch: int,
    executable: Callable[[int], bool],
    warn: Warn,
) -> SidecarReport:
    """Put `sc` back into the restored process `tracee` (stopped, `sys` its injector,
    `scratch` a writable page part). Descriptors 0, 1 and 2 stay the restorer's stdio.
    `executable(addr)`: whether addr is code in the restored layout (handlers must be)."""
    ap = _Applier(tracee, sys, scratch, executable, warn)
    for what, why in sc.not_captured.items():
        ap.not_restored(f"{what} not restored: they were not saved ({why})")
    # Limits first: a raised RLIMIT_NOFILE may be what lets a high descriptor come back.
    lims = ap.rlimits(sc.rlimits) if sc.rlimits is not None else 0
    fds = tuple(e.fd for e in sc.fds if e.fd > 2 and ap.fd(e))
    sigs = sum(1 for a in sc.signals or () if ap.signal(a))
    cwd = sc.cwd if sc.cwd is not None and ap.cwd(sc.cwd) else None
    return SidecarReport(where, fds, sigs, cwd, lims, tuple(ap.lost))


def save_beside(core: Path, pid: int) -> Path:
    """Capture `pid` and write CORE.syscap.json; returns its path."""
    path = sidecar_path(core)
    write(capture(pid), path)
    return path

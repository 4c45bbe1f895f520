"""Start the fresh process a core is restored into: the executable under ptrace, stopped at
exec, with the core's PID where clone3 allows it, no ASLR, and the core's user and groups.
"""

from __future__ import annotations

import errno
import os
import pwd
import signal
from dataclasses import dataclass

from restorer import ptrace
from restorer.core import Core
from restorer.errors import RestoreError
from restorer.tracee import Tracee, wait_stop

CAP_SYS_RESOURCE = 24
ADDR_NO_RANDOMIZE = 0x0040000


@dataclass(frozen=True, slots=True)
class RunAs:
    """The identity the restored process takes before its exec."""

    uid: int
    gid: int
    groups: tuple[int, ...]


def has_cap_sys_resource() -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
    return False


# ---------------------------------------------------------------------------------------
# planning (pure: core + files on disk -> list of regions)


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

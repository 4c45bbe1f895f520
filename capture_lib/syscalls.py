"""Syscall names, numbers and groups for the architectures syscap decodes."""

from __future__ import annotations

import difflib
import platform

from capture_lib.errors import UsageError
from capture_lib.syscall_tables import TABLES

ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
# The two slots at the top of syscap's number space (SYSCAP_NR_COMPAT and
# SYSCAP_NR_OTHER in syscap_record.h): calls with no number of their own in the
# native table. Their records carry the number the task passed (raw_nr).
PSEUDO = {510: "compat_32bit", 511: "unknown_nr"}


def host_arch() -> str:
    return ARCH_ALIASES.get(platform.machine(), platform.machine())


def table(arch: str | None = None) -> dict[int, str]:
    arch = ARCH_ALIASES.get(arch or host_arch(), arch or "")
    try:
        return TABLES[arch] | PSEUDO
    except KeyError:
        raise UsageError(
            f"no syscall table for architecture {arch!r}: syscap knows {', '.join(TABLES)}"
        ) from None


def name(nr: int, arch: str | None = None) -> str:
    """The syscall's name; "syscall_N" for a number the table does not name (a
    syscall newer than the UAPI headers the table came from)."""
    return table(arch).get(nr) or f"syscall_{nr}"


def number(sysname: str, arch: str | None = None) -> int:
    """The number of a syscall name (or "syscall_N"), else UsageError with close matches."""
    by_name = {v: k for k, v in table(arch).items()}
    if sysname in by_name:
        return by_name[sysname]
    if sysname.startswith("syscall_") and sysname[8:].isdigit():
        return int(sysname[8:])
    close = difflib.get_close_matches(sysname, by_name, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see 'syscap info --syscalls'"
    raise UsageError(f"unknown syscall {sysname!r} for {arch or host_arch()}{hint}")


def parse_set(spec: str, arch: str | None = None) -> frozenset[int]:
    """Parse -e: comma-separated names, group names ("%file", "file") or numbers."""
    out: set[int] = set()
    by_name = {v: k for k, v in table(arch).items()}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        group = item.lstrip("%")
        if group in GROUPS and (item.startswith("%") or item not in by_name):
            out.update(by_name[n] for n in GROUPS[group] if n in by_name)
        elif item.isdigit():
            out.add(int(item))
        else:
            out.add(number(item, arch))
    if not out:
        raise UsageError(f"-e {spec!r} selects no syscalls: give names like openat,read")
    return frozenset(out)


def _group_of(n: str) -> str:
    net = ("socket", "connect", "accept", "bind", "listen", "send", "recv", "shutdown",
           "getsockname", "getpeername", "getsockopt", "setsockopt", "socketpair")
    proc = ("clone", "fork", "vfork", "exec", "exit", "wait", "kill", "tkill", "tgkill",
            "getpid", "getppid", "gettid", "setsid", "getsid", "setpgid", "getpgid", "getpgrp",
            "setuid", "getuid", "setgid", "getgid", "geteuid", "getegid", "setre", "setres",
            "getres", "setfs", "getgroups", "setgroups", "capget", "capset", "prctl",
            "arch_prctl", "personality", "unshare", "setns", "set_tid_address", "ptrace",
            "sched_", "setpriority", "getpriority", "getrlimit", "setrlimit", "prlimit",
            "getrusage", "pidfd", "seccomp", "uname", "sethostname", "setdomainname", "rseq",
            "set_robust_list", "get_robust_list", "ioprio", "umask", "times", "sysinfo",
            "getcpu", "process_")
    mem = ("mmap", "munmap", "mprotect", "mremap", "msync", "madvise", "mincore", "mlock",
           "munlock", "brk", "remap_file_pages", "mbind", "set_mempolicy", "get_mempolicy",
           "migrate_pages", "move_pages", "membarrier", "memfd", "userfaultfd", "pkey",
           "map_shadow_stack", "mseal", "cachestat")
    sig = ("rt_sig", "sigaltstack", "signalfd", "pause", "restart_syscall", "sigreturn")
    ipc = ("pipe", "msg", "sem", "shm", "mq_", "futex", "eventfd", "set_robust", "ipc")
    tim = ("time", "clock_", "nanosleep", "alarm", "gettimeofday", "settimeofday", "adjtimex",
           "getitimer", "setitimer", "utime")
    if n.startswith(net):
        return "network"
    if n.startswith(sig):
        return "signal"
    if n.startswith(mem):
        return "memory"
    if (n.startswith(tim) and not n.startswith(("timerfd",))) or n.startswith("timer_"):
        return "time"
    if n.startswith(ipc):
        return "ipc"
    if n.startswith(proc):
        return "process"
    if n.startswith(("read", "write", "open", "close", "stat", "fstat", "lstat", "newfstat",
                     "statx", "lseek", "pread", "pwrite", "preadv", "pwritev", "access",
                     "faccess", "dup", "fcntl", "flock", "fsync", "fdatasync", "truncate",
                     "ftruncate", "getdents", "getcwd", "chdir", "fchdir", "rename", "mkdir",
                     "rmdir", "creat", "link", "unlink", "symlink", "readlink", "chmod",
                     "fchmod", "chown", "fchown", "lchown", "mknod", "statfs", "fstatfs",
                     "sync", "sendfile", "splice", "tee", "vmsplice", "copy_file_range",
                     "fallocate", "fadvise", "readahead", "ioctl", "poll", "ppoll", "select",
                     "pselect", "epoll", "inotify", "fanotify", "name_to_handle",
                     "open_by_handle", "mount", "umount", "pivot_root", "chroot", "setxattr",
                     "getxattr", "listxattr", "removexattr", "lsetxattr", "lgetxattr",
                     "llistxattr", "lremovexattr", "fsetxattr", "fgetxattr", "flistxattr",
                     "fremovexattr", "io_", "close_range", "fsopen", "fsconfig", "fsmount",
                     "fspick", "move_mount", "open_tree", "mkdirat", "mknodat", "fchownat",
                     "futimesat", "newfstatat", "unlinkat", "renameat", "linkat", "symlinkat",
                     "readlinkat", "fchmodat", "faccessat", "openat", "quotactl",
                     "syncfs", "timerfd", "fsetattr", "file_")):
        return "file"
    return "other"


def _groups() -> dict[str, frozenset[str]]:
    names = set(TABLES["x86_64"].values()) | set(TABLES["aarch64"].values())
    out: dict[str, set[str]] = {g: set() for g in
                                ("file", "network", "process", "memory", "signal", "ipc",
                                 "time", "other")}
    for n in names:
        out[_group_of(n)].add(n)
    return {g: frozenset(v) for g, v in out.items()}


GROUPS: dict[str, frozenset[str]] = _groups()


def group_of(sysname: str) -> str:
    return _group_of(sysname)

"""`syscap restore CORE [--exe PATH] [--run | --hold] [--tid TID] [--as-root] [--no-sidecar]`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restorer.control import Controller


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `restore` subcommand to a `syscap` subparsers object."""
    p = sub.add_parser(
        "restore",
        help="rebuild a live process from a core file and run or inspect it",
        description="Rebuild a live process from an ELF core (kernel or gdb gcore) with ptrace.",
    )
    p.add_argument("core", metavar="CORE", help="core file to restore")
    p.add_argument("--exe", metavar="PATH", help="the program that produced the core")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--run",
        action="store_true",
        help="resume it with this terminal's stdio and exit with its status",
    )
    mode.add_argument("--hold", action="store_true", help="keep it stopped and open a console")
    # A string: a bad value gets this command's one-line error, not argparse's usage text.
    p.add_argument(
        "--tid",
        metavar="TID",
        help="restore only this thread, as the whole process (default: every thread)",
    )
    p.add_argument(
        "--as-root",
        action="store_true",
        help="run the restored process as root (the restorer's own user); by default it runs "
        "as the uid/gid of the process the core came from",
    )
    p.add_argument(
        "--no-sidecar",
        action="store_true",
        help="ignore CORE.syscap.json (open files, signal handlers, cwd and limits saved when "
        "syscap took the core)",
    )
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(f"syscap restore: {msg}", file=sys.stderr, flush=True)


def _error(msg: str) -> int:
    print(f"syscap restore: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Restore args.core; --run: its exit status, --hold: the console, else a summary."""
    from restorer.core import Core
    from restorer.restore import restore

    tid: int | None = None
    if args.tid is not None:
        try:
            tid = int(args.tid)
        except ValueError:
            return _error(f"--tid {args.tid!r} is not a thread id; pass a number (or leave it out)")
    # A RestoreError (a bad core, a bad --exe, ...) is the entry point's to say:
    # `syscap`'s dispatcher or `python -m restorer`, both in one line.
    with Core(args.core) as core:
        try:
            restored = restore(
                core, exe=args.exe, tid=tid, warn=lambda m: _say(f"warning: {m}"),
                as_core_user=not args.as_root, sidecar=not args.no_sidecar,
            )  # fmt: skip
        except OSError as e:
            return _error(
                f"ptrace or /proc access failed ({e.strerror}); run as root, and check "
                "/proc/sys/kernel/yama/ptrace_scope"
            )
        from restorer.control import Controller

        ctl = Controller(restored)
        try:
            _report(ctl)
            if args.hold:
                from restorer.console import Console

                return Console(ctl).loop()
            if args.run:
                return ctl.run_detached()
            _summary(ctl)
            return 0
        finally:
            ctl.close()


def _report(ctl: Controller) -> None:
    rep = ctl.restored.report
    core = ctl.core
    if rep.left_out:
        left = ", ".join(str(t) for t in rep.left_out)
        _say(f"restored thread {rep.tid} only; threads not restored: {left}")
    if len(rep.threads) > 1:
        _say(f"restored {len(rep.threads)} threads: " + ", ".join(str(t.tid) for t in rep.threads))
        for t in rep.threads:
            if t.restarted_syscall is not None:
                _say(f"thread {t.tid}: syscall {t.restarted_syscall} restarts on resume")
    elif rep.restarted_syscall is not None:
        _say(f"syscall {rep.restarted_syscall} was interrupted by the dump; it restarts on resume")
    if rep.run_as is not None:
        _say(
            f"it runs as uid {rep.run_as.uid} gid {rep.run_as.gid}, the core's process's "
            "user (--as-root: as root)"
        )
    side = rep.sidecar
    if side is not None:
        fds = ", ".join(str(fd) for fd in side.fds) or "none"
        cwd = f", cwd {side.cwd}" if side.cwd is not None else ""
        _say(
            f"from {side.path}: fds {fds}, {side.signals} signal actions, {side.rlimits} "
            f"limits{cwd}"
        )
    _say(
        f"restored pid {rep.pid} from {core.path} ({rep.regions} mappings, "
        f"{rep.bytes_written / 1e6:.1f} MB written, {rep.seconds * 1000:.0f} ms)"
    )


def _summary(ctl: Controller) -> None:
    """Without --run or --hold: where the thread stands (the one that took the signal),
    then the process is killed."""
    from restorer.control import ControlError
    from restorer.tracee import signal_name

    si = ctl.core.siginfo
    if si is not None:
        extra = f", fault address {si.addr:#x}" if si.signo in (4, 7, 8, 11) else ""
        print(f"dumped by {signal_name(si.signo)}{extra}")
    for frame in ctl.backtrace():
        print(frame)
    try:
        print(ctl.disassemble(ctl.pc, 1)[0])
    except ControlError:
        pass
    _say("no --run or --hold: the restored process is killed (use --hold to step it)")

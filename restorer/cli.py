"""`syscap restore CORE [--exe PATH] [--run | --hold] [--tid TID]`."""

from __future__ import annotations

import argparse
import sys

from restorer.errors import RestoreError


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
    p.add_argument(
        "--tid", type=int, help="thread to restore (default: the one that took the signal)"
    )
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(f"syscap restore: {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from restorer.core import Core
    from restorer.restore import restore

    try:
        core = Core(args.core)
    except RestoreError as e:
        print(f"syscap restore: error: {e}", file=sys.stderr)
        return 2
    with core:
        try:
            restored = restore(
                core, exe=args.exe, tid=args.tid, warn=lambda m: _say(f"warning: {m}")
            )
        except RestoreError as e:
            print(f"syscap restore: error: {e}", file=sys.stderr)
            return 2
        rep = restored.report
        if rep.left_out:
            left = ", ".join(str(t) for t in rep.left_out)
            _say(f"restored thread {rep.tid} only; threads not restored: {left}")
        _say(
            f"restored pid {rep.pid} from {core.path} ({rep.regions} mappings, "
            f"{rep.bytes_written / 1e6:.1f} MB written, {rep.seconds * 1000:.0f} ms)"
        )
        if args.hold:
            from restorer.console import Console
            from restorer.control import Controller

            ctl = Controller(restored)
            try:
                return Console(ctl).loop()
            finally:
                ctl.close()
        if args.run:
            from restorer.control import Controller

            return Controller(restored).run_detached()
        _say("neither --run nor --hold given: the restored process is killed; restore is verified")
        restored.tracee.kill()
        return 0

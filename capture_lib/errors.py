"""Errors with messages a user can act on, and the one way a command reports them.

SyscapError is the root of every error class in capture_lib, tui and restorer.
This module imports nothing of the project (restorer/errors.py imports it while
the restorer imports nothing else of capture_lib): keep it so.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class SyscapError(Exception):
    """Base class: str() is one line saying what is wrong and how to fix it."""


class UsageError(SyscapError):
    """Bad command-line input."""


class CaptureError(SyscapError):
    """A backend cannot start or failed while running."""


class TraceError(SyscapError):
    """A trace file cannot be read."""


def one_line(message: str | BaseException) -> str:
    """A message (or an error's) on one line: its non-blank lines joined with "; ";
    for an error without one, its class's name."""
    line = "; ".join(ln.strip() for ln in str(message).splitlines() if ln.strip())
    if not line and isinstance(message, BaseException):
        return type(message).__name__
    return line


class Parser(argparse.ArgumentParser):
    """argparse with the one error style: a bad option is one line and exit
    status 2, like every other user error (subcommands inherit it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {one_line(message)}: see {self.prog} --help\n")


def run_command(args: argparse.Namespace, command: str, prog: str = "syscap") -> int:
    """args.func(args) under the one error contract: a SyscapError is one line on
    stderr, `PROG COMMAND: what is wrong: how to fix it`, and exit status 2; Ctrl-C
    ends it with 130; anything else is a bug and keeps its traceback."""
    try:
        return int(args.func(args))
    except SyscapError as e:
        print(f"{prog} {command}: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

"""Errors with messages a user can act on: a CLI prints one_line(str(e)).

SyscapError is the root of every error class in capture_lib, tui and restorer.
This module imports nothing (restorer/errors.py imports it while the restorer
imports nothing else of capture_lib): keep it so.
"""


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

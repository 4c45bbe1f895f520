"""Errors the restorer raises. Each message says what is wrong and how to fix it.

RestoreError is a SyscapError, so `syscap` (and any caller) takes every product's
errors with one handler. capture_lib.errors is the one module of capture_lib the
restorer imports: it imports nothing itself (pyproject.toml's layer contracts and
tests/test_error_classes.py keep it so), so the restorer still runs without the rest
of capture_lib, its native library or its kernel backends.
"""

from __future__ import annotations

from capture_lib.errors import Parser, SyscapError, one_line, run_command

__all__ = ["CoreFormatError", "Parser", "RestoreError", "one_line", "run_command"]


class RestoreError(SyscapError):
    """A core cannot be restored; the message is one line a user can act on."""


class CoreFormatError(RestoreError):
    """The file is not a usable ELF core (not ELF, not a core, truncated, another architecture)."""

"""Errors the restorer raises. Each message says what is wrong and how to fix it."""

from __future__ import annotations


class RestoreError(Exception):
    """A core cannot be restored; the message is one line a user can act on."""


class CoreFormatError(RestoreError):
    """The file is not a usable ELF core (not ELF, not a core, truncated, another architecture)."""

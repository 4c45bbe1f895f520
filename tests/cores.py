"""Kernel core dumps for the tests: cores as plain files next to the process, any size."""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")


@contextmanager
def cores_in_cwd() -> Iterator[str]:
    """For the duration, the kernel writes a core as a file named core* in the dumping
    process's directory: core_pattern is set to "core" if it pipes elsewhere or names a
    directory, and put back. Yields the pattern as it was, for messages."""
    old = CORE_PATTERN.read_text()
    changed = old.startswith("|") or "/" in old
    if changed:
        CORE_PATTERN.write_text("core")
    try:
        yield old.strip()
    finally:
        if changed:
            CORE_PATTERN.write_text(old)


def unlimited_cores() -> None:
    """In the child before exec (a preexec_fn): no core size limit, and SIGQUIT (the test
    programs' dump signal) at its default action: a job a non-interactive shell put in the
    background starts with SIGINT and SIGQUIT ignored, and an ignored disposition survives
    exec."""
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)

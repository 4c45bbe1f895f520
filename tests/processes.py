"""Which processes a test left behind, found through /proc."""

from __future__ import annotations

import os
from pathlib import Path


def running_from(directory: Path) -> list[int]:
    """PIDs of live processes whose executable is inside `directory` (a zombie has no
    executable link, so it is not listed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if exe.startswith(str(directory)):
            found.append(int(entry.name))
    return found

"""Take a core of a live process without killing it (for the UI's process table).

Uses gdb's gcore: it attaches, writes the core and detaches; the process then continues
(a syscall it was blocked in is restarted by the kernel). Needs the gdb package.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from restorer.errors import RestoreError


def take_core(pid: int, directory: str | Path, timeout: float = 120.0) -> Path:
    """Write a core of running process `pid` into `directory`; returns its path."""
    gcore = shutil.which("gcore")
    if gcore is None:
        raise RestoreError("taking a core of a live process needs gcore: apt-get install gdb")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "core"
    target = Path(f"{prefix}.{pid}")
    try:
        proc = subprocess.run(
            [gcore, "-o", str(prefix), str(pid)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise RestoreError(f"gcore of pid {pid} took over {timeout:.0f} s; try again") from e
    if proc.returncode != 0 or not target.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RestoreError(f"gcore could not dump pid {pid} ({last}); is it alive and ours?")
    return target

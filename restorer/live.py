"""Take a core of a live process without killing it (for the UI's process table).

Uses gdb's gcore: it attaches, writes the core and detaches; the process then continues
(a syscall it was blocked in is restarted by the kernel). Needs the gdb package.

Right after, what a core cannot hold (descriptors, signal actions, cwd, limits) goes to
CORE.syscap.json (restorer/sidecar.py); restore() uses it. The two are taken one after
the other, not in one stop: a process that opens, moves or closes descriptors in between
gets a sidecar a moment newer than its core.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from restorer import sidecar as sidecar_file
from restorer.errors import RestoreError


def take_core(
    pid: int,
    directory: str | Path,
    timeout: float = 120.0,
    sidecar: bool = True,
    warn: Callable[[str], object] | None = None,
) -> Path:
    """Write a core of running process `pid` into `directory`; returns its path.

    With `sidecar`, CORE.syscap.json is written beside it; if that fails (the process
    ended just after the dump), the core is still returned and `warn` says why."""
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
    if sidecar:
        try:
            sidecar_file.save_beside(target, pid)
        except (RestoreError, OSError) as e:
            if warn is not None:
                warn(f"no {sidecar_file.SUFFIX} sidecar for pid {pid}: {e}")
    return target

"""The process table as /proc shows it: one reader for the benchmarks and the tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProcStat:
    """Fields of /proc/PID/stat after the comm: state (R, S, Z...), parent, process group."""

    state: str
    ppid: int
    pgrp: int


def proc_stat(pid: int) -> ProcStat | None:
    """Process pid's entry, or None when there is none (it has been reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the comm may hold spaces and ")"
    return ProcStat(fields[0], int(fields[1]), int(fields[2]))


def proc_table() -> dict[int, ProcStat]:
    """Every process now in /proc (one that exits while it is read is left out)."""
    entries = ((int(e), proc_stat(int(e))) for e in os.listdir("/proc") if e.isdigit())
    return {pid: st for pid, st in entries if st is not None}

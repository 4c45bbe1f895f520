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


def proc_table() -> dict[int, ProcStat]:
    """Every process now in /proc (one that exits while it is read is left out)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # the comm may hold spaces and ")"
        table[int(entry)] = ProcStat(fields[0], int(fields[1]), int(fields[2]))
    return table

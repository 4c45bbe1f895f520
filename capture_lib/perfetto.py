"""Export of a trace file to Perfetto's JSON trace-event format.

The work is done in C (src/export_perfetto.c) in one streaming pass: Python
only checks the options and reports the result. The output opens in
ui.perfetto.dev (also offline) and in chrome://tracing:

- one track per thread (pid/tid), one complete slice ("ph": "X") per syscall
  record, named by the syscall, with ret, errno (on failure) and the six
  raw arguments as hex strings in its args;
- process and thread names from the trace's FORK/EXEC/EXIT records (the
  newest comm wins); processes the trace never names are shown by pid;
- a "syscalls" counter track per process (calls/s), binned by syscall
  completion time (--counter-interval, 0.1 s by default).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from capture_lib import native
from capture_lib.errors import SyscapError, UsageError
from capture_lib.trace import TraceFile

DEFAULT_COUNTER_INTERVAL_S = 0.1


class ExportError(SyscapError):
    """The export could not be written."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    records: int  # records read from the trace (syscalls and process events)
    slices: int  # syscall slices written
    counters: int  # counter values written
    processes: int
    threads: int
    late: int  # calls whose counter bin was already written (0 unless drain lag > 2 s)
    bytes: int
    complete: bool  # the trace ended cleanly
    warnings: tuple[str, ...]


def export_perfetto(
    trace: str,
    out: str,
    pids: Iterable[int] = (),
    syscalls: Iterable[int] | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    counter_interval_s: float = DEFAULT_COUNTER_INTERVAL_S,
    force: bool = False,
) -> ExportResult:
    """Write TRACE as Perfetto JSON to a new file OUT (mode 0600).

    pids: only these processes and the children they fork during the trace.
    syscalls: only these syscall numbers (None: all).
    start_s/end_s: window on syscall entry time, seconds from the trace's start.
    force: replace OUT if it is an existing file (a symbolic link never is).
    """
    ffi, lib = native.require()
    with TraceFile(trace) as tf:  # clear errors for missing or foreign files
        start_mono = tf.info.start_mono_ns
    if start_s is not None and start_s < 0:
        raise UsageError(f"--start {start_s:g}: give seconds from the trace's start (>= 0)")
    if end_s is not None and end_s <= (start_s or 0.0):
        raise UsageError(f"--end {end_s:g} must be after --start {start_s or 0:g}")
    if counter_interval_s < 0.001:
        raise UsageError(f"--counter-interval {counter_interval_s:g}: give at least 0.001 s")
    if os.path.isdir(out):
        raise UsageError(f"-o {out} is a directory: give a file name such as {out}/trace.json")
    if os.path.exists(out) and os.path.samefile(trace, out):
        raise UsageError(f"-o {out} is the trace itself: give another file name")

    opts = ffi.new("struct syscap_export_opts *")
    if syscalls is not None:
        opts.has_syscalls = 1
        for nr in syscalls:
            if not 0 <= nr < lib.SYSCAP_MAX_SYSCALLS:
                raise UsageError(f"syscall number {nr} is out of range")
            opts.syscalls[nr >> 6] |= 1 << (nr & 63)
    pid_list = sorted(set(pids))
    pid_arr = ffi.new("uint32_t[]", pid_list or [0])
    opts.pids = pid_arr
    opts.npids = len(pid_list)
    opts.start_ns = start_mono + int(start_s * 1e9) if start_s else 0
    opts.end_ns = start_mono + int(end_s * 1e9) if end_s is not None else 0
    opts.counter_ns = round(counter_interval_s * 1e9)
    opts.create_flags = lib.SYSCAP_CREATE_FORCE if force else 0
    res = ffi.new("struct syscap_export_result *")
    err = native.errbuf()
    if lib.syscap_export_perfetto(os.fsencode(trace), os.fsencode(out), opts, res, err,
                                  native.ERRLEN):
        raise ExportError(native.errstr(err))
    warnings = []
    if not res.complete:
        warnings.append(f"{trace} has no end marker (the recorder did not finish): "
                        "exported the records that are readable")
    if res.late:
        warnings.append(f"{res.late} calls arrived after their calls/s bin was written "
                        "and are missing from the counters (their slices are exported)")
    return ExportResult(
        records=res.records, slices=res.slices, counters=res.counters,
        processes=res.processes, threads=res.threads, late=res.late, bytes=res.bytes,
        complete=bool(res.complete), warnings=tuple(warnings),
    )

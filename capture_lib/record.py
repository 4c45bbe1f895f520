"""`syscap record`: capture into a trace file until told to stop.

Scopes: everything (-a), processes and their future children (-p), or a
command and all its descendants (-- COMMAND), which is started stopped on a
pipe so that its pid is in the kernel's process set before its first traced
syscall.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import FrameType

from capture_lib import syscalls
from capture_lib.errors import CaptureError, UsageError
from capture_lib.live import Session, Totals
from capture_lib.snapshot import Filter

POLL_S = 0.05  # how often the command, the deadline and the trace writer are checked


@dataclass(frozen=True, slots=True)
class RecordResult:
    path: str
    totals: Totals
    consumed: int
    exit_status: int | None  # the command's, for -- COMMAND


class _Stop(KeyboardInterrupt):
    """SIGINT or SIGTERM while recording: a stop, not an error (so no SyscapError).
    record() catches it around its loop; one that comes before (while the session
    starts) ends `syscap record` as Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def _spawn_held(argv: list[str]) -> tuple[int, int, int]:
    """Fork a child that execs argv once released by a byte on the second fd.

    Returns (pid, release fd, error fd); the error fd yields the exec error
    text, or EOF once the exec succeeded (it is close-on-exec)."""
    r, w = os.pipe()
    err_r, err_w = os.pipe()
    os.set_inheritable(err_w, False)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.read(r, 1)  # released: from here on every syscall is traced
            os.execvp(argv[0], argv)  # the pipes are close-on-exec
        except OSError as e:
            os.write(err_w, f"{e.strerror}".encode())
        finally:
            os._exit(127)
    os.close(r)
    os.close(err_w)
    return pid, w, err_r


def _wait_blocked_in_read(pid: int, timeout: float = 10.0) -> None:
    """Wait until pid is blocked in read(2) (per /proc/PID/syscall)."""
    want = str(syscalls.number("read"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/syscall") as f:
                if f.read().split(" ", 1)[0] == want:
                    return
        except OSError as e:
            raise CaptureError(f"cannot watch the command (pid {pid}) start: {e}") from e
        time.sleep(0.001)
    raise CaptureError(f"the command (pid {pid}) did not reach its start point in {timeout} s")


def _exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def record(
    path: str,
    flt: Filter,
    *,
    backend: str = "auto",
    ring_size: int,
    all_processes: bool = False,
    command: list[str] | None = None,
    duration: float | None = None,
    on_started: Callable[[], None] | None = None,
    force: bool = False,
    with_args: bool = False,
) -> RecordResult:
    """Record until the command exits, the duration passes, or SIGINT/SIGTERM.

    path is created anew (mode 0600); an existing file there is replaced only
    with force, and a symbolic link never is (see syscap_create_output). With
    with_args every syscall record carries its six argument registers."""
    if not (all_processes or flt.pids or command):
        raise UsageError("say what to record: -a (everything), -p PID, or -- COMMAND [ARGS]")
    if command is not None and not command:
        raise UsageError("'--' must be followed by a command to run")
    session = Session(backend, ring_size)
    child = 0
    release_fd = err_fd = -1
    status: int | None = None
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    # a parent may have left them blocked (the mask is inherited): we must see them
    old_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        if command:
            child, release_fd, err_fd = _spawn_held(command)
            flt = replace(flt, pids=flt.pids | {child})
            # Held out until it sits in its read(): that read entered untraced,
            # so neither it nor anything before the exec is recorded.
            session.set_filter(replace(flt, exclude_pids=flt.exclude_pids | {child}))
        else:
            session.set_filter(flt)
        session.record(path, force, with_args)
        session.start()
        if child:
            _wait_blocked_in_read(child)
            session.set_filter(flt)
            if on_started:
                on_started()
            os.write(release_fd, b"x")
            os.close(release_fd)
            release_fd = -1
            with os.fdopen(err_fd, "rb") as f:
                err_fd = -1
                exec_error = f.read().decode()
            if exec_error:
                os.waitpid(child, 0)
                child = 0
                raise UsageError(f"cannot run {command[0] if command else ''!r}: {exec_error}")
        elif on_started:
            on_started()
        deadline = time.monotonic() + duration if duration else None
        try:
            # Polled, not blocked in waitpid() or pause(): a trace that can no
            # longer be written (disk full) ends the recording within POLL_S.
            while True:
                if child:
                    pid, st = os.waitpid(child, os.WNOHANG)
                    if pid:
                        status = _exit_status(st)
                        child = 0
                        break
                if session.error:
                    raise CaptureError(session.error)
                left = POLL_S if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(left, POLL_S))
        except _Stop as stop:
            if child:  # pass the stop on to the command, then wait for it
                try:
                    os.kill(child, stop.signum)
                except ProcessLookupError:
                    pass
            print("syscap record: stopping", file=sys.stderr)
        session.stop()
        if child:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _, st = os.waitpid(child, 0)
            status = _exit_status(st)
            child = 0
        return RecordResult(path, session.totals(), session.consumed, status)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for fd in (release_fd, err_fd):
            if fd >= 0:
                os.close(fd)
        if child:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except OSError:
                pass
        session.close()

"""fork_with_pid from a program with other Python threads (the UI's case)."""

from __future__ import annotations

import ctypes
import errno
import os
import threading
import time
from collections.abc import Iterator

import pytest

from restorer import ptrace

WALL = 0x40000000


def free_pid(start: int = 20000) -> int:
    pid = start
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    return pid


def fork_at_a_free_pid() -> tuple[int, int]:
    """fork_with_pid at the first pid that looks free; (pid wanted, fork's result).

    A pid can look free and still be taken: another process may get it between the look and the
    clone3, and a pid still held as a process group or session id has no /proc entry. Both give
    EEXIST, which is fork_with_pid's right answer; the next free pid is tried then.
    """
    start = 20000
    for _ in range(100):
        want = free_pid(start)
        try:
            return want, ptrace.fork_with_pid(want)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
            start = want + 1
    pytest.fail("no free pid from 20000 on in 100 tries")


@pytest.fixture
def busy_thread() -> Iterator[None]:
    """A thread that keeps asking for the GIL while the test thread forks."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    yield
    stop.set()
    t.join()


def test_children_with_a_chosen_pid_never_hang_while_another_thread_runs(
    busy_thread: None,
) -> None:
    # A big address space makes clone3 slow enough for the other thread's GIL request to
    # land inside it: before the fix about 5 in 100 children hung at their first GIL release.
    ballast = [bytearray(1 << 20) for _ in range(300)]
    for b in ballast:
        b[::4096] = b"x" * len(range(0, len(b), 4096))
    libc = ctypes.CDLL(None)
    hung = []
    for _ in range(60):
        busy_until = time.perf_counter() + 0.02
        while time.perf_counter() < busy_until:  # hold the GIL as the restore does
            pass
        want, pid = fork_at_a_free_pid()
        if pid == 0:
            for _ in range(20):
                libc.getpid()  # each call releases and takes back the GIL
            os._exit(0)
        assert pid == want
        end = time.monotonic() + 5
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG | WALL)
            if done:
                assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
                break
            time.sleep(0.005)
        else:
            hung.append(pid)
            os.kill(pid, 9)
            os.waitpid(pid, WALL)
    assert hung == []


def test_a_pid_in_use_is_refused_with_eexist_from_a_threaded_program(busy_thread: None) -> None:
    with pytest.raises(OSError) as err:
        ptrace.fork_with_pid(os.getpid())
    assert err.value.errno == 17  # EEXIST

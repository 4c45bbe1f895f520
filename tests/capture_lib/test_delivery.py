"""Records reach the consumer within one snapshot interval at a trickle.

The probes write records without waking the consumer (a wake-up per record
would cost the traced machine a context switch or two), and the consumer
sleeps between passes: a record must still never wait in a ring longer than
top's snapshot interval. One getppid every 100 ms, each released by the test
through a pipe: after each, the session's consumed count must grow before
an interval has passed.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from capture_lib import syscalls
from capture_lib.live import Session
from capture_lib.snapshot import Filter

pytestmark = pytest.mark.usefixtures("bpf_ready")

INTERVAL_S = 1.0  # top's default snapshot interval
CALLS = 10
GAP_S = 0.1  # the trickle: one syscall per 100 ms

# reads one byte per call from stdin, then makes one getppid
CHILD = "import os\nwhile os.read(0, 1):\n    os.getppid()\n"


def test_each_record_of_a_trickle_arrives_within_one_interval() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE)
    assert child.stdin is not None
    delays = []
    try:
        with Session("bpf") as s:
            s.set_filter(Filter(pids=frozenset({child.pid}),
                                syscalls=frozenset({syscalls.number("getppid")})))
            s.start()
            for _ in range(CALLS):
                before = s.consumed
                t0 = time.monotonic()
                child.stdin.write(b"x")
                child.stdin.flush()
                while s.consumed == before and time.monotonic() - t0 < INTERVAL_S:
                    time.sleep(0.001)
                delays.append(time.monotonic() - t0)
                assert s.consumed == before + 1, f"record not delivered within {INTERVAL_S} s"
                time.sleep(max(GAP_S - delays[-1], 0))
            s.stop()
            delivery = s.delivery()
    finally:
        child.stdin.close()
        child.wait()
    # the records' own exit times against the drain passes that took them
    assert delivery.records == CALLS
    assert delivery.max_ns < INTERVAL_S * 1e9
    assert delivery.upper_ns(0.99) <= delivery.max_ns
    print(f"delivery at a trickle: longest wait {delivery.max_ns / 1e6:.1f} ms "
          f"(seen by polling: {max(delays) * 1e3:.1f} ms) over {CALLS} calls")

"""The consumer on the real kernel: every record read once, in order per CPU."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from capture_lib import syscalls
from capture_lib.live import Session
from capture_lib.snapshot import Filter

pytestmark = pytest.mark.usefixtures("bpf_ready")


def test_every_record_once_in_order_per_cpu_never_torn(flood: Path) -> None:
    getppid = syscalls.number("getppid")
    threads, calls = 2, 20000
    with Session("bpf", 8 << 20) as s:
        s.set_filter(Filter(syscalls=frozenset({getppid})))
        s.attach()
        proc = subprocess.run([str(flood), str(threads), str(calls)], check=True)
        assert proc.returncode == 0
        s.detach()  # the rings now hold everything there will be
        seqs: dict[int, list[int]] = defaultdict(list)
        got = 0
        while True:
            batch = s.read_events(5000)
            if not batch:
                break
            for ev in batch:
                if ev.kind != 1:  # FORK/EXEC/EXIT of the flood and its threads
                    assert ev.kind in (2, 3, 4)
                    continue
                assert ev.nr == getppid and ev.ret > 0
                assert ev.reserved0 == 0 and ev.raw_nr == 0
                assert ev.dur_ns < 10**9
                seqs[ev.cpu].append(ev.seq)
                got += 1
        totals = s.totals()
    # other processes' getppid may be in the rings too: compare with the kernel
    assert got == totals.events and totals.drops == 0
    assert got >= threads * calls
    for cpu, seq in seqs.items():
        assert seq == list(range(seq[0], seq[0] + len(seq))), f"cpu {cpu} out of order"

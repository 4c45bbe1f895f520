"""The in-kernel filter stays consistent while it changes under running tasks.

Every probe run caches its task's verdict under the filter generation it read;
a verdict computed from one filter must never be stored under a newer
generation, where it would stay until the next change. Two workers keep
entering the probes while the filter is flipped 10 000 times between comm and
process-set filters; after every flip each worker makes one marked, failing
close(-round), and the records (failed calls only, so the workers' busy loop
writes none) must show exactly the workers that flip's filter admits.
"""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
from pathlib import Path

import pytest

from capture_lib import syscalls
from capture_lib.live import Session
from capture_lib.snapshot import Filter
from tests.conftest import build_c

from .conftest import WORKLOADS

pytestmark = pytest.mark.usefixtures("bpf_ready")

WORKERS = 2
FLIPS = 10_000
SHARED = struct.Struct("<II16I")  # round, done, ack[16] (flip_workers.c)


@pytest.fixture(scope="module")
def flip_workers(c_build_dir: Path) -> Path:
    return build_c(WORKLOADS / "flip_workers.c", c_build_dir)


def flip_filters(pids: list[int]) -> list[tuple[Filter, int]]:
    """Filters in the order they alternate, each with the worker it admits:
    every flip changes both workers' verdicts."""
    return [
        (Filter(comms=frozenset({"flip-1"})), 1),
        (Filter(exclude_comms=frozenset({"flip-1"})), 0),
        (Filter(exclude_pids=frozenset({pids[0]})), 1),
        (Filter(pids=frozenset({pids[0]})), 0),
    ]


def test_every_verdict_matches_the_filter_after_each_of_10000_flips(flip_workers: Path,
                                                                      tmp_path: Path) -> None:
    close, getppid = syscalls.number("close"), syscalls.number("getppid")
    shm_path = tmp_path / "shared"
    shm_path.write_bytes(bytes(SHARED.size))
    marked: dict[int, set[int]] = {}  # round -> tgids whose getpid was recorded
    with Session("bpf", 8 << 20) as s, open(shm_path, "r+b") as f, \
            mmap.mmap(f.fileno(), SHARED.size) as shm:
        def drain() -> None:
            while batch := s.read_events(8192):
                for ev in batch:
                    if ev.kind == 1 and ev.nr == close:
                        marked.setdefault(2**64 - int(ev.args[0]), set()).add(int(ev.tgid))

        def acked(r: int) -> bool:
            return all(a == r for a in SHARED.unpack_from(shm)[2:2 + WORKERS])

        proc = subprocess.Popen([str(flip_workers), str(shm_path), str(WORKERS)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            pids = [int(p) for p in proc.stdout.readline().split()]
            assert len(pids) == WORKERS, f"flip_workers printed {pids}"
            filters = flip_filters(pids)
            wanted = frozenset({close, getppid})
            s.set_args(True)  # the round is close's argument
            s.set_filter(Filter(syscalls=wanted, failed_only=True))
            s.attach()
            for r in range(1, FLIPS + 1):
                flt, _ = filters[r % len(filters)]
                s.set_filter(Filter(syscalls=wanted, failed_only=True, comms=flt.comms,
                                    exclude_comms=flt.exclude_comms, pids=flt.pids,
                                    exclude_pids=flt.exclude_pids))
                struct.pack_into("<I", shm, 0, r)
                while not acked(r):
                    if proc.poll() is not None:
                        pytest.fail(f"flip_workers exited {proc.returncode} in round {r}")
                    os.sched_yield()
                if r % 16 == 0:
                    drain()
            struct.pack_into("<I", shm, 4, 1)
            assert proc.wait(timeout=60) == 0
        finally:
            proc.kill()
            proc.wait()
        s.detach()
        drain()
        totals = s.totals()
    assert totals.drops == 0, f"{totals.drops} records lost: the rounds cannot be checked"
    # filters that exclude a worker admit every other process too: look at
    # the workers' records only
    workers = set(pids)
    wrong = [
        (r, sorted(marked.get(r, set()) & workers), pids[filters[r % len(filters)][1]])
        for r in range(1, FLIPS + 1)
        if marked.get(r, set()) & workers != {pids[filters[r % len(filters)][1]]}
    ]
    assert not wrong, (f"{len(wrong)} of {FLIPS} rounds recorded the wrong workers "
                       f"(round, recorded, admitted): {wrong[:10]}")

"""Exact counts at the edges of what the kernel reports, in both capture modes.

- seccomp denies a syscall before sys_enter, but it still passes sys_exit;
- numbers outside the native table (syscall(-1), syscall(1000)) are counted
  under unknown_nr, the number in the record;
- a 64-bit process's int 0x80 calls run through the 32-bit table: counted
  under compat_32bit, its 32-bit exit_group too (it never returns);
- a syscall cut off by its thread's death exits with a restart code: a call,
  interrupted, not a failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from capture_lib import syscalls
from capture_lib.live import Session
from capture_lib.snapshot import Filter, Snapshot
from tests.conftest import build_c

from .conftest import WORKLOADS, traced_run

pytestmark = pytest.mark.usefixtures("bpf_ready")

N = 25
F_NORETURN, F_COMPAT, F_NOENTRY = 0x01, 0x02, 0x08
ERESTARTSYS = 512
MODES = ["counts", "records"]


@pytest.fixture(scope="module")
def edge(c_build_dir: Path) -> Path:
    return build_c(WORKLOADS / "edge_syscalls.c", c_build_dir, "-pthread")


def run_edge(edge: Path, mode: str, *args: str, expect_rc: int = 0,
             syscall_names: tuple[str, ...] = ()) -> tuple[Snapshot, str]:
    """Run edge_syscalls ARGS traced alone (comm filter) in mode; the snapshot
    after it and what it printed."""
    flt = Filter(comms=frozenset({"edge_syscalls"}),
                 syscalls=frozenset(syscalls.number(n) for n in syscall_names))
    snap, proc = traced_run([str(edge), *args], mode, flt)
    if proc.returncode == 3 and args[0] == "compat":
        pytest.skip("this kernel runs no 32-bit syscalls (no IA32 emulation, or not x86-64)")
    assert proc.returncode == expect_rc, proc.stderr
    assert snap.drops == 0
    return snap, proc.stdout


def counts(snap: Snapshot) -> dict[str, tuple[int, int]]:
    return {s.name: (s.count, s.errors) for s in snap.syscalls}


def recorded(edge: Path, *args: str, names: tuple[str, ...]) -> tuple[list[object], str]:
    """The syscall records of one traced run (records mode, read in place)."""
    nrs = frozenset(syscalls.number(n) for n in names)
    with Session("bpf") as s:
        s.set_filter(Filter(comms=frozenset({"edge_syscalls"}), syscalls=nrs))
        s.set_args(True)
        s.attach()
        proc = subprocess.run([str(edge), *args], capture_output=True, text=True)
        s.detach()
        events: list[object] = []
        while batch := s.read_events(4096):
            events.extend(ev for ev in batch if ev.kind == 1)
        assert s.totals().drops == 0
    return events, proc.stdout


@pytest.mark.parametrize("mode", MODES)
def test_seccomp_denied_calls_counted_as_failed(edge: Path, mode: str) -> None:
    snap, _ = run_edge(edge, mode, "seccomp", str(N), syscall_names=("getppid",))
    assert counts(snap) == {"getppid": (N, N)}


def test_seccomp_denied_records_carry_their_exit_only(edge: Path) -> None:
    events, _ = recorded(edge, "seccomp", str(N), names=("getppid",))
    assert len(events) == N
    for ev in events:
        assert ev.ret == -1 and ev.flags & F_NOENTRY and ev.dur_ns == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", MODES)
def test_numbers_outside_the_table_counted_as_unknown(edge: Path, mode: str) -> None:
    snap, _ = run_edge(edge, mode, "outofrange", str(N), syscall_names=("unknown_nr",))
    assert counts(snap) == {"unknown_nr": (2 * N, 2 * N)}


def test_unknown_number_records_carry_the_number_passed(edge: Path) -> None:
    events, _ = recorded(edge, "outofrange", str(N), names=("unknown_nr",))
    raw = sorted(ev.raw_nr for ev in events)  # type: ignore[attr-defined]
    assert raw == [1000] * N + [0xFFFFFFFF] * N


@pytest.mark.parametrize("mode", MODES)
def test_32bit_calls_counted_under_compat(edge: Path, mode: str) -> None:
    snap, _ = run_edge(edge, mode, "compat", str(N), syscall_names=("compat_32bit",))
    assert counts(snap) == {"compat_32bit": (N + 1, 0)}  # N getpid and the exit_group


def test_32bit_call_records_carry_the_compat_number(edge: Path) -> None:
    events, _ = recorded(edge, "compat", str(N), names=("compat_32bit",))
    if not events:
        pytest.skip("this kernel runs no 32-bit syscalls (no IA32 emulation, or not x86-64)")
    seen = [(ev.raw_nr, ev.flags) for ev in events]  # type: ignore[attr-defined]
    assert seen == [(20, F_COMPAT)] * N + [(252, F_COMPAT | F_NORETURN)]
    assert events[-1].args[0] == 0  # type: ignore[attr-defined]  # its status, in ebx


@pytest.mark.parametrize("mode", MODES)
def test_call_cut_off_by_its_threads_death_is_not_a_failure(edge: Path, mode: str) -> None:
    snap, _ = run_edge(edge, mode, "interrupted", syscall_names=("read",))
    calls, errors = counts(snap)["read"]
    assert calls >= 1 and errors == 0


def test_cut_off_call_records_the_restart_code(edge: Path) -> None:
    events, out = recorded(edge, "interrupted", names=("read",))
    tid = int(out)
    assert [ev.ret for ev in events if ev.tid == tid] == [-ERESTARTSYS]  # type: ignore[attr-defined]

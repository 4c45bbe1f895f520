"""The kernel module, tested inside QEMU guests booted by kmod/lab/lab.py.

One boot per kernel (a module-scoped fixture); every guest test is its own
pytest result, parsed from the guest's serial console. By default only
6.1-amd64 runs (what CI runs); SYSCAP_KMOD_KERNELS=all runs the whole matrix
(or a comma-separated list of ids). SYSCAP_KMOD_CYCLES and SYSCAP_KMOD_FUZZ
set the load/unload cycles and fuzzed ioctls (defaults: see below);
SYSCAP_KMOD_ONLY=agent_record,agent_stream boots with only those guest tests
(the others then skip).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kmod" / "lab"))
import images
import lab

from capture_lib.stream import StreamDecoder, StreamEnd, StreamInterval
from capture_lib.trace import build_report

KERNEL_IDS = list(images.KERNELS)
DEFAULT_KERNELS = "6.1-amd64"
# CI budget: the 6.1-amd64 boot must finish in a few minutes under TCG.
DEFAULT_CYCLES = 300
DEFAULT_FUZZ = 100_000


def only_tests() -> list[str] | None:
    value = os.environ.get("SYSCAP_KMOD_ONLY", "").strip()
    return [t.strip() for t in value.split(",") if t.strip()] or None


def selected_kernels() -> set[str]:
    value = os.environ.get("SYSCAP_KMOD_KERNELS", DEFAULT_KERNELS).strip()
    if value == "all":
        return set(KERNEL_IDS)
    return {k.strip() for k in value.split(",") if k.strip()}


@pytest.fixture(scope="module", params=KERNEL_IDS)
def guest(request: pytest.FixtureRequest) -> lab.GuestRun:
    kid: str = request.param
    if kid not in selected_kernels():
        pytest.skip(f"{kid} not selected: SYSCAP_KMOD_KERNELS=all runs the full kernel matrix")
    cycles = int(os.environ.get("SYSCAP_KMOD_CYCLES", DEFAULT_CYCLES))
    fuzz = int(os.environ.get("SYSCAP_KMOD_FUZZ", DEFAULT_FUZZ))
    try:
        return lab.run_guest(kid, cycles=cycles, fuzz=fuzz, only=only_tests())
    except images.LabError as e:
        pytest.fail(f"guest lab for {kid}: {e}")


def assert_guest_test(run: lab.GuestRun, name: str) -> None:
    only = only_tests()
    if only and name in lab.GUEST_TESTS and name not in only:
        pytest.skip(f"{name} not in SYSCAP_KMOD_ONLY")
    res = run.results.get(name)
    where = f"(console: {run.console})"
    assert res is not None, f"{name}: no result from the guest {where}"
    print(f"{run.kid} {name}: {res.status} {res.detail}")
    assert res.status == "PASS", f"{name}: {res.detail} {where}"
    bad = run.dmesg_problems(name)
    assert not bad, f"{name}: kernel reported problems {where}:\n" + "\n".join(bad)


def test_module_builds_without_warnings(guest: lab.GuestRun) -> None:
    if guest.compiler_note:
        print(f"{guest.kid}: {guest.compiler_note}")
    assert guest.module_warnings == []


def test_guest_programs_build_without_warnings(guest: lab.GuestRun) -> None:
    assert guest.test_warnings == []


def test_module_loads(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "load")


def test_device_node_is_root_only(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "device_node")


def test_second_open_is_refused_and_first_keeps_working(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "second_open")


def test_mmap_allows_writes_only_to_the_consumer_page(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "mmap_rules")


def test_exact_counts_for_a_known_workload(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "exact_counts")


def test_count_mode_counts_per_process_exactly(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "count_mode")


def test_sampled_mode_counts_exactly_and_times_its_own_calls(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "sampled_mode")


def test_process_set_follows_children(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "process_tree")


def test_times_are_monotonic_nanoseconds_under_every_clock(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "clock")


def test_syscall_bitmap_filter(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "syscall_filter")


def test_failed_only_filter(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "failed_only")


def test_comm_include_and_exclude(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "comm_filter")


def test_consumer_excludes_itself(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "self_exclusion")


def test_every_verdict_matches_the_last_of_10000_filter_flips(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "filter_flips")


def test_seccomp_denied_out_of_table_32bit_and_cut_off_calls_exact(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "edge_syscalls")


def test_device_refuses_callers_without_the_capability(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "capability")


def test_tiny_ring_loss_is_accounted_exactly(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "loss_accounting")


def test_mmap_consumer_reads_each_record_once_in_order(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "mmap_order")


def test_fuzzed_ioctls_leave_no_damage(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "ioctl_fuzz")


AGENT_BACKENDS = pytest.mark.parametrize(("suffix", "backend"), [("", "kmod"), ("_bpf", "bpf")])


def assert_agent_test(run: lab.GuestRun, name: str) -> None:
    res = run.results.get(name)
    if res is not None and res.status == "SKIP":
        pytest.skip(f"{run.kid} {name}: {res.detail}")
    assert_guest_test(run, name)


@AGENT_BACKENDS
def test_static_agent_records_the_workload_exactly(
    guest: lab.GuestRun, tmp_path: Path, suffix: str, backend: str
) -> None:
    """syscap-agent record in the busybox guest (no Python, no libbpf); its trace comes
    back over the console and syscap report's code reads it here."""
    name = f"agent_record{suffix}"
    assert_agent_test(guest, name)
    trace = tmp_path / "guest.trace"
    trace.write_bytes(guest.blobs.get(name, b""))
    rep = build_report(str(trace))
    assert rep.complete and rep.info.backend == backend and rep.dropped == 0
    pid = int(guest.values[name]["workload_pid"])
    mine = [p for p in rep.snapshot.processes if p.pid == pid]
    assert len(mine) == 1, f"the workload ({pid}) is not in the guest's trace"
    getppid = [s.count for s in mine[0].syscalls if s.name == "getppid"]
    assert getppid == [lab.AGENT_GETPPID]


@pytest.mark.parametrize(("suffix", "backend", "durations"),
                         [("", "kmod", False), ("_bpf", "bpf", True),
                          ("_count_bpf", "bpf", False)])  # fmt: skip
def test_static_agent_streams_the_workload_exactly(
    guest: lab.GuestRun, suffix: str, backend: str, durations: bool
) -> None:
    """syscap-agent stream in the guest (the module; eBPF with --durations, and in
    count mode): the intervals, ended by the end of its stdin, add up to the
    workload's calls."""
    name = f"agent_stream{suffix}"
    assert_agent_test(guest, name)
    dec = StreamDecoder()
    out = dec.feed(guest.blobs.get(name, b""))
    dec.close()
    assert dec.info is not None and dec.info.backend == backend
    assert isinstance(out[-1], StreamEnd)
    pid = int(guest.values[name]["workload_pid"])
    nr = dec.info.names.index("getppid")
    intervals = [i for i in out if isinstance(i, StreamInterval)]
    assert sum(i.calls(pid, nr) for i in intervals) == lab.AGENT_GETPPID
    assert all(i.latency == durations for i in intervals)
    if durations:
        assert sum(c for i in intervals for (n, _, c) in i.hist if n == nr) >= lab.AGENT_GETPPID


def test_load_unload_cycles_during_a_syscall_flood(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "load_unload")


def test_module_unloads_cleanly(guest: lab.GuestRun) -> None:
    assert_guest_test(guest, "unload")


def test_guest_ran_every_test(guest: lab.GuestRun) -> None:
    assert guest.completed, f"/init did not reach its end (console: {guest.console})"


def test_dmesg_is_clean_in_the_whole_boot(guest: lab.GuestRun) -> None:
    assert "boot" in guest.dmesg and "unload" in guest.dmesg, "dmesg segments missing"
    bad = guest.console_problems()
    assert not bad, f"kernel problems (console: {guest.console}):\n" + "\n".join(bad)

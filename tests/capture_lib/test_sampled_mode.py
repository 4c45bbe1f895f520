"""Sampled mode on the live eBPF backend: exact counts, plus the durations of
a random sample of the calls.

A sample's entry time lives in the task's storage, so it must come back right
when the task migrates inside the call, and a sample left behind by an
earlier run must never be paired with a later exit. The workload logs, around
every getppid, a span its entry and exit must fall in: a sample paired with
the wrong exit would leave its span.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from capture_lib import native
from capture_lib.errors import UsageError
from capture_lib.live import MAX_SAMPLE_PERIOD, SamplePlan, Session
from capture_lib.snapshot import Filter, Snapshot, SyscallStats
from tests.capture_lib.conftest import check_calls_against_spans, read_across_a_restart, run_spans

pytestmark = pytest.mark.usefixtures("bpf_ready")

_, lib = native.require()

CALLS = 2000


def test_every_sample_belongs_to_its_own_call_across_migrations(spans_exe: Path) -> None:
    with Session("bpf") as s:
        s.set_mode("sampled")
        s.set_sample_period(1)  # every call: each one must pair with its own exit
        events, tgid, spans = run_spans(s, spans_exe, CALLS)
    # period 1: every call sampled, none paired with another's exit
    check_calls_against_spans(events, tgid, spans, lib.SYSCAP_F_SAMPLED)


def test_a_sample_from_an_earlier_run_is_never_paired() -> None:
    with Session("bpf") as s:
        s.set_mode("sampled")
        s.set_sample_period(1)
        pid, restart, events = read_across_a_restart(s)
    samples = [ts for kind, flags, _, tgid, ts, *_ in events
               if kind == lib.SYSCAP_EV_SYSCALL and flags & lib.SYSCAP_F_SAMPLED
               and tgid == pid]
    assert samples, "head's calls after the restart were not sampled"
    assert min(samples) >= restart, "a sample taken before the restart was paired"


Run = tuple[Snapshot, dict[str, SyscallStats], tuple[int, float]]


def sampled_run(spans_exe: Path, period: int, duty: float = 1.0) -> Run:
    """The spans workload (CALLS iterations) under a sampled session with a
    consumer thread: its snapshot, its rows by name, and the windows opened."""
    with Session("bpf") as s:
        s.set_mode("sampled")
        s.set_sample_period(period)
        assert s.set_sample_duty(duty)
        return run_in(s, spans_exe)


def run_in(s: Session, spans_exe: Path) -> Run:
    """The spans workload under s, a session in sampled mode, started here."""
    s.aggregate(True)
    s.set_filter(Filter(comms=frozenset({spans_exe.name})))
    s.start()
    s.snapshot()
    subprocess.run([str(spans_exe), str(CALLS)], capture_output=True, check=True)
    s.stop()
    snap = s.snapshot()
    windows = s.sample_windows()
    assert snap.sampled and snap.latency and snap.drops == 0
    rows = {r.name: r for r in snap.syscalls}
    assert rows["getppid"].count == CALLS
    assert rows["sched_setaffinity"].count == CALLS
    return snap, rows, windows


def test_counts_stay_exact_with_a_sparse_sample(spans_exe: Path) -> None:
    _, rows, _ = sampled_run(spans_exe, 16)
    # about one in 16 of 2000 calls: far from none and far from all
    assert 0 < rows["getppid"].samples < CALLS
    sleep = rows.get("clock_nanosleep") or rows["nanosleep"]
    assert sleep.samples and sleep.p50_ns >= 100_000 and sleep.avg_ns >= 100_000


def test_samples_between_sampling_windows(spans_exe: Path) -> None:
    """Sampling windows open half the time: the entry probe is attached and
    detached while the workload runs (2000 iterations of at least 100 us),
    every call is still counted, calls outside the windows are not timed, and
    a call sampled in a window that closed before its exit keeps its own
    duration (no getppid comes out as long as the sleeps around it)."""
    _, rows, (opened, open_s) = sampled_run(spans_exe, 1, duty=0.5)
    assert 0 < rows["getppid"].samples < CALLS
    assert rows["getppid"].p99_ns < 100_000
    sleep = rows.get("clock_nanosleep") or rows["nanosleep"]
    assert 0 < sleep.samples < CALLS and sleep.p50_ns >= 100_000
    assert opened >= 2 and open_s > 0


def test_a_planned_sample_is_set_again_once_it_was_changed(spans_exe: Path) -> None:
    """The session sets a plan's period and duty only when the plan changed; a
    period set directly meanwhile counts as a change, so the same plan is set
    again: here every call timed, which the period left behind would not give."""
    with Session("bpf") as s:
        s.set_mode("sampled")
        whole = s.plan_samples(1e3, 100.0)
        assert whole == SamplePlan(1, 1.0) and s.sample == whole
        assert s.plan_samples(1e3, 100.0) == whole
        s.set_sample_period(MAX_SAMPLE_PERIOD)
        assert s.sample is None
        assert s.plan_samples(1e3, 100.0) == whole
        _, rows, _ = run_in(s, spans_exe)
    assert rows["getppid"].samples == CALLS


@pytest.mark.parametrize("budget", [0.0, -1.0, 100.5, float("nan")])
def test_a_budget_that_is_not_a_percentage_is_refused(budget: float) -> None:
    with Session("bpf") as s:
        s.set_mode("sampled")
        with pytest.raises(UsageError, match="is not in"):
            s.plan_samples(1e3, budget)
        assert s.sample is None

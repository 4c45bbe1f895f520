"""Records mode's entry state on the live eBPF backend.

The running task's pending syscall lives in a per-CPU slot, written back into
the task's storage by sched_switch when the task leaves the CPU. A call inside
which the task sleeps or moves to another CPU must still pair with its own
entry, and an entry left pending by an earlier run must never pair with a
later exit. The workload logs, around every getppid, a span its entry and exit
must fall in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capture_lib import native
from capture_lib.live import Session
from tests.capture_lib.conftest import check_calls_against_spans, read_across_a_restart, run_spans

pytestmark = pytest.mark.usefixtures("bpf_ready")

_, lib = native.require()

CALLS = 2000


def test_calls_that_sleep_or_migrate_pair_with_their_own_entry(spans_exe: Path) -> None:
    with Session("bpf") as s:
        events, tgid, spans = run_spans(s, spans_exe, CALLS)
    check_calls_against_spans(events, tgid, spans)


def test_an_entry_from_an_earlier_run_is_never_paired() -> None:
    with Session("bpf") as s:
        pid, restart, events = read_across_a_restart(s)
    mine = [ts for kind, _, _, tgid, ts, *_ in events
            if kind == lib.SYSCAP_EV_SYSCALL and tgid == pid]  # fmt: skip
    assert mine, "head's calls after the restart were not recorded"
    assert min(mine) >= restart, "an entry from before the restart was paired"

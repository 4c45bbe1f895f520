"""The restorer on arm64: its restore tests run inside an arm64 QEMU guest (TCG).

kmod/lab/restorer_guest.py boots Debian's 6.1 arm64 kernel with a Debian bookworm arm64
root image (Python, pytest, gdb, gcc) and runs the single-threaded restore tests and the
four-thread test there, with kernel cores (core_pattern to a file) and gcore cores, and
the reverse execution tests. One boot for the module; each test here checks one guest
test's outcome.

Runs by default, as the kmod suite's 6.1-amd64 guest does (measured here: about 2 minutes
with the image built before the reverse tests joined, which take about 1.5 minutes more;
the first run builds the image, about 6 minutes more with the downloads);
SYSCAP_RESTORER_ARM64=0 skips it. On an arm64 machine the restorer's own tests are the
arm64 tests, and this module skips.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from restorer.arch import ARM64

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kmod" / "lab"))
import images
import restorer_guest

RUN = "tests/restorer/test_restore_run.py::"
THREADS = "tests/restorer/test_threads.py::"
REVERSE = "tests/restorer/test_reverse.py::"
# What must pass in the guest (the rest of the selection must not fail either).
MUST_PASS = (
    *(f"{RUN}test_kernel_core_resumes_with_the_rest_of_an_uninterrupted_run[{b}]"
      for b in ("resume", "resume-nopie", "resume-static")),
    f"{RUN}test_gcore_core_resumes_with_the_rest_of_an_uninterrupted_run",
    f"{RUN}test_core_taken_in_read_completes_the_read_after_restore",
    f"{RUN}test_gcore_core_taken_in_read_completes_the_read_after_restore",
    f"{RUN}test_dontdump_region_reads_back_as_zeros",
    f"{RUN}test_signal_mask_is_restored",
    f"{RUN}test_heap_keeps_growing_after_restore_with_brk_restored",
    *(f"{THREADS}test_every_thread_resumes_and_prints_the_rest_of_an_uninterrupted_run[{k}]"
      for k in ("kernel", "gcore")),
    f"{THREADS}test_each_thread_gets_its_own_tid_registers_tls_and_signal_mask",
    f"{REVERSE}test_three_reverse_steps_give_back_every_register_of_three_steps_before",
    f"{REVERSE}test_reverse_continue_goes_back_to_each_earlier_breakpoint_hit",
    f"{REVERSE}test_going_back_and_on_again_writes_and_reads_nothing_twice",
    f"{REVERSE}test_reverse_step_from_the_end_stops_before_exit_group",
    f"{REVERSE}test_a_register_edited_at_a_breakpoint_changes_the_output_as_predicted",
)  # fmt: skip


@pytest.fixture(scope="module")
def guest() -> restorer_guest.GuestRun:
    if ARM64:
        pytest.skip("this machine is arm64: the restorer's own tests run natively")
    if os.environ.get("SYSCAP_RESTORER_ARM64", "1") == "0":
        pytest.skip("arm64 guest not selected (SYSCAP_RESTORER_ARM64=0); unset it to run it")
    try:
        run = restorer_guest.run_pytest(timeout=1800)
    except images.LabError as e:
        pytest.fail(f"arm64 guest: {e}")
    print(f"arm64 guest {run.release}: pytest exit status {run.returncode} in "
          f"{run.seconds:.0f} s (console: {run.console})")  # fmt: skip
    return run


@pytest.mark.parametrize("node", MUST_PASS)
def test_passes_in_the_arm64_guest(guest: restorer_guest.GuestRun, node: str) -> None:
    outcome = guest.outcomes.get(node)
    assert outcome == "PASSED", f"{node}: {outcome or 'no result'} (console: {guest.console})"


def test_nothing_fails_in_the_arm64_guest(guest: restorer_guest.GuestRun) -> None:
    bad = {n: o for n, o in guest.outcomes.items() if o in ("FAILED", "ERROR", "XPASS")}
    assert not bad, f"{bad}\n{guest.output[-4000:]}"
    assert guest.returncode == 0, f"pytest in the guest: {guest.returncode}\n{guest.output[-4000:]}"


def test_the_guest_gets_every_test_helper_its_tests_import() -> None:
    """What the copied code imports from tests/ and capture_lib/ (its errors) is copied
    too, with the package's __init__.py (the guest has nothing else)."""
    import ast

    root = Path(__file__).resolve().parents[2]
    copied = {root / rel for rel in restorer_guest.COPIED}
    files = [p for c in copied for p in ([c] if c.is_file() else c.rglob("*.py"))]
    missing = set()
    for path in files:
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            if name.startswith(("tests.", "capture_lib.")):
                module = root / name.replace(".", "/")
                package = module.parent / "__init__.py"
                for needs in ((module.with_suffix(".py"), module), (package,)):
                    if not any(m in copied or any(c in m.parents for c in copied) for m in needs):
                        missing.add(f"{needs[0].relative_to(root)} (for {name}, imported by "
                                    f"{path.relative_to(root)})")
    assert not missing, f"restorer_guest.COPIED lacks: {sorted(missing)}"

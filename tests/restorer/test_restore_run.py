"""Restore with --run: the process continues as if never interrupted (acceptance 1, 3, 4, 6)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from restore_helpers import (
    PYTHON,
    REPO,
    Programs,
    after_marker,
    blocked_in_read,
    blocked_read_core,
    find_core,
    gcore,
    gcore_core,
    kernel_core,
    restore_cli,
    sleeping_in,
    unlimited_cores,
)

from restorer.arch import ARM64, SYS_READ
from restorer.control import Controller
from restorer.core import Core
from restorer.restore import restore


def uninterrupted(prog: Path) -> tuple[str, int]:
    p = subprocess.run([prog], capture_output=True, text=True, check=False)
    return p.stdout, p.returncode


@pytest.mark.parametrize("build", ["resume", "resume-nopie", "resume-static"])
def test_kernel_core_resumes_with_the_rest_of_an_uninterrupted_run(
    programs: Programs, tmp_path: Path, build: str
) -> None:
    core, _ = kernel_core(programs[build], tmp_path, "kernel")
    expected, code = uninterrupted(programs[build])
    assert "monotonic advanced: yes" in expected

    result = restore_cli(core, "--run")

    assert result.stdout == after_marker(expected), result.stderr
    assert result.returncode == code == 3


def test_gcore_core_resumes_with_the_rest_of_an_uninterrupted_run(
    programs: Programs, tmp_path: Path
) -> None:
    # gcore leaves [vvar] out: clock_gettime after the dump point needs a live vDSO+vvar.
    core, _ = gcore_core(programs["resume"], tmp_path, "stop")
    with Core(core) as c:
        assert c.vdso_addr is not None
        # [vvar] and [vvar_vclock]: the pages right below [vdso] (6 on x86-64, 2 on arm64).
        below = (2 if ARM64 else 6) * 0x1000
        vvar_dumped = [s for s in c.segments if c.vdso_addr - below < s.end <= c.vdso_addr]
        assert not vvar_dumped, "this gcore dumped vvar; the test no longer covers the gap"
    expected, code = uninterrupted(programs["resume"])

    result = restore_cli(core, "--run")

    assert result.stdout == after_marker(expected), result.stderr
    assert result.returncode == code


def test_core_taken_in_read_completes_the_read_after_restore(
    programs: Programs, tmp_path: Path
) -> None:
    core = blocked_read_core(programs, tmp_path)
    with Core(core) as c:
        assert sleeping_in(c.signal_thread.regs) == SYS_READ  # to be restarted

    result = restore_cli(core, "--run", stdin="hello\n")

    assert result.stdout == "got 6: hello\n", result.stderr
    assert result.returncode == 0


def test_gcore_core_taken_in_read_completes_the_read_after_restore(
    programs: Programs, tmp_path: Path
) -> None:
    with blocked_in_read(programs) as proc:
        core = gcore(proc.pid, tmp_path)
    with Core(core) as c:
        assert sleeping_in(c.signal_thread.regs) == SYS_READ  # gdb's attach interrupted it

    result = restore_cli(core, "--run", stdin="again\n")

    assert result.stdout == "got 6: again\n", result.stderr
    assert result.returncode == 0


def test_dontdump_region_reads_back_as_zeros(programs: Programs, tmp_path: Path) -> None:
    straight = subprocess.run([programs["dontdump"]], capture_output=True, text=True, check=True)
    assert "dontdump region: data" in straight.stdout  # the zeros come from the restore
    core, _ = kernel_core(programs["dontdump"], tmp_path, "kernel")

    result = restore_cli(core, "--run")

    assert "dontdump region: zeros\n" in result.stdout, result.stderr
    assert result.returncode == 0


def test_signal_mask_is_restored(programs: Programs, tmp_path: Path) -> None:
    straight = subprocess.run([programs["dontdump"]], capture_output=True, text=True, check=True)
    assert "sigusr1 blocked: yes\n" in straight.stdout
    core, _ = kernel_core(programs["dontdump"], tmp_path, "kernel")

    result = restore_cli(core, "--run")

    assert "sigusr1 blocked: yes\n" in result.stdout, result.stderr


@pytest.mark.parametrize("kind", ["kernel", "gcore"])
def test_sse_and_avx_registers_survive_the_restore(
    programs: Programs, tmp_path: Path, kind: str
) -> None:
    if ARM64:
        pytest.skip("x86-64 vector registers")
    if "avx" not in Path("/proc/cpuinfo").read_text().split():
        pytest.skip("the CPU has no AVX")
    if kind == "kernel":
        core, _ = kernel_core(programs["fpstate"], tmp_path, "kernel")
    else:
        core, _ = gcore_core(programs["fpstate"], tmp_path, "stop")

    result = restore_cli(core, "--run")

    assert result.stdout == "xmm8 kept\nymm9 kept\n", result.stderr
    assert "FP state not restored" not in result.stderr


def test_heap_keeps_growing_after_restore_with_brk_restored(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["dontdump"], tmp_path, "kernel")

    result = restore_cli(core, "--run")

    assert "heap grew: ok\n" in result.stdout, result.stderr
    assert result.returncode == 0


def _run_api(core_path: Path, out: Path, **kw: object) -> tuple[int, bool, tuple[str, ...]]:
    with Core(core_path) as core, open(out, "w") as fh:
        r = restore(core, stdio=(0, fh.fileno(), 2), **kw)  # type: ignore[arg-type]
        code = Controller(r).run_detached()
        return code, r.report.brk_restored, r.report.warnings


def test_heap_keeps_growing_when_brk_cannot_be_moved(programs: Programs, tmp_path: Path) -> None:
    # What happens where PR_SET_MM is refused: glibc's brk() fails cleanly, it uses mmap.
    core, _ = kernel_core(programs["dontdump"], tmp_path, "kernel")

    code, brk_restored, _ = _run_api(core, tmp_path / "out", set_brk=False)

    text = (tmp_path / "out").read_text()
    assert not brk_restored
    assert "heap grew: ok\n" in text
    assert code == 0


def test_brk_continues_where_the_core_left_it(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["dontdump"], tmp_path, "kernel")

    code, brk_restored, warnings = _run_api(core, tmp_path / "out")

    if not brk_restored:
        reason = "; ".join(w for w in warnings if "brk" in w)
        print(f"brk continuity not checked: {reason}")
        pytest.skip(f"brk continuity not checked: {reason}")
    line = next(x for x in (tmp_path / "out").read_text().splitlines() if x.startswith("brk"))
    before, after = (int(w, 16) for w in line.split()[2::2])
    page = 4096
    assert (after + page - 1) // page == (before + page - 1) // page, line
    assert code == 0


def test_tid_of_the_signalled_thread_runs_it_alone_and_names_the_others(
    programs: Programs, tmp_path: Path
) -> None:
    core, before = kernel_core(programs["threads"], tmp_path, "kernel")
    assert before == "worker running\n"
    with Core(core) as c:
        tids = [t.tid for t in c.threads]
    assert len(tids) == 3
    worker, others = tids[0], tids[1:]

    result = restore_cli(core, "--run", "--tid", str(worker))

    assert result.stdout == "worker resumed\n", result.stderr
    assert result.returncode == 0
    line = next(x for x in result.stderr.splitlines() if "not restored" in x)
    assert f"restored thread {worker} only" in line
    for tid in others:
        assert str(tid) in line


def test_tid_option_rejects_a_thread_not_in_the_core(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["threads"], tmp_path, "kernel")

    result = restore_cli(core, "--run", "--tid", "1")

    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "thread 1 is not in the core" in result.stderr


def test_restored_process_gets_the_pid_of_the_restored_thread(
    programs: Programs, tmp_path: Path
) -> None:
    # glibc caches the tid in the thread descriptor (raise, pthread): same pid keeps it right.
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    with Core(core) as c:
        r = restore(c)
        try:
            assert r.report.pid == c.signal_thread.tid
            assert not [w for w in r.report.warnings if "runs as pid" in w]
        finally:
            r.tracee.kill()


def test_other_thread_chosen_with_tid_runs_alone(programs: Programs, tmp_path: Path) -> None:
    # The blocker thread sleeps in read() on a pipe that is not restored: its restarted
    # read() fails with EBADF, the thread function returns and, as the only thread, ends
    # the process with status 0.
    core, _ = kernel_core(programs["threads"], tmp_path, "kernel")
    with Core(core) as c:
        blocked = [t for t in c.threads if sleeping_in(t.regs) == SYS_READ]
        assert len(blocked) == 1
        tid = blocked[0].tid
        others = [t.tid for t in c.threads if t.tid != tid]

    result = restore_cli(core, "--run", "--tid", str(tid))

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    line = next(x for x in result.stderr.splitlines() if "not restored" in x)
    assert all(str(t) in line for t in others)


def test_sched_getcpu_reports_the_cpu_it_runs_on_after_restore(
    programs: Programs, tmp_path: Path
) -> None:
    # glibc reads the CPU from its rseq area; the kernel keeps it current only if the
    # restored thread registered it again. Dump on one CPU, restore on another.
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to tell a stale CPU number from a current one")
    dump_cpu, run_cpu = cpus[0], cpus[1]
    def on_dump_cpu() -> None:
        os.sched_setaffinity(0, {dump_cpu})
        unlimited_cores()

    p = subprocess.run(
        [programs["getcpu"]], cwd=tmp_path, capture_output=True, check=False,
        preexec_fn=on_dump_cpu,
    )  # fmt: skip
    assert p.returncode == -signal.SIGQUIT
    core = find_core(tmp_path)

    result = subprocess.run(
        [PYTHON, "-m", "restorer", "restore", str(core), "--run"],
        cwd=REPO, capture_output=True, text=True, check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        preexec_fn=lambda: os.sched_setaffinity(0, {run_cpu}),
    )  # fmt: skip

    assert result.stdout == "sched_getcpu matches\n", result.stderr

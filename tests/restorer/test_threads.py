"""Every thread of a multi-threaded core comes back: four threads pass a token round-robin
under one mutex and condition variable (programs/token_ring.c); three sleep in futex() at
the dump. The restored process must print exactly the rest of an uninterrupted run."""

from __future__ import annotations

import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from restore_helpers import (
    Programs,
    after_marker,
    controlled,
    find_core,
    gcore_core,
    kernel_core,
    restore_cli,
    sleeping_in,
    unlimited_cores,
)

from restorer import ptrace
from restorer.arch import ARM64, SYS_RESTART_SYSCALL
from restorer.control import ControlError, Controller
from restorer.core import Core
from restorer.restore import restore

SYS_FUTEX = 98 if ARM64 else 202
THREADS = 4
THREAD_LINE = re.compile(r"^(?:\(syscap\) )?([* ]) (\d+) 0x[0-9a-f]+ in ", re.M)


def uninterrupted(prog: Path) -> str:
    p = subprocess.run([prog], capture_output=True, text=True, check=True)
    return p.stdout


def token_ring_core(programs: Programs, tmp_path: Path, kind: str) -> Path:
    if kind == "kernel":
        core, before = kernel_core(programs["token_ring"], tmp_path, "kernel")
    else:
        core, before = gcore_core(programs["token_ring"], tmp_path, "stop")
    assert before.endswith("--- dump point ---\n")
    return core


@pytest.mark.parametrize("kind", ["kernel", "gcore"])
def test_every_thread_resumes_and_prints_the_rest_of_an_uninterrupted_run(
    programs: Programs, tmp_path: Path, kind: str
) -> None:
    expected = after_marker(uninterrupted(programs["token_ring"]))
    core = token_ring_core(programs, tmp_path, kind)
    with Core(core) as c:
        assert len(c.threads) == THREADS
        asleep = [t for t in c.threads if sleeping_in(t.regs) == SYS_FUTEX]
        assert len(asleep) == THREADS - 1

    result = restore_cli(core, "--run")

    assert result.stdout == expected, result.stderr
    assert result.returncode == 0
    assert f"restored {THREADS} threads" in result.stderr


def test_each_thread_gets_its_own_tid_registers_tls_and_signal_mask(
    programs: Programs, tmp_path: Path
) -> None:
    core = token_ring_core(programs, tmp_path, "kernel")
    with Core(core) as c:
        r = restore(c)
        try:
            live = {t.pid: t for t in r.threads}
            tasks = sorted(int(x.name) for x in Path(f"/proc/{r.tracee.pid}/task").iterdir())
            assert r.report.pid == c.pid
            assert tasks == sorted(t.tid for t in c.threads)
            masks = set()
            for rt in r.report.threads:
                saved = c.thread(rt.core_tid)
                assert saved is not None and rt.tid == rt.core_tid
                t = live[rt.tid]
                regs = t.regs()
                assert regs.tls == saved.regs.tls
                assert regs.sp == saved.regs.sp
                assert ptrace.getsigmask(t.pid) == saved.sighold
                assert ptrace.getfpregs(t.pid) == saved.fpregs
                masks.add(saved.sighold)
                if rt.restarted_syscall is not None:
                    # On the syscall instruction (x86-64: rewound onto it), its number where
                    # the instruction takes it (rax, x8).
                    assert rt.restarted_syscall == SYS_FUTEX
                    assert regs.pc == saved.regs.for_resume().pc
                    assert regs.pending_nr in (SYS_FUTEX, SYS_RESTART_SYSCALL)
            assert len(masks) == THREADS  # each thread blocks its own signal
        finally:
            r.tracee.kill()


def _turn_and_player(ctl: Controller) -> tuple[int, int]:
    regs = ctl.regs()  # printf("turn %d: thread %d ...", turn, me, ...)
    return regs.arg(1), regs.arg(2)


def _task_state(pid: int, tid: int) -> str:
    """One thread's state letter from /proc (R running, S sleeping, t traced, ...)."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def _states(pid: int) -> list[str]:
    return [_task_state(pid, int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()]


def test_control_stops_all_threads_at_a_breakpoint_in_any_of_them(
    programs: Programs, tmp_path: Path
) -> None:
    core = token_ring_core(programs, tmp_path, "kernel")
    out = tmp_path / "out"
    with controlled(core, out) as ctl:
        with Core(core) as c:
            signalled = c.signal_thread.tid
            fs_bases = {t.tid: t.regs.tls for t in c.threads}
        threads = ctl.thread_list()
        assert len(threads) == THREADS
        assert [t.tid for t in threads if t.selected] == [signalled]
        printf = ctl.resolve("printf")
        ctl.add_breakpoint(printf)

        first = ctl.cont()

        assert first.reason == "breakpoint" and first.pc == printf
        assert _turn_and_player(ctl) == (10, 2)
        assert ctl.tracee.pid == first.tid != signalled
        assert set(_states(ctl.leader.pid)) == {"t"}  # every thread stopped under ptrace

        second = ctl.cont()

        assert second.reason == "breakpoint"
        assert _turn_and_player(ctl) == (11, 3)
        assert second.tid not in (first.tid, signalled)

        ctl.select(first.tid)  # per-thread state goes through the selected thread
        assert ctl.regs().tls == fs_bases[first.tid]
        ctl.remove_breakpoint(printf)
        with pytest.raises(ControlError, match="single-threaded"):
            ctl.checkpoint()

        end = ctl.run_to_exit()

        assert end.stop.kind == "exited" and end.stop.status == 0
    expected = after_marker(uninterrupted(programs["token_ring"]))
    assert out.read_text() == expected


def test_tid_option_restores_one_thread_only(programs: Programs, tmp_path: Path) -> None:
    core = token_ring_core(programs, tmp_path, "kernel")
    with Core(core) as c:
        one = c.threads[-1].tid
        others = [t.tid for t in c.threads if t.tid != one]
        r = restore(c, tid=one)
        try:
            assert r.tracee.group == []
            assert [t.tid for t in r.report.threads] == [one]
            assert sorted(r.report.left_out) == sorted(others)
            assert len(list(Path(f"/proc/{r.tracee.pid}/task").iterdir())) == 1
        finally:
            r.tracee.kill()


def test_console_lists_and_selects_threads_and_refuses_checkpoints(
    programs: Programs, tmp_path: Path
) -> None:
    core = token_ring_core(programs, tmp_path, "kernel")
    with Core(core) as c:
        tids = [t.tid for t in c.threads]
        signalled = c.signal_thread.tid
    other = next(t for t in tids if t != signalled)

    result = restore_cli(core, "--hold", stdin=f"threads\nthread {other}\nthreads\ncp\nquit\n")

    listed = THREAD_LINE.findall(result.stdout)
    assert len(listed) == 2 * THREADS, result.stdout
    assert sorted(int(tid) for _, tid in listed[:THREADS]) == sorted(tids)
    assert [int(tid) for mark, tid in listed if mark == "*"] == [signalled, other]
    assert f"thread {other} step 0:" in result.stdout
    assert "checkpoints need a single-threaded process" in result.stdout
    assert result.returncode == 0


def test_interrupt_stops_every_thread_and_sleepers_resume_afterwards(
    programs: Programs, tmp_path: Path
) -> None:
    # The token holder spins on a `jmp .` written over its next instruction; the three
    # others sleep in futex(). interrupt() must stop all four; after the code is put back,
    # the sleepers' futex waits (interrupted by our SIGSTOP) restart and the run ends right.
    core = token_ring_core(programs, tmp_path, "kernel")
    out = tmp_path / "out"
    with controlled(core, out) as ctl:
        holder = ctl.tracee.pid
        pc = ctl.pc
        spin = b"\x00\x00\x00\x14" if ARM64 else b"\xeb\xfe"  # b . / jmp .
        original = ctl.read_memory(pc, len(spin))
        ctl.write_memory(pc, spin)
        pid = ctl.leader.pid
        others = [t.pid for t in ctl.threads if t.pid != holder]

        def interrupt_once_spinning() -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    spinning = _task_state(pid, holder) == "R"
                    asleep = all(_task_state(pid, t) == "S" for t in others)
                except OSError:
                    return
                if spinning and asleep:
                    ctl.interrupt()
                    return
                time.sleep(0.001)

        helper = threading.Thread(target=interrupt_once_spinning)
        helper.start()
        ev = ctl.cont()
        helper.join()

        assert ev.reason == "interrupted" and ev.tid == holder and ev.pc == pc
        assert set(_states(pid)) == {"t"}
        ctl.write_memory(pc, original)

        end = ctl.run_to_exit()

        assert end.stop.kind == "exited" and end.stop.status == 0
    assert out.read_text() == after_marker(uninterrupted(programs["token_ring"]))


def test_threads_of_another_users_core_get_new_tids_and_still_join(
    programs: Programs, tmp_path: Path
) -> None:
    # Run as the core's user (nobody), the process may not choose TIDs (set_tid needs
    # CAP_CHECKPOINT_RESTORE): the threads get new ones, glibc's copies are rewritten, and
    # pthread_join() still returns when they end.
    nobody = pwd.getpwnam("nobody")
    shared = Path(tempfile.mkdtemp(prefix="syscap-threads-"))
    try:
        shared.chmod(0o777)
        exe = shared / "token_ring"
        shutil.copy(programs["token_ring"], exe)
        p = subprocess.run(
            ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
             "--clear-groups", str(exe), "kernel"],
            cwd=shared, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            preexec_fn=unlimited_cores, check=False,
        )  # fmt: skip
        assert p.returncode == -signal.SIGQUIT
        core = find_core(shared)

        result = restore_cli(core, "--run")

        assert result.stdout == after_marker(uninterrupted(programs["token_ring"]))
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("glibc's copy is updated") == THREADS - 1
    finally:
        shutil.rmtree(shared, ignore_errors=True)

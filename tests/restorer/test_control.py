"""Control API and --hold console on restored processes (acceptance 2 and 5)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from restore_helpers import (
    Programs,
    blocked_read_core,
    controlled,
    kernel_core,
    restore_cli,
    wait_until_in_read,
)

from restorer.arch import ARM64, BREAKPOINT_INSN, REGS
from restorer.control import Controller
from restorer.core import Core
from restorer.restore import restore

# The mnemonics of a store through a pointer and of a call (capstone's).
STORE, CALL = ("str", "bl") if ARM64 else ("mov", "call")


def test_crash_stops_with_sigsegv_at_the_same_pc(programs: Programs, tmp_path: Path) -> None:
    core, before = kernel_core(programs["crash"], tmp_path, expect=signal.SIGSEGV)
    assert before == "before crash\n"
    with Core(core) as c:
        crash_pc = c.signal_thread.regs.pc
    with controlled(core, tmp_path / "out") as ctl:
        assert ctl.pc == crash_pc

        ev = ctl.cont()

        assert ev.reason == "signal"
        assert ev.stop.signal == signal.SIGSEGV
        assert ev.pc == crash_pc


def test_jumping_past_the_faulting_instruction_lets_it_finish(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["crash"], tmp_path, expect=signal.SIGSEGV)
    with controlled(core, tmp_path / "out") as ctl:
        insn = ctl.disassemble(ctl.pc, 1)[0]
        assert insn.mnemonic == STORE and "[" in insn.op_str  # the store through NULL

        ctl.jump(insn.addr + insn.size)
        ev = ctl.run_to_exit()

        assert ev.stop.kind == "exited" and ev.stop.status == 0
    assert (tmp_path / "out").read_text() == "after crash\n"


def test_symbols_and_backtrace_use_the_pie_load_bias(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["crash"], tmp_path, expect=signal.SIGSEGV)
    with controlled(core, tmp_path / "out") as ctl:
        frames = ctl.backtrace()

        assert frames[0].location.symbol is not None
        assert frames[0].location.symbol.name == "main"
        assert ctl.resolve("main") == frames[0].location.symbol.addr
        assert frames[1].location.path is not None and "libc" in frames[1].location.path


def test_breakpoint_and_run_to_address_stop_there(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    with controlled(core, tmp_path / "out") as ctl:
        target = ctl.resolve("clock_gettime")
        ctl.add_breakpoint(target)

        ev = ctl.cont()

        assert ev.reason == "breakpoint" and ev.pc == target
        ev = ctl.step()
        assert ev.reason == "step" and ev.pc != target
        # breakpoints are out while stopped
        assert ctl.read_memory(target, len(BREAKPOINT_INSN)) != BREAKPOINT_INSN


def test_step_over_a_call_returns_after_it(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["crash"], tmp_path, expect=signal.SIGSEGV)
    with controlled(core, tmp_path / "out") as ctl:
        insn = ctl.disassemble(ctl.pc, 1)[0]
        ctl.jump(insn.addr + insn.size)
        while ctl.disassemble(ctl.pc, 1)[0].mnemonic != CALL:
            ctl.step()
        call = ctl.disassemble(ctl.pc, 1)[0]

        ev = ctl.step_over()

        assert ev.pc == call.addr + call.size
    assert (tmp_path / "out").read_text() == "after crash\n"  # the call (printf) ran


def test_checkpoint_run_to_exit_go_back_run_again_gives_the_same_output_twice(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    with controlled(core, tmp_path / "out") as ctl:
        cp = ctl.checkpoint()
        first = ctl.run_to_exit()
        assert first.stop.kind == "exited"
        mid = (tmp_path / "out").read_text()

        ctl.back(cp.id)
        second = ctl.run_to_exit()

        assert second.stop == first.stop
    out = (tmp_path / "out").read_text()
    assert mid and "after: tls=" in mid
    assert out == mid + mid


def test_back_replays_forward_to_the_wanted_step(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    with controlled(core, tmp_path / "out") as ctl:
        cp = ctl.checkpoint()
        ctl.step(25)
        regs_at_25 = ctl.regs()
        ctl.step(10)

        ctl.back(cp.id, to_step=25)

        assert ctl.steps == 25
        assert ctl.regs().pc == regs_at_25.pc
        assert ctl.regs().sp == regs_at_25.sp
        assert [c.id for c in ctl.checkpoints.timeline()] == [cp.id]


def test_hold_console_shows_registers_and_disassembly_and_quits(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["crash"], tmp_path, expect=signal.SIGSEGV)

    result = restore_cli(core, "--hold", stdin="regs\ndis\nbt\ncheckpoint\ntimeline\ncont\nquit\n")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{REGS.DISPLAY[0]} 0x" in out  # rip, pc
    assert "=> 0x" in out and "<main+" in out
    assert "#0 0x" in out
    assert "checkpoint 1 at step 0" in out
    assert "stopped by SIGSEGV" in out


def test_hold_console_skip_and_cont_finishes_the_crashed_program(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["crash"], tmp_path, expect=signal.SIGSEGV)

    result = restore_cli(core, "--hold", stdin="skip\ncont\nquit\n")

    assert "after crash\n" in result.stdout, result.stderr
    assert "exited with status 0" in result.stdout
    assert result.returncode == 0


def test_interrupt_stops_a_running_process_and_cont_resumes_it(
    programs: Programs, tmp_path: Path
) -> None:
    core = blocked_read_core(programs, tmp_path)
    r_fd, w_fd = os.pipe()
    try:
        with Core(core) as c, open(tmp_path / "out", "w") as fh:
            ctl = Controller(restore(c, stdio=(r_fd, fh.fileno(), 2)))
            try:
                pid = ctl.tracee.pid
                # stop it from another thread once it sleeps in read() again
                def stop() -> None:
                    wait_until_in_read(pid)
                    ctl.interrupt()

                stopper = threading.Thread(target=stop)
                stopper.start()
                ev = ctl.cont()
                stopper.join()
                assert ev.reason == "interrupted"

                os.write(w_fd, b"late\n")
                ev = ctl.cont()

                assert ev.stop.kind == "exited" and ev.stop.status == 0
            finally:
                ctl.close()
    finally:
        os.close(r_fd)
        os.close(w_fd)
    assert (tmp_path / "out").read_text() == "got 5: late\n"


def test_without_run_or_hold_it_prints_where_the_thread_stopped(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["crash"], tmp_path, expect=signal.SIGSEGV)

    result = restore_cli(core)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "dumped by SIGSEGV, fault address 0x0"
    assert lines[1].startswith("#0 0x") and " in main+0x" in lines[1]


def test_checkpoints_every_n_steps_form_a_timeline(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    with controlled(core, tmp_path / "out") as ctl:
        ctl.checkpoint_every = 5

        ctl.step(12)

        assert [c.step for c in ctl.checkpoints.timeline()] == [5, 10]
        back = ctl.back(1)
        assert ctl.steps == 5 and back.pc == ctl.checkpoints.timeline()[0].pc


def test_registers_and_memory_can_be_read_and_written(programs: Programs, tmp_path: Path) -> None:
    core, _ = kernel_core(programs["crash"], tmp_path, expect=signal.SIGSEGV)
    with Core(core) as c:
        saved = c.read(c.signal_thread.regs.sp, 16)
    with controlled(core, tmp_path / "out") as ctl:
        sp = ctl.regs().sp
        assert ctl.read_memory(sp, 16) == saved  # the stack as it was dumped

        ctl.write_memory(sp, b"syscap!!")
        reg = "x19" if ARM64 else "rbx"  # callee-saved
        ctl.set_regs(**{reg: 0x1234})

        assert ctl.read_memory(sp, 8) == b"syscap!!"
        assert ctl.regs().as_dict()[reg] == 0x1234
        assert ctl.resolve(f"${reg}+0x10") == 0x1244

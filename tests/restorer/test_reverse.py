"""Reverse execution on restored processes: reverse-step, reverse-continue, breakpoints,
register and memory edits, and the syscall record that keeps re-execution from writing
or reading twice (programs/reverse.c). Addresses come from the program's symbols."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from restore_helpers import Programs, controlled, kernel_core

from restorer.arch import REGS, SYS_EXIT_GROUP, SYSCALL_INSN
from restorer.checkpoint import Checkpoint
from restorer.control import ControlError, Controller
from restorer.core import Core
from restorer.restore import restore

FIRST_ARG = REGS.ARGS[0]  # rdi, x0: tick()'s argument at its first instruction

INPUT = b"abcdefghijklmnop"  # four reads of four bytes


def expected_output(ticks: range = range(1, 5), first: int = 0, word: int = 0) -> str:
    """What reverse.c prints from round `ticks.start` on, with `total` at `first` then."""
    total, lines = first, []
    for i in ticks:
        total += i * i
        got = INPUT[4 * (i - 1) : 4 * i].decode()
        lines.append(f"tick {i} total {total} read {got}")
    return "".join(line + "\n" for line in lines)


@contextmanager
def recorded(programs: Programs, tmp_path: Path) -> Iterator[tuple[Controller, Path]]:
    """The restored reverse.c with a timeline (a checkpoint every 50 instructions), its
    stdin a file of INPUT and its stdout the file it yields; killed afterwards."""
    core, _ = kernel_core(programs["reverse"], tmp_path, "kernel")
    (tmp_path / "in").write_bytes(INPUT)
    out = tmp_path / "out"
    with controlled(core, out, stdin=tmp_path / "in") as ctl:
        ctl.record(every=50)
        yield ctl, out


def break_at_tick(ctl: Controller) -> int:
    """A breakpoint on tick() and a continue to its first hit (round 1); tick's address."""
    tick = ctl.resolve("tick")
    ctl.add_breakpoint(tick)
    assert ctl.cont().reason == "breakpoint"
    return tick


def test_three_reverse_steps_give_back_every_register_of_three_steps_before(
    programs: Programs, tmp_path: Path
) -> None:
    with recorded(programs, tmp_path) as (ctl, _):
        break_at_tick(ctl)
        seen = [ctl.regs()]
        for _ in range(3):
            ctl.step()
            seen.append(ctl.regs())
        assert seen[3].pc != seen[0].pc

        for back in (2, 1, 0):
            ev = ctl.reverse_step()
            assert ev.reason == "reverse-step"
            assert ctl.regs() == seen[back]  # the full register set, fs_base included


def test_reverse_step_right_after_a_continue_stops_inside_it(
    programs: Programs, tmp_path: Path
) -> None:
    """The continue is re-executed by steps: one step back is the instruction before the
    breakpoint, and stepping once from there arrives at the breakpoint again."""
    with recorded(programs, tmp_path) as (ctl, _):
        tick = break_at_tick(ctl)
        at_tick = ctl.regs()

        ctl.reverse_step()

        assert ctl.pc != tick
        ctl.step()
        assert ctl.regs() == at_tick


def test_reverse_continue_goes_back_to_each_earlier_breakpoint_hit(
    programs: Programs, tmp_path: Path
) -> None:
    with recorded(programs, tmp_path) as (ctl, _):
        tick = ctl.resolve("tick")
        ctl.add_breakpoint(tick)
        hits = []
        for _ in range(3):
            assert ctl.cont().reason == "breakpoint"
            hits.append(ctl.regs())
        assert [h.arg(0) for h in hits] == [1, 2, 3]  # tick(i): i in the first argument

        assert ctl.reverse_cont().reason == "reverse-continue"
        assert ctl.regs() == hits[1]
        assert ctl.reverse_cont().reason == "reverse-continue"
        assert ctl.regs() == hits[0]
        assert ctl.reverse_cont().reason == "start"  # no earlier hit: the start of history


def test_going_back_and_on_again_writes_and_reads_nothing_twice(
    programs: Programs, tmp_path: Path
) -> None:
    """Re-executed, write() and read() are replayed from the record: the output has every
    line once, and the rounds read the same bytes as the first time."""
    with recorded(programs, tmp_path) as (ctl, out):
        tick = break_at_tick(ctl)
        ctl.cont()
        ctl.remove_breakpoint(tick)
        assert ctl.cont().stop.kind == "exited"
        assert out.read_text() == expected_output()

        ctl.add_breakpoint(tick)
        ctl.reverse_cont()  # back into round 4, after three writes and four reads
        assert ctl.regs().arg(0) == 4
        ctl.remove_breakpoint(tick)
        ev = ctl.cont()

        assert ev.stop.kind == "exited" and ev.stop.status == 0
        assert ctl.timeline is not None and "replayed" in ctl.timeline.last_note
    assert out.read_text() == expected_output()


def test_an_interrupt_while_going_back_stops_there_in_one_line(
    programs: Programs, tmp_path: Path
) -> None:
    """Stepping back into a long continue re-executes it by steps; interrupt() stops that,
    and the process goes on from where it stopped. The interrupt is made when the
    re-execution takes its first checkpoint past 100 instructions (so at a known moment)."""
    with recorded(programs, tmp_path) as (ctl, _):
        assert ctl.cont().stop.kind == "exited"
        take = ctl.checkpoints.take

        def take_then_interrupt(auto: bool = False, pinned: bool = False) -> Checkpoint:
            cp = take(auto, pinned)
            if ctl.steps >= 100:
                ctl.interrupt()
            return cp

        ctl.checkpoints.take = take_then_interrupt  # type: ignore[method-assign]
        with pytest.raises(ControlError, match="stopped while going back") as err:
            ctl.reverse_step()
        ctl.checkpoints.take = take  # type: ignore[method-assign]

        assert "\n" not in str(err.value)
        assert ctl.alive and ctl.steps >= 100
        pc = ctl.pc
        ev = ctl.step()
        assert ev.reason == "step" and ctl.pc != pc, ev


def test_reverse_step_from_the_end_stops_before_exit_group(
    programs: Programs, tmp_path: Path
) -> None:
    with recorded(programs, tmp_path) as (ctl, _):
        assert ctl.cont().stop.kind == "exited"

        ctl.reverse_step()

        assert ctl.alive
        regs = ctl.regs()
        assert regs.pending_nr == SYS_EXIT_GROUP
        assert ctl.read_memory(regs.pc, len(SYSCALL_INSN)) == SYSCALL_INSN


def test_a_register_edited_at_a_breakpoint_changes_the_output_as_predicted(
    programs: Programs, tmp_path: Path
) -> None:
    with recorded(programs, tmp_path) as (ctl, out):
        ctl.remove_breakpoint(break_at_tick(ctl))

        ctl.set_regs(**{FIRST_ARG: 10})  # tick(1) becomes tick(10): total 100, then +4, +9, +16
        ctl.cont()

    lines = out.read_text().splitlines()
    assert lines[0] == "tick 1 total 100 read abcd"
    assert lines[-1] == "tick 4 total 129 read mnop"


def test_a_memory_word_written_changes_the_output_as_predicted(
    programs: Programs, tmp_path: Path
) -> None:
    with recorded(programs, tmp_path) as (ctl, out):
        total = ctl.resolve("total")
        ctl.remove_breakpoint(break_at_tick(ctl))

        ctl.write_memory(total, (1000).to_bytes(8, "little"))
        assert ctl.read_memory(total, 8) == (1000).to_bytes(8, "little")
        ctl.cont()

    assert out.read_text() == expected_output(first=1000)


def test_reverse_step_undoes_an_edit_made_after_the_last_instruction(
    programs: Programs, tmp_path: Path
) -> None:
    with recorded(programs, tmp_path) as (ctl, _):
        break_at_tick(ctl)
        before = ctl.regs()
        ctl.step()
        ctl.set_regs(**{FIRST_ARG: 99})

        ctl.reverse_step()

        assert ctl.regs() == before


def test_breakpoints_are_listed_in_address_order_with_their_symbols(
    programs: Programs, tmp_path: Path
) -> None:
    with recorded(programs, tmp_path) as (ctl, _):
        tick, main = ctl.resolve("tick"), ctl.resolve("main")
        assert ctl.toggle_breakpoint(tick) is True
        ctl.add_breakpoint(main)

        listed = ctl.breakpoint_list()

        assert [a for a, _ in listed] == sorted([tick, main])
        assert {str(loc) for _, loc in listed} >= {"tick", "main"}
        assert ctl.toggle_breakpoint(tick) is False
        assert [a for a, _ in ctl.breakpoint_list()] == [main]


def test_reverse_operations_without_history_say_what_is_missing(
    programs: Programs, tmp_path: Path
) -> None:
    with recorded(programs, tmp_path) as (ctl, _):
        with pytest.raises(ControlError, match="start of the recorded history"):
            ctl.reverse_step()
        with pytest.raises(ControlError, match="needs a breakpoint"):
            ctl.reverse_cont()


def test_a_multithreaded_process_refuses_a_timeline_in_one_line(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["token_ring"], tmp_path, "kernel")
    with Core(core) as c:
        ctl = Controller(restore(c, stdio=(0, 1, 2)))
        try:
            with pytest.raises(ControlError) as err:
                ctl.record()
            assert "single-threaded" in str(err.value) and "--tid" in str(err.value)
            assert "\n" not in str(err.value)
            with pytest.raises(ControlError, match="single-threaded"):
                ctl.reverse_step()
        finally:
            ctl.close()

"""Reverse execution: step back one instruction, continue back to a breakpoint.

The timeline is the history of what the controller did to the process since recording
began (`Controller.record`): runs of single steps, continues (with the signal passed and
the breakpoints that were set), register and memory edits. A place in it is a `Pos`
(index of an operation, instructions done inside it). Checkpoints (fork()ed copies, see
checkpoint.py) are taken at the start, every `every` instructions, at every continue and
where a continue was interrupted; going back to a place forks the latest checkpoint
before it and runs the history forward again to that place, with the syscalls replayed
from their record (restorer/replay.py) so that nothing is written twice.

A continue is replayed as a continue, fast. To stop *inside* one (a reverse-step right
after it, or a breakpoint hit within it), it is run once more by single steps, counted,
and from then on stands in the history as that many steps. A continue stopped by an
interrupt (^C, i) ended at no reproducible instruction: the timeline can go back to the
checkpoint taken where it stopped and anywhere before the continue, not into it.

Only a single-threaded process has a timeline: a checkpoint is a fork(), and fork copies
only the thread that calls it; the other threads of a multi-threaded process, and the
locks they hold, would be missing from every copy. Reverse operations on one are refused
with that reason (restore one thread with --tid to use them).

Re-execution is exact where the program is deterministic given its syscalls: reading the
clock through the vDSO, or shared memory written by others, can make it take another path
(reported as a divergence, one line).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from restorer.checkpoint import Checkpoint, fork_copy
from restorer.replay import ReplayDiverged, SyscallRecorder
from restorer.tracee import Stop

if TYPE_CHECKING:
    from collections.abc import Callable

    from restorer.control import Controller, Event

Pos = tuple[int, int]  # (operation index, instructions done inside it)
MAX_AUTOMATIC = 48  # automatic checkpoints kept (each is a stopped process)


@dataclass(frozen=True, slots=True)
class Steps:
    n: int


@dataclass(frozen=True, slots=True)
class Cont:
    sig: int  # delivered on resuming
    breakpoints: frozenset[int]
    end: str  # "breakpoint", "signal", "exited", "killed", "interrupted"
    signal: int  # the stop's signal for "signal"
    pc: int | None  # where it stopped (None: the process ended)


@dataclass(frozen=True, slots=True)
class SetRegs:
    changes: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class WriteMemory:
    addr: int
    data: bytes


Op = Steps | Cont | SetRegs | WriteMemory


def _control_error(text: str) -> Exception:
    from restorer.control import ControlError

    return ControlError(text)


def process_threads(pid: int) -> int:
    """How many threads process `pid` has now (also those the tracer does not trace)."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 1


class Timeline:
    """The history of one single-threaded controlled process, and going back in it."""

    def __init__(self, ctl: Controller, every: int = 1000) -> None:
        self.ctl = ctl
        self.every = max(1, every)
        self.history: list[Op] = []
        self.recorder = SyscallRecorder()
        self.branch = 0  # checkpoints of other branches are not on this history
        self.last_note = ""  # what the last reverse operation re-executed, in words
        self._replaying = False
        self.at: Pos = (0, 0)  # where the process is while the history is re-executed
        self.origin: Checkpoint | None = None

    def start(self) -> None:
        """The first checkpoint: the start of the history (call once the controller has
        this timeline)."""
        self.origin = self._checkpoint(auto=True, pinned=True)

    def place(self) -> tuple[Pos, int, int]:
        """(position, syscall index, branch) of the process now, for a checkpoint."""
        pos = self.at if self._replaying else self.end
        return self._norm(pos), self.recorder.next, self.branch

    # -- where we are ------------------------------------------------------------------
    @property
    def end(self) -> Pos:
        return (len(self.history), 0)

    def clock(self, pos: Pos) -> int:
        """Instructions single-stepped (or counted) from the origin to `pos`."""
        i, k = pos
        return sum(op.n for op in self.history[:i] if isinstance(op, Steps)) + k

    def _norm(self, pos: Pos) -> Pos:
        """The one spelling of a place: "after op i-1" is (i-1, n) when op i-1 is n steps.
        Steps added later to that op then leave the place where it was."""
        i, k = pos
        while k == 0 and 0 < i <= len(self.history):
            op = self.history[i - 1]
            if not isinstance(op, Steps):
                break
            i, k = i - 1, op.n
        return (i, k)

    def _checkpoints(self) -> list[Checkpoint]:
        cps = [c for c in self.ctl.checkpoints.timeline() if c.branch == self.branch]
        return sorted(cps, key=lambda c: (self._norm(c.pos), c.id))

    def _checkpoint(self, auto: bool, pinned: bool = False) -> Checkpoint:
        return self.ctl.checkpoints.take(auto=auto, pinned=pinned)

    # -- recording (called by the controller as it runs the process forward) ---------------
    def note_step(self) -> None:
        if self._replaying:
            return
        if self.history and isinstance(self.history[-1], Steps):
            self.history[-1] = Steps(self.history[-1].n + 1)
        else:
            self.history.append(Steps(1))
        self._maybe_checkpoint()

    def before_cont(self) -> None:
        """A continue starts here: a checkpoint, so re-executing it starts close by."""
        if self._replaying:
            return
        cps = self._checkpoints()
        if not cps or self._norm(cps[-1].pos) != self._norm(self.end):
            self._checkpoint(auto=True)

    def note_cont(self, sig: int, breakpoints: frozenset[int], ev: Event) -> None:
        if self._replaying:
            return
        if ev.reason == "breakpoint":
            end = "breakpoint"
        elif not ev.stop.alive:
            end = ev.stop.kind
        elif ev.reason == "interrupted":
            end = "interrupted"
        else:
            end = "signal"
        self.history.append(Cont(sig, breakpoints, end, ev.stop.signal, ev.pc))
        if end == "interrupted" and ev.stop.alive:  # found again only in a copy of it
            from restorer.control import ControlError
            from restorer.errors import RestoreError

            try:
                self._checkpoint(auto=True, pinned=True)
            except (ControlError, RestoreError, OSError):
                pass  # then going back stops before this continue (and says why)

    def note_edit(self, op: SetRegs | WriteMemory) -> None:
        if self._replaying:
            return
        self.history.append(op)
        self.recorder.drop_future()  # the program may now take another path

    def _maybe_checkpoint(self) -> None:
        if self.ctl.steps % self.every or not self.ctl.alive:
            return
        here = self.place()[0]
        if any(self._norm(c.pos) == here for c in self._checkpoints()):
            return
        self._checkpoint(auto=True)
        self._thin()

    def _thin(self) -> None:
        autos = [c for c in self._checkpoints() if c.auto and not c.pinned]
        while len(autos) > MAX_AUTOMATIC:
            self.ctl.checkpoints.drop(autos.pop(0).id)

    # -- back to a checkpoint (an explicit `back`: a fresh run from there) ---------------
    def on_back(self, cp: Checkpoint) -> Checkpoint:
        """The process is now a copy of `cp`: the history ends there, syscalls run anew."""
        pos = self._norm(cp.pos)
        if cp.branch == self.branch and pos <= self._norm(self.end):
            self._truncate(pos)
        else:  # a checkpoint of an abandoned branch starts a history of its own
            self.branch += 1
            self.history = []
            cp = self.ctl.checkpoints.rebase(cp.id, (0, 0), self.branch)
            self.origin = cp
            self.ctl.checkpoints.pin(cp.id)
        self.recorder.moved_to(cp.sys)
        self.recorder.drop_future()
        return cp

    # -- reverse operations ----------------------------------------------------------------
    def reverse_step(self) -> Event:
        """Back to the state before the last instruction executed."""
        self._usable()
        self.ctl._take_interrupt()  # one from before is not for this
        self.recorder.reset_counts()
        while True:
            j = self._last_executing()
            if j is None:
                raise _control_error(
                    "at the start of the recorded history: nothing to step back over"
                )
            op = self.history[j]
            if isinstance(op, Cont):
                self._convert(j)
                continue
            assert isinstance(op, Steps)
            if op.n == 0:
                del self.history[j]
                continue
            ended = not self.ctl.alive
            target = (j, op.n) if ended else (j, op.n - 1)
            break
        self._goto(self._norm(target))
        return self._event("reverse-step")

    def reverse_cont(self) -> Event:
        """Back to the latest earlier place where the PC is at a breakpoint (or the start)."""
        self._usable()
        self.ctl._take_interrupt()
        bps = frozenset(self.ctl.breakpoints)
        if not bps:
            raise _control_error("reverse-continue needs a breakpoint: set one first")
        self.recorder.reset_counts()
        hi = self._norm(self.end)
        target: Pos | None = None
        while target is None:
            below = [c for c in self._checkpoints() if self._norm(c.pos) < hi]
            if not below:
                break
            cp = below[-1]
            hits: list[Pos] = []

            # Normalised when compared: counting a continue changes how its end is spelled.
            def at(pos: Pos, pc: int, hits: list[Pos] = hits, hi: Pos = hi) -> None:
                if pc in bps and self._norm(pos) < self._norm(hi):
                    hits.append(self._norm(pos))

            self._goto(self._norm(cp.pos), keep=True)
            if self.ctl.alive:
                at(self._norm(cp.pos), self.ctl.pc)
            self._replay(self._norm(cp.pos), hi, at, convert=True)
            if hits:
                target = max(self._norm(h) for h in hits)
            hi = self._norm(cp.pos)
        if target is None:
            self._goto((0, 0))
            return self._event("start")
        self._goto(target)
        return self._event("reverse-continue")

    # -- machinery ------------------------------------------------------------------------
    def _usable(self) -> None:
        from restorer.checkpoint import require_single_thread

        require_single_thread(self.ctl)

    def _last_executing(self) -> int | None:
        for j in range(len(self.history) - 1, -1, -1):
            if isinstance(self.history[j], Steps | Cont):
                return j
        return None

    def _event(self, reason: str) -> Event:
        from restorer.control import Event

        rec = self.recorder
        note = [f"{rec.replayed} syscall(s) replayed from the record"] if rec.replayed else []
        if rec.repeated:
            again = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in rec.repeated.items())
            note.append(f"re-executed with their effects again: {again}")
        self.last_note = "; ".join(note)
        self.ctl._take_interrupt()  # one that came too late to stop anything
        ev = Event(Stop("stopped", signal=signal.SIGTRAP), self.ctl.pc, reason, self.ctl.tracee.pid)
        self.ctl.last = ev
        return ev

    def _base(self, target: Pos) -> Checkpoint:
        cps = [c for c in self._checkpoints() if self._norm(c.pos) <= target]
        if not cps:
            raise _control_error("no checkpoint left at the start of the history")
        return cps[-1]

    def _goto(self, target: Pos, keep: bool = False) -> None:
        """Make a copy of the latest checkpoint at or before `target` the process, and run
        it forward to `target`. Unless `keep`, the history after `target` is dropped."""
        cp = self._base(target)
        holder = self.ctl.checkpoints.get(cp.id)[1]
        copy = fork_copy(holder)
        self.ctl.checkpoints.pids.add(copy.pid)
        self.ctl._switch(copy, self.clock(self._norm(cp.pos)))
        self.recorder.moved_to(cp.sys)
        self._replay(self._norm(cp.pos), target, None, convert=False)
        if not keep:
            self._truncate(target)

    def _truncate(self, pos: Pos) -> None:
        i, k = pos
        del self.history[i:]
        if k:
            self.history.append(Steps(k))
        self._abandon_after(pos)

    def _abandon_after(self, pos: Pos) -> None:
        """Checkpoints past the end of the history: automatic ones go, others stay for an
        explicit `back` (on no branch)."""
        for c in self.ctl.checkpoints.timeline():
            if c.branch == self.branch and self._norm(c.pos) > self._norm(pos):
                if c.auto:
                    self.ctl.checkpoints.drop(c.id)
                else:  # kept for an explicit `back`, no longer on this history
                    self.ctl.checkpoints.rebase(c.id, c.pos, -1 - c.id)

    def _replay(
        self,
        start: Pos,
        stop: Pos,
        at: Callable[[Pos, int], None] | None,
        convert: bool,
    ) -> None:
        """Run the process (at `start`) forward along the history to `stop`. `at` sees
        every instruction boundary passed (position, PC); `convert` single-steps continues
        (and keeps them as counted steps)."""
        ctl = self.ctl
        self._replaying = True
        self.recorder.strict = True
        try:
            i, k = start
            while (i, k) < stop and ctl.alive:
                self.at = (i, k)
                op = self.history[i]
                if isinstance(op, Steps):
                    upto = stop[1] if i == stop[0] else op.n
                    while k < upto and ctl.alive:
                        self._step_exactly()
                        k += 1
                        self.at = (i, k)
                        if ctl.alive:
                            self._maybe_checkpoint()
                            if at is not None:
                                at(self._norm((i, k)), ctl.pc)
                    if k < op.n:
                        break
                    i, k = i + 1, 0
                elif isinstance(op, Cont):
                    if convert:
                        self._count(i, at)
                    else:
                        self._cont_again(op)
                    i, k = i + 1, 0
                    if at is not None and ctl.alive:
                        at(self._norm((i, k)), ctl.pc)
                elif isinstance(op, SetRegs):
                    ctl.set_regs(**dict(op.changes))
                    i += 1
                else:
                    ctl.write_memory(op.addr, op.data)
                    i += 1
            self.at = (i, k)
        except ReplayDiverged as e:
            raise _control_error(str(e)) from e
        finally:
            self._replaying = False
            self.recorder.strict = False

    def _step_exactly(self) -> None:
        """One instruction, as a user step made it: a signal that stops it is not passed."""
        ctl = self.ctl
        while True:
            stop = ctl._step_insn()
            if not stop.alive or stop.signal == signal.SIGTRAP:
                break
        if stop.alive:
            ctl.steps += 1
        else:
            ctl._event(stop, "exited")

    def _cont_again(self, op: Cont) -> None:
        if op.end == "interrupted":
            raise _control_error(
                "that continue was stopped by an interrupt, at no place that can be found "
                "again; go back to a checkpoint instead"
            )
        ev = self.ctl._cont_one(op.sig, op.breakpoints)
        if ev.reason == "interrupted":  # stopped (i) while going back: stay here
            j = self.at[0]
            del self.history[j + 1 :]
            self.history[j] = Cont(op.sig, op.breakpoints, "interrupted", ev.stop.signal, ev.pc)
            self._abandon_after((j + 1, 0))
            self.at = (j + 1, 0)
            self._checkpoint(auto=True, pinned=True)
            raise _control_error("stopped while going back, inside a re-executed continue")
        same = (ev.pc == op.pc) if op.pc is not None else not ev.stop.alive
        if not same:
            raise _control_error(
                f"re-execution diverged: the continue stopped at {ev.pc or 0:#x}, not "
                f"{op.pc or 0:#x} (the program depends on something outside it)"
            )

    def _convert(self, j: int) -> None:
        """Make continue `j` a counted run of steps (re-executing it once by steps)."""
        op = self.history[j]
        assert isinstance(op, Cont)
        if op.end == "interrupted":
            raise _control_error(
                "cannot step back into a continue stopped by an interrupt (it ended at no "
                "place that can be found again); go back to a checkpoint instead"
            )
        self._goto((j, 0), keep=True)
        self._replay((j, 0), (j + 1, 0), None, convert=True)

    def _count(self, j: int, at: Callable[[Pos, int], None] | None) -> None:
        """Re-execute continue `j` by single steps until it stops as it did; record the
        count in its place."""
        op = self.history[j]
        assert isinstance(op, Cont)
        if op.end == "interrupted":
            raise _control_error(
                "cannot re-execute a continue stopped by an interrupt instruction by "
                "instruction; go back to a checkpoint instead"
            )
        inside: list[int] = []
        try:
            self._count_steps(op, j, at, inside)
        except BaseException:
            for cid in inside:
                self.ctl.checkpoints.drop(cid)
            raise

    def _count_steps(
        self, op: Cont, j: int, at: Callable[[Pos, int], None] | None, inside: list[int]
    ) -> None:
        ctl = self.ctl
        n = 0
        sig = op.sig
        while True:
            stop = ctl._step_insn(sig)
            sig = 0
            if not stop.alive:
                ctl._event(stop, "exited")
                break
            if stop.signal == signal.SIGSTOP and ctl._take_interrupt():
                # Stopped (i) while going back: the history ends where the process is.
                del self.history[j + 1 :]
                self.history[j] = Steps(n)
                self._abandon_after((j, n))
                raise _control_error(
                    f"stopped while going back, {n} instructions into a re-executed continue"
                )
            if stop.signal != signal.SIGTRAP:
                if op.end == "signal" and stop.signal == op.signal:
                    break
                raise _control_error(
                    f"re-execution diverged: stopped by signal {stop.signal} where the "
                    "recorded continue went on"
                )
            n += 1
            ctl.steps += 1
            pc = ctl.pc
            if op.end == "breakpoint" and pc in op.breakpoints:
                break  # its end: the place after it, which _replay reports
            if at is not None:
                at((j, n), pc)
            if n % self.every == 0:  # a place inside it: valid once it is counted
                self.at = (j, n)
                inside.append(self._checkpoint(auto=True).id)
                # As it goes: a long continue must not keep a stopped process and a
                # descriptor of /proc/PID/mem per checkpoint until its end.
                self._thin()
        self.history[j] = Steps(n)
        self._thin()

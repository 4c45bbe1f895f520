"""Checkpoints: copies of the stopped process made by injecting fork(), as gdb's checkpoint does.

A checkpoint is a forked child kept stopped under ptrace. Going back forks the checkpoint
again and makes that copy the running process, so a checkpoint can be returned to any
number of times. Replaying forward single-steps: exact where the program is deterministic
(no input, time or other processes involved). The copy shares open file descriptions with
the original (fork semantics): file offsets are not rewound. A multi-threaded process gets
none (fork copies only the calling thread).

With a timeline (restorer/timeline.py) checkpoints also mark places in its history; those
it takes itself (`auto`) serve reverse execution and are thinned out as it goes.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from restorer import ptrace
from restorer.arch import FORK_CALL, SYSCALL_INSN
from restorer.inject import InjectionError, PatchedSyscall, SyscallInjector
from restorer.tracee import Stop, Tracee, wait_stop

if TYPE_CHECKING:
    from restorer.control import Controller, Event


@dataclass(frozen=True, slots=True)
class Checkpoint:
    id: int
    pid: int
    step: int  # the controller's step count when taken
    pc: int
    pos: tuple[int, int] = (0, 0)  # its place in the timeline's history
    sys: int = 0  # the index of the next syscall in the timeline's record
    branch: int = 0  # the history it belongs to
    auto: bool = False  # taken by the timeline, not asked for
    pinned: bool = False  # never thinned out


def fork_copy(tracee: Tracee) -> Tracee:
    """A stopped, traced copy of the stopped `tracee`, with the same registers."""
    saved = tracee.regs()
    ptrace.setoptions(tracee.pid, ptrace.PTRACE_O_EXITKILL | ptrace.PTRACE_O_TRACEFORK)
    try:
        with PatchedSyscall(tracee, saved.pc) as at:
            inj = SyscallInjector(tracee, at, saved)
            ret = inj(FORK_CALL[0], *FORK_CALL[1])
        original = tracee.read(saved.pc, len(SYSCALL_INSN))
    finally:
        if tracee.alive:
            tracee.set_regs(saved)
            ptrace.setoptions(tracee.pid, ptrace.PTRACE_O_EXITKILL)
    if ret < 0 or not inj.forked:
        raise InjectionError(f"fork() in the process failed ({ret}); no checkpoint taken")
    child = Tracee(inj.forked[0])
    stop = wait_stop(child.pid)  # the auto-attached child starts with SIGSTOP
    if not stop.alive or stop.signal != signal.SIGSTOP:
        child.alive = stop.alive
        child.kill()
        raise InjectionError(f"the forked copy did not stop as expected ({stop.describe()})")
    ptrace.setoptions(child.pid, ptrace.PTRACE_O_EXITKILL)
    child.write(saved.pc, original)  # the copy was made while the syscall patch was in place
    child.set_regs(saved)
    return child


def require_single_thread(ctl: Controller) -> None:
    """fork() copies only the calling thread: a checkpoint of a multi-threaded process
    would be a different program. Refused, with the way to get checkpoints."""
    from restorer.timeline import process_threads

    if ctl.multithreaded or (ctl.alive and process_threads(ctl.leader.pid) > 1):
        from restorer.control import ControlError

        raise ControlError(
            "checkpoints need a single-threaded process (fork copies only one thread), and "
            "so does reverse execution; restore one thread with --tid TID to use them"
        )


class Checkpoints:
    """The timeline of checkpoints of one controlled process."""

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self._items: dict[int, tuple[Checkpoint, Tracee]] = {}
        self.pids: set[int] = set()  # every copy ever made: their end is no news to the program
        self._next = 1
        self._next_auto = -1  # automatic ones count down: the numbers users see stay 1, 2, ..

    def take(self, auto: bool = False, pinned: bool = False) -> Checkpoint:
        ctl = self.ctl
        ctl._need_alive()
        require_single_thread(ctl)
        copy = fork_copy(ctl.tracee)
        cid = self._next_auto if auto else self._next
        cp = Checkpoint(cid, copy.pid, ctl.steps, copy.regs().pc, auto=auto,
                        pinned=pinned)  # fmt: skip
        if ctl.timeline is not None:
            pos, sys, branch = ctl.timeline.place()
            cp = replace(cp, pos=pos, sys=sys, branch=branch)
        self._items[cp.id] = (cp, copy)
        self.pids.add(copy.pid)
        if auto:
            self._next_auto -= 1
        else:
            self._next += 1
        return cp

    def drop(self, cid: int) -> None:
        """Kill checkpoint `cid` (one the timeline no longer needs)."""
        item = self._items.pop(cid, None)
        if item is not None:
            item[1].kill()

    def rebase(self, cid: int, pos: tuple[int, int], branch: int) -> Checkpoint:
        cp = replace(self._items[cid][0], pos=pos, branch=branch)
        self._items[cid] = (cp, self._items[cid][1])
        return cp

    def pin(self, cid: int) -> None:
        cp = replace(self._items[cid][0], pinned=True)
        self._items[cid] = (cp, self._items[cid][1])

    def timeline(self) -> list[Checkpoint]:
        return sorted((c for c, _ in self._items.values()), key=lambda c: (c.step, c.id))

    def get(self, cid: int | None) -> tuple[Checkpoint, Tracee]:
        """Checkpoint `cid`, or the latest one asked for (not taken automatically)."""
        from restorer.control import ControlError

        asked = sorted(i for i, (c, _) in self._items.items() if not c.auto)
        if cid is None:
            if not asked:
                raise ControlError("no checkpoints yet; take one with `checkpoint`")
            cid = asked[-1]
        if cid not in self._items:
            raise ControlError(f"no checkpoint {cid}; have {asked}")
        return self._items[cid]

    def back(self, cid: int | None, to_step: int | None) -> Event:
        from restorer.control import Event

        require_single_thread(self.ctl)
        cp, holder = self.get(cid)
        copy = fork_copy(holder)
        self.pids.add(copy.pid)
        self.ctl._switch(copy, cp.step)
        if self.ctl.timeline is not None:
            cp = self.ctl.timeline.on_back(cp)
            self.ctl.steps = self.ctl.timeline.clock(cp.pos)
        ev = Event(Stop("stopped", signal=signal.SIGTRAP), copy.regs().pc, "back")
        if to_step is not None and to_step > self.ctl.steps:
            every = self.ctl.checkpoint_every
            self.ctl.checkpoint_every = None
            try:
                ev = self.ctl.step(to_step - self.ctl.steps)
            finally:
                self.ctl.checkpoint_every = every
        self.ctl.last = ev
        return ev

    def close(self) -> None:
        for _, t in self._items.values():
            t.kill()
        self._items.clear()

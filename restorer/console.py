"""The `--hold` console: a line-oriented front end to the Controller."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import TextIO

from restorer.checkpoint import require_single_thread
from restorer.control import Controller, Event, ignoring_signals
from restorer.errors import RestoreError

HELP = """commands:
  step [N] | s       execute N instructions (default 1)
  next | n           step over a call
  cont | c           continue to a breakpoint, a signal or the end (^C stops it)
  until ADDR         run to ADDR
  break ADDR | b     set a breakpoint (ADDR: hex or symbol[+off]); `delete ADDR` removes it
  jump ADDR | j      set the PC
  skip               jump over the instruction at the PC (e.g. a faulting one)
  regs | r           show registers
  set REG VALUE      change a register
  poke ADDR VALUE    write a 64-bit word to memory
  mem ADDR [LEN] | x hex dump (default 64 bytes)
  dis [N] | d        disassemble around the PC
  bt                 backtrace (frame pointers)
  threads | th       list threads (* marks the selected one; all are stopped)
  thread TID | t     select the thread regs, mem, step and bt act on (cont runs all)
  checkpoint | cp    fork a checkpoint of the process as it is now (single-threaded only)
  cp every N         also take one every N steps (0: stop doing so)
  timeline | tl      list checkpoints
  back [ID [STEP]]   go back to checkpoint ID (default latest), replay to STEP
  record [N]         keep a history from here (a checkpoint every N instructions, default
                     1000; single-threaded only), for the two commands below
  reverse-step | rs  back to the state before the last instruction
  reverse-cont | rc  back to the previous breakpoint hit (or the start of the history)
                     Going back re-executes from a checkpoint; recorded syscalls are
                     replayed (nothing is written or read twice)
  quit | q           kill the process and leave"""


class Console:
    def __init__(
        self, ctl: Controller, inp: TextIO | None = None, out: TextIO | None = None
    ) -> None:
        self.ctl = ctl
        self.inp = inp or sys.stdin
        self.out = out or sys.stdout
        self.commands: dict[str, Callable[[list[str]], None]] = {
            "step": self.do_step, "s": self.do_step, "next": self.do_next, "n": self.do_next,
            "cont": self.do_cont, "c": self.do_cont, "until": self.do_until,
            "break": self.do_break, "b": self.do_break, "delete": self.do_delete,
            "jump": self.do_jump, "j": self.do_jump, "skip": self.do_skip,
            "regs": self.do_regs, "r": self.do_regs,
            "set": self.do_set, "mem": self.do_mem, "x": self.do_mem, "dis": self.do_dis,
            "d": self.do_dis, "bt": self.do_bt, "checkpoint": self.do_checkpoint,
            "cp": self.do_checkpoint, "timeline": self.do_timeline, "tl": self.do_timeline,
            "back": self.do_back, "help": self.do_help, "?": self.do_help,
            "threads": self.do_threads, "th": self.do_threads, "thread": self.do_thread,
            "t": self.do_thread, "poke": self.do_poke, "record": self.do_record,
            "reverse-step": self.do_reverse_step, "rs": self.do_reverse_step,
            "reverse-cont": self.do_reverse_cont, "rc": self.do_reverse_cont,
        }  # fmt: skip

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def loop(self) -> int:
        """Read commands until quit or end of input; returns the exit code for the CLI."""
        self.show_where()
        while True:
            print("(syscap) ", end="", file=self.out, flush=True)
            line = self.inp.readline()
            if not line:
                self.say("")
                break
            words = line.split()
            if not words:
                continue
            if words[0] in ("quit", "q", "exit"):
                break
            handler = self.commands.get(words[0])
            if handler is None:
                self.say(f"unknown command {words[0]!r}; type help")
                continue
            try:
                handler(words[1:])
            except (RestoreError, ValueError) as e:  # ControlError is a RestoreError
                self.say(f"{words[0]}: {e}")
        code = 0
        if self.ctl.last is not None and not self.ctl.last.stop.alive:
            code = self.ctl.last.stop.exit_code
        return code

    # -- helpers -----------------------------------------------------------------------
    def show_where(self) -> None:
        if not self.ctl.alive:
            self.say("the process has ended (back to a checkpoint, or quit)")
            return
        insn = self.ctl.disassemble(self.ctl.pc, 1)[0]
        who = f"thread {self.ctl.tracee.pid} " if self.ctl.multithreaded else ""
        self.say(f"{who}step {self.ctl.steps}: {insn}")

    def show_event(self, ev: Event) -> None:
        self.say(ev.describe())
        if ev.stop.alive:
            self.show_where()

    def _addr(self, args: list[str], what: str) -> int:
        if not args:
            raise ValueError(f"{what} needs an address")
        return self.ctl.resolve(args[0])

    # -- commands ----------------------------------------------------------------------
    def do_help(self, _args: list[str]) -> None:
        self.say(HELP)

    def do_step(self, args: list[str]) -> None:
        ev = self.ctl.step(int(args[0]) if args else 1)
        self.show_event(ev)

    # While the process runs, ^C reaches it (same terminal process group) and stops it
    # under ptrace; the console ignores it and reports the stop. The SIGINT is not delivered.
    def do_next(self, _args: list[str]) -> None:
        with ignoring_signals(signal.SIGINT):
            self.show_event(self.ctl.step_over())

    def do_cont(self, _args: list[str]) -> None:
        with ignoring_signals(signal.SIGINT):
            self.show_event(self.ctl.cont())

    def do_until(self, args: list[str]) -> None:
        addr = self._addr(args, "until")
        with ignoring_signals(signal.SIGINT):
            self.show_event(self.ctl.run_to(addr))

    def do_break(self, args: list[str]) -> None:
        a = self._addr(args, "break")
        self.ctl.add_breakpoint(a)
        self.say(f"breakpoint at {a:#x} <{self.ctl.location(a)}>")

    def do_delete(self, args: list[str]) -> None:
        self.ctl.remove_breakpoint(self._addr(args, "delete"))

    def do_jump(self, args: list[str]) -> None:
        self.ctl.jump(self._addr(args, "jump"))
        self.show_where()

    def do_skip(self, _args: list[str]) -> None:
        insn = self.ctl.disassemble(self.ctl.pc, 1)[0]
        self.ctl.jump(insn.addr + insn.size)
        self.show_where()

    def do_regs(self, _args: list[str]) -> None:
        items = list(self.ctl.regs().as_dict().items())
        for i in range(0, len(items), 3):
            self.say("  ".join(f"{k:>8} {v:#018x}" for k, v in items[i : i + 3]))

    def do_set(self, args: list[str]) -> None:
        if len(args) != 2:
            raise ValueError("usage: set REG VALUE")
        self.ctl.set_regs(**{args[0]: int(args[1], 0)})

    def do_poke(self, args: list[str]) -> None:
        if len(args) != 2:
            raise ValueError("usage: poke ADDR VALUE")
        addr = self.ctl.resolve(args[0])
        self.ctl.write_memory(addr, (int(args[1], 0) % (1 << 64)).to_bytes(8, "little"))

    def do_record(self, args: list[str]) -> None:
        every = int(args[0]) if args else 1000
        if every <= 0:
            raise ValueError("usage: record [N] with N > 0")
        self.ctl.record(every)
        self.say(f"recording: reverse-step and reverse-cont can go back from here "
                 f"(a checkpoint every {every} instructions)")  # fmt: skip

    def do_reverse_step(self, _args: list[str]) -> None:
        self._show_reverse(self.ctl.reverse_step())

    def do_reverse_cont(self, _args: list[str]) -> None:
        ev = self.ctl.reverse_cont()
        if ev.reason == "start":
            self.say("no earlier breakpoint hit: at the start of the history")
        self._show_reverse(ev)

    def _show_reverse(self, ev: Event) -> None:
        tl = self.ctl.timeline
        if tl is not None and tl.last_note:
            self.say(tl.last_note)
        self.show_where()

    def do_mem(self, args: list[str]) -> None:
        a = self._addr(args, "mem")
        n = int(args[1], 0) if len(args) > 1 else 64
        data = self.ctl.read_memory(a, n)
        for off in range(0, len(data), 16):
            chunk = data[off : off + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            self.say(f"{a + off:#014x}  {chunk.hex(' '):<47}  {text}")

    def do_dis(self, args: list[str]) -> None:
        after = int(args[0]) if args else 6
        pc = self.ctl.pc
        for insn in self.ctl.disassemble_around(pc, after=after):
            self.say(("=> " if insn.addr == pc else "   ") + str(insn))

    def do_bt(self, _args: list[str]) -> None:
        for f in self.ctl.backtrace():
            self.say(str(f))

    def do_threads(self, _args: list[str]) -> None:
        for info in self.ctl.thread_list():
            self.say(str(info))

    def do_thread(self, args: list[str]) -> None:
        if len(args) != 1:
            raise ValueError("usage: thread TID (see `threads`)")
        self.ctl.select(int(args[0]))
        self.show_where()

    def do_checkpoint(self, args: list[str]) -> None:
        if args[:1] == ["every"]:
            require_single_thread(self.ctl)
            if len(args) != 2:
                raise ValueError("usage: checkpoint every N")
            n = int(args[1])
            self.ctl.checkpoint_every = n if n > 0 else None
            self.say(f"checkpoint every {n} steps" if n > 0 else "no automatic checkpoints")
            return
        cp = self.ctl.checkpoint()
        self.say(f"checkpoint {cp.id} at step {cp.step}, pc {cp.pc:#x} (pid {cp.pid})")

    def do_timeline(self, _args: list[str]) -> None:
        cps = self.ctl.checkpoints.timeline()
        if not cps:
            self.say("no checkpoints")
        for cp in cps:
            self.say(f"  [{cp.id}] step {cp.step:>6}  {cp.pc:#x} <{self.ctl.location(cp.pc)}>")
        self.say(f"  now: step {self.ctl.steps}" + ("" if self.ctl.alive else " (ended)"))

    def do_back(self, args: list[str]) -> None:
        cid = int(args[0]) if args else None
        to = int(args[1]) if len(args) > 1 else None
        self.show_event(self.ctl.back(cid, to))

"""Architecture specifics: register layouts, syscall numbers and instruction bytes.

The restorer runs on the architecture of the core it restores (a core is brought back
under ptrace, natively), so this module describes the machine it runs on: x86-64 or arm64
(AArch64). Everything else uses the names defined here, and the registers only through
the Registers interface (pc, sp, fp, tls, syscall_call, ...), never by x86 or arm64 names.

Layouts follow the kernel: x86-64 arch/x86/include/asm/user_64.h (struct user_regs_struct,
with fs_base inside), arm64 arch/arm64/include/uapi/asm/ptrace.h (struct user_pt_regs;
tpidr_el0, the TLS register, is its own regset NT_ARM_TLS), and
include/uapi/linux/elfcore.h (struct elf_prstatus: pr_reg at offset 112 on both).
"""

from __future__ import annotations

import dataclasses
import os
import struct
from dataclasses import dataclass
from typing import ClassVar

EM_X86_64 = 62
EM_AARCH64 = 183
MACHINE_NAMES = {3: "i386", 40: "ARM", 62: "x86-64", 183: "AArch64", 243: "RISC-V"}

ARM64 = os.uname().machine == "aarch64"
EM_HOST = EM_AARCH64 if ARM64 else EM_X86_64
ARCH_NAME = MACHINE_NAMES[EM_HOST]  # in messages: "only x86-64 cores can be restored"

PAGE_SIZE = 4096  # x86-64 always; Debian's arm64 kernels (CONFIG_ARM64_4K_PAGES)
MASK64 = (1 << 64) - 1

# struct elf_prstatus: siginfo(12) cursig(2)+pad(2) sigpend(8) sighold(8) pid ppid pgrp sid
# (4 each), 4 timevals (64), then pr_reg, pr_fpvalid (4) + pad.
PRSTATUS_REG_OFFSET = 112

# Note types (include/uapi/linux/elf.h) beyond the generic ones in core.py.
NT_X86_XSTATE = 0x202
NT_ARM_TLS = 0x401
NT_ARM_SYSTEM_CALL = 0x404

# include/linux/errno.h: kernel-internal restart codes seen in the result register of an
# interrupted syscall.
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516
RESTART_CODES = (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK)

VSYSCALL_ADDR = 0xFFFFFFFFFF600000  # x86-64 only; above every arm64 user address too
RSEQ_MIN_LEN = 32  # ORIG_RSEQ_SIZE
SIGCHLD = 17  # the same number on both


def signed(value: int) -> int:
    """An unsigned 64-bit register value as signed."""
    return value - (1 << 64) if value >= 1 << 63 else value


class Registers:
    """General registers of one thread, with the TLS base: what the restorer saves, sets
    and shows. Subclasses are frozen dataclasses whose fields are the registers."""

    __slots__ = ()
    NAMES: ClassVar[tuple[str, ...]]  # the kernel's struct, in order
    FORMAT: ClassVar[str]
    ARGS: ClassVar[tuple[str, ...]]  # syscall arguments 1..6
    NR: ClassVar[str]  # the register that holds the syscall number in the kernel
    PENDING: ClassVar[str]  # the one that holds it for the syscall instruction
    RESULT: ClassVar[str]  # the register that holds the result
    DISPLAY: ClassVar[tuple[str, ...]]  # the order a register view shows them in

    @classmethod
    def size(cls) -> int:
        return struct.calcsize(cls.FORMAT)

    @classmethod
    def unpack(cls, data: bytes, tls: int = 0) -> Registers:
        raise NotImplementedError

    def pack(self) -> bytes:
        return struct.pack(self.FORMAT, *(getattr(self, n) for n in self.NAMES))

    @property
    def pc(self) -> int:
        raise NotImplementedError

    @property
    def sp(self) -> int:
        raise NotImplementedError

    @property
    def fp(self) -> int:
        """The frame pointer: its frame record holds the caller's fp, then the return address."""
        raise NotImplementedError

    @property
    def tls(self) -> int:
        """The thread pointer (x86-64 fs_base, arm64 tpidr_el0)."""
        raise NotImplementedError

    def with_pc(self, pc: int) -> Registers:
        raise NotImplementedError

    def replace(self, **changes: int) -> Registers:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in self.DISPLAY}

    def syscall_call(self, nr: int, args: tuple[int, ...], at: int) -> Registers:
        """These registers set up to execute syscall `nr` with `args` at address `at`."""
        raise NotImplementedError

    def arg(self, i: int) -> int:
        """Syscall argument i (0-based) as the registers hold it at syscall entry."""
        return int(getattr(self, self.ARGS[i]))

    @property
    def syscall_nr(self) -> int:
        """The number of the syscall being made (at a syscall-entry stop, or before the
        syscall instruction)."""
        return int(getattr(self, self.NR))

    @property
    def pending_nr(self) -> int:
        """The syscall number a syscall instruction at pc would make now."""
        return int(getattr(self, self.PENDING))

    @property
    def result(self) -> int:
        """The result register, raw."""
        return int(getattr(self, self.RESULT))

    def with_result(self, value: int) -> Registers:
        return self.replace(**{self.RESULT: value & MASK64})

    @property
    def syscall_result(self) -> int:
        """The result register as a signed value (negative: -errno)."""
        return signed(self.result)

    @property
    def interrupted_syscall(self) -> int | None:
        """The syscall number if these registers show a syscall interrupted for a restart
        that the kernel has not rewound yet (x86-64 cores); None otherwise."""
        return None

    def for_resume(self) -> Registers:
        """These registers as a thread taken from a core resumes with them: a syscall the
        dump interrupted set up to run again, as the kernel would on its restart."""
        return self


@dataclass(frozen=True, slots=True)
class X86Registers(Registers):
    """struct user_regs_struct (fs_base is in it)."""

    NAMES: ClassVar[tuple[str, ...]] = (
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
        "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
        "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
    )  # fmt: skip
    FORMAT: ClassVar[str] = "<27Q"  # 216 bytes
    ARGS: ClassVar[tuple[str, ...]] = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
    NR: ClassVar[str] = "orig_rax"
    PENDING: ClassVar[str] = "rax"
    RESULT: ClassVar[str] = "rax"
    DISPLAY: ClassVar[tuple[str, ...]] = (
        "rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10",
        "r11", "r12", "r13", "r14", "r15", "eflags", "fs_base", "gs_base", "orig_rax",
        "cs", "ss", "ds", "es", "fs", "gs",
    )  # fmt: skip

    r15: int
    r14: int
    r13: int
    r12: int
    rbp: int
    rbx: int
    r11: int
    r10: int
    r9: int
    r8: int
    rax: int
    rcx: int
    rdx: int
    rsi: int
    rdi: int
    orig_rax: int
    rip: int
    cs: int
    eflags: int
    rsp: int
    ss: int
    fs_base: int
    gs_base: int
    ds: int
    es: int
    fs: int
    gs: int

    @classmethod
    def unpack(cls, data: bytes, tls: int = 0) -> Registers:
        return cls(*struct.unpack(cls.FORMAT, data[: cls.size()]))

    @property
    def pc(self) -> int:
        return self.rip

    @property
    def sp(self) -> int:
        return self.rsp

    @property
    def fp(self) -> int:
        return self.rbp

    @property
    def tls(self) -> int:
        return self.fs_base

    def with_pc(self, pc: int) -> Registers:
        return dataclasses.replace(self, rip=pc)

    def syscall_call(self, nr: int, args: tuple[int, ...], at: int) -> Registers:
        if len(args) > len(self.ARGS):
            raise ValueError("at most 6 syscall arguments")
        changes = dict(zip(self.ARGS, args, strict=False))
        return dataclasses.replace(self, rax=nr, orig_rax=MASK64, rip=at, **changes)

    @property
    def interrupted_syscall(self) -> int | None:
        orig = self.orig_rax
        if orig >= 1 << 63:
            return None
        if -self.syscall_result in RESTART_CODES:
            return orig
        return None

    def for_resume(self) -> Registers:
        # x86 cores show an interrupted syscall before the kernel's restart: rax holds
        # -ERESTART*, rip is past the 2-byte syscall instruction. Do what the restart does
        # (ERESTART_RESTARTBLOCK too: its restart block is gone, so the call starts over).
        regs = self
        if self.interrupted_syscall is not None:
            regs = dataclasses.replace(regs, rax=regs.orig_rax, rip=regs.rip - 2)
        return dataclasses.replace(regs, orig_rax=MASK64)


ARM64_GPRS = tuple(f"x{i}" for i in range(31))
PSTATE_SS = 1 << 21  # DBG_SPSR_SS: software step
PSTATE_SSBS = 1 << 12  # speculative store bypass safe: the kernel's mitigation


@dataclass(frozen=True, slots=True)
class Arm64Registers(Registers):
    """struct user_pt_regs (x0-x30, sp, pc, pstate) and tpidr_el0 (regset NT_ARM_TLS).

    No syscall state: arm64 rewinds an interrupted syscall (x0 back to its first argument,
    pc back to the svc) before the signal that dumps or stops the thread is taken, so a
    core shows it ready to run again; the syscall number is in x8.
    """

    NAMES: ClassVar[tuple[str, ...]] = (*ARM64_GPRS, "sp", "pc", "pstate")
    FORMAT: ClassVar[str] = "<34Q"  # 272 bytes
    ARGS: ClassVar[tuple[str, ...]] = ("x0", "x1", "x2", "x3", "x4", "x5")
    NR: ClassVar[str] = "x8"
    PENDING: ClassVar[str] = "x8"
    RESULT: ClassVar[str] = "x0"
    DISPLAY: ClassVar[tuple[str, ...]] = ("pc", "sp", "x29", "x30", *ARM64_GPRS[:29],
                                          "pstate", "tpidr_el0")  # fmt: skip

    x0: int
    x1: int
    x2: int
    x3: int
    x4: int
    x5: int
    x6: int
    x7: int
    x8: int
    x9: int
    x10: int
    x11: int
    x12: int
    x13: int
    x14: int
    x15: int
    x16: int
    x17: int
    x18: int
    x19: int
    x20: int
    x21: int
    x22: int
    x23: int
    x24: int
    x25: int
    x26: int
    x27: int
    x28: int
    x29: int
    x30: int
    # Fields where the interface has properties: field() keeps those from being defaults.
    sp: int = dataclasses.field()
    pc: int = dataclasses.field()
    pstate: int
    tpidr_el0: int = 0

    @classmethod
    def unpack(cls, data: bytes, tls: int = 0) -> Registers:
        values = dict(zip(cls.NAMES, struct.unpack(cls.FORMAT, data[: cls.size()]), strict=True))
        # PSTATE.SS is the kernel's, not the program's: set while a tracer single-steps the
        # thread, and set or cleared by the kernel on every register write to match
        # (user_regs_reset_single_step). Kept, it would make the same state read
        # differently after a step and after a continue (x86-64 hides its TF the same way).
        values["pstate"] &= ~PSTATE_SS
        # PSTATE.SSBS is the kernel's too: with a dynamic Spectre-v4 mitigation it
        # rewrites the bit in a task's saved state when the task is switched in
        # (spectre_v4_enable_task_mitigation), so one program state read twice can
        # differ in it (seen once in the arm64 guest: 0 against 0x1000).
        values["pstate"] &= ~PSTATE_SSBS
        return cls(**values, tpidr_el0=tls)

    @property
    def fp(self) -> int:
        return self.x29

    @property
    def tls(self) -> int:
        return self.tpidr_el0

    def with_pc(self, pc: int) -> Registers:
        return dataclasses.replace(self, pc=pc)

    def syscall_call(self, nr: int, args: tuple[int, ...], at: int) -> Registers:
        if len(args) > len(self.ARGS):
            raise ValueError("at most 6 syscall arguments")
        changes = dict(zip(self.ARGS, args, strict=False))
        return dataclasses.replace(self, x8=nr, pc=at, **changes)


ATOMIC_SEQUENCE_MAX = 16  # instructions after a load-exclusive to look for its store (gdb's)


def _branch_target(at: int, insn: int) -> int | None:
    """Where an arm64 conditional branch at `at` goes (B.cond, CBZ/CBNZ, TBZ/TBNZ)."""
    if insn & 0xFF000010 == 0x54000000 or insn & 0x7E000000 == 0x34000000:
        imm, bits = (insn >> 5) & 0x7FFFF, 19  # B.cond, CBZ/CBNZ: imm19
    elif insn & 0x7E000000 == 0x36000000:
        imm, bits = (insn >> 5) & 0x3FFF, 14  # TBZ/TBNZ: imm14
    else:
        return None
    if imm >> (bits - 1):
        imm -= 1 << bits
    return (at + 4 * imm) & MASK64


def atomic_sequence_exits(pc: int, code: bytes) -> tuple[int, ...]:
    """arm64: if `code` (the instructions at pc) starts with a load-exclusive (LDXR,
    LDAXR, LDXP, ...), the places its sequence can leave to: after the store-exclusive
    that closes it, and the targets of conditional branches out of it. Empty otherwise.

    Single-stepping such a sequence never gets through it: each step returns from an
    exception, which clears the exclusive monitor, so the store-exclusive fails and the
    loop retries. Like gdb (aarch64_software_single_step), the restorer runs it to one
    of these places instead, as one step.
    """
    words = [int.from_bytes(code[i : i + 4], "little") for i in range(0, len(code) - 3, 4)]
    if not words or words[0] & 0x3FC00000 != 0x08400000:  # load-exclusive
        return ()
    exits: list[int] = []
    for n, insn in enumerate(words[1 : ATOMIC_SEQUENCE_MAX + 1], start=1):
        at = pc + 4 * n
        if insn & 0x3FC00000 == 0x08000000:  # the store-exclusive that closes it
            outside = [t for t in exits if not pc <= t <= at]
            return tuple(dict.fromkeys([at + 4, *outside]))
        target = _branch_target(at, insn)
        if target is not None:
            exits.append(target)
    return ()  # no store-exclusive close enough: single-step it after all


REGS: type[Registers] = Arm64Registers if ARM64 else X86Registers
REGS_SIZE = REGS.size()
PRSTATUS_SIZE = PRSTATUS_REG_OFFSET + REGS_SIZE + 8  # pr_fpvalid and padding

if ARM64:
    # NT_PRFPREG: struct user_fpsimd_state (32 128-bit vregs, fpsr, fpcr, 2 reserved words);
    # gdb writes it without the reserved words.
    FPREGS_SIZE = 528
    FPREGS_MIN_SIZE = 520
    SYSCALL_INSN = b"\x01\x00\x00\xd4"  # svc #0
    BREAKPOINT_INSN = b"\x00\x00\x20\xd4"  # brk #0: the trap leaves pc on it
    BREAKPOINT_PC_OFFSET = 0
    INSN_ALIGN = 4
    CALL_MNEMONICS: tuple[str, ...] = ("bl", "blr")  # capstone's: step-over runs through them
    TASK_SIZE = 1 << 48  # CONFIG_ARM64_VA_BITS=48 (Debian)
    # Syscall numbers (include/uapi/asm-generic/unistd.h).
    SYS_READ = 63
    SYS_CLOSE = 57
    SYS_LSEEK = 62
    SYS_MMAP = 222
    SYS_MPROTECT = 226
    SYS_MUNMAP = 215
    SYS_BRK = 214
    SYS_RT_SIGACTION = 134
    SYS_MREMAP = 216
    SYS_GETPID = 172
    SYS_CLONE = 220
    SYS_FCNTL = 25
    SYS_CHDIR = 49
    SYS_PERSONALITY = 92
    SYS_PRCTL = 167
    SYS_EXIT_GROUP = 94
    SYS_SET_TID_ADDRESS = 96
    SYS_OPENAT = 56
    SYS_DUP3 = 24
    SYS_PRLIMIT64 = 261
    SYS_RESTART_SYSCALL = 128
    SYS_TGKILL = 131
    SYS_RSEQ = 293
    SYS_CLONE3 = 435
    FORK_CALL: tuple[int, tuple[int, ...]] = (SYS_CLONE, (SIGCHLD, 0, 0, 0, 0))  # no fork
    RSEQ_SIG = 0xD428BC00  # glibc's signature on aarch64 (brk #0x45e0)
else:
    FPREGS_SIZE = 512  # NT_FPREGSET: struct user_i387_struct (fxsave)
    FPREGS_MIN_SIZE = 512
    SYSCALL_INSN = b"\x0f\x05"
    BREAKPOINT_INSN = b"\xcc"  # int3: the trap leaves pc after it
    BREAKPOINT_PC_OFFSET = 1
    INSN_ALIGN = 1
    CALL_MNEMONICS = ("call",)
    TASK_SIZE = 0x7FFFFFFFF000
    # Syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
    SYS_READ = 0
    SYS_CLOSE = 3
    SYS_LSEEK = 8
    SYS_MMAP = 9
    SYS_MPROTECT = 10
    SYS_MUNMAP = 11
    SYS_BRK = 12
    SYS_RT_SIGACTION = 13
    SYS_MREMAP = 25
    SYS_GETPID = 39
    SYS_CLONE = 56
    SYS_FCNTL = 72
    SYS_CHDIR = 80
    SYS_PERSONALITY = 135
    SYS_PRCTL = 157
    SYS_EXIT_GROUP = 231
    SYS_SET_TID_ADDRESS = 218
    SYS_OPENAT = 257
    SYS_DUP3 = 292
    SYS_PRLIMIT64 = 302
    SYS_RESTART_SYSCALL = 219
    SYS_TGKILL = 234
    SYS_RSEQ = 334
    SYS_CLONE3 = 435
    FORK_CALL = (57, ())  # fork
    RSEQ_SIG = 0x53053053  # glibc's signature before rseq abort handlers on x86

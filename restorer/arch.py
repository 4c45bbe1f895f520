"""x86-64 specifics: register layout, syscall numbers and instruction bytes.

Everything that differs between architectures lives here (arm64 would add its own
module with the same names: regset layout, syscall numbers, the trap instruction).
Layouts follow the kernel's arch/x86/include/asm/user_64.h (struct user_regs_struct)
and include/uapi/linux/elfcore.h (struct elf_prstatus).
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

EM_X86_64 = 62
MACHINE_NAMES = {3: "i386", 40: "ARM", 62: "x86-64", 183: "AArch64", 243: "RISC-V"}

PAGE_SIZE = 4096

# struct user_regs_struct, in order.
REG_NAMES = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
    "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
    "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
)  # fmt: skip
REGS_FORMAT = "<27Q"
REGS_SIZE = struct.calcsize(REGS_FORMAT)  # 216

# struct elf_prstatus: siginfo(12) cursig(2)+pad(2) sigpend(8) sighold(8) pid ppid pgrp sid
# (4 each), 4 timevals (64), pr_reg (216), pr_fpvalid (4) + pad.
PRSTATUS_REG_OFFSET = 112
PRSTATUS_SIZE = 336

FXSAVE_SIZE = 512  # NT_FPREGSET: struct user_i387_struct

SYSCALL_INSN = b"\x0f\x05"
BREAKPOINT_INSN = b"\xcc"

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
SYS_FORK = 57
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
SYS_RSEQ = 334
SYS_CLONE3 = 435
RSEQ_SIG = 0x53053053  # glibc's signature before rseq abort handlers on x86
RSEQ_MIN_LEN = 32  # ORIG_RSEQ_SIZE

# include/linux/errno.h: kernel-internal restart codes seen in rax of an interrupted syscall.
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516
RESTART_CODES = (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK)

VSYSCALL_ADDR = 0xFFFFFFFFFF600000


@dataclass(frozen=True, slots=True)
class Registers:
    """General registers of one thread (struct user_regs_struct)."""

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
    def unpack(cls, data: bytes) -> Registers:
        return cls(*struct.unpack(REGS_FORMAT, data[:REGS_SIZE]))

    def pack(self) -> bytes:
        return struct.pack(REGS_FORMAT, *(getattr(self, n) for n in REG_NAMES))

    @property
    def pc(self) -> int:
        return self.rip

    @property
    def sp(self) -> int:
        return self.rsp

    def with_pc(self, pc: int) -> Registers:
        return dataclasses.replace(self, rip=pc)

    def replace(self, **changes: int) -> Registers:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in REG_NAMES}

    def syscall_call(self, nr: int, args: tuple[int, ...], at: int) -> Registers:
        """These registers set up to execute syscall `nr` with `args` at address `at`."""
        names = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
        if len(args) > len(names):
            raise ValueError("at most 6 syscall arguments")
        changes = dict(zip(names, args, strict=False))
        return dataclasses.replace(self, rax=nr, orig_rax=(1 << 64) - 1, rip=at, **changes)

    @property
    def syscall_result(self) -> int:
        """rax as a signed value (negative: -errno)."""
        return self.rax - (1 << 64) if self.rax >= 1 << 63 else self.rax

    @property
    def interrupted_syscall(self) -> int | None:
        """The syscall number if these registers show a syscall interrupted for a restart."""
        orig = self.orig_rax
        if orig >= 1 << 63:
            return None
        if -self.syscall_result in RESTART_CODES:
            return orig
        return None


def signed(value: int) -> int:
    """An unsigned 64-bit register value as signed."""
    return value - (1 << 64) if value >= 1 << 63 else value

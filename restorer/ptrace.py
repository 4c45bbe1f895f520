"""A thin ctypes binding to ptrace(2). errno becomes OSError in exactly one place (_call).

Request numbers and options from include/uapi/linux/ptrace.h and
arch/x86/include/uapi/asm/ptrace-abi.h. arm64 has no PTRACE_GETREGS: its registers are
regsets (NT_PRSTATUS, NT_ARM_TLS, NT_PRFPREG) through PTRACE_GETREGSET/SETREGSET.
"""

from __future__ import annotations

import ctypes
import os
import threading

from restorer.arch import (
    ARM64,
    FPREGS_SIZE,
    MASK64,
    NT_ARM_SYSTEM_CALL,
    NT_ARM_TLS,
    REGS,
    REGS_SIZE,
    SYS_CLONE3,
    SYS_TGKILL,
    Registers,
)

PTRACE_TRACEME = 0
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_SINGLESTEP = 9
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_GETFPREGS = 14
PTRACE_SETFPREGS = 15
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B

PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACEFORK = 0x2
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_STOP = 128

NT_PRSTATUS = 1
NT_PRFPREG = 2

# The C library through the interpreter's own symbols (dlopen(NULL)): ctypes.util's
# find_library("c") runs `ldconfig -p` in a subprocess, about 10 ms of every restore.
_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.restype = ctypes.c_long
_ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _check(ret: int, what: str) -> int:
    """The one place errno becomes OSError (call right after the C function)."""
    if ret == -1:
        err = ctypes.get_errno()
        if err:
            raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _call(request: int, pid: int, addr: int | None, data: int | None) -> int:
    ctypes.set_errno(0)
    return _check(_ptrace(request, pid, addr, data), f"ptrace({request:#x}, pid {pid})")


def _addr(buf: ctypes.Array[ctypes.c_char] | ctypes.Structure) -> int:
    return ctypes.addressof(buf)


def traceme() -> None:
    _call(PTRACE_TRACEME, 0, None, None)


def setoptions(pid: int, options: int) -> None:
    _call(PTRACE_SETOPTIONS, pid, None, options)


def cont(pid: int, sig: int = 0) -> None:
    _call(PTRACE_CONT, pid, None, sig)


def singlestep(pid: int, sig: int = 0) -> None:
    _call(PTRACE_SINGLESTEP, pid, None, sig)


def syscall(pid: int, sig: int = 0) -> None:
    """Resume until the next syscall entry or exit (or another stop)."""
    _call(PTRACE_SYSCALL, pid, None, sig)


def detach(pid: int, sig: int = 0) -> None:
    _call(PTRACE_DETACH, pid, None, sig)


def seize(pid: int, options: int = 0) -> None:
    """Attach without a signal (the process notices nothing until interrupt())."""
    _call(PTRACE_SEIZE, pid, None, options)


def interrupt(pid: int) -> None:
    _call(PTRACE_INTERRUPT, pid, None, None)


def geteventmsg(pid: int) -> int:
    out = ctypes.c_ulong(0)
    _call(PTRACE_GETEVENTMSG, pid, None, ctypes.addressof(out))
    return int(out.value)


def getsiginfo(pid: int) -> bytes:
    buf = ctypes.create_string_buffer(128)
    _call(PTRACE_GETSIGINFO, pid, None, _addr(buf))
    return buf.raw


def getregs(pid: int) -> Registers:
    if ARM64:
        tls = int.from_bytes(getregset(pid, NT_ARM_TLS, 8)[:8], "little")
        return REGS.unpack(getregset(pid, NT_PRSTATUS, REGS_SIZE), tls)
    buf = ctypes.create_string_buffer(REGS_SIZE)
    _call(PTRACE_GETREGS, pid, None, _addr(buf))
    return REGS.unpack(buf.raw)


def setregs(pid: int, regs: Registers) -> None:
    if ARM64:
        setregset(pid, NT_PRSTATUS, regs.pack())
        setregset(pid, NT_ARM_TLS, regs.tls.to_bytes(8, "little"))
        return
    buf = ctypes.create_string_buffer(regs.pack(), REGS_SIZE)
    _call(PTRACE_SETREGS, pid, None, _addr(buf))


def getfpregs(pid: int) -> bytes:
    if ARM64:
        return getregset(pid, NT_PRFPREG, FPREGS_SIZE)
    buf = ctypes.create_string_buffer(FPREGS_SIZE)
    _call(PTRACE_GETFPREGS, pid, None, _addr(buf))
    return buf.raw


def setfpregs(pid: int, data: bytes) -> None:
    if ARM64:
        setregset(pid, NT_PRFPREG, data[:FPREGS_SIZE])
        return
    buf = ctypes.create_string_buffer(data, FPREGS_SIZE)
    _call(PTRACE_SETFPREGS, pid, None, _addr(buf))


def skip_syscall(pid: int, regs: Registers) -> None:
    """At a syscall-entry stop: the kernel skips the call (its number becomes -1)."""
    if ARM64:
        setregset(pid, NT_ARM_SYSTEM_CALL, (-1).to_bytes(4, "little", signed=True))
        return
    setregs(pid, regs.replace(orig_rax=MASK64))


def getregset(pid: int, note_type: int, size: int) -> bytes:
    buf = ctypes.create_string_buffer(size)
    iov = _IoVec(_addr(buf), size)
    _call(PTRACE_GETREGSET, pid, note_type, _addr(iov))
    return buf.raw[: iov.len]


def setregset(pid: int, note_type: int, data: bytes) -> None:
    buf = ctypes.create_string_buffer(data, len(data))
    iov = _IoVec(_addr(buf), len(data))
    _call(PTRACE_SETREGSET, pid, note_type, _addr(iov))


class _PyBuffer(ctypes.Structure):  # Py_buffer (Include/pybuffer.h)
    _fields_ = [
        ("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p),
    ]  # fmt: skip


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.c_void_p]
_release_buffer.restype = None
_process_vm_writev = _libc.process_vm_writev
_process_vm_writev.restype = ctypes.c_ssize_t
_process_vm_writev.argtypes = [
    ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong
]


def vm_write(pid: int, addr: int, data: bytes | memoryview) -> int:
    """process_vm_writev(2) of `data` to `addr` in `pid`: how many bytes it wrote.

    One copy, straight from `data` (e.g. the core's mapping) into the process's pages,
    where a write to /proc/PID/mem copies each page twice (through a kernel page). It
    writes only pages the process itself may write: it stops at the first read-only
    one (a short count; OSError EFAULT if that is the first).
    """
    view = _PyBuffer()
    if _get_buffer(data, ctypes.addressof(view), 0) != 0:  # PyBUF_SIMPLE: C-contiguous bytes
        raise BufferError("not a contiguous buffer")
    try:
        local = _IoVec(view.buf, view.len)
        remote = _IoVec(addr, view.len)
        ctypes.set_errno(0)
        n: int = _process_vm_writev(pid, _addr(local), 1, _addr(remote), 1, 0)
        return _check(n, f"process_vm_writev(pid {pid}, {addr:#x})")
    finally:
        _release_buffer(ctypes.addressof(view))


def getsigmask(pid: int) -> int:
    out = ctypes.c_uint64(0)
    _call(PTRACE_GETSIGMASK, pid, 8, ctypes.addressof(out))
    return int(out.value)


def setsigmask(pid: int, mask: int) -> None:
    val = ctypes.c_uint64(mask)
    _call(PTRACE_SETSIGMASK, pid, 8, ctypes.addressof(val))


SIGCHLD = 17
CLONE_PARENT = 0x00008000

# The same libc, called with the GIL held: a child made by clone3 must not have to take
# the GIL back from a thread that does not exist in it.
_libc_gil = ctypes.PyDLL(None, use_errno=True)
_syscall_gil = _libc_gil.syscall
_syscall_gil.restype = ctypes.c_long


class _CloneArgs(ctypes.Structure):  # struct clone_args, CLONE_ARGS_SIZE_VER1 (80 bytes)
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack",
            "stack_size", "tls", "set_tid", "set_tid_size",
        )
    ]  # fmt: skip


def fork_with_pid(pid: int) -> int:
    """fork() whose child gets PID `pid` (clone3 set_tid): 0 in the child, `pid` in the parent.

    Needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) and a free `pid`; OSError otherwise
    (EEXIST: in use, EPERM: not allowed). Only for a child that execs at once: Python's
    own after-fork handlers do not run.

    With other Python threads running (a UI), a clone3 child can inherit a GIL drop request
    that only a thread it does not have could answer, and hang at its first GIL release
    (5 of 100 clones here). Then an os.fork()ed, single-threaded helper makes the clone3
    with CLONE_PARENT, so the child is still this thread's child (its tracer after
    PTRACE_TRACEME) and the helper only reports the outcome in its exit status.
    """
    if threading.active_count() > 1:
        return _fork_with_pid_via_helper(pid)
    return _clone3_with_pid(pid, 0, SIGCHLD)


def _clone3_with_pid(pid: int, flags: int, exit_signal: int) -> int:
    tids = (ctypes.c_int * 1)(pid)
    args = _CloneArgs(
        flags=flags, exit_signal=exit_signal, set_tid=ctypes.addressof(tids), set_tid_size=1
    )
    ctypes.set_errno(0)
    ret: int = _syscall_gil(
        ctypes.c_long(SYS_CLONE3), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args))
    )
    return _check(ret, f"clone3 with pid {pid}")


def _fork_with_pid_via_helper(pid: int) -> int:
    helper = os.fork()  # Python's after-fork handling: one thread, a sane GIL
    if helper == 0:
        try:
            # CLONE_PARENT: the child's parent is ours; it inherits SIGCHLD from the helper.
            child = _clone3_with_pid(pid, CLONE_PARENT, 0)
        except OSError as e:
            os._exit(e.errno or 1)
        except BaseException:
            os._exit(1)
        if child == 0:
            return 0
        os._exit(0)
    _, status = os.waitpid(helper, 0)
    err = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    if err:
        raise OSError(err, f"clone3 with pid {pid}: {os.strerror(err)}")
    return pid


def tgkill(tgid: int, tid: int, sig: int) -> None:
    """Send `sig` to thread `tid` of process `tgid` (one thread, not the whole process)."""
    ctypes.set_errno(0)
    _check(_libc.syscall(ctypes.c_long(SYS_TGKILL), tgid, tid, sig), f"tgkill({tgid}, {tid})")


PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int) -> None:
    """prctl(PR_SET_PDEATHSIG): used in the child before exec."""
    ctypes.set_errno(0)
    _check(_libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def personality(persona: int) -> int:
    """personality(2); used in the child before exec."""
    ret: int = _libc.personality(ctypes.c_ulong(persona))
    return ret

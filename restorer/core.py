"""Parse an ELF core file of this machine's architecture (x86-64 or arm64) from the kernel
or from gdb's gcore.

What is read (include/uapi/linux/elf.h, fs/binfmt_elf.c, gdb's linux-tdep.c):
PT_LOAD segments (the memory), and from PT_NOTE: NT_PRSTATUS per thread (registers incl.
fs_base on x86-64, signal masks), the notes following it (NT_FPREGSET, and NT_X86_XSTATE
or arm64's NT_ARM_TLS, its tpidr_el0), NT_PRPSINFO, NT_SIGINFO,
NT_AUXV and NT_FILE (file-backed mappings). NT_FILE offsets are counted in units of its
page-size field: the kernel writes the real page size (offsets in pages), gdb writes 1
(offsets in bytes); multiplying by the field handles both.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from restorer.arch import (
    ARCH_NAME,
    ARM64,
    EM_HOST,
    FPREGS_MIN_SIZE,
    FPREGS_SIZE,
    MACHINE_NAMES,
    NT_ARM_TLS,
    NT_X86_XSTATE,
    PAGE_SIZE,
    PRSTATUS_REG_OFFSET,
    REGS,
    REGS_SIZE,
    Registers,
)
from restorer.elf import (
    PT_LOAD,
    PT_NOTE,
    NoteError,
    ProgramHeader,
    extended_phnum,
    find_build_id,
    iter_notes,
    parse_header,
    parse_program_headers,
)
from restorer.errors import CoreFormatError

ET_CORE = 4

NT_PRSTATUS = 1
NT_FPREGSET = 2
NT_PRPSINFO = 3
NT_AUXV = 6
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45

AT_PHDR = 3
AT_BASE = 7
AT_ENTRY = 9
AT_SYSINFO_EHDR = 33


@dataclass(frozen=True, slots=True)
class FileMapping:
    """One NT_FILE entry: [start, end) maps `path` from byte `offset`."""

    start: int
    end: int
    offset: int
    path: str


@dataclass(frozen=True, slots=True)
class ThreadState:
    """One thread's NT_PRSTATUS and the register notes that follow it."""

    tid: int
    cursig: int
    sigpend: int
    sighold: int
    regs: Registers
    fpregs: bytes | None
    xstate: bytes | None


@dataclass(frozen=True, slots=True)
class SigInfo:
    signo: int
    errno: int
    code: int
    addr: int  # si_addr for fault signals, else the raw next word


def _u(fmt: str, data: bytes | memoryview, off: int) -> tuple[int, ...]:
    return struct.unpack_from(fmt, data, off)


class Core:
    """A parsed core file. Memory is read through an mmap of the file (no copies)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise CoreFormatError(
                f"cannot open core {self.path}: {e.strerror}; check the path"
            ) from e
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CoreFormatError(
                    f"{self.path} is not a regular file; pass a core file written by the "
                    "kernel or by gdb's gcore"
                )
            self.size = st.st_size
            if self.size < 64:
                raise CoreFormatError(
                    f"{self.path} is not an ELF core ({self.size} bytes); pass a core file "
                    "written by the kernel or by gdb's gcore"
                )
            try:
                self._map: mmap.mmap | None = mmap.mmap(fd, self.size, prot=mmap.PROT_READ)
            except OSError as e:
                raise CoreFormatError(
                    f"cannot map core {self.path}: {e.strerror}; copy it to a local file"
                ) from e
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd  # kept for SEEK_DATA (data_extents)
        self.data = memoryview(self._map)
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        """Unmap the core. Never raises: it runs while another error is on its way out.

        Slices of `data` still alive (in a traceback being reported, or held by a caller)
        keep the mapping exported; then it is unmapped when the last of them goes.
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        m, self._map = self._map, None
        if m is None:
            return
        try:
            self.data.release()
        except BufferError:
            pass
        try:
            m.close()
        except BufferError:
            pass

    def __enter__(self) -> Core:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- parsing ---------------------------------------------------------------------
    def _bad(self, what: str) -> CoreFormatError:
        return CoreFormatError(f"{self.path} {what}")

    def _parse(self) -> None:
        d = self.data
        h = parse_header(d)
        if h is None:
            raise self._bad(
                "is not an ELF core (no ELF magic); pass a core file written by the kernel "
                "or by gdb's gcore"
            )
        if h.encoding != 1:
            raise self._bad(f"is a big-endian ELF file; only {ARCH_NAME} cores can be restored")
        if h.elf_class == 1:
            name = MACHINE_NAMES.get(h.machine, f"machine {h.machine}")
            raise self._bad(f"is a 32-bit {name} core; only {ARCH_NAME} cores can be restored here")
        if h.elf_class != 2:
            raise self._bad(f"has an unknown ELF class; pass an {ARCH_NAME} ELF core")
        e_type, e_machine = h.type, h.machine
        if e_type != ET_CORE:
            kind = {1: "a relocatable object", 2: "an executable", 3: "a shared object or PIE"}
            raise self._bad(
                f"is {kind.get(e_type, f'ELF type {e_type}')}, not a core; pass the core file "
                "(from the kernel's core_pattern or gdb's gcore), and the program with --exe"
            )
        if e_machine != EM_HOST:
            name = MACHINE_NAMES.get(e_machine, f"machine {e_machine}")
            raise self._bad(
                f"is a core of another architecture ({name}); restore it on a {name} machine"
            )
        phnum = extended_phnum(d, h)
        headers = None if phnum is None or h.phentsize != 56 else (
            parse_program_headers(d, phnum, h.phoff))  # fmt: skip
        if headers is None:
            raise self._truncated()
        segments: list[ProgramHeader] = []  # the PT_LOAD ones
        notes: list[tuple[int, int]] = []
        for ph in headers:
            if ph.offset + ph.filesz > self.size:
                raise self._truncated()
            if ph.type == PT_LOAD:
                if ph.vaddr + ph.memsz > 1 << 64:
                    raise self._bad(
                        f"has a PT_LOAD segment at {ph.vaddr:#x} that runs past the end of the "
                        "address space; the core is damaged - take it again"
                    )
                segments.append(ph)
            elif ph.type == PT_NOTE:
                notes.append((ph.offset, ph.filesz))
        self.segments: tuple[ProgramHeader, ...] = tuple(sorted(segments, key=lambda s: s.vaddr))
        self._seg_starts = [s.vaddr for s in self.segments]
        self._parse_notes(notes)

    def _truncated(self) -> CoreFormatError:
        return self._bad(
            f"is truncated ({self.size} bytes; its headers describe more); the dump was cut "
            "short (disk full or a size limit: check `ulimit -c`) - take the core again"
        )

    def _iter_notes(self, notes: list[tuple[int, int]]) -> Iterator[tuple[str, int, bytes]]:
        """(name, type, descriptor) of each note. The notes are copied out of the map (they
        are small), so no view of it outlives the parse."""
        for off, size in notes:
            try:
                yield from iter_notes(self.data[off : off + size].tobytes())
            except NoteError:
                raise self._truncated() from None

    def _parse_notes(self, notes: list[tuple[int, int]]) -> None:
        threads: list[ThreadState] = []
        self.files: tuple[FileMapping, ...] = ()
        self.auxv: dict[int, int] = {}
        self.siginfo: SigInfo | None = None
        self.pid = 0
        # Real uid/gid of the process (pr_uid/pr_gid), None without NT_PRPSINFO.
        self.uid: int | None = None
        self.gid: int | None = None
        self.fname = ""
        self.psargs = ""
        self.from_gdb = False  # gcore writes a "GDB" note (its target description)
        for name, ntype, desc in self._iter_notes(notes):
            if name == "GDB":
                self.from_gdb = True
            if name == "CORE" and ntype == NT_PRSTATUS:
                if len(desc) < PRSTATUS_REG_OFFSET + REGS_SIZE:
                    raise self._bad(f"has a short NT_PRSTATUS note; it is not an {ARCH_NAME} core")
                cursig = _u("<h", desc, 12)[0]
                sigpend, sighold = _u("<QQ", desc, 16)
                tid = _u("<i", desc, 32)[0]
                regs = REGS.unpack(desc[PRSTATUS_REG_OFFSET:])
                threads.append(ThreadState(tid, cursig, sigpend, sighold, regs, None, None))
            elif name == "CORE" and ntype == NT_FPREGSET and threads:
                if len(desc) >= FPREGS_MIN_SIZE:
                    fp = desc[:FPREGS_SIZE].ljust(FPREGS_SIZE, b"\0")
                    threads[-1] = replace(threads[-1], fpregs=fp)
            elif name == "LINUX" and ntype == NT_X86_XSTATE and threads and not ARM64:
                threads[-1] = replace(threads[-1], xstate=desc)
            elif name == "LINUX" and ntype == NT_ARM_TLS and threads and ARM64 and len(desc) >= 8:
                tls = _u("<Q", desc, 0)[0]
                threads[-1] = replace(threads[-1], regs=threads[-1].regs.replace(tpidr_el0=tls))
            elif name == "CORE" and ntype == NT_PRPSINFO and len(desc) >= 136:
                self.uid, self.gid, self.pid = _u("<IIi", desc, 16)
                self.fname = desc[40:56].split(b"\0")[0].decode(errors="replace")
                self.psargs = desc[56:136].split(b"\0")[0].decode(errors="replace")
            elif name == "CORE" and ntype == NT_AUXV:
                for i in range(0, len(desc) - 15, 16):
                    key, val = _u("<QQ", desc, i)
                    if key == 0:
                        break
                    self.auxv[key] = val
            elif name == "CORE" and ntype == NT_SIGINFO and len(desc) >= 24:
                signo, errno_, code = _u("<iii", desc, 0)
                self.siginfo = SigInfo(signo, errno_, code, _u("<Q", desc, 16)[0])
            elif name == "CORE" and ntype == NT_FILE:
                self.files = self._parse_nt_file(desc)
        if not threads:
            raise self._bad("has no NT_PRSTATUS note (no thread registers); it cannot be restored")
        self.threads: tuple[ThreadState, ...] = tuple(threads)
        if not self.pid:
            self.pid = self.threads[0].tid

    def _parse_nt_file(self, desc: bytes) -> tuple[FileMapping, ...]:
        if len(desc) < 16:
            raise self._bad("has a malformed NT_FILE note")
        count, page = _u("<QQ", desc, 0)
        table_end = 16 + count * 24
        if table_end > len(desc):
            raise self._bad("has a malformed NT_FILE note")
        names = desc[table_end:].split(b"\0")
        if len(names) < count:
            raise self._bad("has a malformed NT_FILE note (missing file names)")
        out = []
        for i in range(count):
            start, end, ofs = _u("<QQQ", desc, 16 + i * 24)
            out.append(
                FileMapping(start, end, ofs * page, names[i].decode(errors="surrogateescape"))
            )
        return tuple(sorted(out, key=lambda f: f.start))

    # -- queries ---------------------------------------------------------------------
    @property
    def signal_thread(self) -> ThreadState:
        """The thread that took the signal: the kernel and gdb both write it first."""
        return self.threads[0]

    def thread(self, tid: int) -> ThreadState | None:
        for t in self.threads:
            if t.tid == tid:
                return t
        return None

    @property
    def vdso_addr(self) -> int | None:
        return self.auxv.get(AT_SYSINFO_EHDR)

    def segment_at(self, addr: int) -> ProgramHeader | None:
        import bisect

        i = bisect.bisect_right(self._seg_starts, addr) - 1
        if i >= 0 and self.segments[i].vaddr <= addr < self.segments[i].end:
            return self.segments[i]
        return None

    def file_at(self, addr: int) -> FileMapping | None:
        for f in self.files:
            if f.start <= addr < f.end:
                return f
        return None

    def read(self, addr: int, size: int) -> bytes | None:
        """Bytes at `addr` as saved in the core, or None if not all of them were dumped."""
        out = bytearray()
        while size > 0:
            seg = self.segment_at(addr)
            if seg is None:
                return None
            rel = addr - seg.vaddr
            if rel >= seg.filesz:
                return None
            n = min(size, seg.filesz - rel)
            with self.data[seg.offset + rel : seg.offset + rel + n] as chunk:
                out += chunk
            addr += n
            size -= n
        return bytes(out)

    def data_extents(self, offset: int, size: int) -> list[tuple[int, int]]:
        """The parts of file bytes [offset, offset+size) that are not holes, as (start, end).

        The kernel writes the pages a process never touched as holes (it seeks over them),
        so most of a thread's 8 MB stack is not in the file at all; SEEK_DATA/SEEK_HOLE
        find them without reading a byte. Where the file system cannot tell: all of it.
        """
        end = offset + size
        fd = self._fd
        if fd is None or size <= 0:
            return [(offset, end)] if size > 0 else []
        out: list[tuple[int, int]] = []
        pos = offset
        try:
            while pos < end:
                try:
                    lo = os.lseek(fd, pos, os.SEEK_DATA)
                except OSError as e:
                    if e.errno == errno.ENXIO:  # only a hole from here to the end of the file
                        break
                    raise
                if lo >= end:
                    break
                hi = min(os.lseek(fd, lo, os.SEEK_HOLE), end)
                out.append((lo, hi))
                pos = hi
        except OSError:  # no SEEK_DATA here (EINVAL): treat everything as data
            return [(offset, end)]
        return out

    def read_u64(self, addr: int) -> int | None:
        b = self.read(addr, 8)
        return None if b is None else int.from_bytes(b, "little")

    @property
    def exe_path(self) -> str | None:
        """Path of the main executable: the NT_FILE entry holding AT_ENTRY (or AT_PHDR)."""
        for key in (AT_ENTRY, AT_PHDR):
            addr = self.auxv.get(key)
            if addr:
                f = self.file_at(addr)
                if f is not None:
                    return f.path
        return self.files[0].path if self.files else None

    def mapped_paths(self) -> list[str]:
        seen: list[str] = []
        for f in self.files:
            if f.path not in seen:
                seen.append(f.path)
        return seen

    def build_id_in_memory(self, path: str) -> bytes | None:
        """The GNU build-id of `path` as mapped in the core (its ELF headers are dumped)."""
        first = [f for f in self.files if f.path == path and f.offset == 0]
        if not first:
            return None
        base = first[0].start
        ehdr = self.read(base, 64)
        h = None if ehdr is None else parse_header(ehdr)
        if h is None:
            return None
        phdrs = self.read(base + h.phoff, h.phnum * 56)
        headers = None if phdrs is None else parse_program_headers(phdrs, h.phnum)
        if headers is None:
            return None
        loads = [(p.offset, p.vaddr) for p in headers if p.type == PT_LOAD]
        note_hdrs = [(p.vaddr, p.filesz) for p in headers if p.type == PT_NOTE]
        if not loads:
            return None
        first_off, first_vaddr = min(loads)
        bias = base - (first_vaddr - first_off)
        for vaddr, size in note_hdrs:
            blob = self.read(bias + vaddr, size)
            if blob is None:
                continue
            found = find_build_id(blob)
            if found is not None:
                return found
        return None


def page_align_down(x: int) -> int:
    return x & ~(PAGE_SIZE - 1)


def page_align_up(x: int) -> int:
    return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)

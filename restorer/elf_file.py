"""Facts about an ELF executable or library on disk: load segments, build-id, symbols."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from functools import lru_cache

from restorer.elf import (
    EHDR_SIZE,
    PHDR_SIZE,
    PT_LOAD,
    PT_NOTE,
    SHDR_SIZE,
    SHT_DYNSYM,
    SHT_SYMTAB,
    STT_FUNC,
    STT_OBJECT,
    ElfSymbol,
    ProgramHeader,
    find_build_id,
    is_elf64_le,
    parse_header,
    parse_program_headers,
    parse_section_headers,
    parse_symbols,
    section_count,
)


@dataclass(frozen=True, slots=True)
class ElfInfo:
    path: str
    machine: int
    segments: tuple[ProgramHeader, ...]  # the PT_LOAD ones
    build_id: bytes | None

    def prot_for_offset(self, offset: int) -> int | None:
        """Protection of the PT_LOAD that maps file byte `offset` (page granular)."""
        for s in self.segments:
            start = s.offset & ~0xFFF
            if start <= offset < s.offset + max(s.filesz, 1):
                return s.prot
        return None


@lru_cache(maxsize=128)
def read_elf(path: str) -> ElfInfo | None:
    """Program headers and build-id of `path`, or None if it is not a 64-bit ELF file.

    The file is untrusted (a core names it, or a user passes it): every header is checked
    against the file's size before it is read.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h = parse_header(f.read(EHDR_SIZE))
            if h is None or not is_elf64_le(h):
                return None
            if h.phnum and (h.phentsize != PHDR_SIZE or h.phoff + h.phnum * PHDR_SIZE > size):
                return None
            f.seek(h.phoff if h.phnum else 0)
            headers = parse_program_headers(f.read(h.phnum * PHDR_SIZE), h.phnum)
            if headers is None:
                return None
            segs = []
            build_id = None
            for p in headers:
                if p.type == PT_LOAD:
                    segs.append(p)
                elif p.type == PT_NOTE and build_id is None and p.offset + p.filesz <= size:
                    f.seek(p.offset)
                    build_id = find_build_id(f.read(p.filesz))
            return ElfInfo(path, h.machine, tuple(segs), build_id)
    except (OSError, ValueError):  # ValueError: a path with a NUL (from a core's NT_FILE)
        return None


@dataclass(frozen=True, slots=True)
class Symbols:
    """The function and data symbols of a file, as its tables list them (values are
    link-time addresses: add the load bias)."""

    symtab: tuple[ElfSymbol, ...]  # .symtab (absent in stripped files)
    dynsym: tuple[ElfSymbol, ...]  # .dynsym


NO_SYMBOLS = Symbols((), ())


def read_symbols(path: str) -> Symbols:
    """The STT_FUNC and STT_OBJECT symbols of `path`'s symbol tables; none if it is not a
    readable 64-bit ELF file or its tables do not fit in it.

    Cached while the file keeps its identity (device, inode, size, mtime): a restore asks
    for a few names per thread, and the pane looks up every address it shows.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a path with a NUL (from a core's NT_FILE)
        return NO_SYMBOLS
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the open, a device read forever
        return NO_SYMBOLS
    return _read_symbols(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _read_symbols(path: str, _dev: int, _ino: int, _size: int, _mtime: int) -> Symbols:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h = parse_header(f.read(EHDR_SIZE))
            if h is None or not is_elf64_le(h) or h.shoff == 0 or h.shoff >= size:
                return NO_SYMBOLS
            if h.shentsize != SHDR_SIZE:
                return NO_SYMBOLS
            f.seek(h.shoff)
            count = section_count(h, f.read(SHDR_SIZE))
            if h.shoff + count * SHDR_SIZE > size:
                return NO_SYMBOLS
            f.seek(h.shoff)
            sections = parse_section_headers(f.read(count * SHDR_SIZE), count)
            if sections is None:
                return NO_SYMBOLS
            tables: dict[int, tuple[ElfSymbol, ...]] = {}
            for sec in sections:
                if sec.type not in (SHT_SYMTAB, SHT_DYNSYM) or sec.type in tables:
                    continue
                if sec.link >= len(sections):
                    continue
                strtab = sections[sec.link]
                if sec.offset + sec.size > size or strtab.offset + strtab.size > size:
                    continue
                f.seek(sec.offset)
                table = f.read(sec.size)
                f.seek(strtab.offset)
                strings = f.read(strtab.size)
                tables[sec.type] = tuple(parse_symbols(table, strings, (STT_FUNC, STT_OBJECT)))
            return Symbols(tables.get(SHT_SYMTAB, ()), tables.get(SHT_DYNSYM, ()))
    except (OSError, ValueError):
        return NO_SYMBOLS

"""Facts about an ELF executable or library on disk: load segments and build-id."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from restorer.elf import (
    EHDR_SIZE,
    PHDR_SIZE,
    PT_LOAD,
    PT_NOTE,
    ProgramHeader,
    find_build_id,
    is_elf64_le,
    parse_header,
    parse_program_headers,
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

"""Facts about an ELF executable or library on disk: load segments and build-id."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from functools import lru_cache

from restorer.core import PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE, find_build_id


@dataclass(frozen=True, slots=True)
class FileSegment:
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    flags: int

    @property
    def prot(self) -> int:
        return (
            (1 if self.flags & PF_R else 0)
            | (2 if self.flags & PF_W else 0)
            | (4 if self.flags & PF_X else 0)
        )


@dataclass(frozen=True, slots=True)
class ElfInfo:
    path: str
    machine: int
    segments: tuple[FileSegment, ...]
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
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            machine = struct.unpack_from("<H", head, 18)[0]
            phoff = struct.unpack_from("<Q", head, 32)[0]
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            if phnum and (phentsize != 56 or phoff + phnum * 56 > size):
                return None
            f.seek(phoff if phnum else 0)
            ph = f.read(phnum * 56)
            if len(ph) != phnum * 56:
                return None
            segs = []
            build_id = None
            for i in range(phnum):
                p_type, p_flags, p_offset, p_vaddr, _pa, p_filesz, p_memsz, _al = (
                    struct.unpack_from("<IIQQQQQQ", ph, i * 56)
                )
                if p_type == PT_LOAD:
                    segs.append(FileSegment(p_offset, p_vaddr, p_filesz, p_memsz, p_flags))
                elif p_type == PT_NOTE and build_id is None and p_offset + p_filesz <= size:
                    f.seek(p_offset)
                    build_id = find_build_id(f.read(p_filesz))
            return ElfInfo(path, machine, tuple(segs), build_id)
    except (OSError, ValueError):  # ValueError: a path with a NUL (from a core's NT_FILE)
        return None

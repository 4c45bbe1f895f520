"""The one ELF reader of the restorer: the ELF header, program headers, notes, section
headers and symbol tables of 64-bit little-endian files (cores, executables, libraries,
and ELF images in a core's memory), read from bytes with every length checked against
what is there.

Why not pyelftools: its note parser trusts the counts inside a note rather than the
note's size. A core whose NT_FILE claims 2**40 entries took pyelftools 0.33 47 s and
2.8 GB before it failed, where this reader refuses it at once (measured on a 231 MB core
of 16 threads, which both parse in under 2 ms when it is well formed: 0.3-0.5 ms here,
1.6-1.9 ms with pyelftools). And it is slow on symbol tables: finding one name in
.dynsym took it 89-97 ms in libc and about 2 ms in ld.so (it builds its name map entry
by entry with construct, again for each file opened), and a restore of 16 threads looked
up 33 names; this reader takes 3.7 ms for all of libc's symbols and 0.1 ms for ld.so's
(struct.iter_unpack), once per file. Cores and the files they name are hostile input
(fuzzed: tests/restorer/fuzz_core.py).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from restorer.errors import RestoreError

EHDR_SIZE = 64
PHDR_SIZE = 56
PT_LOAD = 1
PT_NOTE = 4
PN_XNUM = 0xFFFF
PF_X, PF_W, PF_R = 1, 2, 4


def prot_of(pf_flags: int) -> int:
    """PROT_* bits (PROT_READ=1, PROT_WRITE=2, PROT_EXEC=4) from a segment's PF_* flags."""
    return (
        (1 if pf_flags & PF_R else 0)
        | (2 if pf_flags & PF_W else 0)
        | (4 if pf_flags & PF_X else 0)
    )
ELFCLASS64 = 2
ELFDATA2LSB = 1
NT_GNU_BUILD_ID = 3


class NoteError(RestoreError):
    """A note runs past the end of its block. Never reaches a user: Core turns it into a
    CoreFormatError that says how to fix it, and a build-id search takes it for no id."""


@dataclass(frozen=True, slots=True)
class ElfHeader:
    elf_class: int  # 1: 32-bit, 2: 64-bit
    encoding: int  # 1: little-endian
    type: int
    machine: int  # read at the same offset in both classes
    phoff: int  # the fields below: 64-bit little-endian layout
    shoff: int
    phentsize: int
    phnum: int
    shentsize: int = 0
    shnum: int = 0


@dataclass(frozen=True, slots=True)
class ProgramHeader:
    """One program header; a PT_LOAD one maps memory [vaddr, vaddr+memsz) whose first
    filesz bytes are the file's from offset (in a core: the dumped memory)."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int

    @property
    def end(self) -> int:
        return self.vaddr + self.memsz

    @property
    def prot(self) -> int:
        """PROT_* bits (PROT_READ=1, PROT_WRITE=2, PROT_EXEC=4) from PF_* flags."""
        return prot_of(self.flags)


def parse_header(data: bytes | memoryview) -> ElfHeader | None:
    """The header of an ELF image starting at data[0], or None if it is not one."""
    if len(data) < EHDR_SIZE or bytes(data[:4]) != b"\x7fELF":
        return None
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    phoff, shoff = struct.unpack_from("<QQ", data, 32)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 54)
    return ElfHeader(
        data[4], data[5], e_type, e_machine, phoff, shoff, phentsize, phnum, shentsize, shnum
    )


def is_elf64_le(h: ElfHeader) -> bool:
    return h.elf_class == ELFCLASS64 and h.encoding == ELFDATA2LSB


def extended_phnum(data: bytes | memoryview, h: ElfHeader) -> int | None:
    """The program header count: e_phnum, or (PN_XNUM) section 0's sh_info; None if
    section 0 is not there."""
    if h.phnum != PN_XNUM:
        return h.phnum
    if h.shoff + EHDR_SIZE > len(data):
        return None
    return int(struct.unpack_from("<I", data, h.shoff + 44)[0])


def parse_program_headers(
    data: bytes | memoryview, count: int, at: int = 0
) -> list[ProgramHeader] | None:
    """`count` program headers at data[at:]; None if they do not all fit."""
    if at + count * PHDR_SIZE > len(data):
        return None
    out = []
    for i in range(count):
        p_type, p_flags, p_offset, p_vaddr, _pa, p_filesz, p_memsz, _al = struct.unpack_from(
            "<IIQQQQQQ", data, at + i * PHDR_SIZE
        )
        out.append(ProgramHeader(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz))
    return out


def iter_notes(block: bytes) -> Iterator[tuple[str, int, bytes]]:
    """(name, type, descriptor) of each note in a PT_NOTE block. Raises NoteError when a
    note's descriptor runs past the block."""
    pos, end = 0, len(block)
    while pos + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from("<III", block, pos)
        name_off = pos + 12
        desc_off = name_off + ((namesz + 3) & ~3)
        if desc_off + descsz > end:
            raise NoteError(f"note at {pos} runs past its block")
        name = block[name_off : name_off + namesz].rstrip(b"\0").decode("ascii", "replace")
        yield name, ntype, block[desc_off : desc_off + descsz]
        pos = desc_off + ((descsz + 3) & ~3)


def find_build_id(block: bytes) -> bytes | None:
    """The NT_GNU_BUILD_ID descriptor in a block of notes (a damaged block: None)."""
    try:
        for name, ntype, desc in iter_notes(block):
            if ntype == NT_GNU_BUILD_ID and name == "GNU":
                return desc
    except NoteError:
        pass
    return None


# ---------------------------------------------------------------------------------------
# section headers and symbol tables (of files on disk: restorer/elf_file.py reads them)

SHDR_SIZE = 64
SHT_SYMTAB = 2
SHT_DYNSYM = 11
SYM_SIZE = 24
STT_OBJECT = 1
STT_FUNC = 2
SHN_UNDEF = 0


@dataclass(frozen=True, slots=True)
class SectionHeader:
    type: int
    offset: int
    size: int
    link: int  # for a symbol table: the index of its string table


@dataclass(frozen=True, slots=True)
class ElfSymbol:
    name: str
    value: int
    size: int
    type: int  # STT_*
    shndx: int  # SHN_UNDEF: defined elsewhere


def section_count(h: ElfHeader, first: bytes | memoryview) -> int:
    """The section header count: e_shnum, or (0 with a table) section 0's sh_size.

    `first`: section 0's header (what is there of it)."""
    if h.shnum or h.shoff == 0:
        return h.shnum
    if len(first) < SHDR_SIZE:
        return 0
    return int(struct.unpack_from("<Q", first, 32)[0])


def parse_section_headers(data: bytes | memoryview, count: int) -> list[SectionHeader] | None:
    """`count` section headers at data[0:]; None if they do not all fit."""
    if count * SHDR_SIZE > len(data):
        return None
    out = []
    for i in range(count):
        _name, sh_type, _flags, _addr, offset, size, link = struct.unpack_from(
            "<IIQQQQI", data, i * SHDR_SIZE
        )
        out.append(SectionHeader(sh_type, offset, size, link))
    return out


def parse_symbols(table: bytes, strings: bytes, types: tuple[int, ...]) -> list[ElfSymbol]:
    """The symbols of a SHT_SYMTAB/SHT_DYNSYM section whose type is one of `types`, named
    from its string table (a name offset outside it: an empty name; a trailing partial
    entry is ignored)."""
    out = []
    whole = len(table) - len(table) % SYM_SIZE
    for name_at, info, _other, shndx, value, size in struct.iter_unpack(
        "<IBBHQQ", table[:whole]
    ):
        if info & 0xF not in types:
            continue
        name = ""
        if name_at < len(strings):
            end = strings.find(b"\0", name_at)
            name = strings[name_at : end if end >= 0 else len(strings)].decode("utf-8", "replace")
        out.append(ElfSymbol(name, value, size, info & 0xF, shndx))
    return out

"""Fuzz target for the core parser: what `syscap restore` does with a core before any process.

    SYSCAP_FUZZ_EXE=PROG python tests/restorer/fuzz_core.py [libFuzzer flags] CORPUS_DIR
    SYSCAP_FUZZ_EXE=PROG SYSCAP_FUZZ_CORE=CORE SYSCAP_FUZZ_TARGET=elf python ... CORPUS_DIR

CORPUS_DIR is seeded with a real kernel core of PROG (tests/restorer/test_fuzz_core.py makes
one). Each input goes through Core (restorer/core.py) and check_restorable (thread choice,
executable and build-id checks with restorer/elf_file.py, the region plan), then the other
queries restore makes of a core. The only exceptions allowed are the restorer's own
RestoreError classes; anything else is a crash for libFuzzer.

With SYSCAP_FUZZ_TARGET=elf the input is the program instead (seed: PROG itself), given as
--exe to a restore of the real CORE: read_elf and read_symbols (restorer/elf_file.py: the
section headers and symbol tables) and the executable checks of resolve_exe.

With SYSCAP_FUZZ_TARGET=sidecar the input is a CORE.syscap.json (seed: a real one) for
restorer/sidecar.py's parse(); its mutator edits the JSON tree (a value of another type,
a boundary number, a removed key, a doubled list entry) so inputs get past json.loads.

The mutator knows ELF: it changes program header, section header and ELF header fields,
note headers and note descriptors (NT_PRSTATUS, NT_FILE, NT_AUXV, ...) and symbol table
entries to boundary values, retypes notes and cuts the file at structure boundaries, so
most inputs get past the magic and length checks that random bit flips would keep hitting.
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import tempfile
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["restorer"]):
    from restorer.checks import check_restorable, resolve_exe
    from restorer.core import Core
    from restorer.elf_file import _read_symbols, read_elf, read_symbols
    from restorer.errors import RestoreError
    from restorer.layout import find_heap, plan_regions, read_maps, specials_span
    from restorer.sidecar import SidecarError, parse, to_json
    from restorer.symbols import SymbolTable

EXE = os.environ.get("SYSCAP_FUZZ_EXE", "/bin/true")
SEED_CORE = os.environ.get("SYSCAP_FUZZ_CORE", "")
_INPUT = tempfile.NamedTemporaryFile(prefix="syscap-fuzz-", suffix=".core", delete=True)
_OWN_MAPS = read_maps(os.getpid())

NOTE_TYPES = (1, 2, 3, 4, 6, 0x202, 0x53494749, 0x46494C45, 0x12345)
PHDR_FIELDS = (  # (offset in a program header, struct format)
    (0, "<I"), (4, "<I"), (8, "<Q"), (16, "<Q"), (32, "<Q"), (40, "<Q"),
)  # fmt: skip
SHDR_FIELDS = ((4, "<I"), (24, "<Q"), (32, "<Q"), (40, "<I"))  # type, offset, size, link
SYM_FIELDS = ((0, "<I"), (4, "<B"), (6, "<H"), (8, "<Q"), (16, "<Q"))
EHDR_FIELDS = (
    (4, "<B"), (5, "<B"), (16, "<H"), (18, "<H"), (32, "<Q"), (40, "<Q"), (54, "<H"), (56, "<H"),
)  # fmt: skip


def _ignore(_msg: str) -> None:
    pass


def exercise(path: str, exe: str) -> None:
    """What restore computes from a core before it starts the program (and a bit after)."""
    with Core(path) as core:
        for t in core.threads:
            _ = t.regs.interrupted_syscall, t.regs.syscall_result
        _ = core.exe_path, core.vdso_addr, core.siginfo, core.uid, core.gid
        for p in core.mapped_paths():
            core.build_id_in_memory(p)
        for seg in core.segments[:64]:
            core.read(seg.vaddr, min(seg.filesz, 4096) + 8)
        for tid in (None, core.threads[-1].tid, -1):
            for want_exe in (exe, None):
                try:
                    _, exe_path, path_map, main_sp = check_restorable(core, want_exe, tid, _ignore)
                except RestoreError:
                    continue
                span = specials_span(core, _OWN_MAPS)
                regions = plan_regions(core, path_map, span, main_sp, _ignore)
                find_heap(core, exe_path, regions)
                # The load biases come from the core, symbols from the files it names.
                syms = SymbolTable(core, path_map)
                for p in core.mapped_paths():
                    syms.bias(p)
                for t in core.threads[:4]:
                    syms.lookup(t.regs.pc)
                syms.data_symbol("__rseq_offset", core.auxv.get(7))


def test_one_input(data: bytes) -> None:
    _INPUT.seek(0)
    _INPUT.truncate()
    _INPUT.write(data)
    _INPUT.flush()
    try:
        exercise(_INPUT.name, EXE)
    except RestoreError:
        pass


def test_one_elf(data: bytes) -> None:
    _INPUT.seek(0)
    _INPUT.truncate()
    _INPUT.write(data)
    _INPUT.flush()
    read_elf.cache_clear()  # same path, new contents
    _read_symbols.cache_clear()
    info = read_elf(_INPUT.name)
    if info is not None:
        for seg in info.segments[:64]:
            info.prot_for_offset(seg.offset)
    tables = read_symbols(_INPUT.name)
    for sym in tables.symtab[:8] + tables.dynsym[:8]:
        _ = sym.name, sym.value + sym.size
    if SEED_CORE:
        with Core(SEED_CORE) as core:
            try:
                resolve_exe(core, _INPUT.name)
            except RestoreError:
                pass


def test_one_sidecar(data: bytes) -> None:
    try:
        sc = parse(data, "fuzz.syscap.json")
    except SidecarError as e:
        assert "\n" not in str(e), "a sidecar error must be one line"
        return
    assert parse(json.dumps(to_json(sc)).encode()) == sc


# ---------------------------------------------------------------------------------------
# structure-aware mutations


def _interesting(rng: random.Random, old: int, size: int, file_size: int) -> int:
    top = (1 << (8 * size)) - 1
    choices = [
        0, 1, top, top >> 1, (top >> 1) + 1, file_size, file_size - 1, file_size + 1,
        old + rng.choice((-4096, -8, -1, 1, 8, 4096)), old ^ (1 << rng.randrange(8 * size)),
        old * 2, 0xFFFF, 0x7FFFFFFFF000, 0xFFFFFFFFFF600000, 56, 64, 4096,
    ]  # fmt: skip
    return rng.choice(choices) & top


def _put(buf: bytearray, off: int, fmt: str, rng: random.Random) -> None:
    size = struct.calcsize(fmt)
    if off < 0 or off + size > len(buf):
        return
    old = struct.unpack_from(fmt, buf, off)[0]
    struct.pack_into(fmt, buf, off, _interesting(rng, old, size, len(buf)))


def _phdrs(buf: bytes | bytearray) -> list[tuple[int, int, int, int]]:
    """(header offset, p_type, p_offset, p_filesz) of each program header inside `buf`."""
    if len(buf) < 64 or buf[:4] != b"\x7fELF":
        return []
    phoff = struct.unpack_from("<Q", buf, 32)[0]
    phnum = struct.unpack_from("<H", buf, 56)[0]
    out = []
    for i in range(min(phnum, 4096)):
        at = phoff + i * 56
        if at + 56 > len(buf):
            break
        p_type, _f, p_off, _v, _p, p_filesz = struct.unpack_from("<IIQQQQ", buf, at)
        out.append((at, p_type, p_off, p_filesz))
    return out


def _notes(buf: bytes | bytearray) -> list[tuple[int, int, int]]:
    """(header offset, descriptor offset, descriptor size) of each note inside `buf`."""
    out: list[tuple[int, int, int]] = []
    for _at, p_type, off, size in _phdrs(buf):
        if p_type != 4:
            continue
        pos, end = off, min(off + size, len(buf))
        while pos + 12 <= end and len(out) < 4096:
            namesz, descsz, _t = struct.unpack_from("<III", buf, pos)
            desc = pos + 12 + ((namesz + 3) & ~3)
            if desc + descsz > end:
                break
            out.append((pos, desc, descsz))
            pos = desc + ((descsz + 3) & ~3)
    return out


def _shdrs(buf: bytes | bytearray) -> list[tuple[int, int, int, int]]:
    """(header offset, sh_type, sh_offset, sh_size) of each section header inside `buf`."""
    if len(buf) < 64 or buf[:4] != b"\x7fELF":
        return []
    shoff = struct.unpack_from("<Q", buf, 40)[0]
    shnum = struct.unpack_from("<H", buf, 60)[0]
    out = []
    for i in range(min(shnum, 4096)):
        at = shoff + i * 64
        if at + 64 > len(buf):
            break
        _n, sh_type, _f, _a, sh_off, sh_size = struct.unpack_from("<IIQQQQ", buf, at)
        out.append((at, sh_type, sh_off, sh_size))
    return out


def _mutate_sections(buf: bytearray, rng: random.Random) -> None:
    """A section header field (type, offset, size, link), the ELF header's section
    fields, or a field of one symbol table entry (name offset, info, section, value, size)."""
    shdrs = _shdrs(buf)
    tables = [s for s in shdrs if s[1] in (2, 11) and s[3] >= 24]
    pick = rng.randrange(3)
    if pick == 0 and shdrs:
        at = rng.choice(shdrs)[0]
        off, fmt = rng.choice(SHDR_FIELDS)
        _put(buf, at + off, fmt, rng)
    elif pick == 1 and tables:
        _at, _t, sh_off, sh_size = rng.choice(tables)
        entry = sh_off + rng.randrange(sh_size // 24) * 24
        off, fmt = rng.choice(SYM_FIELDS)
        _put(buf, entry + off, fmt, rng)
    else:
        off, fmt = rng.choice(((40, "<Q"), (58, "<H"), (60, "<H")))
        _put(buf, off, fmt, rng)


def _mutate_once(buf: bytearray, rng: random.Random) -> bytearray:
    kind = rng.randrange(9)
    phdrs = _phdrs(buf)
    notes = _notes(buf)
    if kind == 8:
        _mutate_sections(buf, rng)
    elif kind == 0 and phdrs:  # a program header field
        at = rng.choice(phdrs)[0]
        off, fmt = rng.choice(PHDR_FIELDS)
        _put(buf, at + off, fmt, rng)
    elif kind == 1:  # an ELF header field
        off, fmt = rng.choice(EHDR_FIELDS)
        _put(buf, off, fmt, rng)
    elif kind == 2 and notes:  # a note header: namesz, descsz or type
        at = rng.choice(notes)[0]
        field = rng.randrange(3)
        if field == 2:
            struct.pack_into("<I", buf, at + 8, rng.choice(NOTE_TYPES))
        else:
            _put(buf, at + 4 * field, "<I", rng)
    elif kind in (3, 4) and notes:  # a word inside a descriptor (NT_FILE counts, addresses)
        _at, desc, size = rng.choice(notes)
        if size >= 8:
            word = desc + rng.randrange(0, size - 7) // 8 * 8
            _put(buf, word, rng.choice(("<Q", "<I")), rng)
    elif kind == 5 and notes:  # a NUL in or out of a descriptor's strings
        _at, desc, size = rng.choice(notes)
        if size:
            pos = desc + rng.randrange(size)
            buf[pos] = 0 if buf[pos] else rng.choice((ord("/"), 0xFF, ord("a")))
    elif kind == 6:  # cut at a structure boundary, or near one
        marks = [64, *(a for a, *_ in phdrs), *(o for *_, o, _s in phdrs)]
        marks += [a for a, *_ in notes] + [d for _a, d, _s in notes]
        cut = rng.choice(marks) + rng.choice((-1, 0, 0, 1, 12))
        del buf[max(cut, 1) :]
    else:  # libFuzzer's own byte mutations on the headers and notes
        end = max((d + s for _a, d, s in notes), default=min(len(buf), 4096))
        head = bytes(buf[:end])
        buf[:end] = atheris.Mutate(head, len(head))
    return buf


def mutate(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        buf = _mutate_once(buf, rng)
    return bytes(buf[:max_size])


JSON_VALUES: tuple[object, ...] = (
    None, True, 0, -1, 1, 2, 3, 9, 19, 64, 65, 0x7FFFFFFF, 1 << 31, (1 << 64) - 1, 1 << 64,
    1.5, "", "/", "SIG_DFL", "SIG_IGN", "socket:[1]", "a\0b", "\udcff", "/" * 5000, [], {},
    "file", "nofile", "syscap core sidecar",
)  # fmt: skip


def _nodes(obj: object, out: list[tuple[object, object]]) -> None:
    """(container, key) of every value inside `obj`."""
    items: list[tuple[object, object]] = []
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, list):
        items = list(enumerate(obj))
    for key, value in items:
        out.append((obj, key))
        _nodes(value, out)


def mutate_json(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return bytes(atheris.Mutate(data, max_size))
    for _ in range(rng.choice((1, 1, 2, 3))):
        nodes: list[tuple[object, object]] = []
        _nodes(doc, nodes)
        if not nodes:
            break
        parent, key = rng.choice(nodes)
        kind = rng.randrange(4)
        if kind == 0 and isinstance(parent, dict):
            del parent[key]
        elif kind == 1 and isinstance(parent, list) and isinstance(key, int):
            parent.append(parent[key])
        elif kind == 2 and isinstance(parent, dict):
            parent[key + "x" if isinstance(key, str) else key] = rng.choice(JSON_VALUES)
        else:
            parent[key] = rng.choice(JSON_VALUES)  # type: ignore[index]
    out = json.dumps(doc).encode()
    return out[:max_size] if rng.randrange(50) else bytes(atheris.Mutate(out, max_size))


def main(argv: list[str]) -> None:
    target: Callable[[bytes], None] = test_one_input
    mutator = mutate
    if os.environ.get("SYSCAP_FUZZ_TARGET") == "elf":
        target = test_one_elf
    elif os.environ.get("SYSCAP_FUZZ_TARGET") == "sidecar":
        target, mutator = test_one_sidecar, mutate_json
    atheris.Setup(argv, target, custom_mutator=mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)

"""Hostile cores and executables: a short fuzz run of the restorer's parser, and the inputs
it (or its mutations) found, kept as regression cases."""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from restore_helpers import PYTHON, REPO, Programs, kernel_core, wait_until_in_read

from restorer import sidecar
from restorer.core import Core
from restorer.elf import STT_FUNC
from restorer.elf_file import read_symbols
from restorer.errors import CoreFormatError, RestoreError
from restorer.restore import check_restorable
from tests.libfuzzer import short_run

FUZZ_TARGET = Path(__file__).resolve().parent / "fuzz_core.py"


def _run_fuzzer(seed: Path, exe: Path, tmp_path: Path, seconds: int, **env: str) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seed").write_bytes(seed.read_bytes())
    short_run(
        [PYTHON, FUZZ_TARGET], seeds, tmp_path, seconds, min_runs=100,
        flags=[f"-max_len={seed.stat().st_size * 2}"],
        env=dict(os.environ, PYTHONPATH=str(REPO), SYSCAP_FUZZ_EXE=str(exe), **env),
    )  # fmt: skip


def test_fuzzing_the_core_parser_finds_only_restore_errors(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    _run_fuzzer(core, programs["resume"], tmp_path, 20)


def test_fuzzing_the_executable_check_finds_only_restore_errors(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    _run_fuzzer(
        programs["resume"], programs["resume"], tmp_path, 10,
        SYSCAP_FUZZ_TARGET="elf", SYSCAP_FUZZ_CORE=str(core),
    )  # fmt: skip


def test_fuzzing_the_sidecar_parser_finds_only_sidecar_errors(
    programs: Programs, tmp_path: Path
) -> None:
    data = tmp_path / "data.txt"
    data.write_bytes(b"0123456789")
    proc = subprocess.Popen(
        [programs["sidecar_state"], str(data), "with-socket"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        assert proc.stdout.readline() == b"ready\n"
        wait_until_in_read(proc.pid)
        seed = tmp_path / "seed.syscap.json"
        sidecar.write(sidecar.capture(proc.pid), seed)
    finally:
        proc.kill()
        proc.wait()
    _run_fuzzer(
        seed, programs["sidecar_state"], tmp_path, 10, SYSCAP_FUZZ_TARGET="sidecar"
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# regression cases: each edit of a real core once ended in something else than RestoreError


def _phdrs(data: bytes | bytearray) -> list[tuple[int, int, int, int]]:
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phnum = struct.unpack_from("<H", data, 56)[0]
    out = []
    for i in range(phnum):
        at = phoff + i * 56
        p_type, _f, p_off, _v, _p, p_filesz = struct.unpack_from("<IIQQQQ", data, at)
        out.append((at, p_type, p_off, p_filesz))
    return out


def _notes(data: bytes | bytearray, ntype: int) -> list[tuple[int, int]]:
    """(header offset, descriptor offset) of each note of type `ntype`."""
    out = []
    for _at, p_type, off, size in _phdrs(data):
        if p_type != 4:
            continue
        pos = off
        while pos + 12 <= off + size:
            namesz, descsz, t = struct.unpack_from("<III", data, pos)
            desc = pos + 12 + ((namesz + 3) & ~3)
            if t == ntype:
                out.append((pos, desc))
            pos = desc + ((descsz + 3) & ~3)
    assert out, f"no note of type {ntype:#x}"
    return out


def note_runs_past_its_segment(d: bytearray) -> None:
    # The error left a view of the map alive; closing the map masked it with BufferError.
    at, _ = _notes(d, 1)[0]
    struct.pack_into("<I", d, at + 4, 0x7FFFFFFF)


def nt_file_count_huge(d: bytearray) -> None:
    _, desc = _notes(d, 0x46494C45)[0]
    struct.pack_into("<Q", d, desc, 1 << 60)


def nt_file_names_missing(d: bytearray) -> None:
    at, desc = _notes(d, 0x46494C45)[0]
    descsz = struct.unpack_from("<I", d, at + 4)[0]
    count = struct.unpack_from("<Q", d, desc)[0]
    names = desc + 16 + count * 24
    d[names : desc + descsz] = b"a" * (desc + descsz - names)  # no NUL: one long name


def phdr_offset_past_the_end(d: bytearray) -> None:
    at = _phdrs(d)[-1][0]
    struct.pack_into("<Q", d, at + 8, (1 << 64) - 1)


def phnum_extended_without_sections(d: bytearray) -> None:
    struct.pack_into("<H", d, 56, 0xFFFF)
    struct.pack_into("<Q", d, 40, len(d))


def prstatus_short(d: bytearray) -> None:
    for at, _ in _notes(d, 1):  # every NT_PRSTATUS retyped: no thread registers
        struct.pack_into("<I", d, at + 8, 0x12345)


def cut_inside_the_notes(d: bytearray) -> None:
    at, _ = _notes(d, 0x46494C45)[0]
    del d[at + 20 :]


@pytest.mark.parametrize(
    "edit",
    [
        note_runs_past_its_segment,
        nt_file_count_huge,
        nt_file_names_missing,
        phdr_offset_past_the_end,
        phnum_extended_without_sections,
        prstatus_short,
        cut_inside_the_notes,
    ],
)
def test_mutated_core_gives_a_restore_error(
    programs: Programs, tmp_path: Path, edit: Callable[[bytearray], None]
) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    data = bytearray(core.read_bytes())
    edit(data)
    bad = tmp_path / "bad.core"
    bad.write_bytes(bytes(data))
    with pytest.raises(RestoreError):
        with Core(bad) as c:
            check_restorable(c, str(programs["resume"]), None, lambda _m: None)


def test_fifo_as_core_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "core.fifo"
    os.mkfifo(fifo)
    with pytest.raises(CoreFormatError, match="not a regular file"):
        Core(fifo)


def test_directory_as_core_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CoreFormatError, match="not a regular file"):
        Core(tmp_path)


def test_executable_with_program_headers_past_its_end_is_not_elf(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    exe = bytearray(programs["resume"].read_bytes())
    struct.pack_into("<H", exe, 56, 0x7FFF)  # e_phnum far past the file
    bad = tmp_path / "resume-bad"
    bad.write_bytes(bytes(exe))
    with Core(core) as c, pytest.raises(RestoreError, match="not a 64-bit ELF"):
        check_restorable(c, str(bad), None, lambda _m: None)


# ---------------------------------------------------------------------------------------
# symbol tables of damaged files: no symbols (or fewer), never an exception


def _sections(exe: bytes | bytearray) -> list[tuple[int, int, int, int]]:
    """(header offset, sh_type, sh_offset, sh_size) of each section header."""
    shoff = struct.unpack_from("<Q", exe, 40)[0]
    shnum = struct.unpack_from("<H", exe, 60)[0]
    out = []
    for i in range(shnum):
        at = shoff + i * 64
        _name, sh_type, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", exe, at)
        out.append((at, sh_type, off, size))
    return out


def _symtab(exe: bytes | bytearray) -> tuple[int, int, int]:
    """(header offset, sh_offset, sh_size) of .symtab."""
    for at, sh_type, off, size in _sections(exe):
        if sh_type == 2:
            return at, off, size
    raise AssertionError("the test program has no .symtab")


def section_table_past_the_end(d: bytearray) -> None:
    struct.pack_into("<Q", d, 40, len(d) + 4096)


def section_count_huge(d: bytearray) -> None:
    struct.pack_into("<H", d, 60, 0xFFFF)


def extended_section_count_huge(d: bytearray) -> None:
    shoff = struct.unpack_from("<Q", d, 40)[0]
    struct.pack_into("<H", d, 60, 0)  # e_shnum 0: the count is section 0's sh_size
    struct.pack_into("<Q", d, shoff + 32, 1 << 60)


def symtab_size_past_the_end(d: bytearray) -> None:
    at, _off, _size = _symtab(d)
    struct.pack_into("<Q", d, at + 32, (1 << 64) - 1)


def symtab_string_table_link_out_of_range(d: bytearray) -> None:
    at, _off, _size = _symtab(d)
    struct.pack_into("<I", d, at + 40, 0xFFFFFFFF)


@pytest.mark.parametrize(
    "edit",
    [
        section_table_past_the_end,
        section_count_huge,
        extended_section_count_huge,
        symtab_size_past_the_end,
        symtab_string_table_link_out_of_range,
    ],
)
def test_damaged_section_tables_lose_their_symbols_without_an_error(
    programs: Programs, tmp_path: Path, edit: Callable[[bytearray], None]
) -> None:
    exe = bytearray(programs["resume"].read_bytes())
    whole = read_symbols(str(programs["resume"]))
    assert "main" in [s.name for s in whole.symtab if s.type == STT_FUNC]
    edit(exe)
    bad = tmp_path / "resume-bad"
    bad.write_bytes(bytes(exe))
    assert "main" not in [s.name for s in read_symbols(str(bad)).symtab]


def test_symbol_name_past_its_string_table_is_empty(programs: Programs, tmp_path: Path) -> None:
    exe = bytearray(programs["resume"].read_bytes())
    _at, off, size = _symtab(exe)
    names = [s.name for s in read_symbols(str(programs["resume"])).symtab]
    # Every entry's st_name past any string table; st_info kept, so each is still listed.
    for entry in range(off, off + size - size % 24, 24):
        struct.pack_into("<I", exe, entry, 0xFFFFFFF0)
    bad = tmp_path / "resume-bad"
    bad.write_bytes(bytes(exe))
    damaged = read_symbols(str(bad)).symtab
    assert len(damaged) == len(names) and {s.name for s in damaged} == {""}

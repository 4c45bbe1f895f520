"""Bad input: one clear error line, a non-zero exit, nothing left running (acceptance 7)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from restore_helpers import (
    CFLAGS,
    SOURCES,
    Programs,
    build_libgreet,
    build_uses_lib,
    kernel_core,
    restore_cli,
)

from restorer.arch import ARM64, EM_AARCH64, EM_X86_64
from tests.processes import running_from


def processes_named(name: str) -> list[int]:
    """PIDs whose command name (/proc/PID/comm, 15 characters at most) is `name`."""
    found = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == name[:15]:
            found.append(p.pid)
    return found


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert result.returncode > 0, "ended by a signal"
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("syscap restore: ")
    assert "Traceback" not in result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    assert result.stdout == ""
    assert psutil.Process().children(recursive=True) == []


@pytest.fixture
def resume_core(programs: Programs, tmp_path: Path) -> Path:
    core, _ = kernel_core(programs["resume"], tmp_path, "kernel")
    return core


def test_not_a_core_an_executable(programs: Programs) -> None:
    result = restore_cli(programs["resume"], "--run")
    assert_one_error_line(result, "not a core", "--exe")


def test_not_a_core_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a core file\n" * 10)
    assert_one_error_line(restore_cli(path, "--run"), "no ELF magic")


def test_missing_core_file(tmp_path: Path) -> None:
    assert_one_error_line(restore_cli(tmp_path / "nope", "--run"), "cannot open core")


def test_truncated_core(resume_core: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.core"
    data = resume_core.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert_one_error_line(restore_cli(cut, "--run"), "truncated", "take the core again")


def test_core_of_another_architecture(resume_core: Path, tmp_path: Path) -> None:
    machine, name = (EM_X86_64, "x86-64") if ARM64 else (EM_AARCH64, "AArch64")
    other = tmp_path / "other.core"
    data = bytearray(resume_core.read_bytes())
    data[18:20] = machine.to_bytes(2, "little")  # e_machine
    other.write_bytes(bytes(data))
    assert_one_error_line(restore_cli(other, "--run"), "another architecture", name)


def test_wrong_executable(programs: Programs, resume_core: Path) -> None:
    result = restore_cli(resume_core, "--run", "--exe", str(programs["crash"]))
    assert_one_error_line(result, "is not the program that wrote this core", "--exe")
    assert running_from(programs.dir) == []


def test_missing_executable(resume_core: Path, tmp_path: Path) -> None:
    result = restore_cli(resume_core, "--run", "--exe", str(tmp_path / "gone"))
    assert_one_error_line(result, "not found", "--exe")


def test_missing_library(tmp_path: Path) -> None:
    libdir = tmp_path / "lib"
    build_libgreet(libdir)
    exe = build_uses_lib(libdir, tmp_path)
    core, _ = kernel_core(exe, tmp_path)
    shutil.rmtree(libdir)

    result = restore_cli(core, "--run")

    assert_one_error_line(result, "libgreet.so", "is missing", "install it")
    assert running_from(tmp_path) == []


def test_tid_that_is_not_a_number(resume_core: Path) -> None:
    assert_one_error_line(restore_cli(resume_core, "--run", "--tid", "abc"), "--tid", "number")


def test_tid_not_in_the_core(programs: Programs, resume_core: Path) -> None:
    result = restore_cli(resume_core, "--run", "--tid", "1")
    assert_one_error_line(result, "thread 1 is not in the core", "--tid")
    assert processes_named("resume") == []


def test_executable_that_does_not_match_the_core(programs: Programs, tmp_path: Path) -> None:
    # Without build-ids the core's copy of the program's ELF headers has to match the file.
    plain = [*CFLAGS, "-Wl,--build-id=none"]
    resume = tmp_path / "resume"
    subprocess.run(["gcc", *plain, "-o", resume, SOURCES / "resume.c"], check=True)
    other = tmp_path / "other"
    subprocess.run(["gcc", *plain, "-o", other, SOURCES / "greet.c", "-x", "c", "-"],
                   input=b"void greet(void); int main(void) { greet(); return 0; }\n",
                   check=True)  # fmt: skip
    core, _ = kernel_core(resume, tmp_path, "kernel")

    result = restore_cli(core, "--run", "--exe", str(other))

    assert_one_error_line(result, "does not match the core's executable", "--exe")
    assert running_from(tmp_path) == []
    assert processes_named("other") == []


def _phdr_at(data: bytes | bytearray, ptype: int) -> tuple[int, int]:
    """(program header offset, segment offset) of the first segment of type `ptype`."""
    phoff = struct.unpack_from("<Q", data, 32)[0]
    for i in range(struct.unpack_from("<H", data, 56)[0]):
        at = phoff + i * 56
        if struct.unpack_from("<I", data, at)[0] == ptype:
            return at, struct.unpack_from("<Q", data, at + 8)[0]
    raise AssertionError(f"no segment of type {ptype}")


def first_note_too_long(d: bytearray) -> str:
    _, notes = _phdr_at(d, 4)
    struct.pack_into("<I", d, notes + 4, 0x7FFFFFFF)  # descsz of the first note
    return "truncated"


def note_segment_past_the_end(d: bytearray) -> str:
    at, _ = _phdr_at(d, 4)
    struct.pack_into("<Q", d, at + 32, len(d))  # p_filesz
    return "truncated"


def no_prstatus(d: bytearray) -> str:
    _, notes = _phdr_at(d, 4)
    struct.pack_into("<I", d, notes + 8, 0x1234)  # the first note (NT_PRSTATUS) retyped
    return "no NT_PRSTATUS"


def load_segment_past_the_end(d: bytearray) -> str:
    at, _ = _phdr_at(d, 1)
    struct.pack_into("<Q", d, at + 8, len(d))  # p_offset
    return "truncated"


def phentsize_wrong(d: bytearray) -> str:
    struct.pack_into("<H", d, 54, 32)
    return "truncated"


@pytest.mark.parametrize(
    "edit",
    [first_note_too_long, note_segment_past_the_end, no_prstatus, load_segment_past_the_end,
     phentsize_wrong],
)  # fmt: skip
def test_mutated_core(
    programs: Programs, resume_core: Path, tmp_path: Path, edit: Callable[[bytearray], str]
) -> None:
    data = bytearray(resume_core.read_bytes())
    fragment = edit(data)
    bad = tmp_path / "bad.core"
    bad.write_bytes(bytes(data))
    os.unlink(resume_core)

    assert_one_error_line(restore_cli(bad, "--run"), fragment)
    assert running_from(programs.dir) == []
    assert processes_named("resume") == []

"""Bad input: one clear error line, a non-zero exit, nothing left running (acceptance 7)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from restore_helpers import (
    CFLAGS,
    SOURCES,
    Programs,
    kernel_core,
    processes_running,
    restore_cli,
)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("syscap restore: error: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    assert result.stdout == ""


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
    other = tmp_path / "arm64.core"
    data = bytearray(resume_core.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    other.write_bytes(bytes(data))
    assert_one_error_line(restore_cli(other, "--run"), "another architecture", "AArch64")


def test_wrong_executable(programs: Programs, resume_core: Path) -> None:
    result = restore_cli(resume_core, "--run", "--exe", str(programs["crash"]))
    assert_one_error_line(result, "is not the program that wrote this core", "--exe")
    assert processes_running(programs.dir) == []


def test_missing_executable(resume_core: Path, tmp_path: Path) -> None:
    result = restore_cli(resume_core, "--run", "--exe", str(tmp_path / "gone"))
    assert_one_error_line(result, "not found", "--exe")


def test_missing_library(tmp_path: Path) -> None:
    libdir = tmp_path / "lib"
    libdir.mkdir()
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", libdir / "libgreet.so", SOURCES / "greet.c"], check=True
    )
    exe = tmp_path / "uses_lib"
    subprocess.run(
        ["gcc", *CFLAGS, "-o", exe, SOURCES / "uses_lib.c", f"-L{libdir}", "-lgreet",
         f"-Wl,-rpath,{libdir}"],
        check=True,
    )  # fmt: skip
    core, _ = kernel_core(exe, tmp_path)
    shutil.rmtree(libdir)

    result = restore_cli(core, "--run")

    assert_one_error_line(result, "libgreet.so", "is missing", "install it")
    assert processes_running(tmp_path) == []

"""Files syscap writes (traces from `record`, JSON from `export`): created 0600,
never through a symbolic link, never over an existing file without --force.

Each case runs the real command on real files; `write` runs one of the two
commands with the output path given, so every rule is checked for both.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.capture_lib.conftest import SYSCAP, syscap
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("bpf_ready")

Writer = Callable[..., subprocess.CompletedProcess[str]]


def _umask0() -> None:
    os.umask(0)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # umask 0: the 0600 must come from syscap, not from the caller's umask
    return subprocess.run([*SYSCAP, *args], capture_output=True, text=True, cwd=ROOT,
                          preexec_fn=_umask0, timeout=120)


@pytest.fixture(scope="module")
def source_trace(tmp_path_factory: pytest.TempPathFactory, bpf_ready: None) -> Path:
    trace = tmp_path_factory.mktemp("src") / "src.trace"
    syscap("record", "-o", str(trace), "--", "true")
    return trace


@pytest.fixture(params=["record", "export"])
def write(request: pytest.FixtureRequest, source_trace: Path) -> Writer:
    def run(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        assert request.param in ("record", "export")
        if request.param == "record":
            return _run("record", "-o", str(out), *extra, "--", "true")
        return _run("export", str(source_trace), "-o", str(out), *extra)
    return run


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_output_is_created_mode_0600_under_umask_0(write: Writer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = write(out)
    assert r.returncode == 0, r.stderr
    st = out.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size > 0


@pytest.mark.parametrize("force", [False, True])
def test_a_symbolic_link_at_the_output_is_refused_and_its_target_untouched(
        write: Writer, tmp_path: Path, force: bool) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    out = tmp_path / "out"
    out.symlink_to(victim)
    line = one_error_line(write(out, *(["--force"] if force else [])))
    assert "symbolic link" in line and str(out) in line
    assert victim.read_text() == "keep me\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert out.is_symlink() and os.readlink(out) == str(victim)


def test_a_dangling_symbolic_link_is_not_followed_to_create_its_target(
        write: Writer, tmp_path: Path) -> None:
    target = tmp_path / "created-through-link"
    out = tmp_path / "out"
    out.symlink_to(target)
    line = one_error_line(write(out))
    assert "symbolic link" in line
    assert not target.exists() and out.is_symlink()


def test_an_existing_file_is_kept_without_force(write: Writer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("old\n")
    line = one_error_line(write(out))
    assert line.startswith(("syscap record: ", "syscap export: "))
    assert line.split(": ", 1)[1] == f"{out} exists: pass --force to replace it"
    assert out.read_text() == "old\n"


def test_force_replaces_an_existing_file_with_a_new_0600_one(
        write: Writer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("old\n")
    out.chmod(0o666)
    old_ino = out.stat().st_ino
    other = tmp_path / "hardlink"
    os.link(out, other)  # a second name must not see the new content
    r = write(out, "--force")
    assert r.returncode == 0, r.stderr
    st = out.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_ino != old_ino and out.read_bytes() != b"old\n" and st.st_size > 0
    assert other.read_text() == "old\n"


def test_a_character_device_is_written_to_as_it_is(write: Writer) -> None:
    r = write(Path(os.devnull))
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(os.lstat(os.devnull).st_mode)


def test_a_directory_is_refused_in_one_line(write: Writer, tmp_path: Path) -> None:
    line = one_error_line(write(tmp_path, "--force"))
    assert "directory" in line and tmp_path.is_dir()

"""Bad input: one clear line on stderr, a non-zero exit, nothing left behind."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.capture_lib.conftest import SYSCAP, syscap
from tests.conftest import ROOT


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_unknown_syscall_suggests_close_matches(tmp_path: Path) -> None:
    line = one_error_line(syscap("record", "-o", str(tmp_path / "t"), "-e", "opnat", "--",
                                 "true", check=False))
    assert "unknown syscall 'opnat'" in line and "openat" in line


def test_record_needs_a_scope(tmp_path: Path) -> None:
    line = one_error_line(syscap("record", "-o", str(tmp_path / "t"), check=False))
    assert "-a" in line and "-p PID" in line and "COMMAND" in line


def test_bad_buffer_size(tmp_path: Path) -> None:
    line = one_error_line(syscap("record", "-a", "--buffer-size", "3M", "-o",
                                 str(tmp_path / "t"), check=False))
    assert "power of two" in line


def test_report_of_a_missing_file(tmp_path: Path) -> None:
    line = one_error_line(syscap("report", str(tmp_path / "nope.trace"), check=False))
    assert "does not exist" in line


def test_report_of_a_file_that_is_not_a_trace(tmp_path: Path) -> None:
    bad = tmp_path / "bad.trace"
    bad.write_bytes(b"x" * 4096)
    line = one_error_line(syscap("report", str(bad), check=False))
    assert "not a syscap trace" in line


def test_command_that_does_not_exist(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to start a capture")
    line = one_error_line(syscap("record", "-o", str(tmp_path / "t"), "--",
                                 "/nonexistent/prog", check=False))
    assert "cannot run" in line


def test_unprivileged_user_is_told_what_is_missing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    out = tmp_path / "t"
    tmp_path.chmod(0o777)
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "--inh-caps=-all", *SYSCAP, "record", "-a", "-o", str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )
    line = one_error_line(proc)
    assert "CAP_BPF" in line and "CAP_PERFMON" in line


def test_info_names_the_usable_backends() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load the probe")
    proc = syscap("info")
    assert "backend bpf: available" in proc.stdout
    if not os.path.exists("/dev/syscap"):
        assert "backend kmod: unavailable: /dev/syscap is missing" in proc.stdout
        assert "auto selects: bpf" in proc.stdout


def test_info_lists_the_syscall_table() -> None:
    proc = syscap("info", "--syscalls")
    lines = proc.stdout.splitlines()
    assert any(line.split()[1:] == ["getppid", "process"] for line in lines if line.split())


@pytest.mark.usefixtures("bpf_ready")
@pytest.mark.parametrize("scope", ["-a", "--"])
def test_a_full_disk_ends_the_recording_at_once_with_one_line(tmp_path: Path, flood: Path,
                                                              scope: str) -> None:
    """A trace that can no longer be written stops the recorder within a poll,
    not when the command ends or a signal comes, and says why."""
    disk = tmp_path / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    load = None
    try:
        args = ["record", "-o", str(disk / "t.trace")]
        if scope == "-a":
            load = subprocess.Popen([str(flood), "1", "400000000"])
            args.append("-a")
        else:
            args += ["--", str(flood), "1", "400000000"]  # about a minute of getppid
        t0 = time.monotonic()
        proc = syscap(*args, check=False, timeout=120)
        took = time.monotonic() - t0
    finally:
        if load is not None:
            load.kill()
            load.wait()
        subprocess.run(["umount", str(disk)], check=True)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("syscap record: ") and
            "recording to" not in ln and "stopping" not in ln]
    assert proc.returncode != 0
    assert line and "No space left on device" in line[0], proc.stderr
    assert took < 30, f"the recorder noticed the full disk only after {took:.0f} s"

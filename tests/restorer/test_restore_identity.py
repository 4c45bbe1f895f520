"""The restored process runs as the user of the process the core came from (--as-root: not)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from restore_helpers import Programs, find_core, restore_cli, unlimited_cores

from restorer.core import Core
from restorer.restore import restore
from tests.processes import running_from

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nobody can enter and write (pytest's own are root-only)."""
    d = Path(tempfile.mkdtemp(prefix="syscap-identity-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        left = running_from(d)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)
        assert not left, f"processes left running: {left}"


@pytest.fixture
def nobody_core(programs: Programs, shared_dir: Path) -> Path:
    """A kernel core of `resume` run as nobody:nogroup (via setpriv, as a user would)."""
    exe = shared_dir / "resume"
    shutil.copy(programs["resume"], exe)
    exe.chmod(0o755)
    p = subprocess.run(
        ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups",
         str(exe), "kernel"],
        cwd=shared_dir, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
        preexec_fn=unlimited_cores, check=False,
    )  # fmt: skip
    assert p.returncode == -signal.SIGQUIT, p
    core = find_core(shared_dir)
    assert core.stat().st_uid == NOBODY.pw_uid
    return core


def _ids(pid: int) -> tuple[list[int], list[int]]:
    """(Uid, Gid) lines of /proc/PID/status: real, effective, saved, filesystem."""
    fields: dict[str, list[int]] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Uid", "Gid"):
                fields[key] = [int(x) for x in rest.split()]
    return fields["Uid"], fields["Gid"]


def test_core_names_the_user_it_ran_as(nobody_core: Path) -> None:
    with Core(nobody_core) as c:
        assert (c.uid, c.gid) == (NOBODY.pw_uid, NOBODY.pw_gid)


def test_restored_process_runs_as_the_cores_user(nobody_core: Path) -> None:
    assert os.geteuid() == 0
    with Core(nobody_core) as c, open(os.devnull, "w") as null:
        r = restore(c, stdio=(0, null.fileno(), 2))
        try:
            uids, gids = _ids(r.tracee.pid)
        finally:
            r.tracee.kill()
    assert uids == [NOBODY.pw_uid] * 4
    assert gids == [NOBODY.pw_gid] * 4
    assert r.report.run_as is not None and r.report.run_as.uid == NOBODY.pw_uid


def test_as_root_keeps_the_restorers_user(nobody_core: Path) -> None:
    with Core(nobody_core) as c, open(os.devnull, "w") as null:
        r = restore(c, stdio=(0, null.fileno(), 2), as_core_user=False)
        try:
            uids, gids = _ids(r.tracee.pid)
        finally:
            r.tracee.kill()
    assert uids == [0] * 4
    assert gids == [0] * 4
    assert r.report.run_as is None


def test_run_as_nobody_finishes_the_program(nobody_core: Path) -> None:
    result = restore_cli(nobody_core, "--run")

    assert result.returncode == 3, result.stderr  # resume's own exit status
    assert "monotonic advanced: yes\n" in result.stdout
    assert "after: tls=" in result.stdout
    assert f"runs as uid {NOBODY.pw_uid} gid {NOBODY.pw_gid}" in result.stderr

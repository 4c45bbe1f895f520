"""Cores of live processes for the UI: the process keeps running."""

from __future__ import annotations

from pathlib import Path

import pytest
from restore_helpers import Programs, blocked_in_read, restore_cli

from restorer.errors import RestoreError
from restorer.live import take_core


def test_take_core_leaves_the_process_running_and_the_core_restores(
    programs: Programs, tmp_path: Path
) -> None:
    with blocked_in_read(programs) as proc:
        assert proc.stdout is not None and proc.stdin is not None

        core = take_core(proc.pid, tmp_path)

        proc.stdin.write(b"live\n")  # the original still completes its read
        proc.stdin.close()
        assert proc.stdout.read() == b"got 5: live\n"
        assert proc.wait() == 0
    result = restore_cli(core, "--run", stdin="copy\n")
    assert result.stdout == "got 5: copy\n", result.stderr


def test_take_core_of_a_missing_process_says_so(tmp_path: Path) -> None:
    pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # can never exist
    with pytest.raises(RestoreError, match=f"could not dump pid {pid}"):
        take_core(pid, tmp_path)

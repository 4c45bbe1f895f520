"""`--ssh HOST`'s one connection (capture_lib/ssh.py) against a real sshd on loopback
(the `sshd` fixture): the agent sent once, its copy on the box reused, then checked
and replaced; the stream's counts exact; nothing left on the box after close;
`record --ssh` ended by Ctrl-C with a complete trace. The bootstrap's refusals run
it under a local sh (the same script, no ssh needed).
"""

from __future__ import annotations

import os
import shlex
import stat
import time
from pathlib import Path

import pytest

from bench.sshd import Sshd
from capture_lib import ssh
from capture_lib.errors import CaptureError, UsageError
from capture_lib.remote import RemoteSource
from capture_lib.ssh import BOOTSTRAP, Bootstrap, agent_path, ssh_argv
from tests.capture_lib.conftest import AGENT_GETPPID as GETPPID
from tests.capture_lib.conftest import run_workload_pid
from tests.capture_lib.test_remote import calls, only, record_error, record_from_a_box, until

WAIT = 30.0  # seconds: a bound for things that take milliseconds
ARCH = os.uname().machine


def connect(
    sshd: Sshd, *agent_args: str, host: str = "", agent_dir: str = ""
) -> tuple[RemoteSource, Bootstrap]:
    boot = Bootstrap(timeout_s=WAIT)
    argv = ssh_argv(host or sshd.host, sshd.client_options,
                    ["stream", "--interval", "0.2", *agent_args], agent_dir)  # fmt: skip
    return RemoteSource(argv, prelude=boot), boot


def box_copy(sshd: Sshd) -> Path:
    return sshd.box_tmp / f"syscap-{os.geteuid()}" / f"syscap-agent-{ARCH}"


def test_the_agent_is_sent_once_and_its_copy_used_after(agent: Path, sshd: Sshd) -> None:
    src, boot = connect(sshd)
    try:
        assert (src.host, src.kernel, boot.arch) == ("127.0.0.1", os.uname().release, ARCH)
        assert boot.sent == agent.stat().st_size
    finally:
        src.close()
    copy = box_copy(sshd)
    assert copy.read_bytes() == agent.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o700
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]  # no part file left
    src, boot = connect(sshd)
    src.close()
    assert boot.sent == 0


def test_asked_for_the_agent_is_kept_elsewhere_on_the_box(
    agent: Path, sshd: Sshd, tmp_path: Path
) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    src, boot = connect(sshd, agent_dir=str(keep))
    src.close()
    copy = keep / f"syscap-{os.geteuid()}" / f"syscap-agent-{ARCH}"
    assert boot.sent and copy.read_bytes() == agent.read_bytes()
    assert not box_copy(sshd).exists()  # nothing under the box's TMPDIR


def test_a_copy_that_differs_is_replaced(agent: Path, sshd: Sshd) -> None:
    copy = box_copy(sshd)
    copy.parent.mkdir(mode=0o700)
    copy.write_bytes(b"an older agent")
    src, boot = connect(sshd)
    src.close()
    assert boot.sent == agent.stat().st_size
    assert copy.read_bytes() == agent.read_bytes()


def test_a_known_workload_arrives_exactly_over_ssh(agent: Path, sshd: Sshd,
                                                   workload: Path) -> None:  # fmt: skip
    src, _ = connect(sshd)
    try:
        only(src, workload)
        pid = run_workload_pid(workload)
        assert calls(until(src, time.monotonic_ns()), pid, "getppid") == GETPPID
    finally:
        src.close()


def test_close_leaves_nothing_running_on_the_box(agent: Path, sshd: Sshd) -> None:
    src, _ = connect(sshd)
    assert src.wait_intervals(1, WAIT)
    assert sshd.sessions()  # the session and the agent it runs
    src.close()
    deadline = time.monotonic() + WAIT
    while sshd.sessions():
        assert time.monotonic() < deadline, sshd.sessions()
        time.sleep(0.05)
    assert src.lost == "connection lost: the agent ended its stream"


def test_a_refused_login_is_ssh_s_own_words(sshd: Sshd) -> None:
    with pytest.raises(CaptureError, match=r"Permission denied .*\(ssh: exit status 255\)"):
        connect(sshd, host="nobody@127.0.0.1")  # the box lets only the fixture's user in


def local_box(tmp_path: Path, uname_m: str = ARCH) -> list[str]:
    """The bootstrap under a local sh, as the box's would run it: TMPDIR in tmp_path,
    and `uname -m` saying uname_m."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "uname"
    fake.write_text(f"#!/bin/sh\necho {shlex.quote(uname_m)}\n")
    fake.chmod(0o755)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return ["env", f"PATH={bin_dir}:{os.environ['PATH']}", f"TMPDIR={tmp_path / 'tmp'}",
            "sh", "-c", BOOTSTRAP, "syscap-ssh", "", "stream", "--interval", "0.2"]  # fmt: skip


def test_an_architecture_without_an_agent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="the box is armv7l: syscap-agent is built for x86_64 "
                                         "and aarch64 only"):  # fmt: skip
        RemoteSource(local_box(tmp_path, "armv7l"), prelude=Bootstrap(WAIT))
    assert not list((tmp_path / "tmp").glob("*/syscap-agent*"))  # nothing was sent


def test_a_temporary_directory_that_is_not_the_users_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    argv = local_box(tmp_path)
    (tmp_path / "tmp" / f"syscap-{os.geteuid()}").symlink_to(elsewhere)
    with pytest.raises(CaptureError, match="is not a directory of this user's: remove it"):
        RemoteSource(argv, prelude=Bootstrap(WAIT))
    assert not list(elsewhere.iterdir())


def test_the_arm64_agent_is_picked_for_an_aarch64_box(agents: dict[str, Path],
                                                      tmp_path: Path) -> None:  # fmt: skip
    """The arm64 agent is sent (whether it then runs here depends on binfmt_misc)."""
    boot = Bootstrap(WAIT)
    try:
        RemoteSource(local_box(tmp_path, "aarch64"), prelude=boot).close()
    except CaptureError:
        pass  # no emulator here: it could not run
    assert boot.arch == "aarch64"
    sent = tmp_path / "tmp" / f"syscap-{os.geteuid()}" / "syscap-agent-aarch64"
    assert sent.read_bytes() == agent_path("aarch64").read_bytes()


# ---- syscap record --ssh --------------------------------------------------------------------


def test_record_over_ssh_ends_its_trace_cleanly_on_ctrl_c(
    agent: Path, sshd: Sshd, workload: Path, tmp_path: Path, record_links: int
) -> None:
    trace = tmp_path / "box.trace"
    options = [w for opt in sshd.client_options for w in ("--ssh-option", opt)]
    # Ctrl-C closes the connection's stdin, on which the box stops its agent
    record_from_a_box(["--ssh", sshd.host, "--backend", "bpf", *options], trace,
                      f"syscap record: recording {sshd.host} to {trace}",
                      lambda _: sshd.sessions(), workload, record_links)  # fmt: skip
    deadline = time.monotonic() + WAIT
    while sshd.sessions():
        assert time.monotonic() < deadline, sshd.sessions()
        time.sleep(0.05)


@pytest.mark.parametrize(("args", "words"), [
    (["--ssh", "nosuch.invalid"], "nosuch.invalid"),  # ssh's own words
    (["--ssh", "box", "-p", "1"], "-p with --ssh: the agent records every process"),
    (["--ssh", "box", "--failed"], "--failed with --ssh: the agent records every process"),
    (["--ssh", "box", "--remote", "x"], "give one"),
    (["--ssh-option", "Port=2"], "--ssh-option or --ssh-dir without --ssh"),
    (["--ssh", "box", "--ssh-dir", "var/lib"], "--ssh-dir 'var/lib': give an absolute path"),
])  # fmt: skip
def test_record_over_ssh_bad_input_is_one_line_and_leaves_no_file(
    tmp_path: Path, args: list[str], words: str
) -> None:
    trace = tmp_path / "t.trace"
    assert words in record_error(*args, "-o", str(trace))
    assert not trace.exists()


def test_without_the_agents_built_here_it_says_where_they_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ssh, "AGENTS", tmp_path / "agents")  # as installed without them
    with pytest.raises(CaptureError, match=f"this syscap has no {ARCH} agent to send .*: build "
                                           "both with ./setup.sh"):  # fmt: skip
        RemoteSource(local_box(tmp_path), prelude=Bootstrap(WAIT))
    assert not list((tmp_path / "tmp").glob("*/syscap-agent*"))

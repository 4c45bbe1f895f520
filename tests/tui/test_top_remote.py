"""`syscap top --remote CMD` with a recorded stream for CMD: the box's header, its
syscall numbers for filters, a lost connection, and bad commands.

The stream is an arm64 4.19 box's (built as syscap_trace.h lays it out); the command
plays it and then echoes the filter commands it receives to its stderr, where
RemoteSource keeps them. The source against the real agent: tests/capture_lib/test_remote.py.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from capture_lib.filter_spec import FilterSpec
from capture_lib.remote import RemoteSource
from tests.capture_lib.test_stream_decoder import header, interval
from tests.tui.top_fakes import drive, top_args
from tui.app import SyscapTop
from tui.cli import prepare

WAIT = 10.0


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """Two intervals of pid 42 calling getppid (number 3 on that box), no end block."""
    path = tmp_path / "box.stream"
    path.write_bytes(header() + interval(seq=0) + interval(seq=1))
    return path


def box(recorded: Path, then: str = "exec cat >&2") -> str:
    """A command that plays the recorded stream, then does `then`."""
    return shlex.join(["sh", "-c", f"cat {shlex.quote(str(recorded))} && {then}"])


def said(src: RemoteSource, count: int) -> tuple[str, ...]:
    """The first count lines the command echoed (waits for them: they cross a pipe)."""
    deadline = time.monotonic() + WAIT
    while len(src.said) < count and time.monotonic() < deadline:
        src.wait_lost(0.01)
    return src.said


def test_remote_filters_use_the_boxs_syscall_numbers(recorded: Path) -> None:
    prepared = prepare(top_args(["top", "--no-config", "--remote", box(recorded), "-e", "getppid",
                               "--comm", "nginx"]), {})  # fmt: skip
    assert not isinstance(prepared, int)
    source, options = prepared
    try:
        assert isinstance(source, RemoteSource)
        # getppid is 110 on this x86-64 host and 3 on the recorded box
        assert said(source, 2) == ("filter syscalls 3", "filter comm nginx")
        assert options.syscall_table is source.syscall_table
        assert options.user_of(42) == "-"  # the box's pids are not this machine's
    finally:
        assert source is not None
        source.close()


def test_a_saved_filter_goes_to_the_boxs_kernel(recorded: Path, tmp_path: Path) -> None:
    saved = tmp_path / "tuned.json"
    saved.write_text(FilterSpec(syscalls=frozenset({"getppid"}),
                                comms=frozenset({"nginx"})).to_json())
    prepared = prepare(top_args(["top", "--no-config", "--remote", box(recorded),
                               "--filter", str(saved)]), {})  # fmt: skip
    assert not isinstance(prepared, int)
    source, _ = prepared
    try:
        assert isinstance(source, RemoteSource)
        assert said(source, 2) == ("filter syscalls 3", "filter comm nginx")
    finally:
        assert source is not None
        source.close()


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("syscap top: "), lines
    return lines[0]


@pytest.mark.parametrize(("argv", "status", "words"), [
    (["--remote", ""], 2, "--remote needs the command"),
    (["--remote", "no-such-syscap-command stream"], 1, "cannot run 'no-such-syscap-command'"),
    (["--remote", "echo Welcome to juno"], 1, "bad magic"),
    (["--remote", "sh -c 'echo ssh: connect to host juno: refused >&2; exit 255'"], 1,
     "ssh: connect to host juno: refused (sh: exit status 255)"),
    (["--remote", "x", "--replay", "t.trace"], 2, "give one"),
    (["--remote", "x", "--backend", "kmod"], 2, "the agent on the box picks it"),
    (["--remote", "x", "--durations", "all"], 2, "syscap-agent stream --durations"),
    (["--ssh", "nosuch.invalid"], 1, "nosuch.invalid"),  # ssh's own words, then its status
    (["--ssh=-oProxyCommand=x"], 2, "give the box as HOST or USER@HOST"),
    (["--ssh", "box", "--ssh-option", "Port"], 2, "give an ssh_config option as NAME=VALUE"),
    (["--ssh-option", "Port=2222"], 2, "--ssh-option or --ssh-dir without --ssh"),
    (["--ssh", "box", "--ssh-dir", "tmp"], 2, "--ssh-dir 'tmp': give an absolute path"),
    (["--ssh", "box", "--remote", "x"], 2, "give one"),
    (["--ssh", "box", "--replay", "t.trace"], 2, "give one"),
])  # fmt: skip
def test_a_bad_remote_command_or_ssh_box_is_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, words: str
) -> None:
    assert prepare(top_args(["top", "--no-config", *argv]), {}) == status
    assert words in one_line(capsys)


def test_without_ssh_it_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ssh in it
    assert prepare(top_args(["top", "--no-config", "--ssh", "box"]), {}) == 1
    assert "cannot run 'ssh': No such file or directory: install OpenSSH's client" in (
        one_line(capsys))


def test_an_exclusion_is_one_line_and_the_command_is_ended(
    capsys: pytest.CaptureFixture[str], recorded: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "f.json"
    saved.write_text(FilterSpec(exclude_comms=frozenset({"sshd"})).to_json())
    cmd = box(recorded, f"echo $$ > {tmp_path}/pid && exec cat >&2")
    assert prepare(top_args(["top", "--no-config", "--remote", cmd,
                           "--filter", str(saved)]), {}) == 2  # fmt: skip
    assert "the remote agent cannot exclude processes or comms" in one_line(capsys)
    pid = int((tmp_path / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists()  # ended and reaped


def test_a_connection_lost_while_the_filter_is_sent_is_one_line(
    capsys: pytest.CaptureFixture[str], recorded: Path, tmp_path: Path
) -> None:
    """The command closes its stdin before the stream starts: the filter cannot
    reach the agent, which ConnectionLost says in one line (status 1)."""
    cmd = shlex.join(["sh", "-c", f"exec 0<&-; echo $$ > {tmp_path}/pid; "
                      f"cat {shlex.quote(str(recorded))} && exec sleep 60"])  # fmt: skip
    assert prepare(top_args(["top", "--no-config", "--remote", cmd, "-e", "getppid"]), {}) == 1
    assert one_line(capsys) == "syscap top: connection lost: the command's stdin is closed"
    pid = int((tmp_path / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists()  # ended and reaped


def text_of(app: SyscapTop, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def test_the_header_names_the_box_and_a_lost_connection_keeps_the_screen(
    recorded: Path,
) -> None:
    # The command plays the stream and exits: the connection is lost at once.
    prepared = prepare(top_args(["top", "--no-config", "-d", "0.05",
                               "--remote", box(recorded, "exit 3")]), {})  # fmt: skip
    assert not isinstance(prepared, int)
    source, options = prepared
    options.cpu_meter = lambda: 1.0
    app = SyscapTop(source, options)

    async def script(pilot: Pilot[None]) -> None:
        deadline = time.monotonic() + WAIT
        while app.failure is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        head = text_of(app, "#header")
        assert "sh  Linux 4.19.1" in head and "backend kmod" in head
        assert "connection lost: the stream stopped midway (sh: exit status 3)" in head, head
        assert "LIVE" not in head and "FAILED" not in head
        assert "agent on the box 5000.0% CPU 1.0 MiB" in text_of(app, "#cost")  # as recorded
        # what arrived stays on screen
        assert app.model.latest is not None
        assert [(p.pid, p.count) for p in app.model.latest.processes] == [(42, 2004)]
        assert app.check_action("kill", ()) is False  # pid 42 is the box's, not ours
        await pilot.press("v")  # still usable: the syscalls view
        assert "getppid" in str(app.model.rows[0].values)

    drive(app, script, size=(160, 30))
    assert isinstance(source, RemoteSource)
    assert source.lost == "connection lost: the stream stopped midway (sh: exit status 3)"


def test_a_long_lost_reason_gives_way_to_host_and_kernel() -> None:
    from tui.panels import HostInfo, header_markup

    reason = "connection lost: " + "ssh: connect to host juno port 22: No route to host " * 3
    head = header_markup(HostInfo("juno", "4.19.304-juno"), "kmod", 1.0, reason, width=100)
    assert "juno  Linux 4.19.304-juno" in head
    assert "connection lost: ssh: connect" in head and "…" in head
    assert "$error" in head


def test_garbage_after_the_header_is_a_lost_connection_that_keeps_what_arrived(
    recorded: Path,
) -> None:
    src = RemoteSource(box(recorded, "echo Connection to juno closed. && exec cat >&2"))
    try:
        lost = src.wait_lost(WAIT)
        assert lost is not None and lost.startswith("connection lost: stream: bad block magic")
        snap = src.snapshot()  # both intervals, then the loss
        assert [(p.pid, p.count) for p in snap.processes] == [(42, 2004)]
        with pytest.raises(Exception, match="bad block magic"):
            src.snapshot()
    finally:
        src.close()
    assert src.said == ()  # the echoing cat was ended before it was sent anything

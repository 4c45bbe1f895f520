"""CORE.syscap.json: what a core leaves out, saved by take_core and put back by restore."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest
from restore_helpers import (
    PYTHON,
    REPO,
    Programs,
    after_marker,
    restore_cli,
    wait_until_in_read,
)

from restorer import ptrace, sidecar
from restorer.arch import ARM64
from restorer.core import Core
from restorer.errors import RestoreError
from restorer.live import take_core
from restorer.restore import restore
from tests.processes import running_from

DATA = b"0123456789abcdefghij"


@contextmanager
def running(prog: Path, cwd: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([prog, *args], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def live_core(programs: Programs, tmp_path: Path, *extra: str) -> tuple[Path, int]:
    """take_core of sidecar_state once it has read 5 bytes of its file and waits on stdin;
    the original is killed. (core, the file's fd number)"""
    data = tmp_path / "data.txt"
    data.write_bytes(DATA)
    work = tmp_path / "work"
    work.mkdir()
    with running(programs["sidecar_state"], work, str(data), *extra) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert first.endswith(" first: 01234\n"), first
        assert proc.stdout.readline() == b"ready\n"
        wait_until_in_read(proc.pid)
        core = take_core(proc.pid, tmp_path / "cores")
    return core, int(first.split()[1])


@contextmanager
def sidecar_json(core: Path) -> Iterator[dict[str, Any]]:
    """The core's sidecar as JSON to change in place; written back at the end."""
    path = sidecar.sidecar_path(core)
    doc = json.loads(path.read_text())
    yield doc
    path.write_text(json.dumps(doc))


def restore_run(core: Path, *args: str) -> subprocess.Popen[str]:
    """`syscap restore CORE --run` with pipes for stdin, stdout and stderr."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [PYTHON, "-m", "restorer", "restore", str(core), "--run", *args],
        cwd=REPO, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def restored_pid(stderr: IO[str], seen: list[str]) -> int:
    """Read stderr up to the "restored pid N" line; every line read goes to `seen`."""
    for line in stderr:
        seen.append(line)
        if line.startswith("syscap restore: restored pid "):
            return int(line.split()[4])
    raise AssertionError("no 'restored pid' line: " + "".join(seen))


def ask(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline()


def test_take_core_writes_a_sidecar_with_the_file_handler_cwd_and_limits(
    programs: Programs, tmp_path: Path
) -> None:
    core, fd = live_core(programs, tmp_path)
    sc = sidecar.load(sidecar.sidecar_path(core))
    assert sc is not None
    with Core(core) as c:
        assert sc.pid == c.pid
    entry = {e.fd: e for e in sc.fds}[fd]
    assert (entry.path, entry.kind, entry.pos) == (str(tmp_path / "data.txt"), "file", 5)
    assert entry.flags & 0o3 == os.O_RDONLY
    assert sc.cwd == str(tmp_path / "work")
    assert sc.signals is not None and sc.not_captured == {}
    usr1 = {a.signal: a for a in sc.signals}[signal.SIGUSR1]
    assert usr1.handler > 1 and usr1.flags & 0x10000000  # SA_RESTART
    if not ARM64:  # glibc gives the kernel its own restorer on x86-64; arm64 uses the vDSO's
        assert usr1.flags & sidecar.SA_RESTORER
    assert {a.signal: a for a in sc.signals}[signal.SIGUSR2].handler == sidecar.SIG_DFL
    assert sc.rlimits is not None
    assert {r.name: r for r in sc.rlimits}["nofile"].soft == 100
    assert sc.blocked == {sc.pid: 1 << (signal.SIGUSR2 - 1)}


def test_the_handlers_read_under_ptrace_agree_with_proc(programs: Programs, tmp_path: Path) -> None:
    """/proc shows which signals are caught and ignored (not where): the same sets."""
    data = tmp_path / "data.txt"
    data.write_bytes(DATA)
    with running(programs["sidecar_state"], tmp_path, str(data)) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        assert proc.stdout.readline() == b"ready\n"
        wait_until_in_read(proc.pid)
        actions = sidecar.read_signal_actions(proc.pid)
        status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
    fields = {k: v.strip() for k, _, v in (line.partition(":") for line in status)}
    caught = sum(1 << (a.signal - 1) for a in actions if a.handler > sidecar.SIG_IGN)
    ignored = sum(1 << (a.signal - 1) for a in actions if a.handler == sidecar.SIG_IGN)
    assert caught == int(fields["SigCgt"], 16) and caught & (1 << (signal.SIGUSR1 - 1))
    assert ignored == int(fields["SigIgn"], 16)
    assert len(actions) == 62  # all but SIGKILL and SIGSTOP


def test_restored_process_reads_on_from_the_same_offset_and_runs_its_handler(
    programs: Programs, tmp_path: Path
) -> None:
    core, fd = live_core(programs, tmp_path)
    proc = restore_run(core)
    seen: list[str] = []
    try:
        assert proc.stderr is not None and proc.stdout is not None
        pid = restored_pid(proc.stderr, seen)
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == str(tmp_path / "data.txt")
        saved = sidecar.load(sidecar.sidecar_path(core))
        assert saved is not None
        assert sidecar._fdinfo(pid, str(fd)) == (5, {e.fd: e for e in saved.fds}[fd].flags)
        blocked = Path(f"/proc/{pid}/status").read_text().splitlines()
        assert "SigBlk:\t0000000000000800" in blocked  # SIGUSR2, from the sidecar
        wait_until_in_read(pid)
        os.kill(pid, signal.SIGUSR1)  # the default action would end it
        assert proc.stdout.readline() == "usr1 handler ran\n", seen
        assert ask(proc, "more") == "next: 56789\n"
        assert ask(proc, "more") == "next: abcde\n"
        assert ask(proc, "cwd") == f"cwd {tmp_path / 'work'}\n"
        assert ask(proc, "lim") == "lim 100\n"
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        rest = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    text = "".join(seen) + rest
    assert "not restored" not in text and "signal mask" not in text, text
    assert f"fds {fd}, " in text, text


def test_without_the_sidecar_the_restore_is_as_before(programs: Programs, tmp_path: Path) -> None:
    core, _ = live_core(programs, tmp_path)
    sidecar.sidecar_path(core).write_text("not json")  # ignored, not even read
    result = restore_cli(core, "--run", "--no-sidecar", stdin="more\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "next: \n"  # the descriptor is not open: read fails
    assert "syscap.json" not in result.stderr


def test_a_socket_is_named_as_not_restored_and_the_file_still_comes_back(
    programs: Programs, tmp_path: Path
) -> None:
    core, fd = live_core(programs, tmp_path, "with-socket")
    assert fd == 5  # sockets at 3 and 4: the reopened file must be moved to 5
    sc = sidecar.load(sidecar.sidecar_path(core))
    assert sc is not None
    sock = {e.fd: e for e in sc.fds}[3]
    assert sock.kind == "socket" and sock.path.startswith("socket:[")
    result = restore_cli(core, "--run", stdin="more\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "next: 56789\n", result.stderr
    lines = result.stderr.splitlines()
    want = f"fd 3 ({sock.path}) not restored: sockets cannot be rebuilt"
    assert any(line.endswith(want) for line in lines), result.stderr
    assert any(line.startswith("syscap restore: warning: fd 4 (socket:[") for line in lines)


def test_a_corrupt_sidecar_is_one_error_line_and_no_process(
    programs: Programs, tmp_path: Path
) -> None:
    core, _ = live_core(programs, tmp_path)
    with sidecar_json(core) as doc:
        doc["fds"][-1]["fd"] = -5
    result = restore_cli(core, "--run", stdin="more\n")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("syscap restore: "), result.stderr
    assert "fds[" in result.stderr and ".fd is not an integer" in result.stderr
    assert "--no-sidecar" in result.stderr
    assert running_from(programs.dir) == []


def test_a_sidecar_of_another_pid_is_refused(programs: Programs, tmp_path: Path) -> None:
    core, _ = live_core(programs, tmp_path)
    with sidecar_json(core) as doc:
        doc["pid"] += 1
    result = restore_cli(core)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "written for pid" in result.stderr


def test_take_core_leaves_the_handlers_and_a_blocked_read_of_the_original_alone(
    programs: Programs, tmp_path: Path
) -> None:
    """The handlers are read by syscalls run inside the live process: it must go on as if
    nothing happened (its read restarts, its handler still runs)."""
    data = tmp_path / "data.txt"
    data.write_bytes(DATA)
    with running(programs["sidecar_state"], tmp_path, str(data)) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()
        assert proc.stdout.readline() == b"ready\n"
        wait_until_in_read(proc.pid)
        take_core(proc.pid, tmp_path / "cores")
        wait_until_in_read(proc.pid)
        os.kill(proc.pid, signal.SIGUSR1)
        assert proc.stdout.readline() == b"usr1 handler ran\n"
        proc.stdin.write(b"more\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"next: 56789\n"
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0


BAD_DOCS = [
    ("[]", "is not an object"),
    ('{"format": "syscap core sidecar", "version": 2}', "version 2"),
    ("{", "not JSON"),
    ("[" * 100000, "not JSON"),
    (b"\xff\xfe".decode("latin-1"), "not JSON"),
]


def _valid() -> dict[str, object]:
    return {
        "format": sidecar.FORMAT, "version": 1, "pid": 42, "cwd": "/",
        "fds": [{"fd": 3, "path": "/etc/hostname", "kind": "file", "flags": 0, "pos": 1}],
        "signals": [{"signal": 10, "handler": "SIG_IGN", "flags": 0, "mask": 0, "restorer": 0}],
        "rlimits": [{"resource": "nofile", "soft": 10, "hard": 20}],
    }  # fmt: skip


def _edit(path: list[str | int], value: object) -> dict[str, object]:
    doc = _valid()
    at: object = doc
    for key in path[:-1]:
        at = at[key]  # type: ignore[index]
    at[path[-1]] = value  # type: ignore[index]
    return doc


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_edit(["fds", 0, "fd"], True), "fds[0].fd is not an integer"),
        (_edit(["fds", 0, "fd"], 1 << 40), "fds[0].fd is not an integer"),
        (_edit(["fds", 0, "path"], 7), "fds[0].path is not a string"),
        (_edit(["fds", 0, "path"], "/a\0b"), "NUL"),
        (_edit(["fds", 0, "path"], "/" * 5000), "fds[0].path"),
        (_edit(["fds", 0, "kind"], "magic"), "fds[0].kind"),
        (_edit(["fds", 0, "pos"], -1), "fds[0].pos"),
        (_edit(["fds"], [_valid()["fds"][0]] * 2), "twice"),  # type: ignore[index]
        (_edit(["signals", 0, "signal"], 9), "SIGKILL"),
        (_edit(["signals", 0, "signal"], 65), "signals[0].signal"),
        (_edit(["signals", 0, "handler"], "SIG_WHAT"), "signals[0].handler"),
        (_edit(["signals", 0, "mask"], 1 << 64), "signals[0].mask"),
        (_edit(["rlimits", 0, "resource"], "fun"), "rlimits[0].resource"),
        (_edit(["rlimits", 0, "soft"], None), "soft limit above"),
        (_edit(["rlimits", 0, "hard"], 5), "soft limit above"),
        (_edit(["cwd"], ["/"]), "cwd"),
        (_edit(["pid"], "42"), "pid"),
        (_edit(["fds"], {}), "fds is not a list"),
        (_edit(["format"], "core"), "format"),
        (_edit(["not_captured"], {"a\nb": 5}), "not_captured.a\\nb is not a string"),
        (_edit(["threads"], [{"tid": 0, "blocked": 0}]), "threads[0].tid"),
    ],
)  # fmt: skip
def test_bad_sidecar_fields_are_one_line_errors(edit: dict[str, object], message: str) -> None:
    with pytest.raises(sidecar.SidecarError) as err:
        sidecar.parse(json.dumps(edit).encode(), "x.syscap.json")
    text = str(err.value)
    assert message in text and "\n" not in text and text.startswith("x.syscap.json ")


@pytest.mark.parametrize(("text", "message"), BAD_DOCS)
def test_bad_sidecar_documents_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(sidecar.SidecarError) as err:
        sidecar.parse(text.encode("latin-1"), "x.syscap.json")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_valid_sidecar_round_trips() -> None:
    sc = sidecar.parse(json.dumps(_valid()).encode())
    assert sidecar.parse(json.dumps(sidecar.to_json(sc)).encode()) == sc


def test_a_fifo_sidecar_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "core.syscap.json"
    os.mkfifo(fifo)
    with pytest.raises(RestoreError, match="not a regular file"):
        sidecar.load(fifo)


def test_gcore_threads_get_their_blocked_signals_from_the_sidecar(
    programs: Programs, tmp_path: Path
) -> None:
    """token_ring's four threads each block a different signal; gcore saves none of them."""
    prog = programs["token_ring"]
    expected = after_marker(subprocess.run([prog], capture_output=True, text=True).stdout)
    proc = subprocess.Popen([prog, "stop"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        core = take_core(proc.pid, tmp_path / "cores")
    finally:
        proc.kill()
        proc.wait()
    sc = sidecar.load(sidecar.sidecar_path(core))
    assert sc is not None and len(set(sc.blocked.values())) == 4
    with Core(core) as c:
        r = restore(c)
        try:
            for rt in r.report.threads:
                assert ptrace.getsigmask(rt.tid) == sc.blocked[rt.core_tid]
        finally:
            r.tracee.kill()
    result = restore_cli(core, "--run")
    assert result.stdout == expected, result.stderr
    assert "signal mask" not in result.stderr


def test_descriptor_kinds_are_told_apart(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.write_text("x")
    opened = {
        "file": os.open(tmp_path / "data.txt", os.O_RDWR | os.O_CREAT | os.O_APPEND),
        "deleted": os.open(gone, os.O_RDONLY),
        "directory": os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY),
        "device": os.open("/dev/null", os.O_WRONLY),
        "anon_inode": os.eventfd(0),
    }
    gone.unlink()
    r, w = os.pipe()
    sock = socket.socket()
    os.mkfifo(tmp_path / "fifo")
    opened["fifo"] = os.open(tmp_path / "fifo", os.O_RDWR)  # RDWR: no wait for a writer
    os.set_inheritable(opened["file"], True)  # Python opens with O_CLOEXEC; fdinfo shows it
    try:
        fds = {e.fd: e for e in sidecar.read_fds(os.getpid())}
        for kind, fd in opened.items():
            assert fds[fd].kind == kind, fds[fd]
        assert fds[r].kind == fds[w].kind == "pipe"
        assert fds[sock.fileno()].kind == "socket"
        f = fds[opened["file"]]
        assert f.flags & (os.O_APPEND | os.O_ACCMODE) == os.O_APPEND | os.O_RDWR
        assert f.flags & os.O_CLOEXEC == 0 and fds[r].flags & os.O_CLOEXEC
    finally:
        for fd in (*opened.values(), r, w):
            os.close(fd)
        sock.close()


def test_what_cannot_come_back_is_named_and_the_rest_still_does(
    programs: Programs, tmp_path: Path
) -> None:
    core, fd = live_core(programs, tmp_path)
    with sidecar_json(core) as doc:
        usr1 = next(s for s in doc["signals"] if s["signal"] == signal.SIGUSR1)
        usr1["handler"] = 0x10  # not code
        doc["fds"] += [
            {"fd": 7, "path": "/tmp/x (deleted)", "kind": "deleted", "flags": 0, "pos": 0},
            {"fd": 8, "path": "/dev/sda", "kind": "device", "flags": 0, "pos": 0},
            {"fd": 9, "path": str(tmp_path / "missing"), "kind": "file", "flags": 0, "pos": 0},
        ]
        doc["cwd"] = str(tmp_path / "no-such-dir")
    result = restore_cli(core, "--run", stdin="more\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "next: 56789\n"  # the file came back all the same
    err = result.stderr
    assert "SIGUSR1 handler at 0x10 not restored: that is not code in the core" in err
    assert "fd 7 (/tmp/x (deleted)) not restored: the file was deleted" in err
    assert "fd 8 (/dev/sda) not restored: devices are not reopened" in err
    assert f"fd 9 ({tmp_path / 'missing'}) not restored: cannot find it" in err
    assert f"cwd {tmp_path / 'no-such-dir'} not restored: No such file or directory" in err
    assert f"fds {fd}, " in err

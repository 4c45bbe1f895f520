"""One error style for every product behind `syscap`: bad input is one line,
`syscap COMMAND: what is wrong: how to fix it`, exit status 2, no traceback.
Every product's errors derive from SyscapError (the restorer's RestoreError too,
tests/test_error_classes.py), the one root the dispatcher catches; `python -m
restorer`, the restorer's own entry point, keeps the same contract."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from capture_lib import cli
from capture_lib.errors import SyscapError, one_line
from restorer import __main__ as restorer_main
from restorer.errors import RestoreError
from tests.conftest import ROOT

CASES = [
    # (command line, the error line's beginning, a word of the fix)
    (["record", "-o", "/nonexistent/t"], "syscap record: say what to record:", "-a"),
    (["record", "-p", "0"], "syscap record: argument -p/--pid: '0' is not a process id",
     "--help"),
    (["report", "/nonexistent.trace"], "syscap report: trace /nonexistent.trace does not exist",
     "syscap record"),
    (["report", "--sort", "size", "t"], "syscap report: argument --sort: invalid choice", "time"),
    (["top", "-d", "0"], "syscap top: -d 0:", "positive"),
    (["top", "--backend", "dtrace"], "syscap top: argument --backend: invalid choice", "bpf"),
    (["export", "/nonexistent.trace", "--format", "perfetto", "-o", "/nonexistent/out"],
     "syscap export: trace /nonexistent.trace does not exist", "syscap record"),
    (["restore", "/nonexistent.core"], "syscap restore: cannot open core /nonexistent.core",
     "path"),
    (["restore", "c", "--run", "--hold"], "syscap restore: argument --hold: not allowed", "--help"),
    (["nosuch"], "syscap: argument COMMAND: invalid choice: 'nosuch'", "record"),
]


@pytest.mark.parametrize(("argv", "start", "fix"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_in_the_one_style(argv: list[str], start: str, fix: str) -> None:
    p = subprocess.run([sys.executable, "-m", "capture_lib.cli", *argv], capture_output=True,
                       text=True, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert p.stderr.startswith(start), p.stderr
    assert fix in p.stderr.split(":", 2)[2], p.stderr


def failing(error: BaseException) -> object:
    def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        def run(args: argparse.Namespace) -> int:
            raise error

        sub.add_parser("restore").set_defaults(func=run)

    return register


@pytest.mark.parametrize("error", [RestoreError("core is damaged:\nnote 3 is cut short"),
                                   SyscapError("no backend: load the module")])
def test_an_error_escaping_a_command_gets_the_one_line(
        error: Exception, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The restorer's root is caught through SyscapError: one line, status 2, the
    command's prefix once (a message's own line breaks folded)."""
    monkeypatch.setattr("restorer.cli.register", failing(error))
    assert cli.main(["restore"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("syscap restore: ") and not err.startswith("syscap restore: syscap")


def test_other_exceptions_are_not_taken_for_user_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug keeps its traceback: only SyscapError's are the user's."""
    monkeypatch.setattr("restorer.cli.register", failing(KeyError("bug")))
    with pytest.raises(KeyError):
        cli.main(["restore"])



def test_a_stop_by_signal_ends_as_ctrl_c_does(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """record's stop by SIGINT/SIGTERM is a KeyboardInterrupt, not an error: one that
    escapes its loop ends `syscap` with status 130 and no message."""
    from capture_lib.record import _Stop

    monkeypatch.setattr("restorer.cli.register", failing(_Stop(signal.SIGTERM)))
    assert cli.main(["restore"]) == 130
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kind", ["missing", "not ELF", "no CORE", "--run and --hold"])
def test_python_m_restorer_says_bad_input_as_syscap_restore_does(tmp_path: Path,
                                                                 kind: str) -> None:
    core = tmp_path / "core"
    if kind == "not ELF":
        core.write_text("this is not a core file\n")
    args, start = {
        "missing": ([str(core), "--run"], f"syscap restore: cannot open core {core}"),
        "not ELF": ([str(core), "--run"], f"syscap restore: {core} is not an ELF core"),
        "no CORE": ([], "syscap restore: the following arguments are required: CORE"),
        "--run and --hold": ([str(core), "--run", "--hold"],
                             "syscap restore: argument --hold: not allowed with argument --run"),
    }[kind]
    said = []
    for entry in ("restorer", "capture_lib.cli"):
        p = subprocess.run([sys.executable, "-m", entry, "restore", *args], capture_output=True,
                           text=True, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=60)
        assert p.returncode == 2, p.stderr
        assert p.stdout == ""
        assert len(p.stderr.splitlines()) == 1, p.stderr
        assert p.stderr.startswith(start), p.stderr
        said.append(p.stderr)
    assert said[0] == said[1]


def test_python_m_restorer_folds_an_error_into_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(restorer_main, "register",
                        failing(RestoreError("core is damaged:\nnote 3 is cut short")))
    assert restorer_main.main(["restore"]) == 2
    assert capsys.readouterr().err == "syscap restore: core is damaged:; note 3 is cut short\n"


def test_python_m_restorer_ends_on_ctrl_c_with_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(restorer_main, "register", failing(KeyboardInterrupt()))
    assert restorer_main.main(["restore"]) == 130
    assert capsys.readouterr().err == ""


def test_python_m_restorer_keeps_a_bugs_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restorer_main, "register", failing(KeyError("bug")))
    with pytest.raises(KeyError):
        restorer_main.main(["restore"])


def test_one_line_folds_a_message_and_names_an_error_that_has_none() -> None:
    """What every product (the CLIs, the UI's status lines) prints of an error."""
    assert one_line("cannot read x:\n  not a trace\n\n") == "cannot read x:; not a trace"
    assert one_line(RestoreError("core is damaged:\nnote 3")) == "core is damaged:; note 3"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert one_line("") == ""

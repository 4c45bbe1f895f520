"""Fixtures for restorer tests: compiled test programs, real kernel and gcore cores.

Everything runs as root from the repo root. Cores go to per-test temporary directories; the
kernel's core_pattern is set to a plain file name only if it pipes elsewhere, and is put back.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from restorer.arch import ARM64, SYS_READ, Registers

REPO = Path(__file__).resolve().parents[2]
SOURCES = Path(__file__).resolve().parent / "programs"
PYTHON = sys.executable
CFLAGS = ["-O1", "-g", "-fPIE", "-pie", "-fno-omit-frame-pointer", "-Wall"]


@dataclass(frozen=True)
class Programs:
    dir: Path

    def __getitem__(self, name: str) -> Path:
        return self.dir / name


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Programs]:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the test programs: apt-get install build-essential")
    out = tmp_path_factory.mktemp("restorer-programs")
    singles = ("resume", "crash", "blocked_read", "dontdump", "getcpu", "sidecar_state", "reverse")
    for name in singles:
        subprocess.run(["gcc", *CFLAGS, "-o", out / name, SOURCES / f"{name}.c"], check=True)
    for name in ("threads", "token_ring"):
        subprocess.run(
            ["gcc", *CFLAGS, "-pthread", "-o", out / name, SOURCES / f"{name}.c"], check=True
        )
    if not ARM64:  # x86-64 vector registers
        subprocess.run(
            ["gcc", *CFLAGS, "-mavx", "-o", out / "fpstate", SOURCES / "fpstate.c"], check=True
        )
    plain = ["-O1", "-g", "-fno-omit-frame-pointer"]
    for name, flags in (("resume-nopie", ["-no-pie"]), ("resume-static", ["-static"])):
        subprocess.run(["gcc", *plain, *flags, "-o", out / name, SOURCES / "resume.c"], check=True)
    yield Programs(out)
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def core_pattern() -> Iterator[None]:
    """Cores as files in the process's directory (restored afterwards if changed)."""
    path = Path("/proc/sys/kernel/core_pattern")
    old = path.read_text()
    changed = old.startswith("|") or "/" in old
    if changed:
        path.write_text("core")
    try:
        yield
    finally:
        if changed:
            path.write_text(old)


def _unlimited_core() -> None:
    """In the child before exec: no core size limit, and SIGQUIT (the programs' dump signal)
    at its default action: a job a non-interactive shell put in the background starts with
    SIGINT and SIGQUIT ignored, and an ignored disposition survives exec."""
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def find_core(directory: Path) -> Path:
    cores = sorted(directory.glob("core*"))
    assert cores, f"no core file written in {directory} (core_pattern/ulimit?)"
    return cores[0]


def kernel_core(
    prog: Path, cwd: Path, *args: str, expect: int = signal.SIGQUIT
) -> tuple[Path, str]:
    """Run `prog` until it dumps core by signal `expect`; (core path, its stdout)."""
    p = subprocess.run(
        [prog, *args], cwd=cwd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        preexec_fn=_unlimited_core, check=False,
    )  # fmt: skip
    assert p.returncode == -expect, f"{prog.name} ended with {p.returncode}"
    return find_core(cwd), p.stdout


def gcore_core(prog: Path, cwd: Path, *args: str) -> tuple[Path, str]:
    """Run `prog` until it stops itself with SIGSTOP, take a core with gdb's gcore, kill it."""
    gcore = shutil.which("gcore")
    if gcore is None:
        pytest.fail("gcore (package gdb) is needed: add gdb to setup.sh's apt packages")
    proc = subprocess.Popen([prog, *args], cwd=cwd, stdout=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), "program did not stop itself"
        subprocess.run(
            [gcore, "-o", str(cwd / "gcore"), str(proc.pid)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        proc.kill()
        out = proc.stdout.read() if proc.stdout else ""
        proc.wait()
    return next(cwd.glob("gcore.*")), out


def restore_cli(
    core: Path, *args: str, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m restorer restore CORE ARGS...` from the repo root."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [PYTHON, "-m", "restorer", "restore", str(core), *args],
        cwd=REPO, input=stdin, capture_output=True, text=True, timeout=timeout, env=env,
        check=False,
    )  # fmt: skip


def processes_running(directory: Path) -> list[int]:
    """PIDs of live processes whose executable is inside `directory`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if exe.startswith(str(directory)):
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes(programs: Programs, tmp_path: Path) -> Iterator[None]:
    """No process of the test programs may be left running (killed if found); the test's
    files (cores are megabytes) are removed."""
    yield
    left = processes_running(programs.dir) + processes_running(tmp_path)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert not left, f"processes left running: {left}"


def after_marker(text: str) -> str:
    marker = "--- dump point ---\n"
    assert marker in text, text
    return text.split(marker, 1)[1]


def sleeping_in(regs: Registers) -> int | None:
    """The syscall a thread of a core was asleep in: x86-64 cores show it interrupted
    (-ERESTART* in rax); arm64 rewinds it before the dump (pc on the svc, x0 its first
    argument again), so it is the one x8 names."""
    return regs.pending_nr if ARM64 else regs.interrupted_syscall


def wait_until_in_read(pid: int, deadline_s: float = 30.0) -> None:
    """Block until /proc says `pid` sleeps in read(): a state wait, not a delay."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with open(f"/proc/{pid}/syscall") as f:
            if f.read().split()[0] == str(SYS_READ):
                return
        time.sleep(0.005)
    raise AssertionError(f"pid {pid} never blocked in read()")


def blocked_read_core(programs: Programs, cwd: Path) -> Path:
    """A kernel core of blocked_read taken while it sleeps in read(0) on an empty pipe."""
    proc = subprocess.Popen(
        [programs["blocked_read"]], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        preexec_fn=_unlimited_core,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"waiting\n"
        wait_until_in_read(proc.pid)
        os.kill(proc.pid, signal.SIGQUIT)
        assert proc.wait() == -signal.SIGQUIT
    finally:
        proc.kill()
        proc.wait()
    return find_core(cwd)

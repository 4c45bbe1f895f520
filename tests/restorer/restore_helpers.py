"""Fixtures for restorer tests: compiled test programs, real kernel and gcore cores.

Everything runs as root from the repo root. Cores go to per-test temporary directories; the
kernel's core_pattern is set to a plain file name only if it pipes elsewhere, and is put back.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from restorer.arch import ARM64, SYS_READ, Registers
from restorer.control import Controller
from restorer.core import Core
from restorer.restore import restore
from tests.cores import cores_in_cwd
from tests.cores import unlimited_cores as unlimited_cores  # the tests take it from here
from tests.processes import running_from

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
    with cores_in_cwd():
        yield




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
        preexec_fn=unlimited_cores, check=False,
    )  # fmt: skip
    assert p.returncode == -expect, f"{prog.name} ended with {p.returncode}"
    return find_core(cwd), p.stdout


def build_libgreet(libdir: Path, build_id: str | None = None) -> None:
    """libdir/libgreet.so from programs/greet.c, with that build ID if one is given."""
    libdir.mkdir(exist_ok=True)
    ident = [f"-Wl,--build-id=0x{build_id}"] if build_id else []
    subprocess.run(["gcc", "-shared", "-fPIC", *ident, "-o", libdir / "libgreet.so",
                    SOURCES / "greet.c"], check=True)  # fmt: skip


def build_uses_lib(libdir: Path, out_dir: Path) -> Path:
    """programs/uses_lib.c linked against libdir/libgreet.so, which it loads from there."""
    exe = out_dir / "uses_lib"
    subprocess.run(["gcc", *CFLAGS, "-o", exe, SOURCES / "uses_lib.c", f"-L{libdir}", "-lgreet",
                    f"-Wl,-rpath,{libdir}"], check=True)  # fmt: skip
    return exe


@contextmanager
def controlled(core_path: Path, out: Path, stdin: Path | None = None) -> Iterator[Controller]:
    """A Controller on the restored core, its stdout going to `out` (and its stdin read
    from `stdin` if given); killed afterwards."""
    with ExitStack() as files, Core(core_path) as core:
        fd0 = files.enter_context(open(stdin, "rb")).fileno() if stdin is not None else 0
        fd1 = files.enter_context(open(out, "w")).fileno()
        ctl = Controller(restore(core, stdio=(fd0, fd1, 2)))
        try:
            yield ctl
        finally:
            ctl.close()


def gcore(pid: int, cwd: Path) -> Path:
    """A core of the live process pid, written into cwd by gdb's gcore."""
    tool = shutil.which("gcore")
    if tool is None:
        pytest.fail("gcore (package gdb) is needed: add gdb to setup.sh's apt packages")
    subprocess.run([tool, "-o", str(cwd / "gcore"), str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return cwd / f"gcore.{pid}"


def gcore_core(prog: Path, cwd: Path, *args: str) -> tuple[Path, str]:
    """Run `prog` until it stops itself with SIGSTOP, take a core with gdb's gcore, kill it."""
    proc = subprocess.Popen([prog, *args], cwd=cwd, stdout=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), "program did not stop itself"
        core = gcore(proc.pid, cwd)
    finally:
        proc.kill()
        out = proc.stdout.read() if proc.stdout else ""
        proc.wait()
    return core, out


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


@pytest.fixture(autouse=True)
def no_leftover_processes(programs: Programs, tmp_path: Path) -> Iterator[None]:
    """No process of the test programs may be left running (killed if found); the test's
    files (cores are megabytes) are removed."""
    yield
    left = running_from(programs.dir) + running_from(tmp_path)
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


@contextmanager
def blocked_in_read(
    programs: Programs, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """blocked_read with pipes for stdin and stdout, once it sleeps in read(0) on the empty
    stdin (cores allowed, SIGQUIT at its default); killed afterwards."""
    proc = subprocess.Popen(
        [programs["blocked_read"]], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        preexec_fn=unlimited_cores,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == b"waiting\n"
        wait_until_in_read(proc.pid)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def blocked_read_core(programs: Programs, cwd: Path) -> Path:
    """A kernel core of blocked_read taken while it sleeps in read(0) on an empty pipe."""
    with blocked_in_read(programs, cwd) as proc:
        os.kill(proc.pid, signal.SIGQUIT)
        assert proc.wait() == -signal.SIGQUIT
    return find_core(cwd)

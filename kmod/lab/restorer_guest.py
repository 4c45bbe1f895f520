"""Run a pytest selection of tests/restorer inside an arm64 Debian guest (QEMU TCG).

The restorer runs on the architecture of the core it restores, so its arm64 side is
tested on arm64: Debian's 6.1 cloud kernel of the lab's matrix (6.1-arm64) boots a
Debian bookworm arm64 root file system with Python 3.11, pytest, gdb (gcore) and gcc
(the test programs are built in the guest), made once by images.py (debootstrap in two
stages, the second under qemu-user-static) and cached under the lab's cache as
guest/restorer-<abi>-<digest>.img.

Per run, a second disk carries the repository's restorer/ and tests/ (the restorer's
tests and what they import) and the script PID 1 hands over to. The guest prints
pytest's report (-rA: one PASSED/FAILED/SKIPPED/ERROR line per test) between
SYSCAP-GUEST markers on its serial console, and its exit status; GuestRun holds
them (run_in_guest runs any other command the same way). One guest at a time (the lab
lock), killed with this process.

    python3 kmod/lab/restorer_guest.py [PYTEST ARGS...]   # default: the arm64 selection
    python3 kmod/lab/restorer_guest.py [--copy PATH]... -- COMMAND...

The same image is the arm64 box of `--ssh`'s test (tests/capture_lib/
test_ssh_arm64_guest.py): booted() starts the guest with QEMU's user network, its port 22
forwarded to a loopback port here, runs the caller's script (an sshd) and keeps the guest
up until the caller is done.

Like the rest of the lab, this imports neither bench nor the restorer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import images
from images import KERNELS, REPO, KernelTree, LabError, log, run

GUEST_KERNEL = "6.1-arm64"
# The restorer's own import: capstone (disassembly); it reads ELF files itself.
# libboost-regex1.74.0 provides what gdb's libsource-highlight4v5 depends on by a virtual
# name, which debootstrap does not resolve.
# The same image serves `--ssh` against a real arm64 box (booted()): openssh-server, with
# iproute2 (the guest's address) and kmod (modprobe virtio-net: the cloud kernel has it as
# a module).
PACKAGES = ("python3", "python3-pytest", "python3-capstone", "gdb",
            "libboost-regex1.74.0", "gcc", "libc6-dev",
            "openssh-server", "iproute2", "kmod")  # fmt: skip
# What the tests copy into the guest: the restorer and its tests (tests/conftest.py and
# tests/__init__.py make the repository root importable as pytest's rootdir), with the
# shared test helpers they import, and the root of every error class (capture_lib's
# errors, which import nothing).
COPIED = ("restorer", "capture_lib/__init__.py", "capture_lib/errors.py", "tests/__init__.py",
          "tests/conftest.py", "tests/cores.py", "tests/processes.py", "tests/libfuzzer.py",
          "tests/restorer", "pyproject.toml")
# PID 1 of the image: everything else comes from the run's disk (the cloud kernel has
# NVMe built in).
STUB = images.mount_disk_init("restorer", "kmod/lab/restorer_guest.py", "run's disk", "/work",
                              "SYSCAP-GUEST")
ROOT_IMAGE = images.RootImage("restorer", PACKAGES, STUB, "/sbin/syscap-restorer-init")
# The single-threaded restore tests and the four-thread test, kernel and gcore cores,
# each thread's registers, TLS, FP state and signal mask checked under ptrace, and reverse
# execution (its tests and the exclusive-sequence stepping it relies on here).
DEFAULT_SELECTION = (
    "tests/restorer/test_restore_run.py",
    "tests/restorer/test_threads.py::test_every_thread_resumes_and_prints_the_rest_of_an_uninterrupted_run",
    "tests/restorer/test_threads.py::test_each_thread_gets_its_own_tid_registers_tls_and_signal_mask",
    "tests/restorer/test_reverse.py",
    "tests/restorer/test_arch.py",
)  # fmt: skip
OUTCOME = re.compile(r"^(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS) (\S+)")


@dataclasses.dataclass(frozen=True, slots=True)
class GuestRun:
    """One guest's run of one command: its exit status and output."""

    release: str
    returncode: int | None  # None: the guest did not get to the end of the command
    output: str  # what the command printed (stdout and stderr)
    console: Path
    seconds: float

    @property
    def outcomes(self) -> dict[str, str]:
        """For pytest -rA: node id (or skip location) -> PASSED, FAILED, SKIPPED, ..."""
        out: dict[str, str] = {}
        for line in self.output.splitlines():
            o = OUTCOME.match(line)
            if o:
                out[o.group(2)] = o.group(1)
        return out


def quote(args: list[str]) -> str:
    return " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)


# How every run's PID 1 script begins.
INIT_HEAD = [
    "#!/bin/sh",
    "# PID 1's script for one run (written by kmod/lab/restorer_guest.py)",
    "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "export PATH HOME",
    "mount -t tmpfs tmpfs /tmp",
]


def init_script(command: list[str]) -> str:
    lines = [
        *INIT_HEAD,
        "cd /work/repo",
        'echo "SYSCAP-GUEST BEGIN $(uname -r) cpus=$(nproc)"',
        f"{quote(command)} 2>&1",
        'echo "SYSCAP-GUEST END rc=$?"',
        "sync",
        "echo o > /proc/sysrq-trigger",
        "sleep 60",  # PID 1 must not exit before the power-off (the kernel would panic)
    ]
    return "\n".join(lines) + "\n"


def qemu_command(tree: KernelTree, root_img: Path, disk: Path, ssh_port: int = 0) -> list[str]:
    """With ssh_port, the guest has a network card whose only way in is its port 22 at
    127.0.0.1:ssh_port here (QEMU's user networking, restricted: no way out)."""
    nic = (f"user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"
           if ssh_port else "none")  # fmt: skip
    # cortex-a72: no pointer authentication, whose keys a core does not hold (a restored
    # process gets new ones, and every return address signed before the dump would fail).
    return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72",
            "-accel", "tcg,thread=single", "-m", "2048", "-smp", "2", "-nographic",
            "-no-reboot", "-nic", nic, "-kernel", str(tree.image),
            "-append", "console=ttyAMA0 root=/dev/nvme0n1 rw rootwait "
                       f"init={ROOT_IMAGE.init_path} panic=-1 loglevel=4 nokaslr",
            "-drive", f"file={root_img},if=none,id=root,format=raw,snapshot=on",
            "-drive", f"file={disk},if=none,id=work,format=raw",
            "-device", "nvme,id=nvme0,serial=syscap-restorer",
            "-device", "nvme-ns,drive=root,bus=nvme0,nsid=1",
            "-device", "nvme-ns,drive=work,bus=nvme0,nsid=2"]  # fmt: skip


def parse(text: str) -> tuple[int | None, str]:
    """(the command's exit status, its output) from the guest's console."""
    m = re.search(r"SYSCAP-GUEST BEGIN[^\n]*\n(.*?)SYSCAP-GUEST END rc=(\d+)", text, re.S)
    if m is None:
        begin = text.find("SYSCAP-GUEST BEGIN")
        return None, text[begin:] if begin >= 0 else ""
    return int(m.group(2)), m.group(1).replace("\r", "")


def run_pytest(args: list[str] | None = None, timeout: float = 3600) -> GuestRun:
    """Boot the arm64 guest once and run pytest with args (default: DEFAULT_SELECTION)."""
    pytest = ["python3", "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--color=no",
              "--basetemp=/tmp/pt"]  # fmt: skip
    return run_in_guest([*pytest, *(args or DEFAULT_SELECTION)], COPIED, timeout)


def run_in_guest(
    command: list[str], copied: tuple[str, ...] = COPIED, timeout: float = 3600
) -> GuestRun:
    """Boot the arm64 guest once and run command (as root, in a copy of the repository's
    `copied` paths, its output on the console): one guest at a time."""
    for rel in copied:  # checked before waiting for the lock
        if not (REPO / rel).exists():
            raise LabError(f"{rel}: no such file or directory in {REPO}; give a path in it")
    with images.lab_lock():
        return _run(command, copied, timeout)


def _disk(bdir: Path, init: str, copied: tuple[str, ...] = (),
          files: dict[str, Path] | None = None) -> Path:  # fmt: skip
    """The run's disk: init (PID 1's script), the repository's copied paths under repo/,
    and files (path on the disk -> file here, mode kept)."""
    stage = bdir / "restorer-disk"
    if stage.exists():
        shutil.rmtree(stage)
    repo = stage / "repo"
    for rel in copied:
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, repo / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, repo / rel)
    for rel, src in (files or {}).items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, stage / rel)
    (stage / "init").write_text(init)
    (stage / "init").chmod(0o755)
    disk = bdir / "restorer-disk.img"
    disk.unlink(missing_ok=True)
    run(["mke2fs", "-q", "-t", "ext4", "-L", "syscap-work", "-d", str(stage), str(disk), "1G"])
    return disk


def _run(command: list[str], copied: tuple[str, ...], timeout: float) -> GuestRun:
    t0 = time.monotonic()
    tree = images.fetch(KERNELS[GUEST_KERNEL])
    root_img = ROOT_IMAGE.build(tree)
    bdir = images.build_dir(tree)
    disk = _disk(bdir, init_script(command), copied)
    console = bdir / "restorer-console.log"
    log(f"booting {tree.release}: {' '.join(command)}")
    text = images.boot_guest(qemu_command(tree, root_img, disk), console, timeout,
                             show="SYSCAP-GUEST")  # fmt: skip
    rc, output = parse(text)
    return GuestRun(tree.release, rc, output, console, time.monotonic() - t0)


# ---------------------------------------------------------------- a running guest

# PID 1's script for booted(): the network card up (10.0.2.15 on QEMU's user network),
# then the caller's script; the guest runs until the caller is done with it.
NET_UP = """modprobe virtio_pci && modprobe virtio_net || echo "SYSCAP-GUEST FAIL modprobe"
ip link set lo up && ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up ||
	echo "SYSCAP-GUEST FAIL the network did not come up"
"""


class Running:
    """A booted guest: its console, as it comes (read by a thread into console)."""

    def __init__(self, proc: subprocess.Popen[bytes], console: Path) -> None:
        self.proc = proc
        self.console = console
        self.release = ""
        self._text = ""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.console.open("wb") as out:
            while chunk := os.read(self.proc.stdout.fileno(), 65536):
                with self._changed:
                    self._text += chunk.decode(errors="replace")
                    self._changed.notify_all()
                out.write(chunk)  # after: what the file shows, wait_for has seen
                out.flush()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first match of pattern (a regular expression, multi-line) in the console's
        whole lines (a line still arriving could match in part); LabError when the guest
        stopped or timeout s passed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                m = re.search(pattern, self._text[: self._text.rfind("\n") + 1], re.M)
                if m is not None:
                    return m
                left = deadline - time.monotonic()
                if not self._reader.is_alive() or left <= 0:
                    why = "stopped" if not self._reader.is_alive() else f"after {timeout:.0f} s"
                    raise LabError(f"the guest's console never showed {pattern!r} ({why}); "
                                   f"see {self.console}")  # fmt: skip
                self._changed.wait(left)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._reader.join()


@contextlib.contextmanager
def booted(script: str, files: dict[str, Path], ssh_port: int,
           module: bool = False) -> Iterator[Running]:  # fmt: skip
    """The arm64 guest, booted, its port 22 at 127.0.0.1:ssh_port here, running script
    (sh, as root, in /work: the run's disk with files, path there -> file here) after
    its network came up (and with module, syscap.ko built for its kernel and loaded);
    stopped (killed: nothing on it is kept) when the block ends. One guest at a time:
    holds the lab lock while it runs."""
    init = "\n".join([
        *INIT_HEAD,
        "mount -t tmpfs tmpfs /run",
        "cd /work",
        'echo "SYSCAP-GUEST BEGIN $(uname -r) cpus=$(nproc)"',
        NET_UP,
        'insmod /work/syscap.ko || echo "SYSCAP-GUEST FAIL insmod"' if module else "",
        script,
        'echo "SYSCAP-GUEST END rc=$?"',
        "while :; do sleep 3600; done",  # PID 1 must not exit; the caller stops the guest
        "",
    ])  # fmt: skip
    if not shutil.which("qemu-system-aarch64"):
        raise LabError("qemu-system-aarch64 not found: apt-get install qemu-system-arm")
    with images.lab_lock():
        tree = images.fetch(KERNELS[GUEST_KERNEL])
        root_img = ROOT_IMAGE.build(tree)
        bdir = images.build_dir(tree)
        if module:
            files = {**files, "syscap.ko": images.build_module(tree)[0]}
        disk = _disk(bdir, init, files=files)
        qemu = qemu_command(tree, root_img, disk, ssh_port)
        log(f"booting {tree.release} with its port 22 at 127.0.0.1:{ssh_port}")
        proc = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                preexec_fn=images.die_with_parent)  # fmt: skip
        guest = Running(proc, bdir / "ssh-console.log")
        try:
            guest.release = guest.wait_for(r"SYSCAP-GUEST BEGIN (\S+)", 600).group(1)
            yield guest
        finally:
            guest.stop()


def main(argv: list[str]) -> int:
    """PYTEST ARGS, or [--copy PATH]... -- COMMAND (PATH: more of the repository to copy)."""
    try:
        if "--" in argv:
            at = argv.index("--")
            opts, command = argv[:at], argv[at + 1 :]
            if len(opts) % 2 or any(o != "--copy" for o in opts[::2]) or not command:
                print("restorer guest: usage: restorer_guest.py [PYTEST ARGS] | "
                      "[--copy PATH]... -- COMMAND", file=sys.stderr)  # fmt: skip
                return 2
            r = run_in_guest(command, COPIED + tuple(opts[1::2]))
        else:
            r = run_pytest(argv or None)
    except LabError as e:
        print(f"restorer guest: {e}", file=sys.stderr)
        return 2
    print(r.output)
    print(f"== {r.release}: exit status {r.returncode} in {r.seconds:.0f} s, "
          f"console: {r.console}")  # fmt: skip
    return 1 if r.returncode is None else r.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

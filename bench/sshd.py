"""A throw-away OpenSSH server on loopback, for `syscap top --ssh` tests and benchmarks.

Debian's /usr/sbin/sshd (openssh-server, which ./setup.sh --tests installs without
starting a system sshd) runs in the foreground (-D) with its own config: a free
127.0.0.1 port, host and client keys made for it in a temporary directory, key
login for this user only (root included: PermitRootLogin prohibit-password, and the
only authorized key is the fresh one), its sessions' TMPDIR a directory of its own.
`client_options` are the ssh -o options that reach it (`syscap top --ssh-option`).
stop() ends the server and every session it forked (sshd's per-connection processes
start their own sessions, so they are found through their parents); the directory
is the caller's to remove.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path, PurePath

from bench.procs import proc_stat, proc_table
from capture_lib.errors import SyscapError

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # sshd insists on it; Debian makes it when the service starts
START_TIMEOUT_S = 20.0


class SshdError(SyscapError):
    """sshd is missing or did not start (one line: what to do)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    """pid's descendants (from /proc), parents before their children."""
    kids: dict[int, list[int]] = {}
    for child, st in proc_table().items():
        kids.setdefault(st.ppid, []).append(child)
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "syscap-test",
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)  # fmt: skip


class Sshd:
    """`with Sshd(tmp) as sshd:` a running server; sshd.host and sshd.client_options."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.host = f"{self.user}@127.0.0.1"
        self.port = 0
        self.log = directory / "sshd.log"
        self.box_tmp = directory / "box-tmp"  # TMPDIR of the sessions
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def client_options(self) -> list[str]:
        return client_options(self.dir, self.port)

    def ssh_argv(self, *command: str) -> list[str]:
        """ssh to the server, running command there."""
        opts = [w for o in self.client_options for w in ("-o", o)]
        return ["ssh", *opts, "-o", "BatchMode=yes", "-T", self.host, *command]

    def __enter__(self) -> Sshd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if not SSHD.exists():
            raise SshdError(f"{SSHD} is missing: install openssh-server (./setup.sh --tests)")
        d = self.dir
        make_keys(d)
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        self.box_tmp.mkdir(exist_ok=True)
        for _ in range(5):  # a port taken between _free_port and sshd's bind: another
            self.port = _free_port()
            write_known_hosts(d, self.port)
            config = d / "sshd_config"
            config.write_text(server_config(d, f"127.0.0.1:{self.port}", self.user,
                                            self.box_tmp))  # fmt: skip
            with open(self.log, "ab") as log:
                self._proc = subprocess.Popen(
                    [str(SSHD), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log, start_new_session=True)  # fmt: skip
            if self._wait_listening():
                return
            self.stop()
            if "Address already in use" not in self.log.read_text(errors="replace"):
                break
        raise SshdError(f"sshd did not start: {self.log.read_text(errors='replace')[-500:]}")

    def _wait_listening(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1) as s:  # fmt: skip
                if s.recv(4).startswith(b"SSH-"):  # its banner: it is sshd, and it is up
                    return True
            time.sleep(0.05)
        return False

    def sessions(self) -> list[int]:
        """The pids of every process the server forked (sessions and what they run)."""
        return [] if self._proc is None else _children(self._proc.pid)

    def connections(self) -> list[int]:
        """The pids of the server's per-connection processes (killing one drops its link)."""
        if self._proc is None:
            return []
        me = self._proc.pid
        return [p for p in self.sessions() if (st := proc_stat(p)) and st.ppid == me]

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        pids = [proc.pid, *_children(proc.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        deadline = time.monotonic() + 10
        for pid in pids[1:]:  # not ours to reap: wait until init has
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# The keys and configuration, also for an sshd elsewhere (a guest's, whose port 22 is
# forwarded to 127.0.0.1:PORT here): made here, the server's part copied there.


def make_keys(d: Path) -> None:
    """Throw-away keys in d: host_key (the server's), client_key (the only authorized
    one: authorized_keys)."""
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())


def write_known_hosts(d: Path, port: int) -> None:
    """d/known_hosts: host_key as the key of 127.0.0.1:port, the only one trusted there."""
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {(d / 'host_key.pub').read_text()}")


def client_options(d: Path, port: int) -> list[str]:
    """The ssh -o options that reach the server on 127.0.0.1:port with d's keys."""
    return [f"Port={port}", f"IdentityFile={d / 'client_key'}",
            "IdentitiesOnly=yes", f"UserKnownHostsFile={d / 'known_hosts'}",
            "StrictHostKeyChecking=yes", "GlobalKnownHostsFile=/dev/null"]  # fmt: skip


def server_config(d: PurePath, listen: str, user: str, box_tmp: PurePath) -> str:
    """sshd_config for a server whose keys (make_keys) are in d (its path where the
    server runs), listening on listen, letting only user in by key, its sessions'
    TMPDIR box_tmp."""
    return "\n".join([
        f"ListenAddress {listen}",
        f"HostKey {d / 'host_key'}",
        f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}",
        f"AllowUsers {user}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # the keys live under pytest's tmp, not ~/.ssh
        "PrintMotd no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        f"SetEnv TMPDIR={box_tmp}",  # the box's temporary path is the caller's
        "",
    ])  # fmt: skip

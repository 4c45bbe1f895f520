"""`--ssh` against a real arm64 box: the arm64 Debian guest of the lab (Debian's 6.1
arm64 cloud kernel under QEMU TCG, the bookworm image kmod/lab/restorer_guest.py builds,
openssh-server in it) runs sshd with throw-away keys (bench/sshd.py's), its port 22
forwarded to a loopback port here, and syscap.ko built for its kernel is loaded. The real
`syscap record --ssh` sends the cross-built arm64 agent down its one connection, the
agent records in the guest (eBPF: the kernel has BTF; or the module) and a known
workload's getppid calls come back exact; then the stream that `syscap top --ssh` reads
(capture_lib.ssh and RemoteSource, as the UI uses them) counts the same calls exactly,
with a comm filter applied in the guest's kernel, with either backend too.

One guest for the module. Runs by default, as tests/restorer/test_arm64_guest.py does
(measured here: 37 and 39 s with the image built; the image, shared with the restorer's tests,
is made once, about 6 minutes more); SYSCAP_SSH_ARM64=0 skips it. On an arm64 machine the
loopback sshd tests already send and run the arm64 agent, and this module skips.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath

import pytest

from bench.sshd import client_options, make_keys, server_config, write_known_hosts
from capture_lib.remote import RemoteSource
from capture_lib.ssh import Bootstrap, ssh_argv
from tests.capture_lib.conftest import AGENT_GETPPID as GETPPID
from tests.capture_lib.conftest import SYSCAP, WORKLOADS, report_json, syscap
from tests.capture_lib.test_remote import calls, only, until
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "kmod" / "lab"))
import images
import restorer_guest

WAIT = 120.0  # seconds: a bound for what takes a few seconds under TCG
BOOT_WAIT = 600.0  # from the boot to sshd listening, under TCG on a busy machine
BOX_DIR = PurePath("/work/sshd")  # the server's keys and configuration in the guest
BOX_TMP = PurePath("/tmp/box")  # its sessions' TMPDIR: where the agent's copy goes
WORKLOAD = PurePath("/work/workload")


@dataclass(frozen=True, slots=True)
class Box:
    guest: restorer_guest.Running
    options: list[str]  # ssh -o options that reach the guest's sshd
    host: str = "root@127.0.0.1"

    def ssh(self, command: str) -> subprocess.CompletedProcess[str]:
        opts = [w for o in self.options for w in ("-o", o)]
        argv = ["ssh", *opts, "-o", "BatchMode=yes", "-T", self.host, command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=WAIT, check=False)

    def run_workload(self) -> tuple[int, int]:
        """Run the workload in the guest to its end: its pid, and the guest's
        CLOCK_MONOTONIC (ns) after it ended."""
        p = self.ssh(f"{WORKLOAD} {GETPPID} 0 0 0 0 0 & pid=$!; wait $pid || exit; echo $pid; "
                     "python3 -c 'import time; print(time.monotonic_ns())'")  # fmt: skip
        assert p.returncode == 0, p.stderr
        pid, t_ns = p.stdout.split()
        return int(pid), int(t_ns)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, agents: dict[str, Path]) -> Iterator[Box]:
    if os.uname().machine == "aarch64":
        pytest.skip("this machine is arm64: the loopback sshd tests send the arm64 agent")
    if os.environ.get("SYSCAP_SSH_ARM64", "1") == "0":
        pytest.skip("arm64 guest not selected (SYSCAP_SSH_ARM64=0); unset it to run it")
    if os.geteuid() != 0:
        pytest.skip("the lab's guests need root (its cache, the image's build)")
    d = tmp_path_factory.mktemp("arm64-box")
    make_keys(d)
    port = _free_port()  # QEMU's forward: a port taken meanwhile fails the boot, loudly
    write_known_hosts(d, port)
    (d / "sshd_config").write_text(server_config(BOX_DIR, "0.0.0.0:22", "root", BOX_TMP))
    workload = d / "workload"  # static: the guest's libc is not the cross compiler's
    subprocess.run(["aarch64-linux-gnu-gcc", "-static", "-O2", "-Wall", "-pthread",
                    str(WORKLOADS / "workload.c"), "-o", str(workload)], check=True)  # fmt: skip
    files = {f"sshd/{n}": d / n for n in ("host_key", "authorized_keys", "sshd_config")}
    files["workload"] = workload
    script = f"mkdir -p /run/sshd {BOX_TMP} && /usr/sbin/sshd -D -e -f {BOX_DIR}/sshd_config"
    try:
        with restorer_guest.booted(script, files, port, module=True) as guest:
            up = guest.wait_for(r"^.*(Server listening on 0\.0\.0\.0 port 22|"
                                r"SYSCAP-GUEST (FAIL|END)).*$", BOOT_WAIT).group(0)  # fmt: skip
            if "Server listening" not in up:
                pytest.fail(f"arm64 guest: {up.strip()} (console: {guest.console})")
            yield Box(guest, client_options(d, port))
    except images.LabError as e:
        pytest.fail(f"arm64 guest: {e}")


def recorded(trace: Path) -> int:
    """The records in the trace so far (0 while its header is not whole)."""
    p = syscap("report", str(trace), "--json", check=False)
    return int(json.loads(p.stdout)["events"]) if p.returncode == 0 else 0


@pytest.mark.parametrize("backend", ["bpf", "kmod"])
def test_record_over_ssh_brings_back_the_box_s_exact_counts(
    box: Box, agents: dict[str, Path], tmp_path: Path, backend: str
) -> None:
    trace = tmp_path / "box.trace"
    options = [w for opt in box.options for w in ("--ssh-option", opt)]
    argv = [*SYSCAP, "record", "--ssh", box.host, *options, "--backend", backend,
            "-o", str(trace)]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith(f"syscap record: recording {box.host} to {trace}"), line
        # The header comes before the agent starts counting; records come only after
        # (the agent writes what it has at least once a second): once one arrived here,
        # the box records. Each look runs a command in the guest, which it then records.
        deadline = time.monotonic() + WAIT
        while not recorded(trace):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no record from the box"
            assert box.ssh("true").returncode == 0
        pid, _ = box.run_workload()
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the box stops its agent
        assert proc.wait(timeout=WAIT) == 0
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "bytes of trace written" in rest, rest
    # what the box ran is this checkout's arm64 agent, sent over the connection
    copy = BOX_TMP / "syscap-0" / "syscap-agent-aarch64"
    got = box.ssh(f"sha256sum {copy}")
    assert got.stdout.split()[:1] == [hashlib.sha256(agents["aarch64"].read_bytes()).hexdigest()]
    report = report_json(trace)
    assert (report["arch"], report["kernel"], report["backend"]) == (
        "aarch64", box.guest.release, backend)  # fmt: skip
    # the module times with arm64's counter (converted by the agent); eBPF has
    # no cheaper clock than the monotonic one
    assert report["clock"] == ("cntvct" if backend == "kmod" else "monotonic")
    assert report["complete"] and report["dropped"] == 0  # its END block came through
    mine = [p for p in report["processes"] if p["pid"] == pid]
    assert mine and mine[0]["syscalls"]["getppid"]["count"] == GETPPID


@pytest.mark.parametrize("backend", ["bpf", "kmod"])
def test_the_stream_top_reads_counts_the_box_s_workload_exactly(box: Box, backend: str) -> None:
    """The stream's header comes once counting began: no other wait before the run."""
    boot = Bootstrap(timeout_s=WAIT)
    agent = ["stream", "--interval", "0.2", "--backend", backend]
    src = RemoteSource(ssh_argv(box.host, box.options, agent), prelude=boot)
    try:
        assert (boot.arch, src.kernel, src.backend) == ("aarch64", box.guest.release, backend)
        only(src, Path(WORKLOAD))  # counted in the guest's kernel for its comm only
        pid, t_ns = box.run_workload()
        assert calls(until(src, t_ns), pid, "getppid") == GETPPID
    finally:
        src.close()


def test_the_guest_s_console_is_matched_by_whole_lines(tmp_path: Path) -> None:
    """A console line still arriving does not match in part: the release was once read
    as "6.1.0-50-clou". A local sh plays the guest (no QEMU needed)."""
    proc = subprocess.Popen(["sh", "-c", "printf 'SYSCAP-GUEST BEGIN 6.1.0-50-clou'; read -r _; "
                             "echo 'd-arm64 cpus=2'"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    console = restorer_guest.Running(proc, tmp_path / "console.log")
    try:
        deadline = time.monotonic() + WAIT
        log = console.console
        while not (log.exists() and log.read_bytes().endswith(b"clou")):  # the part is in
            assert time.monotonic() < deadline, "the console never got the part line"
            time.sleep(0.01)
        with pytest.raises(images.LabError, match="never showed"):
            console.wait_for(r"SYSCAP-GUEST BEGIN (\S+)", 0)
        assert proc.stdin is not None
        proc.stdin.write(b"\n")
        proc.stdin.close()
        release = console.wait_for(r"SYSCAP-GUEST BEGIN (\S+)", WAIT).group(1)
        assert release == "6.1.0-50-cloud-arm64"
    finally:
        console.stop()

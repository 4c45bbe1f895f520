"""`syscap top` against a box in a real terminal (tmux): with --remote, the command
being this host's static agent (what `ssh box syscap-agent stream` would deliver,
without the ssh); with --ssh HOST, a real sshd on loopback (the `sshd` fixture): the
box is this host, reached through ssh with throw-away keys, and the agent is sent over
that connection. Needs root, tmux, the agent that ./setup.sh builds and, for --ssh,
openssh-server.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.sshd import Sshd
from tests.capture_lib.conftest import AGENT_LIB, AGENTS
from tests.tui.test_top_terminal import (
    EXPECTED_RATE,
    HELPER_COMM,
    NOISE_RATE,
    _alive,
    _events_per_s,
    _helper_rate,
    _live_available,
    connection_lost,
    filter_to_pid,
    helper,  # noqa: F401  (fixtures)
    noise,  # noqa: F401
    quit_top,
    rate_shown,
    start_top,
    tmux_session,  # noqa: F401
)
from tests.tui.tmux_screen import pane, wait_for

pytestmark = pytest.mark.skipif(_live_available() is not None, reason=str(_live_available()))


@pytest.fixture(scope="module")
def agent() -> Path:
    subprocess.run(["make", "-s", "-C", str(AGENT_LIB), "agent"], check=True)
    return AGENTS[os.uname().machine]


def agent_pid(top_pid: int) -> int:
    kids = subprocess.run(["pgrep", "-P", str(top_pid)], capture_output=True,
                          text=True).stdout.split()  # fmt: skip
    assert len(kids) == 1, kids
    return int(kids[0])


def test_remote_top_shows_the_box_filters_in_its_kernel_and_survives_a_lost_agent(
    agent: Path,
    helper: subprocess.Popen[bytes],  # noqa: F811
    noise: subprocess.Popen[bytes],  # noqa: F811
    tmux_session: tuple[str, Path],  # noqa: F811
) -> None:
    session, tmp = tmux_session
    top_pid, donefile = start_top(session, tmp, "--remote", shlex.join([str(agent), "stream"]))
    screen = wait_for(session, "backend bpf")
    assert f"Linux {os.uname().release[:3]}" in screen and "syscap" in screen, screen
    assert "LIVE" in screen
    rate_shown(session, noise.pid)
    before, screen = _events_per_s(session)
    assert before >= 0.75 * (EXPECTED_RATE + NOISE_RATE), screen
    rate = _helper_rate(screen, helper.pid)
    assert rate is not None and abs(rate - EXPECTED_RATE) <= 0.25 * EXPECTED_RATE, screen

    # F4, pid = the helper's: the agent filters in its kernel
    filter_to_pid(session, helper.pid, dropped=noise.pid)
    after, screen = _events_per_s(session)
    print(f"events/s before the pid filter {before}, after {after}; helper {EXPECTED_RATE}")
    assert abs(after - EXPECTED_RATE) <= 0.25 * EXPECTED_RATE, screen
    assert _helper_rate(screen, noise.pid) in (None, 0.0), screen  # its row may linger

    # the agent dies: the header says so within 2 s, the screen and keys stay
    agent_proc = agent_pid(top_pid)
    os.kill(agent_proc, 9)
    screen = connection_lost(session)
    # the reason in full is in the status line, as far as the terminal is wide
    assert "capture stopped: connection lost: the stream stopped midway" in screen, screen
    assert HELPER_COMM[:10] in screen, screen  # the last screen stays
    subprocess.run(["tmux", "send-keys", "-t", session, "v"], check=True)
    screen = wait_for(session, "getppid")
    assert "Traceback" not in screen

    quit_top(session, top_pid, donefile)
    assert not _alive(agent_proc), pane(session)


def test_ssh_top_shows_the_probe_stops_it_in_the_boxs_kernel_and_survives_a_lost_link(
    agent: Path,
    sshd: Sshd,
    helper: subprocess.Popen[bytes],  # noqa: F811
    noise: subprocess.Popen[bytes],  # noqa: F811
    tmux_session: tuple[str, Path],  # noqa: F811
) -> None:
    session, tmp = tmux_session
    options = [w for opt in sshd.client_options for w in ("--ssh-option", opt)]
    top_pid, donefile = start_top(session, tmp, "--ssh", sshd.host, *options)
    screen = wait_for(session, "backend bpf")
    head = screen.splitlines()[0]
    assert "127.0.0.1" in head and f"Linux {os.uname().release[:3]}" in head, screen
    assert (sshd.box_tmp / f"syscap-{os.geteuid()}" / f"syscap-agent-{os.uname().machine}"
            ).read_bytes() == agent.read_bytes()  # fmt: skip

    # the probe's rate, within 25 %
    rate_shown(session, noise.pid)
    rate_shown(session, helper.pid)
    before, screen = _events_per_s(session)
    rate = _helper_rate(screen, helper.pid)
    assert rate is not None and abs(rate - EXPECTED_RATE) <= 0.25 * EXPECTED_RATE, screen

    # F4, pid = the noise's: the agent's kernel counts the probe no more
    filter_to_pid(session, noise.pid, dropped=helper.pid)
    after, screen = _events_per_s(session)  # the kernel's event counter, on the box
    print(f"events/s before the pid filter {before}, after {after}; noise {NOISE_RATE}")
    assert abs(after - NOISE_RATE) <= 0.25 * NOISE_RATE, screen
    assert _helper_rate(screen, helper.pid) in (None, 0.0), screen  # its row may linger

    # the link dies (its server side killed): the header says so within 2 s, keys work
    box_side = sshd.sessions()
    (link,) = sshd.connections()
    os.kill(link, signal.SIGKILL)
    screen = connection_lost(session)
    assert "capture stopped: connection lost: " in screen, screen  # and why, as ssh says it
    shown = re.search(r"(\d+) processes", screen)  # the last screen stays (which rows are
    assert shown and int(shown.group(1)) > 0, screen  # in view depends on the cursor's pid)
    subprocess.run(["tmux", "send-keys", "-t", session, "v"], check=True)
    screen = wait_for(session, "getppid")  # the syscalls view: the noise's calls are kept
    deadline = time.monotonic() + 30  # the agent on the box saw its link go, and ended
    while any(_alive(p) for p in box_side):
        assert time.monotonic() < deadline, [p for p in box_side if _alive(p)]
        time.sleep(0.1)

    quit_top(session, top_pid, donefile)

"""`syscap top --remote` in a real terminal (tmux), the command being this host's static
agent: what `ssh box syscap-agent stream` would deliver, without the ssh. Needs root,
tmux and the agent that ./setup.sh builds.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from tests.capture_lib.conftest import AGENT_LIB, AGENTS
from tests.tui.test_top_terminal import (
    EXPECTED_RATE,
    HELPER_COMM,
    NOISE_RATE,
    ROOT,
    _alive,
    _events_per_s,
    _helper_rate,
    _live_available,
    _top_command,
    helper,  # noqa: F401  (fixtures)
    noise,  # noqa: F401
    tmux_session,  # noqa: F401
)
from tests.tui.tmux_screen import pane, settled, wait_for

pytestmark = pytest.mark.skipif(_live_available() is not None, reason=str(_live_available()))


@pytest.fixture(scope="module")
def agent() -> Path:
    subprocess.run(["make", "-s", "-C", str(AGENT_LIB), "agent"], check=True)
    return AGENTS[os.uname().machine]


def start(session: str, tmp: Path, *top_args: str) -> tuple[int, Path]:
    """syscap top TOP_ARGS in a 140x40 tmux session: (its pid, a file made at its exit)."""
    pidfile, donefile = tmp / "top.pid", tmp / "done"
    cmd = shlex.join([*_top_command(), "--no-config", "-d", "1", *top_args])
    script = f"echo $$ > {pidfile}; cd {ROOT}; exec {cmd}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "40",
                    f"sh -c {shlex.quote(script)}; touch {donefile}; sleep 60"],
                   check=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, pane(session)
        time.sleep(0.05)
    return int(pidfile.read_text()), donefile


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
    top_pid, donefile = start(session, tmp, "--remote", shlex.join([str(agent), "stream"]))
    screen = wait_for(session, "backend bpf")
    assert f"Linux {os.uname().release[:3]}" in screen and "syscap" in screen, screen
    assert "LIVE" in screen
    deadline = time.monotonic() + 30
    while _helper_rate(pane(session), noise.pid) is None:
        assert time.monotonic() < deadline, pane(session)
        time.sleep(0.2)
    before, screen = _events_per_s(session)
    assert before >= 0.75 * (EXPECTED_RATE + NOISE_RATE), screen
    rate = _helper_rate(screen, helper.pid)
    assert rate is not None and abs(rate - EXPECTED_RATE) <= 0.25 * EXPECTED_RATE, screen

    # F4, the pid field, the helper's pid, save: the agent filters in its kernel
    for keys in (["F4"], ["Tab"], ["Tab"], [str(helper.pid)], ["C-s"]):
        subprocess.run(["tmux", "send-keys", "-t", session, *keys], check=True)
        settled(session)
    wait_for(session, f"filter: pid {helper.pid}")
    deadline = time.monotonic() + 30  # until the refreshes hold no call of the noise's
    while _helper_rate(pane(session), noise.pid) not in (None, 0.0):
        assert time.monotonic() < deadline, pane(session)
        time.sleep(0.2)
    after, screen = _events_per_s(session)
    print(f"events/s before the pid filter {before}, after {after}; helper {EXPECTED_RATE}")
    assert abs(after - EXPECTED_RATE) <= 0.25 * EXPECTED_RATE, screen
    assert _helper_rate(screen, noise.pid) in (None, 0.0), screen  # its row may linger

    # the agent dies: the header says so within 2 s, the screen and keys stay
    agent_proc = agent_pid(top_pid)
    os.kill(agent_proc, 9)
    t0 = time.monotonic()
    screen = wait_for(session, "connection lost", timeout=5)
    lost_after = time.monotonic() - t0
    assert lost_after < 2, f"shown after {lost_after:.1f} s"
    head = screen.splitlines()[0]
    assert "backend bpf" in head and "connection lost" in head, screen
    # the reason in full is in the status line, as far as the terminal is wide
    assert "capture stopped: connection lost: the stream stopped midway" in screen, screen
    assert HELPER_COMM[:10] in screen, screen  # the last screen stays
    subprocess.run(["tmux", "send-keys", "-t", session, "v"], check=True)
    screen = wait_for(session, "getppid")
    assert "Traceback" not in screen

    subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
    deadline = time.monotonic() + 15
    while not donefile.exists():
        assert time.monotonic() < deadline, "syscap top did not exit on q\n" + pane(session)
        time.sleep(0.1)
    assert not _alive(top_pid) and not _alive(agent_proc)
    assert "Traceback" not in pane(session)

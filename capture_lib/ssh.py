"""`syscap top --ssh HOST`: one ssh connection that asks the box for its
architecture, hands it the matching static agent when it has no copy of it yet, and
then carries the agent's stream (stdout) and filter commands (stdin).

    ssh HOST sh -c BOOTSTRAP syscap-ssh DIR|'' stream|record [agent options]
      box -> here   "syscap-ssh 1 ARCH SHA256|none"   (its cached copy's hash)
      here -> box   "run"                              the cached copy is this agent
                    "send SIZE SHA256" + SIZE bytes    it is not: head -c SIZE on the box
                    "quit"                             no agent here for ARCH
      then the box execs the agent, whose stdout is the stream and whose stdin the
      rest of the connection's: RemoteSource takes over. record runs it beside a
      watcher of stdin instead: the end of stdin sends it SIGINT, so it ends its
      trace with its END block (ssh without a terminal passes on no signal).

One connection, so one authentication and no scp or sftp on the box: the agent
travels in-band before the stream, which only starts once the box ran it. The copy
lives in ${TMPDIR:-/tmp}/syscap-UID/, or DIR/syscap-UID when asked (--ssh-dir: a
place that outlives reboots, or one not mounted noexec), mode 0700 and checked to
be the user's own, named by architecture, written under a temporary name and
renamed once its size (and, with sha256sum on the box, its hash) is right; a later
run sends nothing when the hash matches. Nothing else on the box is touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from capture_lib.errors import CaptureError, UsageError

PROTOCOL = "syscap-ssh 1"
MAX_GREETING = 4096  # bytes before the greeting line (a noisy login script) ...
# the static agents, one per architecture: `make agent agent-arm64` (./setup.sh) puts
# them here, next to the sources, and `pip install .` ships them as package data
AGENTS = Path(__file__).resolve().parent / "agents"
# uname -m on the box -> the agent build that runs there
ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}

# Runs under the box's sh; $1 is where to keep the agent ("": $TMPDIR or /tmp), the
# rest the agent's mode and options. It prints one
# line, reads one, then either receives the agent or uses its copy, and runs it.
BOOTSTRAP = r"""umask 077
fail() { echo "syscap-ssh: $*" >&2; exit 1; }
arch=$(uname -m) || fail "uname -m failed"
base=${1:-${TMPDIR:-/tmp}}
shift
dir=$base/syscap-$(id -u)
if ! mkdir "$dir" 2>/dev/null; then
	[ -d "$dir" ] && [ ! -L "$dir" ] && [ -O "$dir" ] ||
		fail "$dir is not a directory of this user's: remove it"
	chmod 700 "$dir" || fail "cannot chmod $dir"
fi
agent=$dir/syscap-agent-$arch
sum=none
if [ -f "$agent" ] && command -v sha256sum >/dev/null 2>&1; then
	sum=$(sha256sum <"$agent") && sum=${sum%% *}
fi
echo "syscap-ssh 1 $arch $sum"
read -r what size want || exit 1
case $what in
run) ;;
send)
	part=$agent.part$$
	head -c "$size" >"$part" || { rm -f "$part"; fail "receiving the agent failed"; }
	got=$(wc -c <"$part")
	if [ "$got" -ne "$size" ]; then
		rm -f "$part"
		fail "received $got of the agent's $size bytes: the connection broke"
	fi
	if command -v sha256sum >/dev/null 2>&1; then
		sum=$(sha256sum <"$part") && sum=${sum%% *}
		[ "$sum" = "$want" ] || { rm -f "$part"; fail "the agent arrived damaged"; }
	fi
	chmod 700 "$part" && mv -f "$part" "$agent" || fail "cannot install $agent"
	;;
*) exit 1 ;;
esac
case $1 in
record)
	# the end of this connection's stdin (here: Ctrl-C) stops the recording cleanly
	shift
	"$agent" record "$@" </dev/null &
	pid=$!
	exec 3<&0
	{ while read -r _; do :; done <&3; kill -INT "$pid" 2>/dev/null; } &
	watch=$!
	wait "$pid"
	status=$?
	kill "$watch" 2>/dev/null
	exit "$status"
	;;
*) exec "$agent" "$@" ;;
esac
"""


def agent_path(arch: str) -> Path:
    """The static agent this syscap sends to a box of arch (one of ARCHES' values)."""
    return AGENTS / f"syscap-agent-{arch}"


def ssh_argv(host: str, options: Sequence[str], agent_args: Sequence[str],
             agent_dir: str = "") -> list[str]:  # fmt: skip
    """The ssh command that runs the bootstrap on host, then the agent with
    agent_args (its mode first), keeping the agent in AGENT_DIR/syscap-UID on the
    box (default: its $TMPDIR or /tmp). options: ssh -o options ("Port=2222"), given
    first so they win over ours and ~/.ssh/config's."""
    if not host or host.startswith("-"):
        raise UsageError(f"--ssh {host!r}: give the box as HOST or USER@HOST")
    argv = ["ssh"]
    for opt in options:
        if "=" not in opt.strip("=") and " " not in opt.strip():
            raise UsageError(
                f"--ssh-option {opt!r}: give an ssh_config option as NAME=VALUE, "
                "e.g. --ssh-option Port=2222"
            )
        argv += ["-o", opt]
    # no terminal (the stream is binary), no escape character, no password prompt
    # (there is no terminal to type it into: use a key), notice a dead link
    argv += ["-T", "-e", "none", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5",
             "-o", "ServerAliveCountMax=3", "--", host]  # fmt: skip
    if agent_dir and not agent_dir.startswith("/"):
        raise UsageError(f"--ssh-dir {agent_dir!r}: give an absolute path on the box")
    remote = ["sh", "-c", BOOTSTRAP, "syscap-ssh", agent_dir, *agent_args]
    argv.append(" ".join(shlex.quote(w) for w in remote))  # ssh hands the box's shell one line
    return argv


class Bootstrap:
    """The here side of the exchange, run on the started ssh before the stream is read."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.arch = ""
        self.sent = 0  # bytes of agent sent (0: the box's copy was used)

    def __call__(self, proc: subprocess.Popen[bytes]) -> None:
        """Do the exchange: the box runs the agent now, or ssh's output ended (then
        the stream's reader finds its end and ssh's last words say why).
        UsageError, CaptureError: what keeps the agent from running there."""
        assert proc.stdout is not None and proc.stdin is not None
        try:
            got = read_greeting(proc.stdout.fileno(), time.monotonic() + self.timeout_s)
        except UsageError:
            _say(proc, "quit\n")
            raise
        if got is None:
            return
        arch, box_sum = got
        self.arch = arch
        path = agent_path(arch)
        try:
            agent = path.read_bytes()
        except OSError as exc:
            _say(proc, "quit\n")
            raise CaptureError(
                f"this syscap has no {arch} agent to send ({path}: {exc.strerror}): build "
                "both with ./setup.sh (or make -C capture_lib agent agent-arm64) in syscap's "
                "checkout, then pip install it again"
            ) from None
        digest = hashlib.sha256(agent).hexdigest()
        if digest == box_sum:
            _say(proc, "run\n")
        else:
            _say(proc, f"send {len(agent)} {digest}\n", agent)
            self.sent = len(agent)


def _say(proc: subprocess.Popen[bytes], line: str, data: bytes = b"") -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(line.encode() + data)
        proc.stdin.flush()
    except (BrokenPipeError, ValueError):
        pass  # ssh is gone: the stream's end says why


def read_greeting(fd: int, deadline: float) -> tuple[str, str] | None:
    """The box's greeting from fd: (the agent build its architecture needs, the
    SHA-256 of its copy or "none", also for anything else in that field); None when
    the output ended first (ssh failed). Read a byte at a time (what follows it is
    the stream's); lines before it (a login script's chatter) are skipped.
    CaptureError past the deadline or MAX_GREETING bytes, or for a line that is not
    a greeting; UsageError for an architecture without an agent."""
    line = bytearray()
    seen = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise CaptureError(
                "the box did not answer within the time allowed: "
                "check the host and that ssh needs no password"
            )
        b = os.read(fd, 1)
        if not b:
            return None
        seen += 1
        if b != b"\n":
            line += b
        elif line.startswith(PROTOCOL.encode() + b" "):
            break
        else:
            line.clear()
        if seen > MAX_GREETING:
            raise CaptureError(
                "the box printed something else than the agent's greeting: "
                "does its login script write to stdout?"
            )
    fields = bytes(line).split()
    if len(fields) != 4:
        raise CaptureError(
            f"the box answered {_shown(bytes(line))}: is its login shell a POSIX one?"
        )
    arch = ARCHES.get(fields[2].decode(errors="replace"))
    if arch is None:
        raise UsageError(
            f"the box is {_shown(fields[2])}: syscap-agent is built for x86_64 and aarch64 only"
        )
    digest = fields[3].decode(errors="replace")
    return arch, digest if re.fullmatch("[0-9a-f]{64}", digest) else "none"


def _shown(raw: bytes, most: int = 24) -> str:
    """Bytes from the box, as one short line fit for a terminal."""
    text = raw.decode("ascii", errors="replace")
    if text.isprintable() and len(text) <= most:
        return text
    return repr(raw[:most]) + ("..." if len(raw) > most else "")

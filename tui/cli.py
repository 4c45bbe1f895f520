"""`syscap top`: argument parsing and start-up (`register` adds it to `syscap`, through
pyproject.toml's entry points).

Nothing here imports Textual or the live backends at module level, so `syscap --help`
works on a machine where capture is not built yet.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from capture_lib.errors import CaptureError, SyscapError, UsageError, one_line
from capture_lib.filter_spec import FILTER_HELP, FilterSpec, SyscallTable, load_alone
from capture_lib.snapshot import Filter
from tui.filters import check_comms, parse_syscalls, split_words

if TYPE_CHECKING:
    from capture_lib.remote import RemoteSource
    from capture_lib.snapshot import SnapshotSource
    from tui.app import TopOptions


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `top` subcommand."""
    p = sub.add_parser(
        "top",
        help="live view of per-process syscall rates, ring fill and drops",
        description="Live view of per-process syscall rates, in-kernel filter toggles, "
        "ring fill and drops, and the cost of watching. Keys: F1 or ? for help. "
        "Remap keys with SYSCAP_TOP_KEYS='binding-id=keys;...' (ids in the help).",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "bpf", "kmod"),
        default="auto",
        help="capture backend (default: auto, the first that works here)",
    )
    p.add_argument(
        "--replay",
        metavar="TRACE",
        help="play a recorded trace instead of capturing (no privileges needed)",
    )
    p.add_argument(
        "--remote",
        metavar="CMD",
        help="watch another box: run CMD, a command whose stdin and stdout reach "
        "'syscap-agent stream' there, e.g. --remote 'ssh root@box syscap-agent stream'; "
        "filters apply in that box's kernel",
    )
    p.add_argument(
        "--ssh",
        metavar="HOST",
        help="watch another box over one ssh connection: sends it the static agent for "
        "its architecture when it has no copy (kept under /tmp/syscap-UID there) and "
        "streams; HOST or USER@HOST, as ssh takes it (~/.ssh/config applies); needs "
        "key login",
    )
    p.add_argument(
        "--ssh-option",
        dest="ssh_options",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="an ssh option for --ssh (ssh -o), e.g. Port=2222 or IdentityFile=~/.ssh/board "
        "(repeatable)",
    )
    p.add_argument(
        "--ssh-dir",
        metavar="DIR",
        default="",
        help="with --ssh: keep the agent in DIR/syscap-UID on the box instead of under its "
        "$TMPDIR or /tmp (a place that outlives reboots, or one not mounted noexec)",
    )
    p.add_argument(
        "-p",
        "--pid",
        dest="pids",
        metavar="PID",
        type=int,
        action="append",
        default=[],
        help="trace only this process tree (repeatable)",
    )
    p.add_argument(
        "--comm",
        dest="comms",
        metavar="NAME",
        action="append",
        default=[],
        help="trace only processes with this command name (repeatable)",
    )
    p.add_argument(
        "-e",
        "--syscalls",
        dest="syscalls",
        metavar="SYSCALLS",
        default="",
        help="trace only these syscalls or groups, comma-separated "
        "(e.g. openat,read or file,network)",
    )
    p.add_argument("--failed", action="store_true", help="start with failed calls only")
    p.add_argument("--filter", metavar="NAME|FILE", help=FILTER_HELP)
    p.add_argument("--no-config", action="store_true",
                   help="neither read nor write the remembered view, sorts and keys "
                        "($XDG_CONFIG_HOME/syscap/top.json)")
    p.add_argument(
        "--durations",
        choices=("off", "sampled", "all"),
        default="off",
        help="whose durations (avg, p99) to measure from the start: off (the default: "
        "exact counts only, least cost), sampled (a random sample, within "
        "--sample-budget) or all (every call); the l key cycles",
    )
    p.add_argument("--latency", dest="durations", action="store_const", const="all",
                   help="the same as --durations all")
    p.add_argument(
        "--sample-budget",
        metavar="PERCENT",
        type=float,
        default=1.0,
        help="sampled durations: the CPU (percent of one core) the sample may add; "
        "the sample grows sparser as the syscall rate rises (default 1)",
    )
    p.add_argument(
        "-d",
        "--delay",
        dest="delay",
        metavar="SECONDS",
        type=float,
        default=1.0,
        help="refresh interval in seconds (default 1)",
    )
    p.add_argument(
        "-M", "--no-mouse", dest="no_mouse", action="store_true", help="do not capture the mouse"
    )
    p.add_argument(
        "--low-color",
        dest="low_color",
        action="store_true",
        help="use only the 16 basic terminal colours",
    )
    p.add_argument(
        "--readonly",
        action="store_true",
        help="block actions that change the system: sending signals (k), taking and "
        "restoring cores (c); filters stay (they change only what syscap captures)",
    )
    p.set_defaults(func=run)  # fmt: skip


def syscall_table() -> SyscallTable | None:
    """capture_lib.syscalls for this machine, or None when it is not available."""
    try:
        from capture_lib.filter_spec import host_table
    except ImportError:
        return None
    return host_table()


def open_replay(path: str) -> SnapshotSource:
    from capture_lib.replay import ReplaySource  # type: ignore[import-not-found,unused-ignore]

    source: SnapshotSource = ReplaySource(path)
    return source


def open_remote(command: str) -> RemoteSource:
    from capture_lib.remote import RemoteSource

    return RemoteSource(command)


def open_ssh(host: str, options: list[str], agent_args: list[str],
             agent_dir: str = "") -> RemoteSource:  # fmt: skip
    from capture_lib.remote import RemoteSource
    from capture_lib.ssh import Bootstrap, ssh_argv

    argv = ssh_argv(host, options, agent_args, agent_dir)
    return RemoteSource(argv, prelude=Bootstrap(timeout_s=30.0),
                        check="install OpenSSH's client (Debian: openssh-client)")


def _ssh_conflict(args: argparse.Namespace) -> str | None:
    """Options that mean nothing with --ssh, or None."""
    if args.remote is not None:
        return "--ssh and --remote: give one (--ssh HOST runs the agent there itself)"
    if args.replay:
        return "--ssh and --replay: give one (a box to watch, or a trace to play)"
    if args.sample_budget != 1.0:
        return ("--sample-budget with --ssh: the agent samples one call in 64; "
                "give --durations all for every call")
    return None


def _agent_args(args: argparse.Namespace) -> list[str]:
    """The agent's stream options for top's own (--backend, --durations)."""
    out = ["stream"] if args.backend == "auto" else ["stream", "--backend", args.backend]
    return out + {"off": [], "sampled": ["--sampled"], "all": ["--durations"]}[args.durations]


def _remote_conflict(args: argparse.Namespace) -> str | None:
    """Options that mean nothing with --remote, or None."""
    if args.replay:
        return "--remote and --replay: give one (a box to watch, or a trace to play)"
    if args.backend != "auto":
        return ("--backend with --remote: the agent on the box picks it; give it there, "
                "e.g. --remote 'ssh box syscap-agent stream --backend kmod'")
    if args.durations != "off":
        return ("--durations with --remote: ask the agent, e.g. "
                "--remote 'ssh box syscap-agent stream --durations'")
    return None


def _say(msg: str) -> None:
    print(f"syscap top: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if not args.delay > 0:
        _say(f"-d {args.delay:g}: give a positive number of seconds")
        return 2
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _say("needs a terminal (for a file, use 'syscap record' and 'syscap report')")
        return 2
    prepared = prepare(args, os.environ)
    if isinstance(prepared, int):
        return prepared
    source, options = prepared
    from tui.app import SyscapTop

    SyscapTop(source, options).run(mouse=options.mouse)
    return 0


def prepare(
    args: argparse.Namespace, environ: MutableMapping[str, str]
) -> tuple[SnapshotSource | None, TopOptions] | int:
    """Check the arguments and open the source: (source, options), or an exit status.

    A live backend that cannot start is not an error here: the app shows why and
    offers replay (source None, options.startup_error set).
    """
    if not args.delay > 0:
        _say(f"-d {args.delay:g}: give a positive number of seconds")
        return 2
    if not 0 < args.sample_budget <= 100:
        _say(f"--sample-budget {args.sample_budget:g} is not a percentage in (0, 100]: "
             "give e.g. --sample-budget 1")
        return 2
    groups, names = parse_syscalls(split_words(args.syscalls))
    choice = FilterSpec(
        groups=groups,
        syscalls=names,
        pids=frozenset(args.pids),
        comms=frozenset(args.comms),
        failed_only=args.failed,
    )
    table = syscall_table()
    remote: RemoteSource | None = None
    if (args.ssh_options or args.ssh_dir) and args.ssh is None:
        _say("--ssh-option or --ssh-dir without --ssh: give the box with --ssh HOST")
        return 2
    if args.ssh is not None or args.remote is not None:
        conflict = _ssh_conflict(args) if args.ssh is not None else _remote_conflict(args)
        if conflict:
            _say(conflict)
            return 2
        try:
            if args.ssh is not None:
                remote = open_ssh(args.ssh, args.ssh_options, _agent_args(args), args.ssh_dir)
            else:
                remote = open_remote(args.remote)
        except UsageError as exc:
            _say(str(exc))
            return 2
        except SyscapError as exc:  # CaptureError: ssh, the command, the box or its stream failed
            _say(one_line(exc))
            return 1
        table = remote.syscall_table  # the box's numbers, for -e and F4
    try:
        if args.filter:
            choice = load_alone(args.filter, args.pids, args.comms, args.syscalls, args.failed)
        check_comms(choice.comms)
        flt = choice.to_filter(table)
        if remote is not None and flt != Filter():
            remote.set_filter(flt)
    except (ValueError, UsageError) as exc:
        if remote is not None:
            remote.close()
        _say(str(exc))
        return 2
    except SyscapError as exc:  # ConnectionLost: the connection ended meanwhile
        if remote is not None:
            remote.close()
        _say(one_line(exc))
        return 1
    if args.low_color:
        # Read by Textual when it is first imported, which happens below.
        environ["TEXTUAL_COLOR_SYSTEM"] = "standard"

    source: SnapshotSource | None = None
    startup_error: str | None = None
    if remote is not None:
        source = remote
    elif args.replay:
        try:
            source = open_replay(args.replay)
            if flt != Filter():
                source.set_filter(flt)  # replay applies it while reading
        except SyscapError as exc:  # TraceError: missing, not a trace, damaged
            _say(f"cannot replay {args.replay}: {one_line(exc)}")
            return 1
    else:
        try:
            from capture_lib.live import (  # type: ignore[import-not-found,unused-ignore]
                open_source,
            )
        except ImportError as exc:
            startup_error = f"live capture is not built here ({exc}); run ./setup.sh"
        else:
            try:
                live: SnapshotSource = open_source(args.backend, flt, durations=args.durations,
                                                   sample_budget=args.sample_budget)
                source = live
            except SyscapError as exc:  # CaptureError: one actionable line
                startup_error = one_line(exc)

    from tui import settings
    from tui.app import TopOptions

    settings_file = None if args.no_config else settings.settings_path()
    remembered = settings.load(settings_file) if settings_file else settings.TopSettings()
    options = TopOptions(
        interval_s=args.delay,
        readonly=args.readonly,
        low_color=args.low_color,
        animations="SSH_CONNECTION" not in environ,
        mouse=not args.no_mouse,
        syscall_table=table,
        initial_filter=choice,
        startup_error=startup_error,
        open_replay=open_replay,
        replay_path=args.replay,
        record_size=_record_size(),
        keymap=remembered.keys | parse_keymap(environ.get("SYSCAP_TOP_KEYS", "")),
        settings=remembered,
        settings_file=settings_file,
    )
    if remote is not None or (source is not None and source.backend == "replay"):
        options.user_of = _no_user  # the recorded or remote pids are not this machine's
    return source, options


def parse_keymap(text: str) -> dict[str, str]:
    """SYSCAP_TOP_KEYS='quit=ctrl+x;filter=f5,x' -> {binding id: keys} (ids: see F1)."""
    keymap = {}
    for item in text.split(";"):
        ident, _, keys = item.partition("=")
        if ident.strip() and keys.strip():
            keymap[ident.strip()] = keys.strip()
    return keymap


def _record_size() -> int | None:
    """Ring bytes per record (syscap_record.h), if capture_lib is built: the
    record and its 8-byte header, as the module's rings hold it (the eBPF
    rings' 64-byte slots take 14 % more: the lag shown is an estimate)."""
    try:
        from capture_lib import native

        _, lib = native.require()
        return int(lib.SYSCAP_REC_SIZE) + 8
    except CaptureError:  # not built here
        return None


def _no_user(pid: int) -> str:
    return "-"

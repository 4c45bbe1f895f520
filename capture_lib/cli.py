"""The `syscap` command: record, report, info here; top, restore, bench and
export come from their packages, which register their own subcommands."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from capture_lib import filter_spec, syscalls
from capture_lib.errors import Parser, SyscapError, UsageError, run_command
from capture_lib.snapshot import Filter

if TYPE_CHECKING:
    from capture_lib.remote import RemoteRecord

# Subcommands that other packages register (pyproject.toml's entry points).
COMMANDS_GROUP = "syscap.commands"


def _pid(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a process id")
    return int(text)


def add_filter_args(p: argparse.ArgumentParser) -> None:
    """-p/--comm/-e/--failed, shared by record, top and exporters."""
    p.add_argument("-p", "--pid", type=_pid, action="append", default=[], metavar="PID",
                   help="trace this process and its future children (repeatable)")
    p.add_argument("--comm", action="append", default=[], metavar="NAME",
                   help="trace only tasks with this command name (repeatable)")
    p.add_argument("-e", "--syscalls", metavar="SYSCALLS",
                   help="only these syscalls: names, numbers or groups (%%file, %%network,"
                        " ...), comma-separated")
    p.add_argument("--failed", action="store_true", help="only failed syscalls")
    p.add_argument("--filter", metavar="NAME|FILE", help=filter_spec.FILTER_HELP)


def filter_from_args(args: argparse.Namespace) -> Filter:
    if args.filter:
        spec = filter_spec.load_alone(args.filter, args.pid, args.comm, args.syscalls,
                                      getattr(args, "failed", False))
        try:
            return spec.to_filter(filter_spec.host_table())
        except ValueError as e:
            raise UsageError(f"--filter {args.filter}: {e}") from None
    comms = frozenset(args.comm)
    for c in comms:
        if not c or len(c.encode()) > 15:
            raise UsageError(f"--comm {c!r}: a command name has 1 to 15 bytes (as in ps -o comm)")
    return Filter(
        syscalls=syscalls.parse_set(args.syscalls) if args.syscalls else frozenset(),
        pids=frozenset(args.pid),
        comms=comms,
        failed_only=bool(getattr(args, "failed", False)),
    )


def _refuse_local_options(args: argparse.Namespace, mode: str, why: str,
                          agent_options: bool) -> None:
    """A UsageError for the first option given that a recording by an agent cannot
    take: the filters and -- COMMAND, and with agent_options also -a, --duration,
    --buffer-size and --backend, which --ssh honours (the agent records everything,
    and it passes the rest on) but --remote's command must carry itself."""
    options = (  # (option, given, one of the agent's own)
        ("-a", args.all, True), ("-p", args.pid, False), ("--comm", args.comm, False),
        ("-e", args.syscalls, False), ("--failed", args.failed, False),
        ("--filter", args.filter, False), ("--duration", args.duration, True),
        ("--buffer-size", args.buffer_size, True), ("--backend", args.backend != "auto", True),
        ("--args", args.args, True), ("-- COMMAND", args.command, False))  # fmt: skip
    local = [opt for opt, given, agents in options if given and (agent_options or not agents)]
    if local:
        raise UsageError(f"{local[0]} with {mode}: {why}")


def _remote_result(res: RemoteRecord) -> int:
    """Say how a trace from an agent ended: 0 complete, 1 cut short."""
    if res.complete:
        print(f"syscap record: {res.bytes} bytes of trace written to {res.path}", file=sys.stderr)
        return 0
    print(f"syscap record: {res.path} ends early ({res.bytes} bytes): {res.why}; "
          "syscap report reads what arrived", file=sys.stderr)  # fmt: skip
    return 1


def _cmd_record_remote(args: argparse.Namespace) -> int:
    from capture_lib.remote import record_remote

    _refuse_local_options(args, "--remote", "the agent on the box records; give its options in "
                          "the command, e.g. --remote 'ssh box syscap-agent record -o - "
                          "--duration 10'", agent_options=True)

    def started() -> None:
        print(f"syscap record: recording to {args.output} until Ctrl-C or the command ends",
              file=sys.stderr, flush=True)

    return _remote_result(record_remote(args.remote, args.output, force=args.force,
                                        on_started=started))


def _cmd_record_ssh(args: argparse.Namespace) -> int:
    from capture_lib.remote import record_remote
    from capture_lib.ssh import Bootstrap, ssh_argv

    if args.remote is not None:
        raise UsageError("--ssh and --remote: give one (--ssh HOST runs the agent there itself)")
    _refuse_local_options(args, "--ssh", "the agent records every process; filter the trace "
                          "afterwards (syscap report -p PID)", agent_options=False)
    agent = ["record", "-o", "-"]
    if args.duration is not None:
        if not args.duration > 0:
            raise UsageError(f"--duration {args.duration:g}: give a positive number of seconds")
        agent += ["--duration", f"{args.duration:g}"]
    if args.backend != "auto":
        agent += ["--backend", args.backend]
    if args.buffer_size:
        agent += ["--buffer-size", args.buffer_size]
    if args.args:
        agent += ["--args"]
    argv = ssh_argv(args.ssh, args.ssh_options, agent, args.ssh_dir)

    def started() -> None:
        until = "the duration ends" if args.duration is not None else "Ctrl-C"
        print(f"syscap record: recording {args.ssh} to {args.output} until {until}",
              file=sys.stderr, flush=True)

    return _remote_result(record_remote(
        argv, args.output, force=args.force, on_started=started,
        prelude=Bootstrap(timeout_s=30.0), needs="",
        check="install OpenSSH's client (Debian: openssh-client)"))  # fmt: skip


def _cmd_record(args: argparse.Namespace) -> int:
    from capture_lib.live import DEFAULT_RING_SIZE, parse_size

    if (args.ssh_options or args.ssh_dir) and args.ssh is None:
        raise UsageError("--ssh-option or --ssh-dir without --ssh: give the box with --ssh HOST")
    if args.ssh is not None:
        return _cmd_record_ssh(args)
    if args.remote is not None:
        return _cmd_record_remote(args)
    from capture_lib.record import record

    command = args.command
    if command and command[0] == "--":
        command = command[1:]
    if command and (args.all or args.pid):
        raise UsageError("give either -a, -p PID or -- COMMAND, not several")
    if args.all and args.pid:
        raise UsageError("give either -a or -p PID, not both")
    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration {args.duration}: give a positive number of seconds")
    ring = parse_size(args.buffer_size) if args.buffer_size else DEFAULT_RING_SIZE
    def started() -> None:
        if not command:  # a command's own output is left alone
            until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
            print(f"syscap record: recording to {args.output} {until}", file=sys.stderr, flush=True)

    res = record(
        args.output, filter_from_args(args), backend=args.backend, ring_size=ring,
        all_processes=args.all, command=command or None, duration=args.duration,
        on_started=started, force=args.force, with_args=args.args,
    )
    t = res.totals
    fill = 100.0 * t.max_used / t.ring_size if t.ring_size else 0.0
    print(
        f"syscap record: {res.consumed} records ({t.events} syscalls) written to {res.path}; "
        f"{t.drops} dropped, {t.proc_drops} process events dropped, {t.missed} missed; "
        f"max ring fill {fill:.1f}% of {t.ring_size >> 10} KiB per CPU",
        file=sys.stderr,
    )
    return res.exit_status if res.exit_status is not None else 0


def _us(ns: float) -> str:
    return f"{ns / 1000:.1f}"


def _cmd_report(args: argparse.Namespace) -> int:
    from capture_lib.trace import build_report

    rep = build_report(args.trace, pid=args.pid or 0)
    # a file name need not be UTF-8, and stdout may not take it undecoded
    shown = "stdin" if args.trace == "-" else os.fsencode(args.trace).decode(
        errors="backslashreplace")
    field = {"count": "count", "time": "total_ns", "errors": "errors"}[args.sort]
    rows = sorted(rep.syscalls.values(), key=lambda s: (-int(getattr(s, field)), s.name))
    if args.json:
        out: dict[str, Any] = {
            "trace": shown,
            "arch": rep.info.arch,
            "kernel": rep.info.kernel,
            "backend": rep.info.backend,
            "clock": rep.info.clock,
            "events": rep.events,
            "dropped": rep.dropped,
            "dropped_process_events": rep.dropped_process_events,
            "missed": rep.missed,
            "duration_s": round(rep.duration_s, 6),
            "complete": rep.complete,
            "exact": rep.exact,
            "warnings": rep.warnings,
            "max_ring_fill": rep.max_used / rep.ring_size if rep.ring_size else 0.0,
            "syscalls": {
                s.name: {"count": s.count, "errors": s.errors, "total_ns": s.total_ns,
                         "avg_ns": round(s.avg_ns, 1), "p50_ns": s.p50_ns, "p99_ns": s.p99_ns}
                for s in rows
            },
            "processes": [
                {"pid": p.pid, "comm": p.comm, "count": p.count, "errors": p.errors,
                 "exited": p.exited,
                 "syscalls": {s.name: {"count": s.count, "errors": s.errors,
                                       "total_ns": s.total_ns} for s in p.syscalls}}
                for p in rep.snapshot.processes
            ],
        }
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        i = rep.info
        print(f"trace {shown}: {i.arch}, kernel {i.kernel}, backend {i.backend}, "
              f"{rep.duration_s:.3f} s, {rep.events} records, {rep.dropped} dropped"
              + ("" if rep.exact else " (counts from records)"))
        total_ns = sum(s.total_ns for s in rows) or 1
        print(f"{'% time':>6} {'seconds':>11} {'usecs/call':>11} {'p99 usecs':>10} "
              f"{'calls':>9} {'errors':>9} syscall")
        print(f"{'-' * 6} {'-' * 11} {'-' * 11} {'-' * 10} {'-' * 9} {'-' * 9} {'-' * 16}")
        for s in rows:
            print(f"{100 * s.total_ns / total_ns:6.2f} {s.total_ns / 1e9:11.6f} "
                  f"{_us(s.avg_ns):>11} {_us(s.p99_ns):>10} {s.count:9d} "
                  f"{s.errors if s.errors else '':>9} {s.name}")
        print(f"{'-' * 6} {'-' * 11} {'-' * 11} {'-' * 10} {'-' * 9} {'-' * 9} {'-' * 16}")
        calls = sum(s.count for s in rows)
        errors = sum(s.errors for s in rows)
        print(f"{100.0:6.2f} {total_ns / 1e9:11.6f} {'':>11} {'':>10} {calls:9d} "
              f"{errors:9d} total")
        if args.pid:
            for p in rep.snapshot.processes:
                print(f"\nprocess {p.pid} ({p.comm}): {p.count} calls, {p.errors} errors")
    for w in rep.warnings:
        print(f"syscap report: warning: {w}", file=sys.stderr)
    return 0


def backend_status() -> dict[str, str]:
    """backend -> "ok" or the one-line reason it cannot run here."""
    from capture_lib.live import Session

    out: dict[str, str] = {}
    for name in ("bpf", "kmod"):
        if name == "kmod" and not os.path.exists("/dev/syscap"):
            out[name] = ("/dev/syscap is missing: load the module (insmod kmod/syscap.ko; "
                         "this kernel may not allow modules)")
            continue
        try:
            Session(name, 1 << 16).close()
            out[name] = "ok"
        except SyscapError as e:
            out[name] = str(e)
    return out


def _cmd_info(args: argparse.Namespace) -> int:
    if args.syscalls:
        for nr, name in sorted(syscalls.table().items()):
            print(f"{nr:4d} {name:24s} {syscalls.group_of(name)}")
        return 0
    u = os.uname()
    print(f"syscap on {u.nodename}: {u.machine}, kernel {u.release}")
    print(f"BTF: {'yes' if os.path.exists('/sys/kernel/btf/vmlinux') else 'no'}")
    status = backend_status()
    for name, s in status.items():
        print(f"backend {name}: {'available' if s == 'ok' else 'unavailable: ' + s}")
    usable = [n for n, s in status.items() if s == "ok"]
    print(f"auto selects: {('kmod' if 'kmod' in usable else usable[0]) if usable else 'none'}")
    return 0 if usable else 1


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` (the word after `syscap`), of the
    packages' subcommands only the one registered under that name, when there is
    one: importing every package (the benchmarks, the UI) costs more than some
    commands take to run (`syscap restore` of a 100 MB core with 16 threads:
    475 ms with all of them loaded, 305-320 ms with its own only)."""
    parser = Parser(
        prog="syscap", description="Low-overhead syscall capture, live view and coredump restore."
    )
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("record", help="capture syscalls into a trace file")
    p.add_argument("-o", "--output", default="syscap.trace", metavar="TRACE")
    p.add_argument("--force", action="store_true",
                   help="replace TRACE if it exists (a symbolic link is never followed)")
    p.add_argument("--backend", choices=("auto", "bpf", "kmod"), default="auto")
    p.add_argument("-a", "--all", action="store_true", help="every process on the machine")
    add_filter_args(p)
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--buffer-size", metavar="SIZE", help="ring bytes per CPU (default 8M)")
    p.add_argument("--args", action="store_true",
                   help="write each syscall's six argument registers into the trace too "
                        "(records of 96 bytes instead of 48)")
    p.add_argument("--remote", metavar="CMD",
                   help="write the trace that CMD prints, e.g. --remote 'ssh root@box "
                        "syscap-agent record -o -'; Ctrl-C is passed on to it as SIGINT")
    p.add_argument("--ssh", metavar="HOST",
                   help="record every process on HOST over one ssh connection (HOST or "
                        "USER@HOST; key login), sending it the static agent when it has no "
                        "copy (kept under /tmp/syscap-UID there); --duration, --backend, "
                        "--buffer-size and --args apply there; Ctrl-C ends the trace cleanly")
    p.add_argument("--ssh-option", dest="ssh_options", metavar="NAME=VALUE", action="append",
                   default=[], help="an ssh option for --ssh (ssh -o), e.g. Port=2222 "
                                    "(repeatable)")
    p.add_argument("--ssh-dir", metavar="DIR", default="",
                   help="with --ssh: keep the agent in DIR/syscap-UID on the box instead of "
                        "under its $TMPDIR or /tmp")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser("report", help="summarise a trace (like strace -c)")
    p.add_argument("trace", metavar="TRACE", help="a trace file, or - for one piped into stdin")
    p.add_argument("--json", action="store_true")
    p.add_argument("--sort", choices=("count", "time", "errors"), default="time")
    p.add_argument("-p", "--pid", type=_pid, metavar="PID", help="only this process")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("info", help="which backends work here, and if not, why")
    p.add_argument("--syscalls", action="store_true", help="list this machine's syscall table")
    p.set_defaults(func=_cmd_info)

    # A package that fails to import fails here, loudly, with its traceback:
    # a missing subcommand would hide the real error.
    eps = list(importlib.metadata.entry_points(group=COMMANDS_GROUP))
    chosen = [ep for ep in eps if ep.name == command]
    for ep in sorted(chosen or eps, key=lambda e: e.name):
        ep.load()(sub)
    return parser


def command_word(argv: list[str]) -> str | None:
    """The subcommand argv names (its first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(command_word(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    # every product's errors derive from SyscapError (the restorer's too)
    return run_command(args, args.cmd)


if __name__ == "__main__":
    sys.exit(main())

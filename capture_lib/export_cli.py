"""`syscap export` (a trace to Perfetto) and `syscap exporter` (a Prometheus endpoint)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any

from capture_lib import syscalls
from capture_lib.errors import UsageError


def _pid(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a process id")
    return int(text)


def _cmd_export(args: argparse.Namespace) -> int:
    from capture_lib.perfetto import export_perfetto
    from capture_lib.trace import TraceFile

    if args.format != "perfetto":
        raise UsageError(f"--format {args.format}: only 'perfetto' is supported")
    wanted = None
    if args.syscalls:
        with TraceFile(args.trace) as tf:  # names from the trace's architecture
            arch = tf.info.arch
        wanted = syscalls.parse_set(args.syscalls, arch)
    res = export_perfetto(
        args.trace, args.output, pids=args.pid, syscalls=wanted, start_s=args.start,
        end_s=args.end, counter_interval_s=args.counter_interval, force=args.force,
    )
    print(f"syscap export: {res.slices} syscall slices from {res.records} records, "
          f"{res.threads} threads in {res.processes} processes, {res.counters} counter values "
          f"written to {args.output} ({res.bytes / 1e6:.1f} MB); open it in ui.perfetto.dev",
          file=sys.stderr)
    for w in res.warnings:
        print(f"syscap export: warning: {w}", file=sys.stderr)
    return 0


def _cmd_exporter(args: argparse.Namespace) -> int:
    from capture_lib.exporter import is_loopback, parse_listen

    host, port = parse_listen(args.listen)
    if not is_loopback(host) and not args.listen_public:
        raise UsageError(f"--listen {args.listen}: {host} is not a loopback address, and the "
                         "metrics name the host's processes with their syscall counts; give "
                         "--listen-public as well to serve them there")
    if args.interval <= 0:
        raise UsageError(f"--interval {args.interval:g}: give a positive number of seconds")
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise UsageError("the exporter needs prometheus_client: pip install prometheus_client "
                         "(into syscap's virtualenv)") from None

    from capture_lib.cli import filter_from_args
    from capture_lib.exporter import Exporter, bind_http, make_registry
    from capture_lib.live import DEFAULT_RING_SIZE, parse_size

    ring = parse_size(args.buffer_size) if args.buffer_size else DEFAULT_RING_SIZE
    if not 0 < args.sample_budget <= 100:
        raise UsageError(f"--sample-budget {args.sample_budget:g} is not a percentage in "
                         "(0, 100]: give e.g. --sample-budget 1")
    exp = Exporter(filter_from_args(args), args.top_comms, args.backend, ring,
                   durations=args.durations, sample_budget=args.sample_budget)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        try:
            server = bind_http(host, port, make_registry(exp))
        except OSError as e:
            raise UsageError(f"cannot listen on {args.listen}: {e.strerror}; give another "
                             "--listen HOST:PORT") from None
        serving = False
        try:
            # the probes are attached: nothing below needs a capability, and
            # every thread started from here on inherits none
            kept = exp.session.drop_capabilities()
            exp.start()
            threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
            serving = True
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            if args.listen_public:
                print("syscap exporter: warning: serving per-process syscall counts and command "
                      f"names (comms) of this host to anyone who can reach {args.listen}",
                      file=sys.stderr)
            mode = {"records": "durations of every call", "sampled": "sampled durations",
                    "counts": "count mode"}[exp.session.mode]
            print(f"syscap exporter: serving http://{args.listen}/metrics (backend "
                  f"{exp.session.backend}, {mode}, top {args.top_comms} comms, {kept})",
                  file=sys.stderr, flush=True)
            while not stop.wait(args.interval):
                exp.refresh()  # keeps the aggregation table small between scrapes
        finally:
            if serving:
                server.shutdown()  # waits for serve_forever: only once it runs
            server.server_close()
    finally:
        exp.close()
    return 0


def register(sub: Any) -> None:
    """Add `export` and `exporter` to the syscap command."""
    from capture_lib.cli import add_filter_args
    from capture_lib.exporter import DEFAULT_LISTEN, DEFAULT_TOP_COMMS
    from capture_lib.perfetto import DEFAULT_COUNTER_INTERVAL_S

    p = sub.add_parser("export", help="convert a trace for Perfetto (ui.perfetto.dev)")
    p.add_argument("trace", metavar="TRACE")
    p.add_argument("--format", default="perfetto", choices=("perfetto",),
                   help="Perfetto's JSON trace-event format (the default)")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--force", action="store_true",
                   help="replace OUT if it exists (a symbolic link is never followed)")
    p.add_argument("-p", "--pid", type=_pid, action="append", default=[], metavar="PID",
                   help="only this process and the children it forks (repeatable)")
    p.add_argument("-e", "--syscalls", metavar="SYSCALLS",
                   help="only these syscalls: names, numbers or groups, comma-separated")
    p.add_argument("--start", type=float, metavar="S",
                   help="only syscalls entered S seconds or more after the trace's start")
    p.add_argument("--end", type=float, metavar="S",
                   help="only syscalls entered before S seconds after the trace's start")
    p.add_argument("--counter-interval", type=float, default=DEFAULT_COUNTER_INTERVAL_S,
                   metavar="S", help="bin width of the calls/s counters (default %(default)s)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("exporter", help="serve live syscall metrics to Prometheus")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help="address of the /metrics endpoint (default %(default)s); a "
                        "non-loopback address needs --listen-public")
    p.add_argument("--listen-public", action="store_true",
                   help="allow a --listen address other hosts can reach: they see every "
                        "traced process's command name and syscall counts")
    p.add_argument("--durations", choices=("off", "sampled", "all"), default="off",
                   help="export a duration histogram: from a sample of the calls (sampled, "
                        "within --sample-budget) or from every call (all); by default (off) "
                        "the exporter only counts, which costs least per syscall")
    p.add_argument("--latency", dest="durations", action="store_const", const="all",
                   help="the same as --durations all")
    p.add_argument("--sample-budget", type=float, default=1.0, metavar="PERCENT",
                   help="sampled durations: the CPU (percent of one core) the sample may add "
                        "(default %(default)s)")
    p.add_argument("--top-comms", type=int, default=DEFAULT_TOP_COMMS, metavar="N",
                   help="comm label values besides 'other' (default %(default)s)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="fold captured data into the totals this often (default %(default)s)")
    p.add_argument("--backend", choices=("auto", "bpf", "kmod"), default="auto")
    p.add_argument("--buffer-size", metavar="SIZE", help="ring bytes per CPU (default 8M)")
    add_filter_args(p)
    p.set_defaults(func=_cmd_exporter)


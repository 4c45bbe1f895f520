"""A box watched from here: `syscap-agent stream` run by a command (usually ssh) as a
SnapshotSource, so `syscap top --remote 'CMD'` shows it on the same screen as a live
capture.

    CMD (split like a shell would, run without one)
      stdout  -> reader thread -> StreamDecoder -> intervals waiting for snapshot()
      stdin   <- set_filter(): the agent's filter commands, applied in the box's kernel
      stderr  -> kept (its last line says why a connection ended, e.g. ssh's message)

A connection that ends (the command exits, the stream stops or turns to garbage) never
raises out of the reader: the source keeps every interval that arrived, `lost` says
why it ended, and snapshot() raises ConnectionLost once nothing is left to hand out, so
the UI keeps its last screen and shows the message. close() ends the command and its
process group and reaps it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from capture_lib import syscalls
from capture_lib.errors import CaptureError, UsageError
from capture_lib.snapshot import Filter, ProcessStats, RingStats, Snapshot, SyscallStats
from capture_lib.stream import StreamDecoder, StreamError, StreamInfo, StreamInterval

START_TIMEOUT_S = 30.0  # ssh may ask a slow DNS or a slow box first
STOP_TIMEOUT_S = 2.0  # for the agent to end its stream after its stdin closed
STDERR_LINES = 20
COMM_LEN = 16  # the kernel's, with its NUL (syscap_record.h SYSCAP_COMM_LEN)
MAX_COMMS = 8  # SYSCAP_MAX_COMMS
MAX_PIDS = 64  # the agent's AGENT_MAX_PIDS
# ssh options that take a value (ssh(1)): the destination is the first word after them
_SSH_VALUE_OPTS = set("BbcDEeFIiJLlmOopQRSWw")


class ConnectionLost(CaptureError):
    """The command's stream ended; str() says why, starting 'connection lost: '."""


def remote_host(argv: list[str]) -> str:
    """What the header calls the box: ssh's destination host, else the command's name."""
    if not argv:
        return "?"
    if os.path.basename(argv[0]) == "ssh":
        words = iter(argv[1:])
        for word in words:
            if word == "--":
                word = next(words, "")
            elif word.startswith("-") and len(word) > 1:
                for i, ch in enumerate(word[1:], 1):
                    if ch in _SSH_VALUE_OPTS:
                        if i == len(word) - 1:
                            next(words, None)  # the value is the next word
                        break
                continue
            dest = word.removeprefix("ssh://")
            host = dest.rpartition("@")[2]
            if word.startswith("ssh://"):
                host = host.partition(":")[0]
            return host or word
    return os.path.basename(argv[0])


@dataclass(frozen=True, slots=True)
class RemoteTable:
    """The box's syscall numbers (from its stream header), as filter_spec.SyscallTable."""

    info: StreamInfo

    @property
    def groups(self) -> Mapping[str, frozenset[str]]:
        return syscalls.GROUPS

    def number(self, name: str) -> int:
        if name in self.info.names and name:
            return self.info.names.index(name)
        if name.startswith("syscall_") and name[8:].isdigit():
            return int(name[8:])
        raise ValueError(f"unknown syscall {name!r} on the remote box ({self.info.arch})")


def _percentile(buckets: dict[int, int], q: float) -> int:
    """Upper bound (ns) of the q quantile of log2 buckets (bucket b: [2^(b-1), 2^b))."""
    total = sum(buckets.values())
    seen = 0
    for b in sorted(buckets):
        seen += buckets[b]
        if seen >= q * total:
            return (1 << b) - 1 if b else 0
    return 0


def _filter_commands(old: Filter, new: Filter, table: StreamInfo) -> list[str]:
    """The agent's commands that turn filter old into new (only what changed)."""
    if new.exclude_pids or new.exclude_comms:
        raise UsageError(
            "the remote agent cannot exclude processes or comms: "
            "filter by the ones to keep (pids or comms) instead"
        )
    for comm in new.comms:
        if not comm or len(comm.encode()) >= COMM_LEN or any(c in comm for c in ", \t\n"):
            raise UsageError(f"comm {comm!r} cannot be sent to the agent: give a name of 1 to "
                             f"{COMM_LEN - 1} characters without commas or spaces")
    if len(new.comms) > MAX_COMMS:
        raise UsageError(f"the agent filters at most {MAX_COMMS} comms: give fewer")
    if len(new.pids) > MAX_PIDS:
        raise UsageError(f"the agent filters at most {MAX_PIDS} processes: give fewer")
    if any(nr < 0 or nr >= len(table.names) for nr in new.syscalls):
        raise UsageError("a syscall number beyond the remote box's table: pick names it has")

    def items(values: frozenset[int] | frozenset[str]) -> str:
        return ",".join(sorted(str(v) for v in values)) if values else "all"

    out = []
    if new.syscalls != old.syscalls:
        out.append(f"filter syscalls {items(new.syscalls)}")
    if new.comms != old.comms:
        out.append(f"filter comm {items(new.comms)}")
    if new.pids != old.pids:
        out.append(f"filter pid {items(new.pids)}")
    if new.failed_only != old.failed_only:
        out.append(f"filter failed {'on' if new.failed_only else 'off'}")
    return out


def _exit_text(status: int | None) -> str:
    if status is None:
        return ""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start argv in its own session with pipes for stdin, stdout and stderr. A
    Ctrl-C that lands while Popen is still returning would leave the command
    running unseen (its session gets no terminal signals): in the main thread,
    SIGINT waits until the command can be ended, and then ends it."""
    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

    if threading.current_thread() is not threading.main_thread():
        return popen()
    held: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        proc = popen()
    finally:
        signal.signal(signal.SIGINT, old)
    if held and old is not signal.SIG_IGN:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                f.close()
        raise KeyboardInterrupt
    return proc


def command_argv(command: str, what: str, example: str) -> list[str]:
    """--remote's command split as a shell would; UsageError when it cannot be, or
    is empty (what: what the command does, example: one that does it)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--remote {command!r}: {exc}: quote it as a shell would") from None
    if not argv:
        raise UsageError(f"--remote needs the command that {what}, e.g. --remote '{example}'")
    return argv


class RemoteSource:
    """SnapshotSource over `syscap-agent stream` run by a command (e.g. through ssh)."""

    def __init__(self, command: str | list[str], start_timeout_s: float = START_TIMEOUT_S,
                 prelude: Callable[[subprocess.Popen[bytes]], None] | None = None,
                 check: str = "check the --remote command") -> None:  # fmt: skip
        """command: a --remote string (split as a shell would) or an argv. prelude:
        run on the started command before its output is read as a stream (the
        --ssh bootstrap); its UsageError or CaptureError ends the command and is
        raised. check: what the one-line error of a command that cannot run ends with."""
        if isinstance(command, str):
            argv = command_argv(command, "runs the agent", "ssh root@box syscap-agent stream")
        else:
            argv = command
        self.argv = argv
        self.host = remote_host(argv)
        self._decoder = StreamDecoder()
        self._cond = threading.Condition()
        self._pending: list[StreamInterval] = []
        self._lost: str | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._filter = Filter()
        self._sent = 0  # filter commands written to the agent
        self._applied = 0  # of them, applied before the latest interval handed out began
        self._prev_events = 0
        self._prev_drops = 0
        self._prev_agent_ns = 0
        # the agent's own CPU (percent of one CPU over the last snapshot) and memory (bytes)
        self.agent_cost: tuple[float, int] | None = None
        self._last_end_ns = 0
        self._last_rings: tuple[RingStats, ...] = ()
        self.last: Snapshot | None = None  # the last snapshot handed out with data in it
        self._closed = False
        self._err_thread = threading.Thread(target=self._read_stderr, name="remote-stderr",
                                            daemon=True)  # fmt: skip
        self._thread = threading.Thread(target=self._read, name="remote-stream", daemon=True)
        try:
            # Its own session: close() ends the whole group (ssh and what it started),
            # and the terminal's signals (the UI owns the terminal) never reach it.
            self._proc = _spawn(argv)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise CaptureError(f"cannot run {argv[0]!r}: {why}: {check}") from None
        try:
            self._err_thread.start()
            if prelude is not None:
                prelude(self._proc)
            self._thread.start()
            with self._cond:
                self._cond.wait_for(
                    lambda: self._decoder.info is not None or self._lost is not None,
                    timeout=start_timeout_s,
                )
                info, lost = self._decoder.info, self._lost
        except BaseException:  # Ctrl-C while ssh connects: its own session would outlive us
            self.close()
            raise
        if info is None:
            self.close()
            if lost is None:
                raise CaptureError(
                    f"no stream from {shlex.join(argv)!r} within {start_timeout_s:g} s: "
                    "check that it runs 'syscap-agent stream' and needs no password")
            raise CaptureError(lost.removeprefix("connection lost: "))
        self.info: StreamInfo = info
        self.syscall_table = RemoteTable(info)

    # -- what the UI asks ------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self.info.backend

    @property
    def kernel(self) -> str:
        return self.info.kernel

    @property
    def lost(self) -> str | None:
        """None while connected, else 'connection lost: why'."""
        with self._cond:
            return self._lost

    @property
    def connection(self) -> str:
        return self.lost or f"connected to {self.host}"

    @property
    def said(self) -> tuple[str, ...]:
        """The last lines the command wrote to stderr (the agent's or ssh's messages)."""
        with self._cond:
            return tuple(self._stderr)

    @property
    def pid(self) -> int:
        """The command's process id (its process group's too)."""
        return self._proc.pid

    @property
    def filter_pending(self) -> bool:
        """A filter was sent that no interval handed out so far began under."""
        return self._applied < self._sent

    def wait_lost(self, timeout_s: float) -> str | None:
        """Block until the connection is lost (or timeout_s passes); the message."""
        with self._cond:
            self._cond.wait_for(lambda: self._lost is not None, timeout=timeout_s)
            return self._lost

    def wait_intervals(self, count: int, timeout_s: float) -> bool:
        """Block until count intervals wait for snapshot() (or the connection is lost)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self._pending) >= count or self._lost is not None, timeout=timeout_s
            ) and len(self._pending) >= count

    def snapshot(self) -> Snapshot:
        """The intervals that arrived since the previous call, merged; an empty
        snapshot when none did; ConnectionLost once the connection ended and
        every interval that came before has been handed out."""
        with self._cond:
            got, self._pending = self._pending, []
            lost = self._lost
        if not got:
            if lost is not None:
                raise ConnectionLost(lost)
            return Snapshot(start_ns=self._last_end_ns, end_ns=self._last_end_ns,
                            processes=(), syscalls=(), rings=self._last_rings, events=0,
                            drops=0, latency=False)  # fmt: skip
        snap = self._merge(got)
        self.last = snap
        return snap

    def set_filter(self, flt: Filter) -> None:
        """Send the filter to the agent, which applies it in the box's kernel.
        UsageError for what the agent cannot express; ConnectionLost when the
        command is gone."""
        commands = _filter_commands(self._filter, flt, self.info)
        if not commands:
            return
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write("".join(c + "\n" for c in commands).encode())
            stdin.flush()
            self._sent += len(commands)
        except (OSError, ValueError):
            raise ConnectionLost(self.lost or "connection lost: the command's stdin is closed"
                                 ) from None  # fmt: skip
        self._filter = flt

    def close(self) -> None:
        """End the command: first by closing its stdin (the agent then ends its stream
        and releases the box's kernel), then by signals to its process group; reap it."""
        if self._closed:
            return
        self._closed = True
        proc = self._proc
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass  # a broken pipe: it is gone already
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._kill_group(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group(signal.SIGKILL)  # whatever it started and left running
        proc.wait()
        for t in (self._thread, self._err_thread):
            if t.ident is not None:  # started
                t.join(timeout=STOP_TIMEOUT_S)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()

    def _kill_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass  # the group is empty

    def _exit_status(self) -> int | None:
        """The command's exit status (negative: the signal), None if it still runs
        STOP_TIMEOUT_S after its output ended (it closed its stdout and lingers)."""
        try:
            return self._proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None

    # -- the threads ---------------------------------------------------------------------
    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode(errors="backslashreplace").strip()
            if line:
                with self._cond:
                    self._stderr.append(line)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        garbage: str | None = None
        cut: str | None = None
        try:
            while data := os.read(fd, 65536):
                items = self._decoder.feed(data)
                with self._cond:
                    for item in items:
                        if isinstance(item, StreamInterval):
                            self._pending.append(item)
                    self._cond.notify_all()
        except StreamError as exc:
            garbage = str(exc)
            with self._cond:  # the intervals that came in the same read stay
                self._pending.extend(i for i in exc.decoded if isinstance(i, StreamInterval))
        except OSError as exc:
            cut = f"reading the command's output failed: {exc.strerror}"
        if garbage is None and cut is None:
            try:
                self._decoder.close()
            except StreamError as exc:
                # before the header the decoder's words help; after it, short ones
                cut = str(exc) if self._decoder.info is None else "the stream stopped midway"
        self._lose(garbage, cut)

    def _lose(self, garbage: str | None, cut: str | None) -> None:
        """The stream is over: say why, from what the command told and how it ended."""
        how = ""
        if garbage is None:
            # Its output ended, so it is exiting: its stderr ends when it has, and the
            # last line there is usually the reason (ssh's, the agent's).
            self._err_thread.join(timeout=STOP_TIMEOUT_S)
            how = _exit_text(self._exit_status())
        with self._cond:
            said = self._stderr[-1] if self._stderr else None
            if garbage is not None:
                why = garbage  # the decoder's words say where it stopped making sense
            elif cut is None:
                why = "the agent ended its stream"
            else:
                why = said or cut
            if how and not self._closed:
                why = f"{why} ({os.path.basename(self.argv[0])}: {how})"
            self._lost = f"connection lost: {why}"
            self._cond.notify_all()

    # -- intervals into a snapshot -----------------------------------------------------------
    def _merge(self, got: list[StreamInterval]) -> Snapshot:
        info = self.info
        latency = all(i.latency for i in got)
        sampled = latency and any(i.sampled for i in got)  # durations from a sample
        procs: dict[int, tuple[str, bool, dict[int, list[int]]]] = {}
        for interval in got:
            for p in interval.procs:
                _, exited, rows = procs.get(p.tgid, ("", False, {}))
                for r in p.rows:
                    acc = rows.setdefault(r.nr, [0, 0, 0])
                    acc[0] += r.calls
                    acc[1] += r.errors
                    acc[2] += r.total_ns
                procs[p.tgid] = (p.comm, exited or p.exited, rows)
        hist: dict[int, dict[int, int]] = {}
        for interval in got:
            for nr, bucket, count in interval.hist:
                by_bucket = hist.setdefault(nr, {})
                by_bucket[bucket] = by_bucket.get(bucket, 0) + count

        def stats(nr: int, acc: list[int], p50: int = 0, p99: int = 0,
                  samples: int | None = None) -> SyscallStats:  # fmt: skip
            if samples is None:  # a process's row: the histograms are per syscall only
                samples = acc[0] if latency else 0
            return SyscallStats(nr=nr, name=info.name(nr), count=acc[0], errors=acc[1],
                                total_ns=acc[2], p50_ns=p50, p99_ns=p99, last_errno=0,
                                samples=samples)  # fmt: skip

        processes = []
        totals: dict[int, list[int]] = {}
        for tgid, (comm, exited, rows) in procs.items():
            calls = sorted((stats(nr, acc) for nr, acc in rows.items()),
                           key=lambda s: s.count, reverse=True)  # fmt: skip
            for nr, acc in rows.items():
                t = totals.setdefault(nr, [0, 0, 0])
                for k in range(3):
                    t[k] += acc[k]
            processes.append(ProcessStats(
                pid=tgid, comm=comm, count=sum(s.count for s in calls),
                errors=sum(s.errors for s in calls), total_ns=sum(s.total_ns for s in calls),
                p50_ns=0, p99_ns=0, syscalls=tuple(calls), exited=exited,
            ))  # fmt: skip
        by_syscall = sorted(
            (stats(nr, acc, _percentile(hist.get(nr, {}), 0.5),
                   _percentile(hist.get(nr, {}), 0.99),
                   sum(hist.get(nr, {}).values()) if sampled else None)
             for nr, acc in totals.items()),
            key=lambda s: s.count, reverse=True,
        )  # fmt: skip
        last = got[-1]
        self._applied = last.filter_gen
        rings = tuple(RingStats(cpu=r.cpu, size=r.size, used=r.used, max_used=r.max_used,
                                events=r.events, drops=r.drops) for r in last.rings)  # fmt: skip
        events, drops = last.events - self._prev_events, last.drops - self._prev_drops
        self._prev_events, self._prev_drops = last.events, last.drops
        span = last.end_ns - got[0].start_ns
        if span > 0:
            cpu = max(last.agent_cpu_ns - self._prev_agent_ns, 0) / span * 100
            self.agent_cost = (cpu, last.agent_rss)
        self._prev_agent_ns = last.agent_cpu_ns
        self._last_end_ns, self._last_rings = last.end_ns, rings
        return Snapshot(
            start_ns=got[0].start_ns, end_ns=last.end_ns, processes=tuple(processes),
            syscalls=tuple(by_syscall), rings=rings, events=max(events, 0),
            drops=max(drops, 0), missed=last.missed, latency=latency, sampled=sampled,
        )  # fmt: skip


# -- syscap record --remote -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteRecord:
    """What `record_remote` wrote."""

    path: str
    bytes: int
    complete: bool  # the trace ended with its END block
    why: str  # "" when complete, else why it stopped early


def _create(path: str, force: bool) -> int:
    """A new trace file (mode 0600), as `syscap record` makes them: an existing one is
    replaced only with force, a symbolic link never followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_TRUNC if force else os.O_EXCL
    try:
        return os.open(path, flags, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists: give --force to replace it") from None
    except OSError as exc:
        raise CaptureError(f"cannot create {path}: {exc.strerror}") from None


def record_remote(command: str | list[str], path: str, force: bool = False,
                  on_started: Callable[[], None] | None = None,
                  prelude: Callable[[subprocess.Popen[bytes]], None] | None = None,
                  check: str = "check the --remote command",
                  needs: str = "the --remote command must print a trace, e.g. "
                               "'ssh box syscap-agent record -o -'") -> RemoteRecord:  # fmt: skip
    """Run command (e.g. `ssh box syscap-agent record -o -`) and write the trace it
    prints to path, checked block by block as it arrives, until it ends. SIGINT and
    SIGTERM are passed on to the command's process group as SIGINT (a second one:
    SIGKILL); its stdin is empty. With a prelude (the --ssh bootstrap, run on the
    started command before its output is read) stdin stays open instead, and the
    first SIGINT or SIGTERM closes it: the box then stops the agent. CaptureError
    when the command does not start or prints no trace (nothing is left at path then)."""
    if isinstance(command, str):
        argv = command_argv(command, "prints the trace", "ssh root@box syscap-agent record -o -")
    else:
        argv = command
    fd = _create(path, force)
    stderr: deque[str] = deque(maxlen=STDERR_LINES)
    signals = 0
    proc: subprocess.Popen[bytes] | None = None

    def stop(signum: int, frame: object) -> None:
        nonlocal signals
        signals += 1
        if proc is None:
            return  # not started yet: the check below ends it
        if prelude is not None and signals == 1 and proc.stdin is not None:
            try:
                proc.stdin.close()  # the box stops its agent at the end of its stdin
            except OSError:
                pass
            return
        try:
            os.killpg(proc.pid, signal.SIGINT if signals == 1 else signal.SIGKILL)
        except ProcessLookupError:
            pass

    # Before the start: a Ctrl-C must never leave the command running in its session.
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL if prelude is None else subprocess.PIPE,
                                start_new_session=True)  # fmt: skip
    except OSError as exc:
        for s, h in old.items():
            signal.signal(s, h)
        os.close(fd)
        os.unlink(path)
        raise CaptureError(f"cannot run {argv[0]!r}: {exc.strerror or exc}: {check}") from None
    if signals:
        os.killpg(proc.pid, signal.SIGINT)
    assert proc.stdout is not None and proc.stderr is not None
    err_pipe = proc.stderr

    def keep_stderr() -> None:
        for raw in err_pipe:
            line = raw.decode(errors="backslashreplace").strip()
            if line:
                stderr.append(line)

    err_thread = threading.Thread(target=keep_stderr, name="remote-stderr", daemon=True)
    err_thread.start()
    dec = StreamDecoder()
    written = 0
    bad: str | None = None
    failed: CaptureError | UsageError | None = None
    try:
        if prelude is not None and not signals:
            try:
                prelude(proc)
            except (CaptureError, UsageError) as exc:  # the box cannot run the agent
                failed = exc
        out = proc.stdout.fileno()
        while failed is None and (data := os.read(out, 65536)):
            try:
                dec.feed(data)
            except StreamError as exc:
                bad = str(exc)
                break
            os.write(fd, data)
            if on_started is not None and dec.info is not None:
                on_started()  # the header is here and sound: the box records
                on_started = None
            written += len(data)
        os.fsync(fd)
    finally:
        os.close(fd)
        for s, h in old.items():
            signal.signal(s, h)
        try:
            status = proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # it closed its stdout and lingers
            os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it left running
        except ProcessLookupError:
            pass
        err_thread.join(timeout=STOP_TIMEOUT_S)
        proc.stdout.close()
        err_pipe.close()
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass  # a broken pipe: it is gone
    if failed is not None:
        os.unlink(path)
        raise failed
    said = stderr[-1] if stderr else ""
    how = f"{os.path.basename(argv[0])}: {_exit_text(status)}"
    if dec.info is None:  # not even a header: nothing worth keeping
        os.unlink(path)
        got = f"it printed {written} bytes, not a trace header" if written else "it printed nothing"
        why = bad or said or got
        raise CaptureError(f"{why} ({how}): {needs}" if needs else f"{why} ({how})")
    if bad is None and dec.ended:
        return RemoteRecord(path, written, True, "")
    if bad is None:
        bad = said or "the trace stopped without its end block"
    return RemoteRecord(path, written, False, f"{bad} ({how})")

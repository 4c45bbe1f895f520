"""The tracers every sub-benchmark compares, and how each is started and stopped.

Two kinds: system-wide tracers (the floor, syscap, bpftrace, ftrace, sysdig)
attach before the workload runs and see every process; per-process tracers
(strace, perf trace) either wrap the workload's command (micro) or attach to
its running processes (nginx). Tracers and their consumers run on TRACER_CPU,
the workload on WORK_CPU (strace is the exception, see _wrap_strace). Every
process started here is in its own session and is stopped (then killed, with
its group) when its block ends, failure or not;
the ftrace instance is removed the same way. A tracer that cannot run here says
why in one line (why_not), and its row prints that instead of a number.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from capture_lib.errors import SyscapError, UsageError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NATIVE = HERE / "native" / "build"
WORK_CPU, TRACER_CPU = 1, 0
TRACEFS = Path("/sys/kernel/tracing")


class BenchError(SyscapError):
    """The benchmark cannot run at all (the message says what to do)."""


class TracerError(SyscapError):
    """One tracer failed to start or died; its row says so and the run goes on."""


def pinned(cmd: list[str], cpu: int = TRACER_CPU) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd]


@dataclass
class Proc:
    """A started process whose output is collected (the tail is kept for errors)."""

    popen: subprocess.Popen[bytes]
    label: str
    tail: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, cmd: list[str], label: str, ready: str | None = None,
              stream: str = "stdout", timeout: float = 60.0, cwd: Path = ROOT) -> Proc:
        """Start cmd (in cwd); with ready, return once that text appears on stream."""
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True, cwd=cwd)
        except OSError as e:
            raise TracerError(f"{label}: cannot start {cmd[0]}: {e.strerror}") from e
        proc = cls(p, label)
        try:
            if ready is not None:
                proc._wait_for(ready, stream, timeout)
        except BaseException:
            proc.kill()
            raise
        proc._drain()
        return proc

    def _wait_for(self, word: str, stream: str, timeout: float) -> None:
        pipe = self.popen.stdout if stream == "stdout" else self.popen.stderr
        other = self.popen.stderr if stream == "stdout" else self.popen.stdout
        assert pipe is not None and other is not None
        sel = selectors.DefaultSelector()
        sel.register(pipe, selectors.EVENT_READ)
        sel.register(other, selectors.EVENT_READ)
        seen = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.2):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    if key.fileobj is pipe:
                        seen += chunk
                    self._keep(chunk)
                    if word.encode() in seen:
                        return
                if not sel.get_map():
                    break
            code = self.popen.poll()
            what = f"exited with {code}" if code is not None else f"not ready in {timeout:.0f} s"
            raise TracerError(f"{self.label} {what}: {self.last_words()}")
        finally:
            sel.close()

    def _keep(self, chunk: bytes) -> None:
        self.tail.extend(chunk.decode(errors="replace").splitlines())
        del self.tail[:-20]

    def _drain(self) -> None:
        """Read both pipes to their end in the background (no tracer blocks on a
        full pipe)."""
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                t = threading.Thread(target=self._read_all, args=(pipe.fileno(),), daemon=True)
                t.start()
                self._threads.append(t)

    def _read_all(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 65536):
                self._keep(chunk)
        except OSError:
            pass

    def last_words(self) -> str:
        lines = [ln.strip() for ln in self.tail if ln.strip()]
        return lines[-1] if lines else "no output"

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            for t in self._threads:
                t.join(timeout=1)
            raise TracerError(f"{self.label} died (exit {code}): {self.last_words()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL the process group this process leads (only what we started)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait()
        for t in self._threads:
            t.join(timeout=2)
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                pipe.close()


@dataclass(frozen=True)
class Target:
    """What per-process tracers follow: running pids (nginx), or nothing when the
    workload's command is wrapped instead (micro)."""

    pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Tracer:
    key: str  # JSON key, stable
    name: str  # row label
    why_not: Callable[[], str | None]
    attach: Callable[[Path, Target], Iterator[Proc | None]]
    per_process: bool = False  # strace, perf trace: follow the workload, not the system
    wrap: Callable[[list[str]], list[str]] | None = None
    note: str = ""

    @contextmanager
    def attached(self, work: Path, target: Target) -> Iterator[Proc | None]:
        """The tracer running for the duration of the block (none for wrapped
        per-process tracers without pids: they run as the workload's parent)."""
        if self.per_process and not target.pids:
            yield None
            return
        with contextmanager(self.attach)(work, target) as proc:
            yield proc
            if proc is not None:
                proc.check_alive()


# ------------------------------------------------------------------ why_not checks


def _need(*tools: str) -> str | None:
    for t in tools:
        if not shutil.which(t):
            pkg = {"bpftrace": "bpftrace", "perf": "linux-perf", "strace": "strace",
                   "sysdig": "sysdig", "taskset": "util-linux"}.get(t, t)
            return f"{t} is not installed (apt-get install {pkg})"
    return None


def _root() -> str | None:
    return None if os.geteuid() == 0 else "needs root (BPF and tracefs): run as root"


def _native(*names: str) -> str | None:
    for n in names:
        if not (NATIVE / n).exists():
            return f"bench/native/build/{n} was not built (make -C bench/native)"
    return None


def syscap_why_not(backend: str) -> str | None:
    """None when syscap's backend works here, else why not (one line)."""
    if r := _root():
        return r
    what = {"bpf": "eBPF", "kmod": "kernel module"}[backend]
    try:
        from capture_lib.cli import backend_status

        status = backend_status()[backend]
    except SyscapError as e:
        return f"syscap {what} backend unavailable: {e}"
    except ImportError as e:  # the native binding is not built
        return f"capture_lib is not built ({e}): run ./setup.sh"
    if status == "ok":
        return None
    if backend == "kmod" and not os.path.exists("/proc/modules"):
        return (f"this kernel ({os.uname().release}) cannot load modules: see the guest rows")
    return f"syscap {what} backend unavailable: {status}"


def _syscap_bpf() -> str | None:
    return syscap_why_not("bpf")


def _tracefs() -> str | None:
    if r := _root():
        return r
    if not (TRACEFS / "instances").is_dir():
        return f"tracefs is not mounted: mount -t tracefs nodev {TRACEFS}"
    if not (TRACEFS / "events" / "raw_syscalls").is_dir():
        return "this kernel has no raw_syscalls trace events (CONFIG_FTRACE_SYSCALLS)"
    return None


def _sysdig() -> str | None:
    if r := _need("sysdig") or _root():
        return r
    if os.path.exists("/dev/scap0"):
        return None
    if not os.path.exists("/proc/modules"):
        return ("sysdig needs its scap kernel module (or an eBPF probe built from kernel "
                f"headers), and this kernel ({os.uname().release}) cannot load modules; "
                "see the guest rows")
    return "sysdig's scap module is not loaded (apt-get install falcosecurity-scap-dkms)"


# ------------------------------------------------------------------ attach functions


def _none(work: Path, target: Target) -> Iterator[Proc | None]:
    yield None


def _loader(obj: str) -> Callable[[Path, Target], Iterator[Proc | None]]:
    def attach(work: Path, target: Target) -> Iterator[Proc | None]:
        p = Proc.start(pinned([str(NATIVE / "floor_loader"), str(NATIVE / obj)]),
                       "floor_loader", ready="ready")
        try:
            yield p
        finally:
            p.stop(signal.SIGTERM)

    return attach


# What `syscap top` runs: its live source (no start-up calibration), in-kernel
# filter, a snapshot every second (which also retunes the sample), no file.
_TOP_CODE = (
    "import signal,sys; from capture_lib.live import LiveSource; "
    "stop={signal.SIGTERM, signal.SIGINT}; signal.pthread_sigmask(signal.SIG_BLOCK, stop); "
    "s=LiveSource('bpf', calibrate=False, durations=sys.argv[1]); "
    "print('ready', flush=True)\n"
    "while signal.sigtimedwait(stop, 1.0) is None: s.snapshot()\n"
    "s.close()"
)


def _syscap_top(durations: str, tree: Path = ROOT
                ) -> Callable[[Path, Target], Iterator[Proc | None]]:
    """top's live source, as built in tree (see _syscap_record)."""
    def attach(work: Path, target: Target) -> Iterator[Proc | None]:
        p = Proc.start(pinned([sys.executable, "-c", _TOP_CODE, durations]),
                       f"syscap top (durations {durations})", ready="ready", cwd=tree)
        try:
            yield p
        finally:
            p.stop(signal.SIGTERM)

    return attach


def _syscap_record(backend: str, tree: Path = ROOT
                   ) -> Callable[[Path, Target], Iterator[Proc | None]]:
    """syscap record -a, as built in tree (another checkout: its capture_lib is
    imported first, since `python -m` puts the working directory first)."""
    def attach(work: Path, target: Target) -> Iterator[Proc | None]:
        trace = work / "bench.trace"
        cmd = [sys.executable, "-m", "capture_lib.cli", "record", "--backend", backend, "-a",
               "-o", str(trace)]
        p = Proc.start(pinned(cmd), f"syscap record ({backend})", ready="recording to",
                       stream="stderr", cwd=tree)
        try:
            yield p
        finally:
            p.stop(signal.SIGTERM)
            trace.unlink(missing_ok=True)
    return attach


def _bpftrace(work: Path, target: Target) -> Iterator[Proc | None]:
    prog = "tracepoint:raw_syscalls:sys_enter { @[pid, args->id] = count(); }"
    p = Proc.start(pinned(["bpftrace", "-e", prog]), "bpftrace", ready="Attaching")
    try:
        time.sleep(0.5)  # "Attaching" is printed just before the probes are live
        yield p
    finally:
        p.stop(signal.SIGINT)


def _ftrace(work: Path, target: Target) -> Iterator[Proc | None]:
    # A private instance (other users of tracefs are not disturbed), its
    # raw_syscalls events on, and a reader draining trace_pipe as a consumer.
    inst = TRACEFS / "instances" / f"syscap-bench-{os.getpid()}"
    try:
        inst.mkdir()
    except OSError as e:
        raise TracerError(f"ftrace: cannot create {inst}: {e.strerror}") from e
    p: Proc | None = None
    try:
        (inst / "events" / "raw_syscalls" / "enable").write_text("1\n")
        p = Proc.start(pinned(["sh", "-c", f"exec cat {inst}/trace_pipe > /dev/null"]),
                       "ftrace reader")
        time.sleep(0.1)
        yield p
    finally:
        if p is not None:
            p.stop(signal.SIGTERM)
        try:
            (inst / "events" / "raw_syscalls" / "enable").write_text("0\n")
        finally:
            inst.rmdir()


def _perf_trace(work: Path, target: Target) -> Iterator[Proc | None]:
    pids = ",".join(map(str, target.pids))
    p = Proc.start(pinned(["perf", "trace", "-p", pids, "-o", "/dev/null"]), "perf trace")
    try:
        # perf trace says nothing once attached: wait for its perf events
        # (enter and exit per traced thread), then a little for enabling them.
        _wait_fds(p, "anon_inode:[perf_event]", 2 * len(target.pids))
        time.sleep(0.3)
        yield p
    finally:
        p.stop(signal.SIGINT)


def _wait_fds(p: Proc, link: str, count: int, timeout: float = 20.0) -> None:
    """Wait until p holds count open files that are link (e.g. perf events)."""
    deadline = time.monotonic() + timeout
    fds = Path(f"/proc/{p.popen.pid}/fd")
    while time.monotonic() < deadline:
        p.check_alive()
        n = 0
        try:
            for fd in fds.iterdir():
                try:
                    n += os.readlink(fd) == link
                except OSError:
                    continue
        except OSError:
            pass
        if n >= count:
            return
        time.sleep(0.05)
    raise TracerError(f"{p.label} did not attach in {timeout:.0f} s: {p.last_words()}")


def _strace(work: Path, target: Target) -> Iterator[Proc | None]:
    args = [a for pid in target.pids for a in ("-p", str(pid))]
    p = Proc.start(["strace", "-f", "-o", "/dev/null", *args], "strace",  # see _wrap_strace
                   ready="attached", stream="stderr")
    try:
        yield p
    finally:
        p.stop(signal.SIGINT)


def _sysdig_attach(work: Path, target: Target) -> Iterator[Proc | None]:
    p = Proc.start(pinned(["sysdig", "-w", "/dev/null"]), "sysdig")
    try:
        time.sleep(2.0)
        p.check_alive()
        yield p
    finally:
        p.stop(signal.SIGINT)


def _wrap_strace(cmd: list[str]) -> list[str]:
    # strace stops the tracee at every syscall and waits for it: pinned to the
    # other CPU every stop is a cross-CPU wake-up, 16x slower here (170 us
    # against 10.6 us per getppid, under load). Users do not pin it and the
    # scheduler keeps tracer and tracee together, so it is not pinned here
    # either (as in the first micro.py); the loop inside still runs on WORK_CPU.
    return ["strace", "-f", "-qq", "-o", "/dev/null", *cmd]


def _wrap_perf(cmd: list[str]) -> list[str]:
    return pinned(["perf", "trace", "-o", "/dev/null", "--", *cmd])


BASELINE = "baseline"
FLOOR = "floor"
# Checkouts of other commits whose `syscap record -a` and count mode run beside
# this one's, colon-separated, each built (make -C capture_lib): an A/B in one run.
OTHER_TREES = "SYSCAP_BENCH_OTHER"


def _other_trees() -> list[Tracer]:
    def why_not(built: Path) -> Callable[[], str | None]:
        return lambda: _syscap_bpf() or (None if built.exists() else f"{built} is not built")

    rows = []
    for tree in filter(None, os.environ.get(OTHER_TREES, "").split(":")):
        path = Path(tree).resolve()
        built = why_not(path / "capture_lib" / "build" / "libsyscap.a")
        rows.append(Tracer(f"syscap-record@{path.name}", f"syscap record -a, {path.name}",
                           built, _syscap_record("bpf", path)))
        rows.append(Tracer(f"syscap-count@{path.name}", f"syscap count mode, {path.name}",
                           built, _syscap_top("off", path)))
    return rows


def all_tracers() -> list[Tracer]:
    """The rows of micro and nginx, in table order (baseline and floor first)."""
    return [
        Tracer(BASELINE, "baseline (no tracing)", lambda: None, _none),
        Tracer(FLOOR, "floor (empty tp_btf enter+exit)",
               lambda: _root() or _native("floor_loader", "floor.bpf.o"), _loader("floor.bpf.o")),
        Tracer("record-floor", "record floor (2 clocks, 1 ring)",
               lambda: _root() or _native("floor_loader", "floor_record.bpf.o"),
               _loader("floor_record.bpf.o")),
        Tracer("record-floor-slots", "record floor, syscap's design, 96-byte record",
               lambda: _root() or _native("floor_loader", "floor_slots.bpf.o"),
               _loader("floor_slots.bpf.o")),
        Tracer("record-floor-compact", "record floor, syscap's design (cpu slot, own ring)",
               lambda: _root() or _native("floor_loader", "floor_compact.bpf.o"),
               _loader("floor_compact.bpf.o")),
        Tracer("syscap-count", "syscap count mode (top's default)", _syscap_bpf,
               _syscap_top("off")),
        Tracer("syscap-sampled", "syscap top, sampled durations (l)", _syscap_bpf,
               _syscap_top("sampled")),
        Tracer("syscap-timed", "syscap top, every duration (l l)", _syscap_bpf,
               _syscap_top("all")),
        Tracer("syscap-record", "syscap record -a to file", _syscap_bpf,
               _syscap_record("bpf")),
        Tracer("syscap-record-kmod", "syscap record -a, kmod backend",
               lambda: syscap_why_not("kmod"), _syscap_record("kmod")),
        Tracer("bpftrace", "bpftrace count per pid+syscall",
               lambda: _need("bpftrace") or _root(), _bpftrace),
        Tracer("ftrace", "ftrace raw_syscalls (trace_pipe)", _tracefs, _ftrace),
        Tracer("perf-trace", "perf trace", lambda: _need("perf") or _root(), _perf_trace,
               per_process=True, wrap=_wrap_perf),
        Tracer("strace", "strace -f", lambda: _need("strace"), _strace, per_process=True,
               wrap=_wrap_strace),
        Tracer("sysdig", "sysdig -w /dev/null", _sysdig, _sysdig_attach),
        *_other_trees(),
    ]


def select(keys: tuple[str, ...] | None) -> list[Tracer]:
    """The tracers named by keys (baseline always, first), or all of them."""
    tracers = all_tracers()
    if not keys:
        return tracers
    known = [t.key for t in tracers]
    if unknown := [k for k in keys if k not in known]:
        raise UsageError(f"unknown tracer {', '.join(unknown)}: choose from {', '.join(known)}")
    return [t for t in tracers if t.key == BASELINE or t.key in keys]

"""Restore time for kernel cores of about 10 MB and 100 MB of resident memory, with 1 and
16 threads.

Builds a small C program that fills SIZE MB of heap with non-zero pseudo-random data (so
the restorer cannot skip zero pages), starts THREADS-1 more threads that wait on a
condition variable (each with its own stack and TLS) and dumps core with SIGQUIT. Then
restores each core RUNS times in this process through the library (Core + restore, every
thread, up to the point where the process is ready to continue, then kills it) and prints
the median; interleaved with that, the whole command as "cli median"
(`python -m restorer restore CORE`: interpreter start, imports, restore, summary, kill)
and as "syscap median" (`syscap restore CORE`, which also finds the subcommand among the
installed packages' entry points, as an installed syscap does).

Run as root from the repo root:  syscap bench restore [--rounds N]
    or  .venv/bin/python -m bench.restore_bench [--runs N] [--cpu C] [--threads 1,16]
Goal: under 1 s for 100 MB with 16 threads on x86-64.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from restorer.core import Core
from restorer.restore import restore

PROGRAM = r"""
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int waiting;

static void *waiter(void *arg)
{
	pthread_mutex_lock(&lock);
	waiting++;
	pthread_cond_broadcast(&cond);
	for (;;)
		pthread_cond_wait(&cond, &lock);
	return arg;
}

int main(int argc, char **argv)
{
	size_t size = (size_t)atol(argv[1]) << 20;
	int threads = atoi(argv[2]);
	uint64_t *p = malloc(size), x = 88172645463325252ull;
	pthread_t t;

	for (size_t i = 0; i < size / 8; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		p[i] = x;
	}
	for (int i = 1; i < threads; i++)
		pthread_create(&t, NULL, waiter, NULL);
	pthread_mutex_lock(&lock);
	while (waiting < threads - 1)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	syscall(SYS_kill, getpid(), SIGQUIT);
	printf("%lu\n", (unsigned long)(p[size / 16] & 0xff));
	return 0;
}
"""


def make_core(workdir: Path, exe: Path, size_mb: int, threads: int = 1) -> Path:
    d = workdir / f"{size_mb}mb-{threads}t"
    d.mkdir()

    def unlimited() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)  # a background job starts with it ignored

    p = subprocess.run([exe, str(size_mb), str(threads)], cwd=d, preexec_fn=unlimited,
                       check=False)  # fmt: skip
    if p.returncode != -signal.SIGQUIT:
        raise SystemExit(f"benchmark program did not dump core (status {p.returncode})")
    cores = sorted(d.glob("core*"))
    if not cores:
        raise SystemExit("no core written: core_pattern must name a plain file (e.g. 'core')")
    return cores[0]


def time_restore(core_path: Path) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    with Core(core_path) as core:
        restored = restore(core)
        elapsed = time.perf_counter() - t0
        restored.tracee.kill()
        return elapsed, restored.report.bytes_written, restored.report.regions


def time_cli(core_path: Path, module: str = "restorer") -> float:
    """Wall time of `python -m MODULE restore CORE` (start-up, restore, summary, kill);
    MODULE capture_lib.cli is the `syscap` command."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", module, "restore", str(core_path)],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sizes", default="10,100", help="resident MB per core (comma separated)")
    ap.add_argument("--threads", default="1,16", help="threads per core (comma separated)")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = ap.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|"):
        raise SystemExit(f"core_pattern pipes cores to {pattern!r}; set it to 'core' to run this")
    with tempfile.TemporaryDirectory(prefix="restore-bench-") as tmp:
        work = Path(tmp)
        src = work / "fill.c"
        src.write_text(PROGRAM)
        exe = work / "fill"
        subprocess.run(["gcc", "-O2", "-fPIE", "-pie", "-pthread", "-o", exe, src], check=True)
        print(f"{'size':>8} {'threads':>7} {'core file':>10} {'written':>9} {'maps':>5} "
              f"{'median':>9} {'min':>9} {'max':>9} {'cli median':>11} {'syscap median':>14}  "
              f"runs={args.runs}")  # fmt: skip
        cases = [(int(s), int(t)) for s in args.sizes.split(",") for t in args.threads.split(",")]
        for size, threads in cases:
            core = make_core(work, exe, size, threads)
            times = []
            written = regions = 0
            cli = []
            syscap = []
            for _ in range(args.runs):  # interleaved: library call, then the whole commands
                t, written, regions = time_restore(core)
                times.append(t)
                cli.append(time_cli(core))
                syscap.append(time_cli(core, "capture_lib.cli"))
            print(
                f"{size:>6}MB {threads:>7} {core.stat().st_size / 1e6:>8.1f}MB "
                f"{written / 1e6:>7.1f}MB "
                f"{regions:>5} {statistics.median(times) * 1000:>7.1f}ms "
                f"{min(times) * 1000:>7.1f}ms {max(times) * 1000:>7.1f}ms "
                f"{statistics.median(cli) * 1000:>9.0f}ms "
                f"{statistics.median(syscap) * 1000:>12.0f}ms"
            )
            core.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())

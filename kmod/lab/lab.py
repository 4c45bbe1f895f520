#!/usr/bin/env python3
"""syscap guest lab: test the kernel module on Debian cloud kernels in QEMU.

One run, for one kernel id (5.10-amd64, 6.1-amd64, 6.12-amd64, 6.1-arm64):

1. fetch the kernel (images.fetch: image, headers, kbuild and busybox-static
   from Debian, with a private apt configuration, cached);
2. build syscap.ko against its headers and the static guest test program
   (kmod/lab/guest/kmodtest.c with capture_lib's ring.c, kmod_backend.c and
   count_sum.c);
3. pack a busybox initramfs, boot it under QEMU TCG and collect the serial
   console: one "SYSCAP-TEST <name> PASS|FAIL|SKIP <detail>" line per guest
   test, and each test's dmesg between "SYSCAP-DMESG <name> BEGIN/END".

`python3 kmod/lab/lab.py run 6.1-amd64` prints the parsed results;
tests/kmod drives the same functions through pytest. `run-custom` runs steps
2 and 3 on a kernel the user built (its image and build tree, see
images.check_custom), with the matrix's busybox.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
import re
import sys
import time
from pathlib import Path

# kmod/lab is a folder of scripts, not a package: run as a script, this
# folder is sys.path[0]; the tests put it on sys.path to import this file.
from images import (
    DMESG_BAD,
    INCLUDE,
    KERNELS,
    LAB,
    REPO,
    KernelTree,
    LabError,
    boot_guest,
    build_dir,
    build_module,
    check_custom,
    check_module,
    compiler,
    custom_tree,
    fetch,
    lab_lock,
    log,
    run,
    warnings_in,
    write_initramfs,
)

CAPTURE_SRC = REPO / "capture_lib" / "src"


def build_tests(tree: KernelTree) -> tuple[dict[str, Path], list[str]]:
    """The static guest programs (name in the guest's / -> file), and the
    warning lines of their builds."""
    ring = CAPTURE_SRC / "ring.c"
    if not ring.exists():
        raise LabError(f"{ring} is missing: the guest tests use capture_lib's drain loop")
    cc = f"{tree.kernel.cross}gcc"
    flags = [cc, "-static", "-O2", "-g", "-Wall", "-Wextra", "-pthread", f"-I{INCLUDE}"]
    workloads = REPO / "tests" / "capture_lib" / "workloads"
    sources = {
        "kmodtest": [LAB / "guest" / "kmodtest.c", CAPTURE_SRC / "kmod_backend.c",
                     CAPTURE_SRC / "count_sum.c", CAPTURE_SRC / "record.c", ring],
        # the workloads the eBPF tests run too
        "edge_syscalls": [workloads / "edge_syscalls.c"],
        "workload": [workloads / "workload.c"],
    }
    bins: dict[str, Path] = {}
    warnings: list[str] = []
    for name, srcs in sources.items():
        bins[name] = build_dir(tree) / name
        out = run([*flags, *map(str, srcs), "-o", str(bins[name])], timeout=300)
        warnings += warnings_in(out)
    agent, out = build_agent(tree.kernel.arch)
    bins["syscap-agent"] = agent
    warnings += warnings_in(out)
    return bins, warnings


def build_agent(arch: str) -> tuple[Path, str]:
    """syscap-agent for the guest's architecture, as ./setup.sh builds it (make agent /
    agent-arm64 in capture_lib), and the build's output."""
    native = os.uname().machine
    target = "aarch64" if arch == "arm64" else "x86_64"
    goal = "agent" if target == native else {"aarch64": "agent-arm64"}.get(target)
    if goal is None:
        raise LabError(f"syscap-agent for {arch} cannot be built on {native}: boot an "
                       f"{native} guest")  # fmt: skip
    out = run(["make", "-C", str(REPO / "capture_lib"), f"PYTHON={sys.executable}", goal],
              timeout=600)  # fmt: skip
    return REPO / "capture_lib" / "build" / f"agent-{target}" / "syscap-agent", out


# Guest tests in the order they run; load_unload comes last (it reloads the
# module itself), ARG is filled in from the options.
GUEST_TESTS = [
    "second_open",
    "mmap_rules",
    "exact_counts",
    "count_mode",
    "sampled_mode",
    "process_tree",
    "clock",
    "syscall_filter",
    "failed_only",
    "comm_filter",
    "self_exclusion",
    "filter_flips",
    "edge_syscalls",
    "capability",
    "loss_accounting",
    "mmap_order",
    "ioctl_fuzz",
    "agent_record",
    "agent_stream",
    "agent_record_bpf",
    "agent_stream_bpf",
    "agent_stream_count_bpf",
    "load_unload",
]
# Guest tests /init runs itself (shell functions in AGENT_SHELL): syscap-agent with the
# module, as on a board with no Python. What they send back (the trace, the stream)
# comes out base64-encoded between SYSCAP-BLOB markers; the host checks the counts.
AGENT_TESTS = {  # name -> the /init call
    "agent_record": "agent_record agent_record kmod",
    "agent_stream": "agent_stream agent_stream kmod",
    # eBPF where the kernel has BTF: records mode (--durations), and count mode
    # (5.15+: every kernel of the lab with BTF)
    "agent_record_bpf": "bpf_or_skip agent_record_bpf && agent_record agent_record_bpf bpf",
    "agent_stream_bpf": "bpf_or_skip agent_stream_bpf && "
                        "agent_stream agent_stream_bpf bpf --durations",
    "agent_stream_count_bpf": "bpf_or_skip agent_stream_count_bpf && "
                              "agent_stream agent_stream_count_bpf bpf",
}
AGENT_GETPPID = 1000  # the workload's getppid() calls, as in tests/capture_lib
AGENT_SHELL = r"""
blob() {  # NAME FILE: the file, base64, on the console
	echo "SYSCAP-BLOB $1 BEGIN"
	# uuencode -m: base64 in every busybox the lab boots (bullseye's has no base64
	# applet); its first and last lines are its own framing
	uuencode -m "$2" blob | sed '1d;$d;s/^/SYSCAP-B64 /'
	echo "SYSCAP-BLOB $1 END"
}
bpf_or_skip() {  # NAME: true when the eBPF backend can run here (5.11 with BTF)
	rel=$(uname -r); maj=${rel%%.*}; min=${rel#*.}; min=${min%%.*}
	if [ "$maj" -lt 5 ] || { [ "$maj" -eq 5 ] && [ "$min" -lt 11 ]; }; then
		echo "SYSCAP-TEST $1 SKIP kernel $rel: the eBPF backend needs 5.11"
		return 1
	fi
	[ -r /sys/kernel/btf/vmlinux ] && return 0
	echo "SYSCAP-TEST $1 SKIP the kernel has no BTF (/sys/kernel/btf/vmlinux)"
	return 1
}
agent_record() {  # NAME BACKEND
	rm -f /tmp/rec.err /tmp/rec.trace
	mkfifo /tmp/rec.err
	/syscap-agent record --backend "$2" -o /tmp/rec.trace 2>/tmp/rec.err &
	apid=$!
	exec 4</tmp/rec.err
	read -r first <&4  # the agent's first line: its probes are attached
	case "$first" in
	*"recording to"*) ;;
	*) echo "SYSCAP-TEST $1 FAIL did not start: $first"; exec 4<&-; return ;;
	esac
	/workload @N@ 0 0 0 0 0 4<&- & wpid=$!
	wait $wpid; wrc=$?
	kill -INT $apid
	wait $apid; arc=$?
	rest=$(cat <&4)
	exec 4<&-
	echo "SYSCAP-VALUE $1 workload_pid $wpid"
	blob "$1" /tmp/rec.trace
	if [ "$arc" = 0 ] && [ "$wrc" = 0 ]; then
		echo "SYSCAP-TEST $1 PASS $rest"
	else
		echo "SYSCAP-TEST $1 FAIL agent exit $arc, workload exit $wrc: $rest"
	fi
}
agent_stream() {  # NAME BACKEND [OPTION]
	rm -f /tmp/cmd /tmp/out /tmp/stream /tmp/stream.err
	mkfifo /tmp/cmd /tmp/out
	/syscap-agent stream --backend "$2" $3 --interval 0.5 </tmp/cmd >/tmp/out \
		2>/tmp/stream.err &
	spid=$!
	exec 5>/tmp/cmd  # the agent's stdin, open until the end
	exec 6</tmp/out
	# the header is written once the probes are attached: one byte at a time, so
	# nothing after it is read here
	dd bs=1 count=8 <&6 >/tmp/stream 2>/dev/null
	# children must not hold the agent's stdin open (5>&-), or it never ends
	cat <&6 >>/tmp/stream 5>&- & cpid=$!
	/workload @N@ 0 0 0 0 0 5>&- 6<&- & wpid=$!
	wait $wpid; wrc=$?
	exec 5>&-  # the end of stdin: the agent sends the last interval and stops
	wait $spid; src=$?
	wait $cpid
	exec 6<&-
	echo "SYSCAP-VALUE $1 workload_pid $wpid"
	blob "$1" /tmp/stream
	if [ "$src" = 0 ] && [ "$wrc" = 0 ]; then
		echo "SYSCAP-TEST $1 PASS $(wc -c </tmp/stream) bytes"
	else
		echo "SYSCAP-TEST $1 FAIL agent exit $src, workload exit $wrc:" \
			"$(cat /tmp/stream.err)"
	fi
}
""".replace("@N@", str(AGENT_GETPPID))
# Reported by /init itself around the program's tests.
INIT_TESTS = ["load", "device_node", "unload"]


def init_script(tests: list[tuple[str, int]]) -> str:
    lines = [
        "#!/bin/busybox sh",
        "/bin/busybox --install -s /bin",
        "export PATH=/bin",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        "mount -t devtmpfs devtmpfs /dev",
        'echo "SYSCAP-LAB BEGIN $(uname -r) $(uname -m) cpus=$(nproc)"',
        'echo "SYSCAP-DMESG boot BEGIN"; dmesg -c; echo "SYSCAP-DMESG boot END"',
        "if insmod /syscap.ko; then echo 'SYSCAP-TEST load PASS insmod'; "
        "else echo 'SYSCAP-TEST load FAIL insmod failed'; fi",
        'm=$(stat -c "%A %u" /dev/syscap 2>&1)',
        'if [ "$m" = "crw------- 0" ]; then echo "SYSCAP-TEST device_node PASS $m"; '
        'else echo "SYSCAP-TEST device_node FAIL $m"; fi',
        'echo "SYSCAP-DMESG load BEGIN"; dmesg -c; echo "SYSCAP-DMESG load END"',
        AGENT_SHELL,
    ]
    for name, arg in tests:
        run_it = AGENT_TESTS.get(name, "")  # shell functions of /init
        if not run_it:
            run_it = f"timeout 900 /kmodtest {name} {arg or ''} || echo 'SYSCAP-EXIT {name} '$?"
        lines += [
            f'echo "SYSCAP-RUN {name} uptime $(cut -d" " -f1 /proc/uptime)"',
            run_it,
            f'echo "SYSCAP-DMESG {name} BEGIN"; dmesg -c; echo "SYSCAP-DMESG {name} END"',
        ]
    lines += [
        "if rmmod syscap && [ ! -e /dev/syscap ] && ! grep -q '^syscap ' /proc/modules; "
        "then echo 'SYSCAP-TEST unload PASS rmmod'; "
        "else echo 'SYSCAP-TEST unload FAIL module or device left'; fi",
        'echo "SYSCAP-DMESG unload BEGIN"; dmesg -c; echo "SYSCAP-DMESG unload END"',
        'echo "SYSCAP-LAB END uptime $(cut -d" " -f1 /proc/uptime)"',
        "poweroff -f",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- boot


@dataclasses.dataclass(frozen=True, slots=True)
class TestResult:
    status: str  # PASS, FAIL, SKIP
    detail: str


@dataclasses.dataclass(frozen=True, slots=True)
class GuestRun:
    """What one boot reported."""

    kid: str
    release: str
    results: dict[str, TestResult]
    dmesg: dict[str, str]
    completed: bool  # /init reached its end
    console: Path
    module_warnings: list[str]
    test_warnings: list[str]
    compiler_note: str  # empty when the module is built with the kernel's gcc
    seconds: float
    blobs: dict[str, bytes] = dataclasses.field(default_factory=dict)  # SYSCAP-BLOB
    values: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)  # SYSCAP-VALUE

    def console_problems(self) -> list[str]:
        """Kernel problems anywhere on the console, printed directly or dumped. The
        files the guest sends back (SYSCAP-B64 lines) are data: base64 may spell
        "Oops" as well as anything else."""
        text = self.console.read_bytes().decode(errors="replace")
        return [ln for ln in text.splitlines()
                if DMESG_BAD.search(ln) and "SYSCAP-B64 " not in ln]

    def dmesg_problems(self, segment: str) -> list[str]:
        return [ln for ln in self.dmesg.get(segment, "").splitlines() if DMESG_BAD.search(ln)]


def parse_console(text: str) -> tuple[dict[str, TestResult], dict[str, str], bool]:
    results: dict[str, TestResult] = {}
    dmesg: dict[str, list[str]] = {}
    current: str | None = None
    completed = False
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        # markers are searched, not matched: a kernel message printed straight
        # to the console can share a line with the guest's output
        m = re.search(r"SYSCAP-DMESG (\S+) (BEGIN|END)$", line)
        if m:
            current = m.group(1) if m.group(2) == "BEGIN" else None
            dmesg.setdefault(m.group(1), [])
            continue
        if current is not None:
            dmesg[current].append(line)
            continue
        m = re.search(r"SYSCAP-TEST (\S+) (PASS|FAIL|SKIP) ?(.*)$", line)
        if m:
            results[m.group(1)] = TestResult(m.group(2), m.group(3))
        m = re.search(r"SYSCAP-EXIT (\S+) (\d+)$", line)
        if m and m.group(1) not in results:
            results[m.group(1)] = TestResult("FAIL", f"exited with {m.group(2)}, no result line")
        if "SYSCAP-LAB END" in line:
            completed = True
    return results, {k: "\n".join(v) for k, v in dmesg.items()}, completed


def parse_blobs(text: str) -> tuple[dict[str, bytes], dict[str, dict[str, str]]]:
    """What the guest sent back: files (SYSCAP-BLOB NAME BEGIN, SYSCAP-B64 lines, END)
    and values (SYSCAP-VALUE TEST KEY VALUE). A kernel message that lands inside a
    blob is left out; one that lands inside a line breaks that blob, which the
    checks on its contents (CRCs) then catch."""
    blobs: dict[str, bytes] = {}
    values: dict[str, dict[str, str]] = {}
    current: str | None = None
    parts: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        m = re.search(r"SYSCAP-BLOB (\S+) (BEGIN|END)$", line)
        if m:
            if m.group(2) == "BEGIN":
                current, parts = m.group(1), []
            elif current is not None and current == m.group(1):
                try:
                    blobs[current] = base64.b64decode("".join(parts), validate=True)
                except ValueError:
                    blobs[current] = b""
                current = None
            continue
        m = re.search(r"SYSCAP-B64 ([A-Za-z0-9+/=]+)$", line)
        if m and current is not None:
            parts.append(m.group(1))
            continue
        m = re.search(r"SYSCAP-VALUE (\S+) (\S+) (.*)$", line)
        if m:
            values.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
    return blobs, values


def qemu_command(tree: KernelTree, initrd: Path) -> list[str]:
    common = ["-m", "1024", "-smp", "2", "-nographic", "-no-reboot", "-kernel", str(tree.image),
              "-initrd", str(initrd)]  # fmt: skip
    if tree.kernel.arch == "arm64":
        return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72",
                "-accel", "tcg,thread=single", *common,
                "-append", "console=ttyAMA0 panic=-1 loglevel=5 nokaslr"]  # fmt: skip
    # tsc=reliable: the kernel keeps its time with TCG's TSC, as on a machine
    # whose kernel trusts its TSC; the clock test switches to the HPET for a
    # round (without it the kernel's TSC sync check fails under TCG's turns)
    return ["qemu-system-x86_64", "-accel", "tcg,thread=single", "-cpu", "max", *common,
            "-append", "console=ttyS0 panic=-1 loglevel=5 tsc=reliable"]  # fmt: skip


def run_guest(
    kid: str,
    cycles: int = 1000,
    fuzz: int = 100000,
    timeout: float = 1800,
    only: list[str] | None = None,
) -> GuestRun:
    """Fetch, build, boot and parse one kernel of the matrix (one run at a time)."""
    with lab_lock():
        t0 = time.monotonic()
        return _boot_suite(fetch(KERNELS[kid]), cycles, fuzz, timeout, only, t0)


def run_custom(
    arch: str,
    image: Path,
    build_tree: Path,
    cycles: int = 1000,
    fuzz: int = 100000,
    timeout: float = 1800,
    only: list[str] | None = None,
    module: Path | None = None,
) -> GuestRun:
    """The same guest suite on a kernel the user built (see check_custom); with
    module, that syscap.ko (built for the kernel elsewhere, by dkms say) instead of
    one built here from kmod/."""
    t0 = time.monotonic()
    release = check_custom(arch, image, build_tree)  # bad arguments fail before the lock
    if module is not None:
        check_module(module, release)
    with lab_lock():
        tree = custom_tree(arch, image, build_tree)
        return _boot_suite(tree, cycles, fuzz, timeout, only, t0, module)


def _boot_suite(
    tree: KernelTree,
    cycles: int,
    fuzz: int,
    timeout: float,
    only: list[str] | None,
    t0: float,
    module: Path | None = None,
) -> GuestRun:
    kid = tree.kernel.kid
    bdir = build_dir(tree)
    bdir.mkdir(parents=True, exist_ok=True)
    if module is None:
        ko, mod_warn = build_module(tree)
    else:
        log(f"the module is {module}, built elsewhere")
        ko, mod_warn = module, []
    test_bins, test_warn = build_tests(tree)
    args = {"load_unload": cycles, "ioctl_fuzz": fuzz}
    tests = [(t, args.get(t, 0)) for t in GUEST_TESTS if not only or t in only]
    initrd = bdir / "initrd.cpio"
    write_initramfs(
        initrd,
        {
            "init": (init_script(tests).encode(), 0o755),
            "bin/busybox": (tree.busybox.read_bytes(), 0o755),
            **{name: (path.read_bytes(), 0o755) for name, path in test_bins.items()},
            "syscap.ko": (ko.read_bytes(), 0o644),
        },
    )
    console = bdir / "console.log"
    log(f"booting {tree.release} ({kid})")
    text = boot_guest(qemu_command(tree, initrd), console, timeout)
    results, dmesg, completed = parse_console(text)
    blobs, values = parse_blobs(text)
    return GuestRun(
        kid,
        tree.release,
        results,
        dmesg,
        completed,
        console,
        mod_warn,
        test_warn,
        compiler(tree)[1],
        time.monotonic() - t0,
        blobs,
        values,
    )


def report(r: GuestRun, only: list[str] | None) -> int:
    """Print one boot's results; the number of failures."""
    failed = 0
    print(f"== {r.kid} ({r.release}) in {r.seconds:.0f} s, console: {r.console}")
    if r.compiler_note:
        print(f"  note: {r.compiler_note}")
    for w in r.module_warnings + r.test_warnings:
        print(f"  build warning: {w}")
        failed += 1
    for name in [*INIT_TESTS[:2], *GUEST_TESTS, INIT_TESTS[2]]:
        if only and name in GUEST_TESTS and name not in only:
            continue
        res = r.results.get(name, TestResult("FAIL", "no result"))
        bad = r.dmesg_problems(name)
        # SKIP: what the kernel cannot do (eBPF before 5.11), said as such; not a failure
        failed += res.status not in ("PASS", "SKIP") or bool(bad)
        print(f"  {res.status} {name}: {res.detail}")
        for b in bad:
            print(f"    dmesg: {b}")
    if not r.completed:
        print("  guest did not reach the end of /init")
        failed += 1
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=["fetch", "run", "run-custom"])
    ap.add_argument("kernels", nargs="*", metavar="KERNEL",
                    help=f"fetch and run: {', '.join(KERNELS)} or all")
    ap.add_argument("--cycles", type=int, default=1000, help="module load/unload cycles")
    ap.add_argument("--fuzz", type=int, default=100000, help="fuzzed ioctls")
    ap.add_argument("--only", help="comma-separated guest tests to run")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for one boot")
    ap.add_argument("--arch", default="", help="run-custom: arm64 or amd64")
    ap.add_argument("--image", type=Path,
                    help="run-custom: the kernel image (arch/arm64/boot/Image, "
                         "arch/x86/boot/bzImage)")
    ap.add_argument("--build-tree", type=Path,
                    help="run-custom: the kernel's build directory, prepared for "
                         "external modules")
    ap.add_argument("--module", type=Path,
                    help="run-custom: boot this syscap.ko, built for the kernel elsewhere "
                         "(by dkms, say), instead of building one from kmod/")
    a = ap.parse_args()
    only = a.only.split(",") if a.only else None
    if only and not set(only) <= set(GUEST_TESTS):
        unknown = ",".join(sorted(set(only) - set(GUEST_TESTS)))
        print(f"lab {a.step}: --only {unknown}: no such guest test: give some of "
              f"{','.join(GUEST_TESTS)}", file=sys.stderr)
        return 2
    if a.step == "run-custom":
        try:
            if a.kernels:
                raise LabError(f"{' '.join(a.kernels)}: run-custom boots the kernel of "
                               f"--image, name no matrix kernel")  # fmt: skip
            release = check_custom(a.arch, a.image, a.build_tree)
            if a.module is not None:
                check_module(a.module, release)
        except LabError as e:
            print(f"lab run-custom: {e}", file=sys.stderr)
            return 2
        try:
            r = run_custom(a.arch, a.image, a.build_tree, a.cycles, a.fuzz, a.timeout, only,
                           a.module)
        except LabError as e:
            print(f"lab run-custom: {e}", file=sys.stderr)
            return 1
        return 1 if report(r, only) else 0
    if not a.kernels or not set(a.kernels) <= {*KERNELS, "all"}:
        ap.error(f"{a.step}: name the kernels ({', '.join(KERNELS)} or all)")
    kids = list(KERNELS) if "all" in a.kernels else a.kernels
    failed = 0
    for kid in kids:
        if a.step == "fetch":
            with lab_lock():
                tree = fetch(KERNELS[kid])
            print(f"{kid}: {tree.release} in {tree.root}")
            continue
        failed += report(run_guest(kid, a.cycles, a.fuzz, a.timeout, only), only)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())


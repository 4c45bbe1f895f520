"""guest_boot: one boot of the guest benchmark (the rows of bench/guest.py).

One boot of 6.1-amd64 with a full Debian root file system measures nginx + ab
and a getppid loop for: no tracing, syscap's kmod backend, syscap's eBPF
backend and sysdig with its scap module. The root image is built once with the
lab's image builder (kmod/lab/images.py) and reused; what changes between runs
(the modules, the recorder, the scripts) goes on a second, small disk.

bench depends on the lab here, never the other way: the lab tests the module
and builds guests, this module decides what a benchmark guest holds and runs.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.guest import from_console
from bench.tracers import HERE, ROOT
from capture_lib.syscall_tables import TABLES

# kmod/lab is a folder of scripts, not a package.
sys.path.insert(0, str(ROOT / "kmod" / "lab"))
import images
from images import KernelTree, LabError, PrivateApt, cache_dir, log, run

BENCH_KERNEL = "6.1-amd64"
# minbase has no ip(8), pgrep or libbpf; sysdig's Recommends (the dkms
# package, hence a compiler) are left out: its module is built here.
BENCH_PACKAGES = ("nginx", "apache2-utils", "sysdig", "kmod", "procps", "iproute2",
                  "libbpf1", "libelf1", "zlib1g")
# Measured: debootstrap fetches 48 MB of .debs (145 packages); the 6.1 kernel
# (image, headers, kbuild) adds 39 MB where the lab has not fetched it yet.
DEBOOTSTRAP_MB = 50
BENCH_DOWNLOAD_MB = DEBOOTSTRAP_MB + 40
# PID 1 of the bench image: everything else comes from the bench disk.
BENCH_STUB = images.mount_disk_init("bench", "bench/guest_boot.py", "bench disk", "/bench",
                                    "SYSCAP-BENCH-LAB")
ROOT_IMAGE = images.RootImage("bench", BENCH_PACKAGES, BENCH_STUB, "/sbin/syscap-bench-init")
BUILD_ONCE = (f"run `syscap bench guest` once (downloads about {BENCH_DOWNLOAD_MB} MB, "
              "a few minutes)")


def build_scap(tree: KernelTree) -> Path:
    """sysdig's scap.ko for this kernel, from Debian's falcosecurity-scap-dkms
    source, built with kbuild against the lab's headers (once per kernel)."""
    apt = PrivateApt(tree.kernel.suite, tree.kernel.arch)
    apt.update()
    deb = apt.download("falcosecurity-scap-dkms", cache_dir() / "debs")
    out = images.guest_dir() / f"scap-{tree.abi}"
    ko = out / "scap.ko"
    stamp = out / ".source"
    if ko.exists() and stamp.exists() and stamp.read_text() == deb.name:
        return ko
    if out.exists():
        shutil.rmtree(out)
    unpacked = out / "deb"
    unpacked.mkdir(parents=True)
    run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    src = next((unpacked / "usr" / "src").glob("scap-*"))
    cmd = ["make", "-C", str(tree.headers), f"M={src}", "modules",
           "CONFIG_DEBUG_INFO_BTF_MODULES=", *images.compiler(tree)[0]]  # fmt: skip
    (out / "build.log").write_text(run(cmd, timeout=900))
    shutil.copy(src / "scap.ko", ko)
    stamp.write_text(deb.name)
    return ko


@dataclasses.dataclass(frozen=True, slots=True)
class BenchPlan:
    """How much one guest benchmark does."""

    rounds: int  # interleaved nginx rounds, then as many micro rounds
    requests: int  # ab -n per run
    calls: int  # getppid calls per micro run
    more_boots: int  # boots after the first, each with `rounds` micro rounds of MORE_KEYS
    count_boots: int  # then boots with `rounds` micro rounds of COUNT_KEYS

    @classmethod
    def of(cls, quick: bool, rounds: int | None = None) -> BenchPlan:
        if quick:
            return cls(rounds or 2, 1000, 100_000, 0, 0)
        return cls(rounds or 10, 6_000, 1_000_000, 3, 6)

    @property
    def boots(self) -> int:
        return 1 + self.more_boots + self.count_boots


BENCH_KEYS = ("baseline", "kmodfloor", "kmod", "kmodmono", "bpf", "kmodheld", "bpfheld",
              "kmodcount", "kmodsampled", "bpfcount", "sysdig")
# The rows of the guest goals (bench/guest.py GOALS): count mode against the
# module's empty probes is a difference of some 100 ns under TCG, and a run
# of the recorder scatters by several hundred (its consumer takes turns with
# the loop on the one host thread): a boot's 10 rounds of count mode less
# the floor scattered by 30 to 400 ns (standard deviation) over 30 boots,
# and its mean put count mode between 0.95x and 2.19x the floor over eight
# boots of one build. These rows get BenchPlan.more_boots more boots of
# micro rounds alone, pooled with the first boot's. The count goal's rows,
# whose difference is the smaller one, get BenchPlan.count_boots boots more:
# 100 rounds at the default 10. Twenty put count mode at 1.01x the floor one
# day and 1.21x the next; 100 over 10 boots at 1.02x [0.85, 1.13] (the run of
# 30 boots in docs/benchmarks.md). Without a recorder a boot takes a minute.
MORE_KEYS = ("baseline", "kmodfloor", "kmod", "bpf", "kmodcount")
COUNT_KEYS = ("baseline", "kmodfloor", "kmodcount")


def _among(wanted: Sequence[str], keys: Sequence[str]) -> list[str]:
    """The wanted keys among the rows that run: none unless two can pair."""
    got = [k for k in wanted if k in keys]
    return got if len(got) > 1 else []


def boot_keys(plan: BenchPlan, keys: Sequence[str], boot: int) -> list[str]:
    """The rows boot runs: every one in boot 0, then more_boots boots of
    MORE_KEYS, then count_boots boots of COUNT_KEYS (each among keys)."""
    if not boot:
        return list(keys)
    return _among(MORE_KEYS if boot <= plan.more_boots else COUNT_KEYS, keys)


# what each key needs on the bench disk, beyond the scripts
NEEDS = {"kmodfloor": ("floor_kmod.ko",), "kmod": ("syscap.ko", "guest_record"),
         "kmodmono": ("syscap.ko", "guest_record"),
         "bpf": ("guest_record",), "kmodheld": ("syscap.ko", "guest_record"),
         "bpfheld": ("guest_record",), "kmodcount": ("syscap.ko", "syscap-agent"),
         "kmodsampled": ("syscap.ko", "syscap-agent"), "bpfcount": ("syscap-agent",),
         "sysdig": ("scap.ko",)}


def syscall_names() -> bytes:
    """The trace header's name table (as capture_lib.live.names_blob())."""
    header = (images.INCLUDE / "syscap_record.h").read_text()
    m = re.search(r"#define SYSCAP_MAX_SYSCALLS\s+(\d+)", header)
    n = int(m.group(1)) if m else 512
    table = TABLES["x86_64"]
    return b"".join(table.get(nr, "").encode() + b"\0" for nr in range(n))


def build_recorder(tree: KernelTree) -> tuple[dict[str, Path], str]:
    """guest_record (with capture_lib built in the lab's own directory) and
    getppid_loop; what failed, if anything, in one line."""
    out = images.build_dir(tree) / "native"
    cmd = ["make", "-s", "-C", str(ROOT / "bench" / "native"), f"B={out}",
           f"LIBBUILD={images.build_dir(tree) / 'capture_lib'}"]  # fmt: skip
    bins = {}
    for name in ("getppid_loop", "guest_record"):
        try:
            run([*cmd, str(out / name)], timeout=900)
            bins[name] = out / name
        except LabError as e:
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            err = next((ln for ln in lines if "error" in ln), lines[-1])
            return bins, f"building {name} failed: {err.strip()}"
    return bins, ""


def build_floor(tree: KernelTree) -> Path:
    """floor_kmod.ko (bench/native/floor_kmod) for this kernel, with kbuild
    against the lab's headers."""
    src = images.build_dir(tree) / "floor_kmod"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(HERE / "native" / "floor_kmod", src)
    cmd = ["make", "-C", str(tree.headers), f"M={src}", "modules",
           "CONFIG_DEBUG_INFO_BTF_MODULES=", *images.compiler(tree)[0]]  # fmt: skip
    (src / "build.log").write_text(run(cmd, timeout=600))
    return src / "floor_kmod.ko"


def build_agent() -> Path:
    """The static x86-64 syscap-agent (capture_lib's `agent` target)."""
    run(["make", "-s", "-C", str(ROOT / "capture_lib"), "agent"], timeout=900)
    return ROOT / "capture_lib" / "build" / "agent-x86_64" / "syscap-agent"


def init_prologue(keys: list[str], before_modules: Sequence[str] = ()) -> list[str]:
    """The start of /bench/init: mounts, loopback, before_modules, then the
    modules the keys need."""
    lines = [
        "#!/bin/sh",
        "# PID 1's script for one guest benchmark (written by bench/guest_boot.py)",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "export PATH",
        "mount -t tmpfs tmpfs /tmp",
        "mount -t tracefs nodev /sys/kernel/tracing",
        "mount -t debugfs nodev /sys/kernel/debug",
        "mount -t bpf bpf /sys/fs/bpf",
        "ip link set lo up",
        "ulimit -n 65536",  # nginx's worker_connections 4096
        "mkdir -p /bench/work /var/log/nginx",
        "last=$(($(nproc) - 1))",
        'echo "SYSCAP-BENCH-LAB BEGIN $(uname -r) cpus=$(nproc)"',
        'echo "SYSCAP-BENCH-LAB meltdown: $(cat /sys/devices/system/cpu/vulnerabilities/meltdown)"',
        *before_modules,
    ]
    # the modules loaded at boot (floor_kmod.ko is its key's own start), and
    # the keys that need each: a failed insmod skips them
    for ko in ("syscap.ko", "scap.ko"):
        users = [k for k, needs in NEEDS.items() if ko in needs]
        if any(k in keys for k in users):
            failed = "; ".join(f'echo "SYSCAP-BENCH SKIP {k} insmod {ko} failed: '
                               '$(cat /tmp/insmod.err)"' for k in users if k in keys)
            lines.append(f"insmod /bench/{ko} 2>/tmp/insmod.err || {{ {failed}; }}")
    return lines


# The end of /bench/init: the tracers' logs, dmesg, power off.
INIT_EPILOGUE = [
    'echo "SYSCAP-BENCH-LOG BEGIN"; cat /tmp/bench-tracers.log; echo "SYSCAP-BENCH-LOG END"',
    'echo "SYSCAP-DMESG bench BEGIN"; dmesg --color=never; echo "SYSCAP-DMESG bench END"',
    'echo "SYSCAP-BENCH-LAB END uptime $(cut -d" " -f1 /proc/uptime)"',
    "sync",
    "echo o > /proc/sysrq-trigger",
]


def bench_init(plan: BenchPlan, keys: list[str], boot: int = 0) -> str:
    """/bench/init: mounts, both modules, the rounds, the logs, power off.
    Boot 0 runs every phase; a later boot only the micro rounds of
    boot_keys(plan, keys, boot), numbered after the boots before it."""
    env = {"BENCH_KEYS": " ".join(boot_keys(plan, keys, boot)),
           "BENCH_MICRO": f"/bench/getppid_loop {plan.calls}",
           "BENCH_MICRO_ROUNDS": str(plan.rounds)}  # fmt: skip
    if boot:
        env["BENCH_MICRO_FIRST"] = str(boot * plan.rounds)
    loop = f"taskset -c $last /bench/getppid_loop {plan.calls}"
    for k in env["BENCH_KEYS"].split()[1:]:
        env[f"BENCH_START_{k}"] = f"/bench/guest_tracer.sh start {k}"
        env[f"BENCH_STOP_{k}"] = f"/bench/guest_tracer.sh stop {k}"
    # loaded but idle, the modules must cost nothing: both register
    # their probes only when a capture starts
    checks = [] if boot else [f'echo "SYSCAP-BENCH CHECK no-modules $({loop})"']
    lines = init_prologue(env["BENCH_KEYS"].split(), checks)
    lines += [
        *([] if boot else [f'echo "SYSCAP-BENCH CHECK modules-idle $({loop})"']),
        *(f"export {k}='{v}'" for k, v in env.items()),
        f"sh /bench/guest_rounds.sh {0 if boot else plan.rounds} {plan.requests}",
        *INIT_EPILOGUE,
    ]
    return "\n".join(lines) + "\n"


def bench_qemu(tree: KernelTree, root_img: Path, disk: Path) -> list[str]:
    return ["qemu-system-x86_64", "-accel", "tcg,thread=single", "-cpu", "max",
            "-m", "2048", "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", str(tree.image),
            # tsc=reliable: TCG's TSC is the host's, one for every vCPU, but
            # the kernel's sync check fails when vCPUs run by turns on one
            # host thread, and it then falls back to the emulated HPET, whose
            # every read is a device exit costing microseconds: no real
            # machine's clock costs that, and it swamped every tracer's cost
            "-append", "console=ttyS0 root=/dev/nvme0n1 rw rootwait tsc=reliable "
                       f"init={ROOT_IMAGE.init_path} panic=-1 loglevel=4",
            "-drive", f"file={root_img},if=none,id=root,format=raw,snapshot=on",
            "-drive", f"file={disk},if=none,id=bench,format=raw",
            "-device", "nvme,id=nvme0,serial=syscap-bench",
            "-device", "nvme-ns,drive=root,bus=nvme0,nsid=1",
            "-device", "nvme-ns,drive=bench,bus=nvme0,nsid=2"]  # fmt: skip


def bench_guest(quick: bool, rounds: int | None = None) -> dict[str, object]:
    """The guest rows of `syscap bench` (contract: bench/guest.py): one boot
    of 6.1-amd64 with nginx, ab, syscap (kmod and eBPF) and sysdig."""
    with images.lab_lock():
        return _bench_guest(BenchPlan.of(quick, rounds), quick)


@dataclasses.dataclass(frozen=True, slots=True)
class Staged:
    """A bench guest ready to boot: its kernel, root image and bench disk."""

    tree: KernelTree
    root_img: Path
    disk: Path
    stage: Path  # the disk's files, for make_disk to make it again
    keys: list[str]  # the rows that can run, baseline first
    why: dict[str, str]  # the rows that cannot, and why
    built: dict[str, Path]  # what was built for the guest, by its name on the disk
    seconds: float  # what building and staging took


def stage_guest(quick: bool, keys: Sequence[str], init: Callable[[list[str]], str],
                extra: dict[str, Path] | None = None) -> Staged:
    """Build what the keys need (quick: only what is already built) and the
    bench disk with init(keys that can run) as /bench/init, plus extra files
    (name on the disk: source)."""
    t0 = time.monotonic()
    if quick:
        built = ROOT_IMAGE.built(images.KERNELS[BENCH_KERNEL])
        if built is None:
            raise LabError(f"the guest image is not built: {BUILD_ONCE}")
        tree, root_img = built
    else:
        tree = images.fetch(images.KERNELS[BENCH_KERNEL])
        root_img = ROOT_IMAGE.build(tree)
    why: dict[str, str] = {}
    scap = images.guest_dir() / f"scap-{tree.abi}" / "scap.ko"
    if "sysdig" in keys and not quick:
        try:
            scap = build_scap(tree)
        except LabError as e:
            why["sysdig"] = f"scap.ko did not build: {str(e).splitlines()[0]}"
    elif "sysdig" in keys and not scap.exists():
        why["sysdig"] = f"scap.ko is not built: {BUILD_ONCE}"
    bdir = images.build_dir(tree)
    bdir.mkdir(parents=True, exist_ok=True)
    have: dict[str, Path] = {"scap.ko": scap}
    missing: dict[str, str] = {}
    try:
        have["syscap.ko"] = images.build_module(tree)[0]
    except LabError as e:
        missing["syscap.ko"] = f"syscap.ko did not build: {str(e).splitlines()[0]}"
    try:
        have["floor_kmod.ko"] = build_floor(tree)
    except LabError as e:
        missing["floor_kmod.ko"] = f"floor_kmod.ko did not build: {str(e).splitlines()[0]}"
    try:
        have["syscap-agent"] = build_agent()
    except LabError as e:
        missing["syscap-agent"] = f"syscap-agent did not build: {str(e).splitlines()[0]}"
    bins, failed = build_recorder(tree)
    if "getppid_loop" not in bins:
        raise LabError(failed)
    if failed:
        missing["guest_record"] = failed
    have.update(bins)
    for key, needs in NEEDS.items():
        gone = [missing[n] for n in needs if n in missing]
        if gone and key not in why:
            why[key] = gone[0]
    runs = [k for k in keys if k not in why]

    stage = bdir / "bench-disk"
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "work").mkdir(parents=True)
    files = {"guest_rounds.sh": HERE / "guest_rounds.sh",
             "guest_tracer.sh": HERE / "guest_tracer.sh", "getppid_loop": bins["getppid_loop"],
             **(extra or {})}
    for key in runs[1:]:
        files.update((n, have[n]) for n in NEEDS[key])
    for name, src in files.items():
        shutil.copy(src, stage / name)
    (stage / "syscall_names").write_bytes(syscall_names())
    disk = make_disk(stage, init(runs))
    return Staged(tree, root_img, disk, stage, runs, why, have, time.monotonic() - t0)


def make_disk(stage: Path, init: str) -> Path:
    """The bench disk (a fresh ext4 image beside stage) of the files staged
    in stage, with init as /bench/init."""
    (stage / "init").write_text(init)
    (stage / "init").chmod(0o755)
    disk = stage.parent / "bench-disk.img"
    disk.unlink(missing_ok=True)
    run(["mke2fs", "-q", "-t", "ext4", "-L", "syscap-disk", "-d", str(stage), str(disk), "1G"])
    return disk


def _bench_guest(plan: BenchPlan, quick: bool) -> dict[str, object]:
    t0 = time.monotonic()
    staged = stage_guest(quick, BENCH_KEYS, lambda keys: bench_init(plan, keys))
    tree, keys, why = staged.tree, staged.keys, staged.why
    log(f"image, module, recorder ready in {staged.seconds:.0f} s")
    bdir = images.build_dir(tree)
    console = bdir / "bench-console.log"
    qemu = bench_qemu(tree, staged.root_img, staged.disk)
    log(f"booting {tree.release} for the benchmark: {plan.rounds} rounds x {len(keys)} "
        f"configurations ({', '.join(keys)})")
    timeout = 300 + plan.rounds * len(keys) * 120
    texts = [images.boot_guest(qemu, console, timeout, show="SYSCAP-BENCH")]
    consoles = [console]
    for boot in range(1, plan.boots):
        more = boot_keys(plan, keys, boot)
        if not more:
            continue
        log(f"boot {boot + 1} of {plan.boots}: {plan.rounds} getppid rounds of "
            f"{', '.join(more)}")
        make_disk(staged.stage, bench_init(plan, keys, boot))
        consoles.append(bdir / f"bench-console-{boot + 1}.log")
        texts.append(images.boot_guest(qemu, consoles[-1], 300 + plan.rounds * len(more) * 120,
                                       show="SYSCAP-BENCH"))
    res = from_console("\n".join(texts), method=bench_method(plan, tree, keys))
    rows: list[dict[str, object]] = res["rows"]
    for row in rows:
        if row["key"] in why:
            row["why"] = why[str(row["key"])]
    for text, path in zip(texts, consoles, strict=True):
        res.setdefault("notes", []).extend(boot_problems(text, path))
    if not res["notes"]:
        del res["notes"]
    res["console"] = str(console)
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def boot_problems(text: str, console: Path) -> list[str]:
    """What went wrong in one boot's console: it did not finish, or the
    kernel complained."""
    out = []
    if "SYSCAP-BENCH-LAB END" not in text:
        out.append(f"the guest did not finish (console: {console})")
    dmesg = re.search(r"SYSCAP-DMESG bench BEGIN\n(.*?)SYSCAP-DMESG bench END", text, re.S)
    bad = [ln for ln in (dmesg.group(1) if dmesg else "").splitlines()
           if images.DMESG_BAD.search(ln)]
    if bad:
        out.append(f"kernel problems in the guest ({console.name}): {bad[0]}")
    return out


def bench_method(plan: BenchPlan, tree: KernelTree, keys: Sequence[str]) -> str:
    try:
        rev = run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]).strip()
    except LabError:
        rev = "?"
    alone, count = _among(MORE_KEYS, keys), _among(COUNT_KEYS, keys)
    more = (f"; then {plan.more_boots} more boots, each {plan.rounds} getppid rounds of "
            f"{', '.join(alone)} alone"
            if alone and plan.more_boots else "")
    more += (f"; then {plan.count_boots} boots of {', '.join(count)} alone"
             if count and plan.count_boots else "")
    more += " (pooled: a boot's rounds scatter more than these rows differ)" if more else ""
    return (f"one QEMU TCG guest ({tree.release}, 2 vCPUs on one host thread): nginx (1 worker, "
            f"last vCPU) + ab -n {plan.requests} -c 50 (vCPU 0), then getppid x {plan.calls} "
            f"on the last vCPU; {plan.rounds} interleaved rounds each{more}; tracers on vCPU 0, "
            f"syscap recording every process to a file on the guest's ext4 disk, "
            f"syscap-agent streaming counts to a file on tmpfs, sysdig "
            f"writing to /dev/null; syscap at {rev}")


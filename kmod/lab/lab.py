#!/usr/bin/env python3
"""syscap guest lab: build the module for a Debian cloud kernel and test it in QEMU.

One run, for one kernel id (5.10-amd64, 6.1-amd64, 6.12-amd64, 6.1-arm64):

1. resolve the kernel ABI from the metapackages linux-image-cloud-ARCH /
   linux-headers-cloud-ARCH with a private apt configuration (the machine's
   apt sources are never touched);
2. download kernel image, headers, kbuild and busybox-static .debs into the
   cache (SYSCAP_LAB_CACHE, default /var/cache/syscap-lab), reused when present,
   and unpack them there;
3. build syscap.ko against those headers and the static guest test program
   (kmod/lab/guest/kmodtest.c with capture_lib's ring.c and kmod_backend.c);
4. pack a busybox initramfs, boot it under QEMU TCG and collect the serial
   console: one "SYSCAP-TEST <name> PASS|FAIL|SKIP <detail>" line per guest
   test, and each test's dmesg between "SYSCAP-DMESG <name> BEGIN/END".

`python3 kmod/lab/lab.py run 6.1-amd64` prints the parsed results;
tests/kmod drives the same functions through pytest. `run-custom` runs steps
3 and 4 on a kernel the user built (its image and build tree, see
check_custom), with the matrix's busybox.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KMOD = REPO / "kmod"
LAB = KMOD / "lab"
INCLUDE = REPO / "capture_lib" / "include"
CAPTURE_SRC = REPO / "capture_lib" / "src"
MIRROR = "http://deb.debian.org/debian"

# Lines in dmesg that mean the kernel found a bug (its own or ours).
DMESG_BAD = re.compile(
    r"(Oops|BUG:|WARNING:|kernel BUG|general protection fault|Call Trace:|"
    r"Kernel panic|UBSAN|KASAN|list_add corruption|list_del corruption|"
    r"refcount_t:|soft lockup|hard LOCKUP|rcu_sched self-detected|"
    r"rcu: INFO|blocked for more than|Unable to handle kernel|page allocation failure)"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Kernel:
    """A kernel of the matrix: Debian suite and architecture."""

    kid: str
    suite: str
    arch: str

    @property
    def flavour(self) -> str:
        return f"cloud-{self.arch}"

    @property
    def cross(self) -> str:
        return "aarch64-linux-gnu-" if self.arch == "arm64" else ""


KERNELS: dict[str, Kernel] = {
    k.kid: k
    for k in (
        Kernel("5.10-amd64", "bullseye", "amd64"),
        Kernel("6.1-amd64", "bookworm", "amd64"),
        Kernel("6.12-amd64", "trixie", "amd64"),
        Kernel("6.1-arm64", "bookworm", "arm64"),
    )
}


class LabError(RuntimeError):
    """A lab step failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("SYSCAP_LAB_CACHE", "/var/cache/syscap-lab"))


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 900) -> str:
    try:
        p = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as e:
        raise LabError(f"{cmd[0]} not found: install it (see kmod/lab/README.md)") from e
    if p.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


# ---------------------------------------------------------------- apt


class PrivateApt:
    """apt-get/apt-cache with their own sources, lists and caches for one suite."""

    def __init__(self, suite: str, arch: str) -> None:
        self.suite = suite
        self.arch = arch
        self.root = cache_dir() / "apt" / f"{suite}-{arch}"

    def opts(self) -> list[str]:
        r = self.root
        archs = "amd64,arm64" if self.arch == "arm64" else "amd64"
        return [
            "-o", f"Dir::Etc::SourceList={r / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=-",
            "-o", f"Dir::State::Lists={r / 'lists'}",
            "-o", f"Dir::Cache={r / 'cache'}",
            "-o", f"Dir::State::status={r / 'status'}",
            "-o", "Dir::Cache::pkgcache=",
            "-o", "Dir::Cache::srcpkgcache=",
            "-o", f"APT::Architectures={archs}",
            "-o", "APT::Architecture=amd64",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none",
        ]  # fmt: skip

    def update(self, max_age_s: float = 12 * 3600) -> None:
        lists = self.root / "lists"
        stamp = self.root / "updated"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()  # nothing installed: candidates are the suite's
        (self.root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        archs = "amd64,arm64" if self.arch == "arm64" else "amd64"
        (self.root / "sources.list").write_text(f"deb [arch={archs}] {MIRROR} {self.suite} main\n")
        if stamp.exists() and time.time() - stamp.stat().st_mtime < max_age_s:
            return
        try:
            run(["apt-get", *self.opts(), "-qq", "update"], timeout=600)
        except LabError:
            if stamp.exists():
                log(f"apt update for {self.suite} failed; using the lists already here")
                return
            raise
        stamp.touch()

    def field(self, pkg: str, name: str) -> str:
        out = run(["apt-cache", *self.opts(), "show", "--no-all-versions", pkg])
        for line in out.splitlines():
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
        raise LabError(f"{pkg}: no {name} field in the {self.suite} lists")

    def depends(self, pkg: str) -> list[str]:
        """Names (no versions) in pkg's Depends."""
        deps = self.field(pkg, "Depends")
        return [d.split("(")[0].split("|")[0].strip() for d in deps.split(",")]

    def download(self, pkg: str, dest: Path) -> Path:
        """pkg (name or name:arch) as a .deb in dest, downloaded only once."""
        name = pkg.split(":")[0]
        version = self.field(pkg, "Version").replace(":", "%3a")
        fname = f"{name}_{version}_{self.field(pkg, 'Architecture')}.deb"
        path = dest / fname
        if not path.exists():
            log(f"downloading {fname}")
            dest.mkdir(parents=True, exist_ok=True)
            run(["apt-get", *self.opts(), "-qq", "download", pkg], cwd=dest, timeout=900)
            if not path.exists():
                raise LabError(f"apt-get download {pkg} did not produce {fname}")
        return path


# ---------------------------------------------------------------- kernel tree


@dataclasses.dataclass(frozen=True, slots=True)
class KernelTree:
    """An unpacked kernel: image, module headers, busybox for the guest."""

    kernel: Kernel
    abi: str
    root: Path

    @property
    def release(self) -> str:
        return f"{self.abi}-{self.kernel.flavour}"

    @property
    def image(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def headers(self) -> Path:
        return self.root / "usr" / "src" / f"linux-headers-{self.release}"

    @property
    def busybox(self) -> Path:
        usr = self.root / "usr" / "bin" / "busybox"  # merged /usr (trixie)
        return usr if usr.exists() else self.root / "bin" / "busybox"


def fetch(kernel: Kernel) -> KernelTree:
    """Resolve the suite's current cloud kernel and unpack it into the cache."""
    apt = PrivateApt(kernel.suite, kernel.arch)
    apt.update()
    sfx = f":{kernel.arch}" if kernel.arch != "amd64" else ""
    image_deps = apt.depends(f"linux-image-{kernel.flavour}{sfx}")
    m = None
    for d in image_deps:
        m = re.fullmatch(rf"linux-image-(.+)-{kernel.flavour}(-unsigned)?", d)
        if m:
            break
    if not m:
        raise LabError(f"cannot find the ABI in {image_deps}")
    abi = m.group(1)
    image_pkg = m.group(0)
    headers_pkg = f"linux-headers-{abi}-{kernel.flavour}"
    # The headers need their -common part and kbuild (host tools: always amd64).
    extra = [d for d in apt.depends(headers_pkg + sfx) if "-common" in d or "kbuild" in d]
    root = cache_dir() / "kernels" / f"{kernel.kid}-{abi}"
    done = root / ".unpacked"
    if not done.exists():
        debs = cache_dir() / "debs"
        pkgs = [image_pkg + sfx, headers_pkg + sfx, f"busybox-static{sfx}"]
        pkgs += [d + (":amd64" if "kbuild" in d else "") for d in extra]
        files = [apt.download(p, debs) for p in pkgs]
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        for f in files:
            run(["dpkg-deb", "-x", str(f), str(root)])
        fix_headers(root, abi, kernel)
        wrap_host_tools(root, apt)
        done.touch()
    tree = KernelTree(kernel, abi, root)
    for p in (tree.image, tree.headers, tree.busybox):
        if not p.exists():
            raise LabError(f"{p} missing after unpacking {kernel.kid}")
    return tree


def fix_headers(root: Path, abi: str, kernel: Kernel) -> None:
    """Make the unpacked headers self-contained: absolute /usr/src and
    /usr/lib/linux-kbuild paths point into root instead."""
    hdr = root / "usr" / "src" / f"linux-headers-{abi}-{kernel.flavour}"
    for f in [hdr / "Makefile", *hdr.glob("*.mk")]:
        if not f.is_file():
            continue
        text = f.read_text()
        new = re.sub(r"(?<![\w/])/usr/(src|lib)/", lambda mm: f"{root}/usr/{mm.group(1)}/", text)
        if new != text:
            f.write_text(new)
    # Symlinks such as scripts -> /usr/lib/linux-kbuild-X/scripts (absolute).
    for base in (hdr, *root.glob("usr/src/linux-headers-*-common")):
        for link in base.iterdir():
            if link.is_symlink():
                target = os.readlink(link)
                if target.startswith("/usr/"):
                    link.unlink()
                    link.symlink_to(str(root) + target)


# ---------------------------------------------------------------- a kernel of one's own

# Where each architecture's kernel keeps the magic that says what it is (the
# arm64 Image header, the x86 boot protocol header), and where kbuild leaves
# the image.
IMAGE_MAGIC = {"arm64": (56, b"ARM\x64"), "amd64": (0x202, b"HdrS")}
IMAGE_PATH = {"arm64": "arch/arm64/boot/Image", "amd64": "arch/x86/boot/bzImage"}
CONFIG_ARCH = {"arm64": "CONFIG_ARM64=y", "amd64": "CONFIG_X86_64=y"}
# The suite whose busybox-static the guest runs, as for the matrix.
CUSTOM_SUITE = "bookworm"


@dataclasses.dataclass(frozen=True, slots=True)
class CustomTree(KernelTree):
    """A kernel the user built: its image, its build tree (prepared for
    external modules) and the lab's busybox for its architecture."""

    image_file: Path
    build_tree: Path
    kernel_release: str
    busybox_file: Path

    @property
    def release(self) -> str:
        return self.kernel_release

    @property
    def image(self) -> Path:
        return self.image_file

    @property
    def headers(self) -> Path:
        return self.build_tree

    @property
    def busybox(self) -> Path:
        return self.busybox_file


def check_custom(arch: str, image: Path | None, build_tree: Path | None) -> str:
    """The kernel release of a user's kernel, or LabError saying what is wrong
    with the arguments (nothing is downloaded or built here)."""
    if arch not in IMAGE_MAGIC:
        raise LabError(f"--arch {arch or '(none)'}: give {' or '.join(IMAGE_MAGIC)}")
    if image is None:
        raise LabError(f"--image missing: give the kernel image ({IMAGE_PATH[arch]} of the build)")
    if not image.is_file():
        raise LabError(f"--image {image}: no such file: give the kernel image "
                       f"({IMAGE_PATH[arch]} of the build)")  # fmt: skip
    at, magic = IMAGE_MAGIC[arch]
    with image.open("rb") as f:
        f.seek(at)
        if f.read(len(magic)) != magic:
            raise LabError(f"--image {image}: not an uncompressed {arch} kernel image: "
                           f"give {IMAGE_PATH[arch]} of an {arch} build")  # fmt: skip
    if build_tree is None:
        raise LabError("--build-tree missing: give the kernel's build directory (O= of its build)")
    if not (build_tree / "Makefile").is_file():
        raise LabError(f"--build-tree {build_tree}: no Makefile: give the kernel's build "
                       f"directory (the source tree, or O= of its build)")  # fmt: skip
    config = build_tree / ".config"
    if not config.is_file():
        raise LabError(f"--build-tree {build_tree}: no .config: configure and build the "
                       f"kernel there first")  # fmt: skip
    if CONFIG_ARCH[arch] not in config.read_text(errors="replace").splitlines():
        raise LabError(f"--build-tree {build_tree}: its .config has no {CONFIG_ARCH[arch]}: "
                       f"give the build of the --arch {arch} kernel")  # fmt: skip
    release = build_tree / "include" / "config" / "kernel.release"
    if not (release.is_file() and (build_tree / "scripts" / "mod" / "modpost").is_file()):
        raise LabError(f"--build-tree {build_tree}: not prepared for external modules: "
                       f"run make modules_prepare there")  # fmt: skip
    # Without it, modpost cannot check the module's symbols, and with
    # CONFIG_MODVERSIONS the kernel refuses the module.
    if not (build_tree / "Module.symvers").is_file():
        raise LabError(f"--build-tree {build_tree}: no Module.symvers: build the kernel "
                       f"there (make, or make modules), modules_prepare alone leaves none")
    return release.read_text().strip()


def lab_busybox(arch: str) -> Path:
    """The statically linked busybox the matrix's guests run, for arch."""
    apt = PrivateApt(CUSTOM_SUITE, arch)
    apt.update()
    deb = apt.download("busybox-static" + (f":{arch}" if arch != "amd64" else ""),
                       cache_dir() / "debs")  # fmt: skip
    root = cache_dir() / "busybox" / deb.stem
    done = root / ".unpacked"
    if not done.exists():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        run(["dpkg-deb", "-x", str(deb), str(root)])
        done.touch()
    for p in (root / "usr" / "bin" / "busybox", root / "bin" / "busybox"):
        if p.exists():
            return p
    raise LabError(f"{deb.name} has no busybox binary")


def custom_tree(arch: str, image: Path, build_tree: Path) -> CustomTree:
    release = check_custom(arch, image, build_tree)
    return CustomTree(Kernel(f"custom-{arch}", CUSTOM_SUITE, arch), release,
                      build_tree.resolve(), image.resolve(), build_tree.resolve(),
                      release, lab_busybox(arch))  # fmt: skip


# ---------------------------------------------------------------- build


def build_dir(tree: KernelTree) -> Path:
    return cache_dir() / "build" / f"{tree.kernel.kid}-{tree.abi}"


# Debian's notice that the module is built with another gcc than the kernel:
# expected where the kernel's gcc cannot run here (see compiler()).
CC_NOTICE = re.compile(r"compiler differs from the one used|The kernel was built by|You are using:")


def warnings_in(output: str) -> list[str]:
    return [
        ln
        for ln in output.splitlines()
        if re.search(r"\bwarning\b|\bWarning\b", ln) and not CC_NOTICE.search(ln)
    ]


def compiler(tree: KernelTree) -> tuple[list[str], str]:
    """make variables choosing the compiler, and a note when it is not the
    kernel's own: bullseye's gcc-10 is not in bookworm and trixie's gcc-14
    needs a newer glibc, so those two kernels get the host's gcc-12."""
    if tree.kernel.cross:
        return [f"CROSS_COMPILE={tree.kernel.cross}"], ""
    config = (tree.headers / ".config").read_text()
    m = re.search(r'^CONFIG_CC_VERSION_TEXT="(\S+)', config, re.M)
    wanted = m.group(1) if m else "gcc"
    if shutil.which(wanted):
        return [], ""
    extra = ["CC=gcc"]
    # gcc-14-only flag chosen by the kernel's config; gcc-12 aligns functions
    # with -falign-functions instead.
    if "CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=y" in config:
        extra.append("CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=")
    return extra, f"built with the host's gcc, not {wanted} (not runnable here)"


def build_module(tree: KernelTree) -> tuple[Path, list[str]]:
    """syscap.ko for this kernel, and the warning lines of the build."""
    src = build_dir(tree) / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "kmod").mkdir(parents=True)
    for f in ("syscap.c", "Kbuild"):
        shutil.copy(KMOD / f, src / "kmod" / f)
    shutil.copytree(INCLUDE, src / "capture_lib" / "include")
    cmd = ["make", "-C", str(tree.headers), f"M={src / 'kmod'}", "modules",
           # no BTF for out-of-tree modules: the headers carry no vmlinux
           "CONFIG_DEBUG_INFO_BTF_MODULES="]  # fmt: skip
    if tree.kernel.cross:
        cmd += ["ARCH=arm64"]
    cmd += compiler(tree)[0]
    out = run(cmd, timeout=600)
    (build_dir(tree) / "module-build.log").write_text(out)
    return src / "kmod" / "syscap.ko", warnings_in(out)


def build_tests(tree: KernelTree) -> tuple[dict[str, Path], list[str]]:
    """The static guest programs (name in the guest's / -> file), and the
    warning lines of their builds."""
    ring = CAPTURE_SRC / "ring.c"
    if not ring.exists():
        raise LabError(f"{ring} is missing: the guest tests use capture_lib's drain loop")
    cc = f"{tree.kernel.cross}gcc"
    flags = [cc, "-static", "-O2", "-g", "-Wall", "-Wextra", "-pthread", f"-I{INCLUDE}"]
    sources = {
        "kmodtest": [LAB / "guest" / "kmodtest.c", CAPTURE_SRC / "kmod_backend.c", ring],
        # the workload the eBPF tests run too
        "edge_syscalls": [REPO / "tests" / "capture_lib" / "workloads" / "edge_syscalls.c"],
    }
    bins: dict[str, Path] = {}
    warnings: list[str] = []
    for name, srcs in sources.items():
        bins[name] = build_dir(tree) / name
        out = run([*flags, *map(str, srcs), "-o", str(bins[name])], timeout=300)
        warnings += warnings_in(out)
    return bins, warnings


# ---------------------------------------------------------------- initramfs


def _cpio_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> bytes:
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    hdr = "070701" + "".join(f"{v:08x}" for v in fields)
    out = hdr.encode() + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def write_initramfs(path: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """A newc cpio archive: the directories the guest needs, /dev/console, files."""
    out = bytearray()
    for d in ("bin", "dev", "proc", "sys", "tmp"):
        out += _cpio_entry(d, 0o040755)
    out += _cpio_entry("dev/console", 0o020600, rdev=(5, 1))
    for name, (data, mode) in files.items():
        out += _cpio_entry(name, 0o100000 | mode, data)
    out += _cpio_entry("TRAILER!!!", 0)
    path.write_bytes(bytes(out))


# Guest tests in the order they run; load_unload comes last (it reloads the
# module itself), ARG is filled in from the options.
GUEST_TESTS = [
    "second_open",
    "mmap_rules",
    "exact_counts",
    "count_mode",
    "process_tree",
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
    "load_unload",
]
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
    ]
    for name, arg in tests:
        lines += [
            f'echo "SYSCAP-RUN {name} uptime $(cut -d" " -f1 /proc/uptime)"',
            f"timeout 900 /kmodtest {name} {arg or ''} || echo 'SYSCAP-EXIT {name} '$?",
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

    def console_problems(self) -> list[str]:
        """Kernel problems anywhere on the console, printed directly or dumped."""
        text = self.console.read_bytes().decode(errors="replace")
        return [ln for ln in text.splitlines() if DMESG_BAD.search(ln)]

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


def qemu_command(tree: KernelTree, initrd: Path) -> list[str]:
    common = ["-m", "1024", "-smp", "2", "-nographic", "-no-reboot", "-kernel", str(tree.image),
              "-initrd", str(initrd)]  # fmt: skip
    if tree.kernel.arch == "arm64":
        return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72",
                "-accel", "tcg,thread=single", *common,
                "-append", "console=ttyAMA0 panic=-1 loglevel=5 nokaslr"]  # fmt: skip
    return ["qemu-system-x86_64", "-accel", "tcg,thread=single", "-cpu", "max", *common,
            "-append", "console=ttyS0 panic=-1 loglevel=5"]  # fmt: skip


def die_with_parent() -> None:
    """Run in the guest's QEMU before exec: the kernel kills it when the lab
    process ends, so a test runner's timeout does not leave a guest running
    (and holding a CPU) after the lock is gone."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def lab_lock() -> Iterator[None]:
    """One lab run at a time per cache: concurrent runs (two pytest sessions
    on one machine) would share build directories, and each boot wants the
    CPUs to itself."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / "lab.lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another lab run holds the cache: waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_guest(
    kid: str,
    cycles: int = 1000,
    fuzz: int = 100000,
    timeout: float = 1800,
    only: list[str] | None = None,
) -> GuestRun:
    """Fetch, build, boot and parse one kernel of the matrix (one run at a time)."""
    with lab_lock():
        return _run_guest(kid, cycles, fuzz, timeout, only)


def run_custom(
    arch: str,
    image: Path,
    build_tree: Path,
    cycles: int = 1000,
    fuzz: int = 100000,
    timeout: float = 1800,
    only: list[str] | None = None,
) -> GuestRun:
    """The same guest suite on a kernel the user built (see check_custom)."""
    t0 = time.monotonic()
    check_custom(arch, image, build_tree)  # bad arguments fail before the lock
    with lab_lock():
        return _boot_suite(custom_tree(arch, image, build_tree), cycles, fuzz, timeout, only, t0)


def _run_guest(
    kid: str,
    cycles: int,
    fuzz: int,
    timeout: float,
    only: list[str] | None,
) -> GuestRun:
    t0 = time.monotonic()
    return _boot_suite(fetch(KERNELS[kid]), cycles, fuzz, timeout, only, t0)


def _boot_suite(
    tree: KernelTree,
    cycles: int,
    fuzz: int,
    timeout: float,
    only: list[str] | None,
    t0: float,
) -> GuestRun:
    kid = tree.kernel.kid
    bdir = build_dir(tree)
    bdir.mkdir(parents=True, exist_ok=True)
    ko, mod_warn = build_module(tree)
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
    )


def wrap_host_tools(root: Path, apt: PrivateApt) -> None:
    """Make a newer suite's kbuild tools run here: trixie's fixdep, modpost and
    objtool need glibc 2.38, bookworm has 2.36. Each ELF program is replaced
    by a script that runs it with the suite's own dynamic loader and libraries,
    unpacked into root/hostlibs."""
    kbuild = next(root.glob("usr/lib/linux-kbuild-*"))
    elves = []
    for f in sorted(kbuild.rglob("*")):
        if f.is_file() and not f.is_symlink() and os.access(f, os.X_OK):
            with f.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    elves.append(f)
    glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "glibc 99.0").split()[1]
    host = tuple(int(x) for x in glibc.split("."))
    needed: set[tuple[int, int]] = set()
    for f in elves:
        for v in re.findall(r"GLIBC_(\d+)\.(\d+)", run(["readelf", "-V", str(f)])):
            needed.add((int(v[0]), int(v[1])))
    if not needed or max(needed) <= host:
        return
    libs = root / "hostlibs"
    debs = cache_dir() / "debs"
    for pkg in ("libc6", "libelf1t64", "zlib1g", "libzstd1"):
        run(["dpkg-deb", "-x", str(apt.download(pkg + ":amd64", debs)), str(libs)])
    loader = next(p for p in libs.glob("usr/lib*/**/ld-linux-x86-64.so.2"))
    libpath = ":".join(str(libs / d) for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"))
    for f in elves:
        real = f.with_name(f.name + ".elf")
        f.rename(real)
        # --argv0: dispatchers (objtool, modpost) find their .real-* by name
        f.write_text(
            f'#!/bin/sh\nexec {loader} --argv0 "$0" --library-path {libpath} {real} "$@"\n'
        )
        f.chmod(0o755)
    log(f"{kbuild.name}: its tools run with the glibc unpacked in {libs}")


# ---------------------------------------------------------------- guest benchmark
#
# One boot of 6.1-amd64 with a full Debian rootfs (debootstrap) measures nginx
# + ab and a getppid loop for: no tracing, syscap's kmod backend, syscap's eBPF
# backend and sysdig with its scap module (bench/guest.py has the contract).
# The rootfs image is built once and reused; what changes between runs (the
# module, the recorder, the scripts) goes on a second, small disk.

BENCH_KERNEL = "6.1-amd64"
# minbase has no ip(8), pgrep or libbpf; sysdig's Recommends (the dkms
# package, hence a compiler) are left out: its module is built here.
BENCH_PACKAGES = ("nginx", "apache2-utils", "sysdig", "kmod", "procps", "iproute2",
                  "libbpf1", "libelf1", "zlib1g")
# Measured: debootstrap fetches 48 MB of .debs (145 packages); the 6.1 kernel
# (image, headers, kbuild) adds 39 MB where the lab has not fetched it yet.
DEBOOTSTRAP_MB = 50
BENCH_DOWNLOAD_MB = DEBOOTSTRAP_MB + 40
GUEST_DIR = LAB / "guest"
# PID 1 of the bench image: everything else comes from the bench disk (the
# second namespace of the one NVMe controller: names are stable).
BENCH_STUB = """#!/bin/sh
# PID 1 of the syscap bench image (written by kmod/lab/lab.py): mount the
# bench disk and hand over to its init.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /bench
if mount -t ext4 /dev/nvme0n2 /bench && [ -x /bench/init ]; then
	exec /bench/init
fi
echo "SYSCAP-BENCH-LAB FAIL the bench disk did not mount"
echo o > /proc/sysrq-trigger
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


def guest_dir() -> Path:
    return cache_dir() / "guest"


def bench_rootfs(suite: str = "bookworm") -> Path:
    """A debootstrapped Debian with BENCH_PACKAGES, made once (downloads)."""
    root = guest_dir() / f"rootfs-{suite}-{_digest(*BENCH_PACKAGES)}"
    done = root / ".debootstrapped"
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {suite} into {root} (downloads about {DEBOOTSTRAP_MB} MB)")
    run(["debootstrap", "--variant=minbase", f"--include={','.join(BENCH_PACKAGES)}",
         suite, str(root), MIRROR], timeout=3600)  # fmt: skip
    for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()
    done.touch()
    return root


def _image_name(abi: str) -> str:
    return f"bench-{abi}-{_digest(*BENCH_PACKAGES, BENCH_STUB)}.img"


def bench_image(tree: KernelTree) -> Path:
    """The rootfs as an ext4 image with the kernel's modules and the stub."""
    img = guest_dir() / _image_name(tree.abi)
    if img.exists():
        return img
    root = bench_rootfs(tree.kernel.suite)
    mods = root / "lib" / "modules" / tree.release
    if mods.exists():
        shutil.rmtree(mods)
    shutil.copytree(tree.root / "lib" / "modules" / tree.release, mods, symlinks=True)
    stub = root / "sbin" / "syscap-bench-init"
    stub.write_text(BENCH_STUB)
    stub.chmod(0o755)
    used = sum(f.lstat().st_size for f in root.rglob("*") if not f.is_symlink())
    size_mb = (int(used * 1.3) >> 20) + 256
    tmp = img.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    log(f"writing {img.name} ({size_mb} MB)")
    run(["mke2fs", "-q", "-t", "ext4", "-L", "syscap-bench", "-d", str(root), str(tmp),
         f"{size_mb}M"], timeout=1800)  # fmt: skip
    tmp.replace(img)
    return img


def build_scap(tree: KernelTree) -> Path:
    """sysdig's scap.ko for this kernel, from Debian's falcosecurity-scap-dkms
    source, built with kbuild against the lab's headers (once per kernel)."""
    apt = PrivateApt(tree.kernel.suite, tree.kernel.arch)
    apt.update()
    deb = apt.download("falcosecurity-scap-dkms", cache_dir() / "debs")
    out = guest_dir() / f"scap-{tree.abi}"
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
           "CONFIG_DEBUG_INFO_BTF_MODULES=", *compiler(tree)[0]]  # fmt: skip
    (out / "build.log").write_text(run(cmd, timeout=900))
    shutil.copy(src / "scap.ko", ko)
    stamp.write_text(deb.name)
    return ko


def built_bench_image() -> tuple[KernelTree, Path] | None:
    """The newest bench image already built (and its kernel), without network."""
    kernel = KERNELS[BENCH_KERNEL]
    suffix = "-" + _image_name("").split("-", 2)[2]  # "-<digest>.img"
    found = []
    for img in guest_dir().glob("bench-*.img"):
        if not img.name.endswith(suffix):
            continue
        abi = img.name[len("bench-"):-len(suffix)]
        root = cache_dir() / "kernels" / f"{kernel.kid}-{abi}"
        if (root / ".unpacked").exists():
            found.append((img.stat().st_mtime, KernelTree(kernel, abi, root), img))
    if not found:
        return None
    _, tree, img = max(found, key=lambda t: t[0])
    return tree, img


@dataclasses.dataclass(frozen=True, slots=True)
class BenchPlan:
    """How much one guest benchmark does."""

    rounds: int  # interleaved nginx rounds, then as many micro rounds
    requests: int  # ab -n per run
    calls: int  # getppid calls per micro run

    @classmethod
    def of(cls, quick: bool, rounds: int | None = None) -> BenchPlan:
        if quick:
            return cls(rounds or 2, 1000, 100_000)
        return cls(rounds or 10, 6_000, 1_000_000)


BENCH_KEYS = ("baseline", "kmod", "bpf", "sysdig")


def syscall_names() -> bytes:
    """The trace header's name table (as capture_lib.live.names_blob())."""
    sys.path.insert(0, str(REPO))
    from capture_lib.syscall_tables import TABLES

    header = (INCLUDE / "syscap_record.h").read_text()
    m = re.search(r"#define SYSCAP_MAX_SYSCALLS\s+(\d+)", header)
    n = int(m.group(1)) if m else 512
    table = TABLES["x86_64"]
    return b"".join(table.get(nr, "").encode() + b"\0" for nr in range(n))


def build_recorder(tree: KernelTree) -> tuple[dict[str, Path], str]:
    """guest_record (with capture_lib built in the lab's own directory) and
    getppid_loop; what failed, if anything, in one line."""
    out = build_dir(tree) / "native"
    cmd = ["make", "-s", "-C", str(REPO / "bench" / "native"), f"B={out}",
           f"LIBBUILD={build_dir(tree) / 'capture_lib'}"]  # fmt: skip
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


def bench_init(plan: BenchPlan, keys: list[str]) -> str:
    """/bench/init: mounts, both modules, the rounds, the logs, power off."""
    env = {"BENCH_KEYS": " ".join(keys),
           "BENCH_MICRO": f"/bench/getppid_loop {plan.calls}",
           "BENCH_MICRO_ROUNDS": str(plan.rounds)}  # fmt: skip
    loop = f"taskset -c $last /bench/getppid_loop {plan.calls}"
    for k in keys[1:]:
        env[f"BENCH_START_{k}"] = f"/bench/bench_tracer.sh start {k}"
        env[f"BENCH_STOP_{k}"] = f"/bench/bench_tracer.sh stop {k}"
    lines = [
        "#!/bin/sh",
        "# PID 1's script for one guest benchmark (written by kmod/lab/lab.py)",
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
        # loaded but idle, the modules must cost nothing: both register
        # their probes only when a capture starts
        f'echo "SYSCAP-BENCH CHECK no-modules $({loop})"',
    ]
    for k, ko in (("kmod", "syscap.ko"), ("sysdig", "scap.ko")):
        if k in keys:
            lines.append(f"insmod /bench/{ko} 2>/tmp/insmod.err || "
                         f'echo "SYSCAP-BENCH SKIP {k} insmod {ko} failed: $(cat /tmp/insmod.err)"')
    lines += [
        f'echo "SYSCAP-BENCH CHECK modules-idle $({loop})"',
        *(f"export {k}='{v}'" for k, v in env.items()),
        f"sh /bench/guest_rounds.sh {plan.rounds} {plan.requests}",
        'echo "SYSCAP-BENCH-LOG BEGIN"; cat /tmp/bench-tracers.log; echo "SYSCAP-BENCH-LOG END"',
        'echo "SYSCAP-DMESG bench BEGIN"; dmesg --color=never; echo "SYSCAP-DMESG bench END"',
        'echo "SYSCAP-BENCH-LAB END uptime $(cut -d" " -f1 /proc/uptime)"',
        "sync",
        "echo o > /proc/sysrq-trigger",
    ]
    return "\n".join(lines) + "\n"


def bench_qemu(tree: KernelTree, root_img: Path, disk: Path) -> list[str]:
    return ["qemu-system-x86_64", "-accel", "tcg,thread=single", "-cpu", "max",
            "-m", "2048", "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", str(tree.image),
            "-append", "console=ttyS0 root=/dev/nvme0n1 rw rootwait "
                       "init=/sbin/syscap-bench-init panic=-1 loglevel=4",
            "-drive", f"file={root_img},if=none,id=root,format=raw,snapshot=on",
            "-drive", f"file={disk},if=none,id=bench,format=raw",
            "-device", "nvme,id=nvme0,serial=syscap-bench",
            "-device", "nvme-ns,drive=root,bus=nvme0,nsid=1",
            "-device", "nvme-ns,drive=bench,bus=nvme0,nsid=2"]  # fmt: skip


def bench_guest(quick: bool, rounds: int | None = None) -> dict[str, object]:
    """The guest rows of `syscap bench` (contract: bench/guest.py): one boot
    of 6.1-amd64 with nginx, ab, syscap (kmod and eBPF) and sysdig."""
    with lab_lock():
        return _bench_guest(BenchPlan.of(quick, rounds), quick)


def _bench_guest(plan: BenchPlan, quick: bool) -> dict[str, object]:
    t0 = time.monotonic()
    if quick:
        built = built_bench_image()
        if built is None:
            raise LabError(
                "the guest image is not built: run `python3 kmod/lab/lab.py bench` once "
                f"(downloads about {BENCH_DOWNLOAD_MB} MB, a few minutes)")
        tree, root_img = built
    else:
        tree = fetch(KERNELS[BENCH_KERNEL])
        root_img = bench_image(tree)
    why: dict[str, str] = {}
    scap = guest_dir() / f"scap-{tree.abi}" / "scap.ko"
    if not quick:
        try:
            scap = build_scap(tree)
        except LabError as e:
            why["sysdig"] = f"scap.ko did not build: {str(e).splitlines()[0]}"
    elif not scap.exists():
        why["sysdig"] = "scap.ko is not built: run `python3 kmod/lab/lab.py bench` once"
    bdir = build_dir(tree)
    bdir.mkdir(parents=True, exist_ok=True)
    ko: Path | None = None
    try:
        ko, _ = build_module(tree)
    except LabError as e:
        why["kmod"] = f"syscap.ko did not build: {str(e).splitlines()[0]}"
    bins, failed = build_recorder(tree)
    if "getppid_loop" not in bins:
        raise LabError(failed)
    if failed:
        why.setdefault("kmod", failed)
        why["bpf"] = failed
    keys = [k for k in BENCH_KEYS if k not in why]
    log(f"image, module, recorder ready in {time.monotonic() - t0:.0f} s")

    stage = bdir / "bench-disk"
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "work").mkdir(parents=True)
    files = {"guest_rounds.sh": REPO / "bench" / "guest_rounds.sh",
             "bench_tracer.sh": GUEST_DIR / "bench_tracer.sh", **bins}
    if ko is not None and "kmod" in keys:
        files["syscap.ko"] = ko
    if "sysdig" in keys:
        files["scap.ko"] = scap
    for name, src in files.items():
        shutil.copy(src, stage / name)
    (stage / "syscall_names").write_bytes(syscall_names())
    (stage / "init").write_text(bench_init(plan, keys))
    (stage / "init").chmod(0o755)
    disk = bdir / "bench-disk.img"
    disk.unlink(missing_ok=True)
    run(["mke2fs", "-q", "-t", "ext4", "-L", "syscap-disk", "-d", str(stage), str(disk), "1G"])

    console = bdir / "bench-console.log"
    qemu = bench_qemu(tree, root_img, disk)
    log(f"booting {tree.release} for the benchmark: {plan.rounds} rounds x {len(keys)} "
        f"configurations ({', '.join(keys)})")
    timeout = 300 + plan.rounds * len(keys) * 120
    text = boot_guest(qemu, console, timeout)

    sys.path.insert(0, str(REPO))
    from bench.guest import from_console

    res = from_console(text, method=bench_method(plan, tree))
    rows: list[dict[str, object]] = res["rows"]
    for row in rows:
        if row["key"] in why:
            row["why"] = why[str(row["key"])]
    if "SYSCAP-BENCH-LAB END" not in text:
        res.setdefault("notes", []).append(
            f"the guest did not finish (console: {console})")
    _, dmesg, _ = parse_console(text)
    bad = [ln for ln in dmesg.get("bench", "").splitlines() if DMESG_BAD.search(ln)]
    if bad:
        res.setdefault("notes", []).append(f"kernel problems in the guest: {bad[0]}")
    res["console"] = str(console)
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def bench_method(plan: BenchPlan, tree: KernelTree) -> str:
    try:
        rev = run(["git", "-C", str(REPO), "describe", "--always", "--dirty"]).strip()
    except LabError:
        rev = "?"
    return (f"one QEMU TCG guest ({tree.release}, 2 vCPUs on one host thread): nginx (1 worker, "
            f"last vCPU) + ab -n {plan.requests} -c 50 (vCPU 0), then getppid x {plan.calls} "
            f"on the last vCPU; {plan.rounds} interleaved rounds each; tracers on vCPU 0, "
            f"syscap recording every process to a file on the guest's ext4 disk, sysdig "
            f"writing to /dev/null; syscap at {rev}")


def boot_guest(qemu: list[str], console: Path, timeout: float) -> str:
    """Run the guest (stopped after timeout s), its console to a file and returned;
    SYSCAP-BENCH lines are logged as they come."""
    if not shutil.which(qemu[0]):
        pkg = "qemu-system-arm" if qemu[0].endswith("aarch64") else "qemu-system-x86"
        raise LabError(f"{qemu[0]} not found: apt-get install {pkg}")
    deadline = time.monotonic() + timeout
    with console.open("wb") as out, subprocess.Popen(
        qemu, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    ) as p:
        assert p.stdout is not None
        os.set_blocking(p.stdout.fileno(), False)
        pending = b""
        while True:
            chunk = p.stdout.read(65536)
            if chunk:
                out.write(chunk)
                out.flush()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for ln in lines:
                    text = ln.decode(errors="replace").strip()
                    if "SYSCAP-BENCH " in text or "SYSCAP-BENCH-LAB" in text:
                        log(text[text.index("SYSCAP-BENCH"):])
            elif p.poll() is not None:
                break
            else:
                time.sleep(0.2)
            if time.monotonic() > deadline:
                log(f"the guest did not finish in {timeout:.0f} s: stopping it")
                p.kill()
                break
        p.wait()
    return console.read_bytes().decode(errors="replace")


def bench_main(quick: bool, rounds: int | None) -> int:
    """`lab.py bench`: run the guest benchmark and print bench's table."""
    if rounds is not None and not 1 <= rounds <= 1000:
        raise SystemExit(f"--rounds {rounds}: give 1 to 1000 rounds")
    try:
        res = bench_guest(quick, rounds)
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1
    sys.path.insert(0, str(REPO))
    from bench import guest

    print(guest.table(guest.result(res, "", quick)))
    print(f"({res['seconds']:.0f} s; console: {res['console']})")
    return 0


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
        failed += res.status != "PASS" or bool(bad)
        print(f"  {res.status} {name}: {res.detail}")
        for b in bad:
            print(f"    dmesg: {b}")
    if not r.completed:
        print("  guest did not reach the end of /init")
        failed += 1
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=["fetch", "run", "run-custom", "bench"])
    ap.add_argument("kernels", nargs="*", metavar="KERNEL",
                    help=f"fetch and run: {', '.join(KERNELS)} or all (bench boots "
                         f"{BENCH_KERNEL})")
    ap.add_argument("--cycles", type=int, default=1000, help="module load/unload cycles")
    ap.add_argument("--fuzz", type=int, default=100000, help="fuzzed ioctls")
    ap.add_argument("--only", help="comma-separated guest tests to run")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for one boot")
    ap.add_argument("--quick", action="store_true", help="bench: 2 short rounds")
    ap.add_argument("--rounds", type=int, help="bench: interleaved rounds (default 10)")
    ap.add_argument("--arch", default="", help="run-custom: arm64 or amd64")
    ap.add_argument("--image", type=Path,
                    help="run-custom: the kernel image (arch/arm64/boot/Image, "
                         "arch/x86/boot/bzImage)")
    ap.add_argument("--build-tree", type=Path,
                    help="run-custom: the kernel's build directory, prepared for "
                         "external modules")
    a = ap.parse_args()
    only = a.only.split(",") if a.only else None
    if only and not set(only) <= set(GUEST_TESTS):
        unknown = ",".join(sorted(set(only) - set(GUEST_TESTS)))
        print(f"lab {a.step}: --only {unknown}: no such guest test: give some of "
              f"{','.join(GUEST_TESTS)}", file=sys.stderr)
        return 2
    if a.step == "bench":
        return bench_main(a.quick, a.rounds)
    if a.step == "run-custom":
        try:
            if a.kernels:
                raise LabError(f"{' '.join(a.kernels)}: run-custom boots the kernel of "
                               f"--image, name no matrix kernel")  # fmt: skip
            check_custom(a.arch, a.image, a.build_tree)
        except LabError as e:
            print(f"lab run-custom: {e}", file=sys.stderr)
            return 2
        try:
            r = run_custom(a.arch, a.image, a.build_tree, a.cycles, a.fuzz, a.timeout, only)
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

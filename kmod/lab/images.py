"""The guest lab's image builder: Debian cloud kernels and what boots on them.

For one kernel id of the matrix (5.10-amd64, 6.1-amd64, 6.12-amd64, 6.1-arm64)
or a kernel the user built:

- resolve the kernel ABI from the metapackages linux-image-cloud-ARCH /
  linux-headers-cloud-ARCH with a private apt configuration (the machine's apt
  sources are never touched), download image, headers, kbuild and
  busybox-static into the cache (SYSCAP_LAB_CACHE, default
  /var/cache/syscap-lab), reused when present, and unpack them there;
- build syscap.ko against those headers;
- write a busybox initramfs, or a debootstrapped Debian root file system as an
  ext4 image (for guests that need real programs);
- boot a guest under QEMU TCG, one at a time per cache, and collect its console.

lab.py runs the module's test suite with these; bench/guest_boot.py builds the
benchmark's guest with them. This module imports neither.
"""

from __future__ import annotations

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


def check_module(module: Path, release: str) -> None:
    """LabError unless module is a kernel module built for release (its vermagic
    says so): the guest would refuse it only after the boot."""
    if not module.is_file():
        raise LabError(f"--module {module}: no such file: give the syscap.ko built for "
                       f"{release} (by dkms, or make -C kmod KDIR=BUILD)")  # fmt: skip
    data = module.read_bytes()
    if not data.startswith(b"\x7fELF"):
        raise LabError(f"--module {module}: not an ELF file: give a built syscap.ko")
    found = re.search(rb"vermagic=(\S+)", data)
    if found is None or found.group(1).decode(errors="replace") != release:
        built = found.group(1).decode(errors="replace") if found else "no vermagic"
        raise LabError(f"--module {module}: built for {built}, the kernel is {release}: "
                       f"build it against --build-tree")  # fmt: skip


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


# ---------------------------------------------------------------- boot


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


def boot_guest(qemu: list[str], console: Path, timeout: float, show: str = "") -> str:
    """Run the guest (stopped after timeout s), its console to a file and returned;
    with show, the lines holding it are logged as they come (from show on)."""
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
                    if show and show in text:
                        log(text[text.index(show):])
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


# ---------------------------------------------------------------- Debian root file system


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


def guest_dir() -> Path:
    return cache_dir() / "guest"


def host_arch() -> str:
    """The machine's Debian architecture (amd64 on the development machines)."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


# qemu-user-static's name for a Debian architecture's programs.
QEMU_USER = {"arm64": "aarch64", "amd64": "x86_64"}
BINFMT = Path("/proc/sys/fs/binfmt_misc")


def foreign_programs_run(arch: str) -> None:
    """Make sure programs of arch run here through qemu-user-static (binfmt_misc with the
    F flag: the interpreter is opened at registration, so it works inside a chroot);
    LabError saying what to install when they cannot."""
    entry = BINFMT / f"qemu-{QEMU_USER[arch]}"
    if not (BINFMT / "register").exists():
        with contextlib.suppress(LabError):  # systemd mounts it at boot; a bare VM may not
            run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
    if not entry.exists() and shutil.which("update-binfmts"):
        with contextlib.suppress(LabError):
            run(["update-binfmts", "--enable", f"qemu-{QEMU_USER[arch]}"])
    try:
        text = entry.read_text()
    except OSError:
        text = ""
    flags = re.search(r"^flags: *(\S*)", text, re.M)
    if not text.startswith("enabled") or flags is None or "F" not in flags.group(1):
        raise LabError(
            f"{arch} programs cannot run here ({entry} is not an enabled binfmt_misc entry "
            "with the F flag): apt-get install qemu-user-static binfmt-support, and mount "
            f"binfmt_misc on {BINFMT}"
        )


def unmount_under(root: Path) -> None:
    """Unmount what is mounted in root (deepest first): the image is written from it."""
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    under = [p for p in points if Path(p).is_relative_to(root) and Path(p) != root]
    for point in sorted(under, key=len, reverse=True):
        run(["umount", "--lazy", point])  # detached now, even while something reads it


def debian_rootfs(suite: str, packages: tuple[str, ...], arch: str = "amd64") -> Path:
    """A debootstrapped Debian (minbase) with packages, made once (downloads).

    Another architecture than the machine's is bootstrapped in two stages: debootstrap
    --foreign unpacks the packages, then its second stage (the maintainer scripts) runs in
    a chroot, the foreign programs under qemu-user-static."""
    tag = "" if arch == "amd64" else f"-{arch}"
    root = guest_dir() / f"rootfs-{suite}{tag}-{_digest(*packages)}"
    done = root / ".debootstrapped"
    if done.exists():
        unmount_under(root)
        return root
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {suite} ({arch}) into {root}")
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
           f"--arch={arch}"]  # fmt: skip
    if arch == host_arch():
        run([*cmd, suite, str(root), MIRROR], timeout=3600)
    else:
        foreign_programs_run(arch)
        run([*cmd, "--foreign", suite, str(root), MIRROR], timeout=3600)
        log(f"debootstrap second stage ({arch}, under qemu-user-static)")
        run(["chroot", str(root), "/debootstrap/debootstrap", "--second-stage"], timeout=7200)
        unmount_under(root)  # the second stage can leave its /proc mounted
    for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()
    done.touch()
    return root


def mount_disk_init(name: str, writer: str, disk: str, mountpoint: str, tag: str) -> str:
    """PID 1 of a root image whose work comes from a second disk (the second namespace
    of the one NVMe controller: names are stable): mount disk at mountpoint and hand
    over to its init, or say (tag FAIL) that it did not mount and power off. writer:
    the file that builds the image."""
    return f"""#!/bin/sh
# PID 1 of the syscap {name} image (written by {writer}): mount the
# {disk} and hand over to its init.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p {mountpoint}
if mount -t ext4 /dev/nvme0n2 {mountpoint} && [ -x {mountpoint}/init ]; then
	exec {mountpoint}/init
fi
echo "{tag} FAIL the {disk} did not mount"
echo o > /proc/sysrq-trigger
"""


@dataclasses.dataclass(frozen=True, slots=True)
class RootImage:
    """An ext4 image of a Debian root file system for one kernel: packages
    from the kernel's suite, the kernel's modules, and init_script as PID 1
    (at init_path). Its file name carries a digest of packages and script, so
    a change to either makes a new image."""

    name: str
    packages: tuple[str, ...]
    init_script: str
    init_path: str  # in the guest, e.g. /sbin/syscap-bench-init

    def file(self, abi: str) -> Path:
        return guest_dir() / f"{self.name}-{abi}-{_digest(*self.packages, self.init_script)}.img"

    def build(self, tree: KernelTree) -> Path:
        """The image for tree, written once (debootstraps on first use)."""
        img = self.file(tree.abi)
        if img.exists():
            return img
        root = debian_rootfs(tree.kernel.suite, self.packages, tree.kernel.arch)
        mods = root / "lib" / "modules" / tree.release
        if mods.exists():
            shutil.rmtree(mods)
        shutil.copytree(tree.root / "lib" / "modules" / tree.release, mods, symlinks=True)
        if (root / "usr" / "bin" / "kmod").exists():  # modprobe in the guest
            if tree.kernel.arch != host_arch():  # needs modules.dep, made by its depmod
                foreign_programs_run(tree.kernel.arch)
            run(["chroot", str(root), "depmod", tree.release], timeout=1800)
        init = root / self.init_path.lstrip("/")
        init.write_text(self.init_script)
        init.chmod(0o755)
        used = sum(f.lstat().st_size for f in root.rglob("*") if not f.is_symlink())
        size_mb = (int(used * 1.3) >> 20) + 256
        tmp = img.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        log(f"writing {img.name} ({size_mb} MB)")
        run(["mke2fs", "-q", "-t", "ext4", "-L", f"syscap-{self.name}", "-d", str(root),
             str(tmp), f"{size_mb}M"], timeout=1800)  # fmt: skip
        tmp.replace(img)
        return img

    def built(self, kernel: Kernel) -> tuple[KernelTree, Path] | None:
        """The newest image already built for kernel (and its unpacked
        kernel), found without network."""
        suffix = "-" + self.file("").name.split("-", 2)[2]  # "-<digest>.img"
        found = []
        for img in guest_dir().glob(f"{self.name}-*.img"):
            if not img.name.endswith(suffix):
                continue
            abi = img.name[len(self.name) + 1:-len(suffix)]
            root = cache_dir() / "kernels" / f"{kernel.kid}-{abi}"
            if (root / ".unpacked").exists():
                found.append((img.stat().st_mtime, KernelTree(kernel, abi, root), img))
        if not found:
            return None
        _, tree, img = max(found, key=lambda t: t[0])
        return tree, img

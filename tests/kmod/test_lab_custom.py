"""`lab.py run-custom`'s arguments, without a kernel: each mistake is one
error line naming the option and the fix, found before anything is downloaded,
built or locked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kmod" / "lab"))
import images
import lab

LAB_PY = Path(lab.__file__)


def fake_image(path: Path, arch: str) -> Path:
    """A file with the kernel image header magic of arch, and nothing else."""
    at, magic = images.IMAGE_MAGIC[arch]
    path.write_bytes(b"\0" * at + magic + b"\0" * 64)
    return path


def fake_build_tree(root: Path, arch: str, *, prepared: bool = True,
                    symvers: bool = True) -> Path:
    root.mkdir()
    (root / "Makefile").write_text("# kernel build directory\n")
    (root / ".config").write_text(f"CONFIG_MODULES=y\n{images.CONFIG_ARCH[arch]}\n")
    if prepared:
        (root / "include" / "config").mkdir(parents=True)
        (root / "include" / "config" / "kernel.release").write_text("4.19.1\n")
        (root / "scripts" / "mod").mkdir(parents=True)
        (root / "scripts" / "mod" / "modpost").write_text("")
    if symvers:
        (root / "Module.symvers").write_text("")
    return root


def fake_module(release: str) -> bytes:
    """An ELF header and a .modinfo vermagic for release (as modpost writes it)."""
    return b"\x7fELF\x02\x01\x01" + b"\0" * 57 + f"vermagic={release} SMP mod_unload \0".encode()


def run_custom(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAB_PY), "run-custom", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "SYSCAP_LAB_CACHE": str(cache)},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no image", r"^lab run-custom: --image missing: give the kernel image "
                     r"\(arch/arm64/boot/Image of the build\)$"),
        ("image not there", r"^lab run-custom: --image \S+/nothing: no such file: "),
        ("x86 image as arm64", r"^lab run-custom: --image \S+/bzImage: not an uncompressed "
                               r"arm64 kernel image: give arch/arm64/boot/Image"),
        ("no build tree", r"^lab run-custom: --build-tree missing: "),
        ("tree without Makefile", r"^lab run-custom: --build-tree \S+/empty: no Makefile: "),
        ("tree of the other arch", r"^lab run-custom: --build-tree \S+/x86: its .config has no "
                                   r"CONFIG_ARM64=y: "),
        ("unprepared tree", r"^lab run-custom: --build-tree \S+/raw: not prepared for external "
                            r"modules: run make modules_prepare there$"),
        ("tree without Module.symvers", r"^lab run-custom: --build-tree \S+/nosym: no "
                                        r"Module.symvers: "),
        ("bad arch", r"^lab run-custom: --arch riscv: give arm64 or amd64$"),
        ("a matrix kernel too", r"^lab run-custom: 6.1-amd64: run-custom boots the kernel "
                                r"of --image, name no matrix kernel$"),
        ("module not there", r"^lab run-custom: --module \S+/none.ko: no such file: give the "
                             r"syscap.ko built for 4.19.1 "),
        ("module not ELF", r"^lab run-custom: --module \S+/text.ko: not an ELF file: "),
        ("module of another kernel", r"^lab run-custom: --module \S+/other.ko: built for "
                                     r"6.1.0-50-cloud-arm64, the kernel is 4.19.1: build it "
                                     r"against --build-tree$"),
    ],
)
def test_each_bad_argument_is_one_line_and_touches_nothing(
        tmp_path: Path, case: str, expected: str) -> None:
    image = fake_image(tmp_path / "Image", "arm64")
    good = fake_build_tree(tmp_path / "arm64", "arm64")
    empty = tmp_path / "empty"
    empty.mkdir()
    text_ko = tmp_path / "text.ko"
    text_ko.write_text("vermagic=4.19.1 SMP mod_unload aarch64\n")
    other_ko = tmp_path / "other.ko"
    other_ko.write_bytes(fake_module("6.1.0-50-cloud-arm64"))
    chosen = ["--arch", "arm64", "--image", str(image), "--build-tree", str(good)]
    args = {
        "no image": ["--arch", "arm64", "--build-tree", str(good)],
        "image not there": ["--arch", "arm64", "--image", str(tmp_path / "nothing"),
                            "--build-tree", str(good)],
        "x86 image as arm64": ["--arch", "arm64",
                               "--image", str(fake_image(tmp_path / "bzImage", "amd64")),
                               "--build-tree", str(good)],
        "no build tree": ["--arch", "arm64", "--image", str(image)],
        "tree without Makefile": ["--arch", "arm64", "--image", str(image),
                                  "--build-tree", str(empty)],
        "tree of the other arch": ["--arch", "arm64", "--image", str(image),
                                   "--build-tree", str(fake_build_tree(tmp_path / "x86",
                                                                       "amd64"))],
        "unprepared tree": ["--arch", "arm64", "--image", str(image), "--build-tree",
                            str(fake_build_tree(tmp_path / "raw", "arm64", prepared=False))],
        "tree without Module.symvers": ["--arch", "arm64", "--image", str(image),
                                        "--build-tree", str(fake_build_tree(
                                            tmp_path / "nosym", "arm64", symvers=False))],
        "bad arch": ["--arch", "riscv", "--image", str(image), "--build-tree", str(good)],
        "a matrix kernel too": ["6.1-amd64", "--arch", "arm64", "--image", str(image),
                                "--build-tree", str(good)],
        "module not there": [*chosen, "--module", str(tmp_path / "none.ko")],
        "module not ELF": [*chosen, "--module", str(text_ko)],
        "module of another kernel": [*chosen, "--module", str(other_ko)],
    }[case]
    cache = tmp_path / "cache"
    p = run_custom(cache, *args)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert not cache.exists(), "an argument error must not download, build or lock"


def test_a_prepared_tree_and_its_image_give_the_tree_kernel_release(tmp_path: Path) -> None:
    image = fake_image(tmp_path / "bzImage", "amd64")
    tree = fake_build_tree(tmp_path / "b", "amd64")
    assert images.check_custom("amd64", image, tree) == "4.19.1"


def test_a_module_built_for_the_tree_kernel_passes(tmp_path: Path) -> None:
    ko = tmp_path / "syscap.ko"
    ko.write_bytes(fake_module("4.19.1"))
    images.check_module(ko, "4.19.1")
    other = re.escape("built for 4.19.1, the kernel is 4.19.10:")
    with pytest.raises(images.LabError, match=other):
        images.check_module(ko, "4.19.10")


def test_unknown_only_test_is_named(tmp_path: Path) -> None:
    p = run_custom(tmp_path / "cache", "--only", "exact_counts,no_such_test")
    assert p.returncode == 2
    assert p.stderr.splitlines() == [
        "lab run-custom: --only no_such_test: no such guest test: give some of "
        + ",".join(lab.GUEST_TESTS)
    ]


def guest_run(tmp_path: Path, statuses: dict[str, str]) -> lab.GuestRun:
    results = {n: lab.TestResult("PASS", "") for n in [*lab.INIT_TESTS, *lab.GUEST_TESTS]}
    results.update({n: lab.TestResult(s, "") for n, s in statuses.items()})
    return lab.GuestRun("custom-arm64", "4.19.1", results, {}, True, tmp_path / "console.log",
                        [], [], "", 1.0)  # fmt: skip


def test_a_skipped_guest_test_is_no_failure_but_a_failed_one_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """4.19 runs no eBPF: its SKIPs leave run-custom's exit status 0."""
    assert lab.report(guest_run(tmp_path, {"agent_record_bpf": "SKIP"}), None) == 0
    assert "  SKIP agent_record_bpf: " in capsys.readouterr().out
    assert lab.report(guest_run(tmp_path, {"agent_record_bpf": "SKIP",
                                           "exact_counts": "FAIL"}), None) == 1

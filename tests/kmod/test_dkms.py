"""kmod/dkms.conf with the real dkms: the tree `make -C kmod dkms-src` writes is
one dkms builds syscap.ko from, against a Debian kernel's headers (the lab's
unpacked 6.1-amd64 kernel, never downloaded here), with no warning and for that
kernel. dkms works in private trees under tmp_path: nothing is installed, and its
sign_file points nowhere, so it neither signs nor makes a signing key on this machine."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kmod" / "lab"))
import images

KMOD = images.REPO / "kmod"
KID = "6.1-amd64"


def dkms_program() -> str:
    path = shutil.which("dkms", path=os.pathsep.join([os.environ.get("PATH", ""),
                                                      "/usr/sbin", "/sbin"]))  # fmt: skip
    if path is None:
        pytest.skip("dkms is not installed (apt-get install dkms)")
    return path


def lab_tree() -> images.KernelTree:
    """The newest 6.1-amd64 kernel the lab has unpacked, or skip."""
    kernels = sorted((images.cache_dir() / "kernels").glob(f"{KID}-*/.unpacked"))
    if not kernels:
        pytest.skip(f"no {KID} kernel in the lab's cache: python3 kmod/lab/lab.py fetch {KID}")
    root = kernels[-1].parent
    return images.KernelTree(images.KERNELS[KID], root.name.removeprefix(f"{KID}-"), root)


def package_version() -> str:
    found = re.search(r'^PACKAGE_VERSION="([^"]+)"', (KMOD / "dkms.conf").read_text(), re.M)
    assert found, "kmod/dkms.conf has no PACKAGE_VERSION"
    return found.group(1)


def test_dkms_builds_the_module_from_the_dkms_source_tree(tmp_path: Path) -> None:
    dkms = dkms_program()
    if platform.machine() != "x86_64":
        pytest.skip("the lab's kernel build tools are x86-64 programs")
    tree = lab_tree()
    version = package_version()
    sources, built = tmp_path / "src", tmp_path / "dkms"
    built.mkdir()
    subprocess.run(["make", "-s", "-C", str(KMOD), "dkms-src",
                    f"DKMS_SRC={sources / f'syscap-{version}'}"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    p = subprocess.run(
        [dkms, "build", f"syscap/{version}", "-k", f"{tree.release}/x86_64",
         "--kernelsourcedir", str(tree.headers), "--dkmstree", str(built),
         "--sourcetree", str(sources), "-j", "1"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "sign_file": str(tmp_path / "no-sign-file")},
    )  # fmt: skip
    out = built / "syscap" / version / tree.release / "x86_64"
    log = out / "log" / "make.log"
    assert p.returncode == 0, p.stdout + p.stderr + (log.read_text() if log.exists() else "")
    assert images.warnings_in(log.read_text()) == []
    images.check_module(out / "module" / "syscap.ko", tree.release)

"""The probe builds for x86-64 and arm64 from the checked-in vmlinux.h
fallbacks, and the fallback-built object loads on this kernel (CO-RE)."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import tempfile

import pytest

from tests.conftest import ROOT

LIB = ROOT / "capture_lib"
EM_BPF = 247


@pytest.fixture(scope="module")
def fallbacks() -> None:
    subprocess.run(["make", "-s", "-C", str(LIB), "bpf-fallbacks"], check=True)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_probe_builds_from_fallback(fallbacks: None, arch: str) -> None:
    obj = (LIB / "build" / arch / "syscap.bpf.o").read_bytes()
    assert obj[:4] == b"\x7fELF"
    assert int.from_bytes(obj[18:20], "little") == EM_BPF
    assert b".BTF.ext" in obj  # CO-RE relocations travel with the object


def test_fallback_object_loads_and_attaches_here(fallbacks: None) -> None:
    if os.geteuid() != 0:
        pytest.skip("loading BPF needs root")
    subprocess.run(["make", "-s", "-C", str(ROOT / "bench" / "native"), "build/floor_loader"],
                   check=True)
    # stderr to a file: a refused program's verifier log fills a pipe and
    # the loader would block on it before it says anything on stdout
    with tempfile.TemporaryFile(mode="w+") as errf:
        loader = subprocess.Popen(
            [str(ROOT / "bench/native/build/floor_loader"),
             str(LIB / "build" / platform.machine() / "syscap.bpf.o")],
            stdout=subprocess.PIPE, stderr=errf, text=True)
        assert loader.stdout is not None
        try:
            line = loader.stdout.readline()
            loader.send_signal(signal.SIGTERM)
            loader.communicate(timeout=30)
        finally:  # never leave programs attached to every syscall
            loader.kill()
            loader.wait()
        errf.seek(0)
        err = errf.read()
    assert line.strip() == "ready", err[-2000:]

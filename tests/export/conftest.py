"""Fixtures for the export tests: real kernel (eBPF backend), real processes.

Every process a test starts is stopped and reaped by the fixture that started it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.capture_lib.conftest import SYSCAP, bpf_ready, workload  # noqa: F401 (fixtures)
from tests.conftest import ROOT, build_c

WORKLOADS = Path(__file__).parent / "workloads"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="session")
def pace(c_build_dir: Path) -> Path:
    return build_c(WORKLOADS / "pace.c", c_build_dir)


@pytest.fixture(scope="session")
def spawner(c_build_dir: Path) -> Path:
    return build_c(WORKLOADS / "spawner.c", c_build_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL; always reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


class Exporter:
    """A running `syscap exporter` subprocess."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.proc = subprocess.Popen(
            [*SYSCAP, "exporter", "--listen", f"127.0.0.1:{self.port}", *args],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        if "serving http" not in line:
            stop(self.proc)
            raise AssertionError(f"exporter did not start: {line}{self.proc.stderr.read()}")
        wait_http(self.url, self.proc)

    def scrape(self) -> Samples:
        """Every sample, keyed by (sample name, sorted labels), parsed by prometheus_client."""
        with urllib.request.urlopen(self.url, timeout=10) as r:
            text = r.read().decode()
        out: Samples = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def close(self) -> None:
        stop(self.proc)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def exporter(bpf_ready: None) -> Iterator[type[Exporter]]:  # noqa: F811
    """Start exporters with exporter(*args); all are stopped afterwards."""
    started: list[Exporter] = []

    class Tracked(Exporter):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for e in started:
        e.close()


def unique_comm(tmp_path: Path, exe: Path, prefix: str) -> Path:
    """A copy of exe whose name (and so comm) is unique to this test run."""
    name = f"{prefix}{os.getpid() % 100000}"[:15]
    copy = tmp_path / name
    copy.write_bytes(exe.read_bytes())
    copy.chmod(0o755)
    return copy

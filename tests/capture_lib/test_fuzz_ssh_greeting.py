"""`--ssh`'s reading of the box's greeting (capture_lib.ssh.read_greeting) under
atheris: seeded with real greetings and a login script's chatter, a short
coverage-guided run must find nothing but one-line CaptureErrors and UsageErrors.
A longer run: `python tests/capture_lib/fuzz_ssh_greeting.py -max_total_time=600 DIR`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

TARGET = Path(__file__).parent / "fuzz_ssh_greeting.py"
SECONDS = 10
SEEDS = {
    "cached": b"syscap-ssh 1 x86_64 " + b"ab" * 32 + b"\n",
    "none": b"syscap-ssh 1 aarch64 none\n",
    "other-arch": b"syscap-ssh 1 armv7l none\n",
    "chatter": b"Welcome to juno\r\n\x1b[1mlast login\x1b[0m\nsyscap-ssh 1 arm64 none\n",
    "cut": b"syscap-ssh 1 x86_",
}


def test_fuzzing_the_greeting_finds_only_one_line_errors(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    proc = subprocess.run(
        [sys.executable, str(TARGET), f"-max_total_time={SECONDS}", "-timeout=10",
         "-max_len=8192", f"-artifact_prefix={artifacts}/", str(corpus)],
        cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS + 120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    log = proc.stderr[-6000:]
    assert proc.returncode == 0, log
    assert list(artifacts.iterdir()) == [], log
    runs = re.search(r"Done (\d+) runs", proc.stderr)
    assert runs is not None and int(runs.group(1)) > 1000, log

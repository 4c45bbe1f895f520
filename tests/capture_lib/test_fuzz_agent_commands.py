"""syscap-agent's filter-command parser under libFuzzer (ASan + UBSan): the committed seeds
once, then a short coverage-guided run. The target checks that every filter it leaves is
one the kernel can take and that every error is one printable line.

A longer run: `make -C capture_lib fuzz-commands-run FUZZ_SECONDS=600`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.libfuzzer import built, run_corpus, short_run

CORPUS = Path(__file__).parent / "c" / "corpus" / "commands"
SECONDS = 10


@pytest.fixture(scope="module")
def fuzzer() -> Path:
    return built("fuzz-commands", "fuzz_agent_commands")


def test_every_seed_runs_clean(fuzzer: Path) -> None:
    assert run_corpus(fuzzer, CORPUS) >= 3


def test_short_fuzz_run_finds_nothing(fuzzer: Path, tmp_path: Path) -> None:
    short_run([fuzzer], CORPUS, tmp_path, SECONDS, min_runs=10000)

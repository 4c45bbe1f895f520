"""The trace reader under libFuzzer (ASan + UBSan): every committed corpus input
once, as regressions, then a short coverage-guided run from the seeds.

The seeds under c/corpus/trace are small traces made by `syscap record`, plus
every input that once crashed or misled a reader. A longer run:
`make -C capture_lib fuzz-run FUZZ_SECONDS=600`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.libfuzzer import built, run_corpus, short_run

CORPUS = Path(__file__).parent / "c" / "corpus" / "trace"
SECONDS = 25


@pytest.fixture(scope="module")
def fuzzer() -> Path:
    return built("fuzz", "fuzz_trace_reader")


def test_corpus_has_real_traces_and_regressions() -> None:
    names = {p.name for p in CORPUS.iterdir()}
    assert any(n.startswith("regress-") for n in names)
    assert len([n for n in names if not n.startswith("regress-")]) >= 3
    assert all(p.stat().st_size < 64 * 1024 for p in CORPUS.iterdir()), "keep seeds small"


def test_every_corpus_input_runs_clean(fuzzer: Path) -> None:
    run_corpus(fuzzer, CORPUS)


def test_short_fuzz_run_finds_no_crash(fuzzer: Path, tmp_path: Path) -> None:
    short_run([fuzzer], CORPUS, tmp_path, SECONDS, min_runs=1000)

"""throughput's search when repeats of the best rate drop: lowered until one
passes, then confirmed; given up after MAX_LOWER lowerings (recorded fakes,
not timings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.test_arithmetic import fake_trials


def test_throughput_keeps_lowering_until_a_rate_passes_then_confirms_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import throughput

    # trial 9 (a repeat of the best rate) and 10 (90 % of it) drop; 81 % passes
    monkeypatch.setattr(throughput, "trial", fake_trials(1.95e6, 4.0e6, flaky={9, 10}))
    row = throughput.search(8 << 20, 1.0, steps=6, confirm=3, work=Path("/nonexistent"))
    assert row["best"]["offered"] == pytest.approx(0.81 * 1.9375e6)
    assert row["recorded"]["n"] == 4
    assert "why" not in row


def test_throughput_gives_up_after_max_lower_lowerings(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import throughput

    flaky = set(range(9, 9 + 1 + throughput.MAX_LOWER))  # the repeat and every lowering
    monkeypatch.setattr(throughput, "trial", fake_trials(1.95e6, 4.0e6, flaky=flaky))
    row = throughput.search(8 << 20, 1.0, steps=6, confirm=3, work=Path("/nonexistent"))
    assert row["best"] is None
    assert "no rate stayed drop-free" in row["why"]
    assert len(row["trials"]) == 1 + 6 + 1 + 1 + throughput.MAX_LOWER

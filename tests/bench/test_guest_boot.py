"""The guest benchmark's boot, without booting: what quick does without an
image, and the guest's init script (test_arithmetic covers the console parsing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import guest_boot

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kmod" / "lab"))
import images


def test_quick_without_the_image_says_how_to_build_it_and_downloads_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSCAP_LAB_CACHE", str(tmp_path))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("quick must not download")

    monkeypatch.setattr(images, "fetch", no_network)
    monkeypatch.setattr(images, "debian_rootfs", no_network)
    with pytest.raises(images.LabError, match=r"run `syscap bench guest` once"):
        guest_boot.bench_guest(quick=True)


def test_guest_init_loads_the_modules_of_the_rows_that_run_and_names_their_tracers() -> None:
    plan = guest_boot.BenchPlan.of(quick=True)
    text = guest_boot.bench_init(plan, ["baseline", "bpf", "sysdig"])
    assert "insmod /bench/scap.ko" in text and "syscap.ko" not in text
    assert "export BENCH_KEYS='baseline bpf sysdig'" in text
    assert "export BENCH_START_bpf='/bench/guest_tracer.sh start bpf'" in text
    assert "BENCH_START_baseline" not in text
    assert f"sh /bench/guest_rounds.sh {plan.rounds} {plan.requests}" in text
    assert text.rstrip().endswith("echo o > /proc/sysrq-trigger")


def test_the_goals_rows_get_more_micro_rounds_when_two_of_them_run() -> None:
    plan = guest_boot.BenchPlan.of(quick=False, rounds=5)
    text = guest_boot.bench_init(plan, ["baseline", "kmodfloor", "kmod", "sysdig", "kmodcount"])
    assert "export BENCH_MICRO_MORE='baseline kmodfloor kmod kmodcount'" in text
    assert "export BENCH_MICRO_MORE_ROUNDS='15'" in text
    text = guest_boot.bench_init(plan, ["baseline", "sysdig"])
    assert "BENCH_MICRO_MORE" not in text


def test_full_runs_have_ten_rounds_unless_told() -> None:
    assert guest_boot.BenchPlan.of(quick=False).rounds == 10
    assert guest_boot.BenchPlan.of(quick=False, rounds=12).rounds == 12
    assert guest_boot.BenchPlan.of(quick=True).rounds < 10

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


def test_later_boots_run_only_the_goals_rows_micro_rounds_numbered_after_the_boots_before(
        ) -> None:
    plan = guest_boot.BenchPlan.of(quick=False, rounds=5)
    keys = ["baseline", "kmodfloor", "kmod", "sysdig", "kmodcount"]
    first = guest_boot.bench_init(plan, keys)
    assert "BENCH_MICRO_FIRST" not in first and "CHECK no-modules" in first
    text = guest_boot.bench_init(plan, keys, boot=2)
    assert "export BENCH_KEYS='baseline kmodfloor kmod kmodcount'" in text
    assert "export BENCH_MICRO_FIRST='10'" in text  # boot 0: 1-5, boot 1: 6-10
    assert "export BENCH_MICRO_ROUNDS='5'" in text
    assert "sh /bench/guest_rounds.sh 0 " in text  # no nginx rounds
    assert "/bench/scap.ko" not in text and "BENCH_START_sysdig" not in text
    assert "CHECK" not in text  # the idle checks are the first boot's
    assert "insmod /bench/syscap.ko" in text


def test_the_count_goals_rows_get_boots_of_their_own_after_the_goals_boots() -> None:
    plan = guest_boot.BenchPlan.of(quick=False, rounds=5)
    keys = ["baseline", "kmodfloor", "kmod", "bpf", "kmodcount", "kmodsampled"]
    assert plan.boots == 1 + plan.more_boots + plan.count_boots
    last_more = guest_boot.bench_init(plan, keys, boot=plan.more_boots)
    assert "export BENCH_KEYS='baseline kmodfloor kmod bpf kmodcount'" in last_more
    first_count = plan.more_boots + 1
    text = guest_boot.bench_init(plan, keys, boot=first_count)
    assert "export BENCH_KEYS='baseline kmodfloor kmodcount'" in text
    assert f"export BENCH_MICRO_FIRST='{first_count * 5}'" in text
    assert "BENCH_START_kmod'" not in text and "BENCH_START_bpf'" not in text
    # a row set with nothing to pair runs no later boot
    assert guest_boot.boot_keys(plan, ["baseline", "bpf"], first_count) == []
    assert guest_boot.BenchPlan.of(quick=True).boots == 1


def test_guest_rounds_numbers_a_later_boots_micro_rounds_after_the_first(
        tmp_path: Path) -> None:
    """guest_rounds.sh itself, with a stub micro command and tracer: the rows
    and round numbers a later boot prints."""
    import os
    import subprocess

    script = Path(guest_boot.__file__).with_name("guest_rounds.sh")
    fake = tmp_path / "bin"
    fake.mkdir()
    # no nginx here: a stub that "starts"; taskset absent on purpose is fine
    (fake / "nginx").write_text("#!/bin/sh\nexit 0\n")
    (fake / "nginx").chmod(0o755)
    (fake / "pgrep").write_text("#!/bin/sh\nexit 1\n")
    (fake / "pgrep").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "BENCH_KEYS": "baseline t",
           "BENCH_MICRO": "echo 700", "BENCH_MICRO_ROUNDS": "2", "BENCH_MICRO_FIRST": "4",
           "BENCH_START_t": "true", "BENCH_STOP_t": "echo events=1 drops=0",
           "TMPDIR": str(tmp_path), "HOME": os.environ.get("HOME", "/root")}
    out = subprocess.run(["sh", str(script), "0", "10"], env=env, capture_output=True,
                         text=True, timeout=60, check=False).stdout
    micro = [ln.split()[2:4] for ln in out.splitlines() if ln.startswith("SYSCAP-BENCH MICRO")]
    assert sorted(micro) == [["5", "baseline"], ["5", "t"], ["6", "baseline"], ["6", "t"]]
    assert "SYSCAP-BENCH RUN" not in out


def test_full_runs_have_ten_rounds_unless_told() -> None:
    assert guest_boot.BenchPlan.of(quick=False).rounds == 10
    assert guest_boot.BenchPlan.of(quick=False, rounds=12).rounds == 12
    assert guest_boot.BenchPlan.of(quick=True).rounds < 10


def test_a_full_run_gives_the_count_goals_rows_a_hundred_rounds() -> None:
    plan = guest_boot.BenchPlan.of(quick=False)
    rounds = sum(plan.rounds for boot in range(plan.boots)
                 if "kmodcount" in guest_boot.boot_keys(plan, guest_boot.BENCH_KEYS, boot))
    assert rounds == 100

"""bench/board.py's arithmetic and table, from a result of made-up runs (the
measurement itself needs root, tmux and sshd: `syscap bench board`)."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench import board, cli


def made_up() -> dict[str, Any]:
    runs = {
        "agent-200": [{"bytes_per_s": 1500.0, "cpu_pct": 0.4, "rss_mib": 8.0,
                       "procs_per_interval": 205.0}] * 3,
        "top-200": [{"cpu_pct": 2.0, "rss_mib": 85.0}] * 3,
        "agent-2000": [{"bytes_per_s": 7000.0, "cpu_pct": 1.0, "rss_mib": 15.0,
                        "procs_per_interval": 2010.0}] * 3,
        "top-2000": [{"cpu_pct": 9.0, "rss_mib": 96.0}] * 3,
    }  # fmt: skip
    starts = {"ssh-send": [3.0, 2.5, 2.9], "ssh-cached": [2.6, 2.8, 2.7], "local": [2.4] * 3}
    med = {k: {f: statistics.median(m[f] for m in v) for f in v[0]} for k, v in runs.items()}
    med.update({f"first-screen-{k}": {"s": statistics.median(v)} for k, v in starts.items()})
    return {
        "machine": {"date": "2026-12-03 15:22:08 UTC", "cpu_model": "AMD EPYC", "arch": "x86_64",
                    "cpus": 2, "kernel": "6.18", "loadavg_at_start": [2.1, 2.6, 2.3]},
        "rounds": 3, "window_s": 10.0, "loadavg_at_end": [4.6, 3.7, 2.8],
        "agent_bytes": {"x86_64": 1400456, "aarch64": 1256352},
        "runs": runs, "first_screen_s": starts, "median": med,
    }  # fmt: skip


def test_the_table_has_a_row_per_load_and_the_first_screen_medians() -> None:
    text = board.table(made_up())
    assert "| 200 | 1.5 | 205 | 0.4 % | 8.0 MiB | 2.0 % | 85.0 MiB |" in text
    assert "| 2000 | 7.0 | 2010 | 1.0 % | 15.0 MiB | 9.0 % | 96.0 MiB |" in text
    assert "x86_64 1.40 MB, aarch64 1.26 MB" in text
    assert "2.90 s sending the agent, 2.70 s with its copy on the box" in text
    assert "local `top` 2.40 s" in text
    assert "load average [2.1, 2.6, 2.3] at start, [4.6, 3.7, 2.8] at end" in text


def test_board_is_a_bench_subcommand_outside_all() -> None:
    assert "board" not in cli.NAMES
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    assert parser.parse_args(["bench", "board", "--quick"]).which == "board"

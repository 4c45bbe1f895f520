"""Subcommands come from the packages that own them (entry points)."""

from __future__ import annotations

import argparse
import importlib.metadata

import pytest

from capture_lib import cli


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def test_every_package_registers_its_subcommands() -> None:
    assert subcommands(cli.build_parser()) >= {
        "record", "report", "info", "top", "restore", "export", "exporter", "bench"}


def test_a_broken_subcommand_package_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="tests.capture_lib.no_such_module:register",
        group=cli.COMMANDS_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken])
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()

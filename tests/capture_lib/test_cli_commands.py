"""Subcommands come from the packages that own them (entry points)."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys

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


def test_a_named_command_loads_only_its_own_package() -> None:
    # In a fresh interpreter: this one has imported the other packages already.
    code = (
        "import sys; from capture_lib import cli; "
        "p = cli.build_parser(cli.command_word(['restore', 'core'])); "
        "p.parse_args(['restore', 'core']); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()  # fmt: skip
    assert "restorer" in out
    assert not {"tui", "bench", "textual"} & set(out)


def test_a_command_registered_under_another_name_is_still_found() -> None:
    # export_cli registers `exporter` from its entry point named `export`.
    assert "exporter" in subcommands(cli.build_parser(cli.command_word(["exporter", "-h"])))
    assert cli.command_word(["--help"]) is None

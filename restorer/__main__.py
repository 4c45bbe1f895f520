"""`python -m restorer restore CORE ...`: the restore subcommand on its own, with
`syscap`'s error contract: bad arguments and a RestoreError are one line, `syscap
restore: what is wrong: how to fix it`, exit status 2; Ctrl-C ends it with 130;
anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import sys

from restorer.cli import register
from restorer.errors import Parser, run_command


def main(argv: list[str] | None = None) -> int:
    parser: argparse.ArgumentParser = Parser(prog="syscap")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return run_command(args, args.command)


if __name__ == "__main__":
    sys.exit(main())

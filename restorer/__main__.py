"""`python -m restorer restore CORE ...`: the restore subcommand on its own, with
`syscap`'s error contract: bad arguments and a RestoreError are one line, `syscap
restore: what is wrong: how to fix it`, exit status 2; Ctrl-C ends it with 130;
anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from restorer.cli import register
from restorer.errors import RestoreError, one_line


class Parser(argparse.ArgumentParser):
    """argparse's errors in one line, as capture_lib.cli.Parser gives them to `syscap`
    (which the restorer does not import)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {one_line(message)}: see {self.prog} --help\n")


def main(argv: list[str] | None = None) -> int:
    parser: argparse.ArgumentParser = Parser(prog="syscap")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except RestoreError as e:
        print(f"{parser.prog} {args.command}: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

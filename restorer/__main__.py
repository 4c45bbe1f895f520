"""`python -m restorer restore CORE ...`: the restore subcommand on its own, with
`syscap`'s error contract: a RestoreError is one line, `syscap restore: what is
wrong: how to fix it`, exit status 2; Ctrl-C ends it with 130; anything else is a
bug and keeps its traceback."""

from __future__ import annotations

import argparse
import sys

from restorer.cli import register
from restorer.errors import RestoreError, one_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="syscap")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except RestoreError as e:
        print(f"{parser.prog} {args.command}: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

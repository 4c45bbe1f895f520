"""`python -m restorer restore CORE ...`: the restore subcommand on its own."""

from __future__ import annotations

import argparse
import sys

from restorer.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="syscap")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

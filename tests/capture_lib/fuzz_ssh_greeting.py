"""Fuzz target for capture_lib.ssh.read_greeting: what `--ssh` makes of the first bytes
a box (its login shell, its bootstrap, or anything at the other end of the ssh
connection) sends before the agent runs.

    python tests/capture_lib/fuzz_ssh_greeting.py [libFuzzer flags] CORPUS_DIR

Each input arrives through a pipe, as ssh's output does. The only exceptions allowed
are CaptureError and UsageError, with a one-line, printable message of bounded
length; a greeting that is accepted names an agent build this syscap has and a
SHA-256 in hex or "none".
"""

from __future__ import annotations

import os
import re
import sys
import time

import atheris

with atheris.instrument_imports(include=["capture_lib"]):
    from capture_lib.errors import CaptureError, UsageError
    from capture_lib.ssh import ARCHES, MAX_GREETING, read_greeting

MAX_INPUT = 2 * MAX_GREETING  # fits a pipe's buffer: the write never blocks


def test_one_input(data: bytes) -> None:
    data = data[:MAX_INPUT]
    r, w = os.pipe()
    try:
        os.write(w, data)
        os.close(w)
        w = -1
        try:
            got = read_greeting(r, time.monotonic() + 10)
        except (CaptureError, UsageError) as exc:
            msg = str(exc)
            if not msg.isprintable() or len(msg) > 200:
                raise AssertionError(f"an unfit message: {msg!r}") from None
            return
        if got is not None:
            arch, digest = got
            if arch not in ARCHES.values() or not (
                digest == "none" or re.fullmatch("[0-9a-f]{64}", digest)
            ):
                raise AssertionError(f"accepted {got!r}")
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

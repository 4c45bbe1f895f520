"""`python -m tui top ...`: the same as `syscap top ...` (the same dispatcher, so
the same one-line errors), for a checkout where `syscap` is not on PATH."""

from __future__ import annotations

import sys

from capture_lib.cli import main

if __name__ == "__main__":
    sys.exit(main())

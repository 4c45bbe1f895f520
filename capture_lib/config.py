"""Where syscap keeps what a user sets up: `$XDG_CONFIG_HOME/syscap/`
(`~/.config/syscap/` without XDG_CONFIG_HOME), as htop keeps its htoprc."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "syscap"


def write_config_file(path: Path, text: str) -> None:
    """Replace path with text atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise

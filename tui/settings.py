"""What `syscap top` remembers between runs: the view, each view's sort, the
stable-order toggle and remapped keys, in `$XDG_CONFIG_HOME/syscap/top.json`
(as htop keeps htoprc). `--no-config` neither reads nor writes it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from capture_lib.config import config_dir, write_config_file

VERSION = 1
VIEWS = ("processes", "syscalls")


@dataclass(slots=True)
class TopSettings:
    view: str = "processes"
    sorts: dict[str, tuple[str, bool]] = field(default_factory=dict)  # view -> (key, desc)
    stable: bool = False
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> keys

    def to_json(self) -> str:
        return json.dumps({
            "version": VERSION,
            "view": self.view,
            "sorts": {v: {"key": k, "descending": d} for v, (k, d) in sorted(self.sorts.items())},
            "stable": self.stable,
            "keys": dict(sorted(self.keys.items())),
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TopSettings:
        """What the file says; what it says wrongly is left at the default (a
        settings file is the user's own, and a bad one must not stop top)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return cls()
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return cls()
        out = cls()
        if data.get("view") in VIEWS:
            out.view = data["view"]
        sorts = data.get("sorts")
        if isinstance(sorts, dict):
            for view, s in sorts.items():
                if (view in VIEWS and isinstance(s, dict) and isinstance(s.get("key"), str)
                        and isinstance(s.get("descending"), bool)):
                    out.sorts[view] = (s["key"], s["descending"])
        if isinstance(data.get("stable"), bool):
            out.stable = data["stable"]
        keys = data.get("keys")
        if isinstance(keys, dict):
            out.keys = {k: v for k, v in keys.items() if isinstance(k, str) and isinstance(v, str)}
        return out


def settings_path() -> Path:
    return config_dir() / "top.json"


def load(path: Path) -> TopSettings:
    try:
        return TopSettings.from_json(path.read_text())
    except (OSError, UnicodeDecodeError):
        return TopSettings()


def save(path: Path, settings: TopSettings) -> None:
    write_config_file(path, settings.to_json())

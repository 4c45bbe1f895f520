"""A filter by name, as a person writes it, and the named filters that outlive a session.

`FilterSpec` holds what the user picked (syscall groups and names, pids, comms,
failed-only); `to_filter` turns it into the numeric `Filter` the kernel applies,
with this machine's syscall table. Specs are saved by name, as JSON, in
`$XDG_CONFIG_HOME/syscap/filters/NAME.json` (`~/.config` without XDG_CONFIG_HOME),
so a filter tuned in `syscap top` can be given to `record`, `top` and `exporter`
with `--filter NAME` (or a path to such a file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from capture_lib.config import config_dir, write_config_file
from capture_lib.errors import SyscapError, UsageError
from capture_lib.snapshot import Filter

GROUP_ORDER = ("file", "network", "process", "memory", "signal", "ipc", "time", "other")
SPEC_VERSION = 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class SyscallTable(Protocol):
    """What a spec needs from capture_lib.syscalls: groups and name -> number."""

    @property
    def groups(self) -> Mapping[str, frozenset[str]]: ...

    def number(self, name: str) -> int: ...


@dataclass(frozen=True, slots=True)
class ModuleTable:
    """Adapts a module-level table (capture_lib.syscalls: GROUPS, number()) to SyscallTable."""

    groups: Mapping[str, frozenset[str]]
    lookup: Callable[[str], int]

    def number(self, name: str) -> int:
        try:
            return self.lookup(name)
        except SyscapError as exc:  # capture_lib raises UsageError with close matches
            raise ValueError(str(exc)) from None


def host_table() -> SyscallTable:
    """This machine's syscall table."""
    from capture_lib import syscalls

    return ModuleTable(syscalls.GROUPS, syscalls.number)


@dataclass(frozen=True, slots=True)
class FilterSpec:
    groups: frozenset[str] = field(default_factory=frozenset)  # empty: no group restriction
    syscalls: frozenset[str] = field(default_factory=frozenset)  # single syscalls by name
    pids: frozenset[int] = field(default_factory=frozenset)
    exclude_pids: frozenset[int] = field(default_factory=frozenset)
    comms: frozenset[str] = field(default_factory=frozenset)
    exclude_comms: frozenset[str] = field(default_factory=frozenset)
    failed_only: bool = False

    @property
    def is_empty(self) -> bool:
        return self == FilterSpec()

    def describe(self) -> str:
        """A one-line summary for the status bar ('none' when nothing is filtered)."""
        parts: list[str] = []
        if self.groups or self.syscalls:
            parts.append(",".join(self._syscall_words()))
        if self.pids:
            parts.append("pid " + ",".join(map(str, sorted(self.pids))))
        if self.exclude_pids:
            parts.append("not pid " + ",".join(map(str, sorted(self.exclude_pids))))
        if self.comms:
            parts.append("comm " + ",".join(sorted(self.comms)))
        if self.exclude_comms:
            parts.append("not comm " + ",".join(sorted(self.exclude_comms)))
        if self.failed_only:
            parts.append("failed only")
        return "; ".join(parts) if parts else "none"

    def _syscall_words(self) -> list[str]:
        return [g for g in GROUP_ORDER if g in self.groups] + sorted(self.syscalls)

    def options(self) -> list[str] | None:
        """The same filter as command-line options (-e, -p, --comm, --failed), or
        None when it has parts only a saved filter can carry (exclusions)."""
        if self.exclude_pids or self.exclude_comms:
            return None
        out: list[str] = []
        words = [f"%{g}" for g in GROUP_ORDER if g in self.groups] + sorted(self.syscalls)
        if words:
            out += ["-e", ",".join(words)]
        for pid in sorted(self.pids):
            out += ["-p", str(pid)]
        for comm in sorted(self.comms):
            out += ["--comm", comm]
        if self.failed_only:
            out.append("--failed")
        return out

    def to_filter(self, table: SyscallTable | None) -> Filter:
        """The kernel filter. Raises ValueError naming a syscall this machine lacks."""
        numbers: set[int] = set()
        if self.groups or self.syscalls:
            if table is None:
                raise ValueError("syscall filters need the syscall table (capture_lib.syscalls)")
            for group in self.groups:
                for name in table.groups.get(group, frozenset()):
                    try:
                        numbers.add(table.number(name))
                    except (KeyError, ValueError):
                        continue  # the group lists a call this architecture lacks
            for name in self.syscalls:
                if name.isdigit():  # a number, as `-e 257`
                    numbers.add(int(name))
                    continue
                try:
                    numbers.add(table.number(name))
                except KeyError:
                    raise ValueError(f"unknown syscall {name!r} on this machine") from None
        return Filter(
            syscalls=frozenset(numbers),
            pids=self.pids,
            exclude_pids=self.exclude_pids,
            comms=self.comms,
            exclude_comms=self.exclude_comms,
            failed_only=self.failed_only,
        )

    def to_json(self) -> str:
        return json.dumps({
            "version": SPEC_VERSION,
            "groups": [g for g in GROUP_ORDER if g in self.groups],
            "syscalls": sorted(self.syscalls),
            "pids": sorted(self.pids),
            "exclude_pids": sorted(self.exclude_pids),
            "comms": sorted(self.comms),
            "exclude_comms": sorted(self.exclude_comms),
            "failed_only": self.failed_only,
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FilterSpec:
        """Raises ValueError saying what is wrong with the text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("version") != SPEC_VERSION:
            raise ValueError(f"version {data.get('version')!r}, this syscap reads {SPEC_VERSION}")
        known = {"version", "groups", "syscalls", "pids", "exclude_pids", "comms",
                 "exclude_comms", "failed_only"}
        extra = set(data) - known
        if extra:
            raise ValueError(f"unknown field {sorted(extra)[0]!r}")

        def words(key: str) -> frozenset[str]:
            v = data.get(key, [])
            if not isinstance(v, list) or not all(isinstance(w, str) and w for w in v):
                raise ValueError(f"{key!r} must be a list of names")
            return frozenset(v)

        def pids(key: str) -> frozenset[int]:
            v = data.get(key, [])
            if not isinstance(v, list) or not all(
                    isinstance(p, int) and not isinstance(p, bool) and 0 < p < 2**22 for p in v):
                raise ValueError(f"{key!r} must be a list of process ids")
            return frozenset(v)

        groups = words("groups")
        unknown = groups - set(GROUP_ORDER)
        if unknown:
            raise ValueError(f"unknown syscall group {sorted(unknown)[0]!r}")
        comms = words("comms") | words("exclude_comms")
        for c in comms:
            if len(c.encode()) > 15:
                raise ValueError(f"comm {c!r} is longer than the kernel's 15 bytes")
        failed = data.get("failed_only", False)
        if not isinstance(failed, bool):
            raise ValueError("'failed_only' must be true or false")
        return cls(groups=groups, syscalls=words("syscalls"), pids=pids("pids"),
                   exclude_pids=pids("exclude_pids"), comms=words("comms"),
                   exclude_comms=words("exclude_comms"), failed_only=failed)


def filters_dir() -> Path:
    return config_dir() / "filters"


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise UsageError(f"filter name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-' "
                         "(starting with a letter or digit)")


def save(name: str, spec: FilterSpec) -> Path:
    """Write spec as filters/NAME.json (replacing one of that name); its path."""
    check_name(name)
    write_config_file(filters_dir() / f"{name}.json", spec.to_json())
    return filters_dir() / f"{name}.json"


FILTER_HELP = ("a filter saved in top's filter dialog (w), by name, or a filter file's path; "
               "not combined with -e, -p, --comm or --failed")


def load_alone(name_or_path: str, *others: object) -> FilterSpec:
    """load(), refusing other filter options given with it (any truthy one)."""
    if any(others):
        raise UsageError(f"--filter {name_or_path} cannot be combined with -e, -p, --comm or "
                         "--failed: change the saved filter in top (F4, then w) instead")
    return load(name_or_path)


def saved_names() -> list[str]:
    d = filters_dir()
    return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []


def load(name_or_path: str) -> FilterSpec:
    """A saved filter by name, or a filter file by path (anything with a '/' or
    ending in .json). UsageError, one line, when it cannot be read."""
    if "/" in name_or_path or name_or_path.endswith(".json"):
        path = Path(name_or_path)
    else:
        check_name(name_or_path)
        path = filters_dir() / f"{name_or_path}.json"
        if not path.exists():
            have = ", ".join(saved_names()) or "none yet: save one with w in top's filter dialog"
            raise UsageError(f"--filter {name_or_path}: no saved filter of that name "
                             f"(saved: {have})")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--filter {name_or_path}: cannot read {path}: "
                         f"{getattr(e, 'strerror', None) or e}") from None
    try:
        return FilterSpec.from_json(text)
    except ValueError as e:
        raise UsageError(f"--filter {name_or_path}: {path} is not a syscap filter: {e}") from None


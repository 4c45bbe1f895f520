"""The user's filter choice (groups, names, pids, comms) and its kernel form, `Filter`.

The UI edits a `FilterChoice` (what the person picked, by name); `to_filter` turns it
into the numeric `capture_lib.snapshot.Filter` the backend applies in the kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from capture_lib.snapshot import Filter

GROUP_ORDER = ("file", "network", "process", "memory", "signal", "ipc", "time", "other")


class SyscallTable(Protocol):
    """What the filter needs from capture_lib.syscalls: groups and name -> number."""

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
        except Exception as exc:  # capture_lib raises UsageError with close matches
            raise ValueError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class FilterChoice:
    groups: frozenset[str] = field(default_factory=frozenset)  # empty: no group restriction
    syscalls: frozenset[str] = field(default_factory=frozenset)  # single syscalls by name
    pids: frozenset[int] = field(default_factory=frozenset)
    exclude_pids: frozenset[int] = field(default_factory=frozenset)
    comms: frozenset[str] = field(default_factory=frozenset)
    exclude_comms: frozenset[str] = field(default_factory=frozenset)
    failed_only: bool = False

    @property
    def is_empty(self) -> bool:
        return self == FilterChoice()

    def describe(self) -> str:
        """A one-line summary for the status bar ('none' when nothing is filtered)."""
        parts: list[str] = []
        if self.groups or self.syscalls:
            names = [g for g in GROUP_ORDER if g in self.groups] + sorted(self.syscalls)
            parts.append(",".join(names))
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


def split_words(text: str) -> list[str]:
    """'a, b c' -> ['a', 'b', 'c']."""
    return [w for w in text.replace(",", " ").split() if w]


def parse_pids(text: str) -> frozenset[int]:
    """'12, 34' -> {12, 34}. Raises ValueError naming the bad entry."""
    pids = set()
    for word in split_words(text):
        if not word.isdigit() or int(word) <= 0:
            raise ValueError(f"not a PID: {word!r}")
        pids.add(int(word))
    return frozenset(pids)


COMM_MAX_BYTES = 15  # TASK_COMM_LEN - 1: what the kernel keeps of a command name


def check_comms(comms: Iterable[str]) -> None:
    """ValueError for a name the kernel's comm can never equal (as in ps -o comm)."""
    for comm in comms:
        if not 0 < len(comm.encode()) <= COMM_MAX_BYTES:
            raise ValueError(f"comm {comm!r}: a command name has 1 to 15 bytes (as in ps -o comm)")


def parse_syscalls(
    words: Iterable[str], groups: Iterable[str] = GROUP_ORDER
) -> tuple[frozenset[str], frozenset[str]]:
    """Split `-e` words into (groups, single syscall names); '%file' or 'file' is a group."""
    known = set(groups)
    chosen = [w.strip() for w in words if w.strip()]
    return (
        frozenset(w.lstrip("%") for w in chosen if w.lstrip("%") in known),
        frozenset(w for w in chosen if w.lstrip("%") not in known),
    )

"""Parsing what the person types into the filter dialog and `-e`.

The dialog edits a `capture_lib.filter_spec.FilterSpec` (what the person picked, by
name); its `to_filter` turns it into the numeric `Filter` the kernel applies.
"""

from __future__ import annotations

from collections.abc import Iterable

from capture_lib.filter_spec import GROUP_ORDER


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

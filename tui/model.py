"""The state behind the screen: latest snapshot, the view stack, sort, search, pause.

No Textual here: the app feeds snapshots in and asks for ordered rows out, so the
logic is tested without a terminal.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Hashable

from capture_lib.snapshot import Snapshot
from tui.views import ProcessesView, Row, SyscallsView, UserOf, View, order_rows


def local_user(pid: int) -> str:
    """The owner of a live local process ('' when it is gone or unreadable)."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class UserCache:
    """pid -> user name, looked up once per pid."""

    def __init__(self, lookup: UserOf) -> None:
        self._lookup = lookup
        self._cache: dict[int, str] = {}

    def __call__(self, pid: int) -> str:
        user = self._cache.get(pid)
        if user is None:
            if len(self._cache) > 65536:
                self._cache.clear()
            user = self._cache[pid] = self._lookup(pid)
        return user


class TopModel:
    """Everything the table needs, updated one snapshot at a time."""

    def __init__(self, user_of: UserOf = local_user) -> None:
        self.users = UserCache(user_of)
        self.processes = ProcessesView(self.users)
        self.syscalls = SyscallsView()
        self.stack: list[View] = [self.processes]
        self.latest: Snapshot | None = None  # newest snapshot (gauges)
        self.shown: Snapshot | None = None  # snapshot behind the table (frozen on pause)
        self.paused = False
        self.search = ""
        self.stable = False
        self._order: list[Hashable] | None = None
        self._rows: list[Row] = []
        self._all_rows: list[Row] = []
        self.on_change: Callable[[], None] = lambda: None

    def set_user_lookup(self, user_of: UserOf) -> None:
        """Replace how pids map to users (a replay's pids are not this machine's)."""
        self.users = UserCache(user_of)
        for view in (self.processes, self.syscalls, *self.stack):
            view.user_of = self.users

    @property
    def view(self) -> View:
        return self.stack[-1]

    # -- input -------------------------------------------------------------------
    def apply(self, snap: Snapshot) -> bool:
        """Take one snapshot; True when the table's rows changed (not paused)."""
        self.latest = snap
        if self.paused:
            return False
        self.shown = snap
        for view in {id(v): v for v in (self.processes, self.syscalls, *self.stack)}.values():
            view.observe(snap)
        self.reorder(keep_order=self.stable)
        return True

    def reorder(self, keep_order: bool = False) -> None:
        """Rebuild the visible row list (after new data, a sort change or a search)."""
        view = self.view
        self._all_rows = view.rows()
        previous = self._order if keep_order else None
        self._rows = order_rows(view, self._all_rows, previous, self.search)
        self._order = [r.key for r in self._rows]

    # -- what to show ---------------------------------------------------------------
    @property
    def rows(self) -> list[Row]:
        return self._rows

    def totals(self) -> str:
        return self.view.totals(self._all_rows, len(self._rows))

    def breadcrumb(self) -> str:
        return " › ".join(v.title() for v in self.stack)  # noqa: RUF001

    # -- commands ------------------------------------------------------------------
    def set_sort(self, key: str, descending: bool | None = None) -> None:
        self.view.set_sort(key, descending)
        self.reorder()

    def cycle_sort(self, step: int) -> None:
        cols = [c for c in self.view.columns if c.sortable]
        keys = [c.key for c in cols]
        i = keys.index(self.view.sort_key) if self.view.sort_key in keys else 0
        key = keys[(i + step) % len(keys)]
        self.view.set_sort(key, self.view.column(key).descending)
        self.reorder()

    def invert_sort(self) -> None:
        self.view.sort_descending = not self.view.sort_descending
        self.reorder()

    def set_search(self, text: str) -> None:
        self.search = text
        self.reorder()

    def toggle_stable(self) -> None:
        self.stable = not self.stable
        if not self.stable:
            self.reorder()

    def settings(self) -> tuple[str, dict[str, tuple[str, bool]], bool]:
        """(base view, each base view's sort, stable order): what top remembers."""
        base = "processes" if self.stack[0] is self.processes else "syscalls"
        sorts = {name: (v.sort_key, v.sort_descending)
                 for name, v in (("processes", self.processes), ("syscalls", self.syscalls))}
        return base, sorts, self.stable

    def restore(self, base: str, sorts: dict[str, tuple[str, bool]], stable: bool) -> None:
        """Take remembered settings back; a sort key a view lacks is ignored."""
        for name, view in (("processes", self.processes), ("syscalls", self.syscalls)):
            key, descending = sorts.get(name, (view.sort_key, view.sort_descending))
            if any(c.key == key and c.sortable for c in view.columns):
                view.set_sort(key, descending)
        self.stable = stable
        self.show_view(base)

    def show_view(self, base: str) -> None:
        """Switch the bottom of the stack: 'processes' or 'syscalls'."""
        self.stack = [self.processes if base == "processes" else self.syscalls]
        self.search = ""
        self.reorder()

    def drill(self, row: Row) -> bool:
        child = self.view.drill(row)
        if child is None:
            return False
        child.user_of = self.users
        if self.shown is not None:
            child.observe(self.shown)
        self.stack.append(child)
        self.search = ""
        self.reorder()
        return True

    def back(self) -> bool:
        if len(self.stack) == 1:
            return False
        self.stack.pop()
        self.search = ""
        self.reorder()
        return True

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if not paused and self.latest is not None and self.latest is not self.shown:
            self.apply(self.latest)

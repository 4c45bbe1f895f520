"""What each table shows: columns, rows built from snapshots, drill-down targets.

Pure Python (no Textual), so the views are testable and cheap: rows carry raw values
(sorting uses them); cells are formatted only for the rows on screen.

Four views: processes, syscalls (all processes together), one process's syscalls
(Enter on a process) and the processes making one syscall (Enter on a syscall).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from capture_lib.snapshot import ProcessStats, Snapshot, SyscallStats
from tui import format as fmt

TREND_SAMPLES = 8
LINGER_TICKS = 5  # an idle process stays listed (at 0/s) this many refreshes

Cell = tuple[str, str]  # (text, style class: "" | "alarm" | "dim" | "accent")
UserOf = Callable[[int], str]


def _text_cell(value: Any) -> Cell:
    return (str(value), "")


def _rate_cell(rate: float) -> Cell:
    return (fmt.rate(rate), "")


def _err_cell(rate: float) -> Cell:
    return (fmt.rate(rate), "alarm" if rate > 0 else "")


def _latency_cell(ns: float) -> Cell:
    return (fmt.latency(ns), "")


def _errno_cell(name: str) -> Cell:
    return (name, "alarm" if name else "")


def _trend_cell(trend: tuple[float, ...]) -> Cell:
    return (fmt.sparkline(trend, TREND_SAMPLES), "accent")


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    align: str = "right"  # "left" | "right"
    sortable: bool = True
    descending: bool = True  # first click sorts highest first
    flex: bool = False  # takes the spare width
    drop: int = 0  # dropped when the terminal is narrow: highest first (0 never)
    cell: Callable[[Any], Cell] = _text_cell  # the raw value as the table shows it


@dataclass(slots=True)
class Row:
    key: Hashable
    values: tuple[Any, ...]  # one per column, raw (sortable) values
    faded: bool = False  # exited or idle


def _no_user(pid: int) -> str:
    return ""


class View:
    """Base: subclasses set `kind`, `columns`, `default_sort` and fill in the hooks."""

    kind = ""
    columns: tuple[Column, ...] = ()
    default_sort = ""

    def __init__(self) -> None:
        self.sort_key = self.default_sort
        self.sort_descending = self.column(self.default_sort).descending
        self._hist: dict[Hashable, deque[float]] = {}
        self._rows: list[Row] = []
        self.user_of: UserOf = _no_user

    # -- hooks -----------------------------------------------------------------
    def title(self) -> str:
        raise NotImplementedError

    def observe(self, snap: Snapshot) -> None:
        """Record one interval (trend history); called for every snapshot, paused or not."""
        raise NotImplementedError

    def drill(self, row: Row) -> View | None:
        return None

    def pid_of(self, row: Row | None) -> int | None:
        """The process a signal would go to from this row."""
        return None

    def totals(self, rows: list[Row], shown: int) -> str:
        return ""

    def search_text(self, row: Row) -> str:
        return " ".join(str(v) for v, c in zip(row.values, self.columns, strict=True) if c.sortable)

    # -- shared ----------------------------------------------------------------
    def rows(self) -> list[Row]:
        """Rows for the most recently observed interval, unsorted."""
        return self._rows

    def cells(self, row: Row) -> tuple[Cell, ...]:
        return tuple(c.cell(v) for c, v in zip(self.columns, row.values, strict=True))

    def column(self, key: str) -> Column:
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(key)

    def sort_index(self) -> int:
        return [c.key for c in self.columns].index(self.sort_key)

    def _rate_total(self, rows: list[Row], key: str) -> str:
        """The total of column `key` over rows, as the table shows it: a rate."""
        i = [c.key for c in self.columns].index(key)
        return fmt.rate(sum(r.values[i] for r in rows))

    @staticmethod
    def _counted(rows: list[Row], shown: int, noun: str) -> str:
        """'12 processes', or '12 processes (3 shown)' when a search narrows them."""
        return f"{len(rows)} {noun}" + (f" ({shown} shown)" if shown != len(rows) else "")

    def set_sort(self, key: str, descending: bool | None = None) -> None:
        col = self.column(key)
        if not col.sortable:
            return
        if descending is None:
            descending = (not self.sort_descending) if key == self.sort_key else col.descending
        self.sort_key, self.sort_descending = key, descending

    def _push(self, key: Hashable, value: float) -> tuple[float, ...]:
        hist = self._hist.get(key)
        if hist is None:
            hist = self._hist[key] = deque(maxlen=TREND_SAMPLES)
        hist.append(value)
        return tuple(hist)

    def _prune(self, alive: Iterable[Hashable]) -> None:
        keep = set(alive)
        for key in [k for k in self._hist if k not in keep]:
            del self._hist[key]


def _avg(total_ns: int, count: int) -> float:
    return total_ns / count if count else 0.0


# one syscall's figures in an interval, as SyscallsView and SyscallProcessesView show them
_CALL_COLUMNS = (
    Column("rate", "CALLS/s", 8, cell=_rate_cell),
    Column("errors", "ERR/s", 7, cell=_err_cell),
    Column("avg", "AVG", 8, cell=_latency_cell),
    Column("p99", "P99", 8, cell=_latency_cell),
    Column("last_err", "LAST ERR", 9, align="left", descending=False, drop=3, cell=_errno_cell),
    Column("trend", "TREND", TREND_SAMPLES, sortable=False, drop=1, cell=_trend_cell),
)


def _call_values(
    s: SyscallStats, interval: float, trend: tuple[float, ...]
) -> tuple[float, float, float, float, str, tuple[float, ...]]:
    """The values of _CALL_COLUMNS for s; trend is the history ending at s's rate."""
    return (
        s.count / interval,
        s.errors / interval,
        _avg(s.total_ns, s.count),
        float(s.p99_ns),
        fmt.errno_name(s.last_errno),
        trend,
    )


class ProcessesView(View):
    kind = "processes"
    columns = (
        Column("pid", "PID", 7, descending=False),
        Column("user", "USER", 8, align="left", descending=False, drop=2),
        Column("comm", "COMM", 9, align="left", descending=False, flex=True),
        Column("rate", "SYSC/s", 7, cell=_rate_cell),
        Column("errors", "ERR/s", 6, cell=_err_cell),
        Column("top", "TOP SYSCALL", 11, align="left", descending=False, drop=3),
        Column("avg", "AVG", 7, cell=_latency_cell),
        Column("p99", "P99", 7, cell=_latency_cell),
        Column("trend", "TREND", TREND_SAMPLES, sortable=False, drop=1, cell=_trend_cell),
    )
    default_sort = "rate"

    def __init__(self, user_of: UserOf = _no_user) -> None:
        super().__init__()
        self.user_of = user_of
        self._users: dict[int, str] = {}
        self._last: dict[int, tuple[ProcessStats, int]] = {}  # pid -> (stats, idle ticks)
        self._interval = 1.0

    def title(self) -> str:
        return "Processes"

    def user(self, pid: int) -> str:
        user = self._users.get(pid)
        if user is None:
            user = self._users[pid] = self.user_of(pid)
        return user

    def observe(self, snap: Snapshot) -> None:
        interval = snap.interval_s
        self._interval = interval
        last = self._last
        seen: set[int] = set()
        rows: list[Row] = []
        for p in snap.processes:
            seen.add(p.pid)
            last[p.pid] = (p, 0)
        for pid in list(last):
            p, idle = last[pid]
            if pid not in seen:
                idle += 1
                if idle > LINGER_TICKS or p.exited:
                    del last[pid]
                    self._users.pop(pid, None)
                    continue
                last[pid] = (p, idle)
            active = idle == 0
            rate = p.count / interval if active else 0.0
            err = p.errors / interval if active else 0.0
            top = p.syscalls[0].name if p.syscalls else ""
            avg = _avg(p.total_ns, p.count) if active else 0.0
            p99 = float(p.p99_ns) if active else 0.0
            trend = self._push(pid, rate)
            rows.append(
                Row(
                    pid,
                    (pid, self.user(pid), p.comm, rate, err, top, avg, p99, trend),
                    faded=p.exited or not active,
                )
            )
        self._prune(last)
        self._rows = rows

    def drill(self, row: Row) -> View | None:
        pid = row.values[0]
        p = self._last.get(pid)
        return ProcessSyscallsView(pid, p[0].comm if p else "?")

    def pid_of(self, row: Row | None) -> int | None:
        return int(row.values[0]) if row else None

    def totals(self, rows: list[Row], shown: int) -> str:
        counted = self._counted(rows, shown, "processes")
        rate, errors = self._rate_total(rows, "rate"), self._rate_total(rows, "errors")
        return f"{counted}  {rate} syscalls/s  {errors} errors/s"


class SyscallsView(View):
    """All processes together, one row per syscall (csysdig's syscalls view)."""

    kind = "syscalls"
    columns = (
        Column("name", "SYSCALL", 16, align="left", descending=False, flex=True),
        Column("nr", "NR", 4, descending=False, drop=2),
        *_CALL_COLUMNS,
    )
    default_sort = "rate"

    def title(self) -> str:
        return "Syscalls"

    def _stats(self, snap: Snapshot) -> Iterable[SyscallStats]:
        return snap.syscalls

    def observe(self, snap: Snapshot) -> None:
        interval = snap.interval_s
        rows = []
        for s in self._stats(snap):
            trend = self._push(s.nr, s.count / interval)
            rows.append(Row(s.nr, (s.name, s.nr, *_call_values(s, interval, trend))))
        self._prune(r.key for r in rows)
        self._rows = rows

    def drill(self, row: Row) -> View | None:
        return SyscallProcessesView(int(row.values[1]), str(row.values[0]))

    def totals(self, rows: list[Row], shown: int) -> str:
        counted = self._counted(rows, shown, "syscalls")
        rate, errors = self._rate_total(rows, "rate"), self._rate_total(rows, "errors")
        return f"{counted}  {rate} calls/s  {errors} errors/s"


class ProcessSyscallsView(SyscallsView):
    """One process's syscalls (Enter on a process)."""

    kind = "process-syscalls"

    def __init__(self, pid: int, comm: str) -> None:
        super().__init__()
        self.pid, self.comm = pid, comm
        self.state = ""  # "", "idle" or "exited"

    def title(self) -> str:
        return f"{self.pid} {self.comm}"

    def _stats(self, snap: Snapshot) -> Iterable[SyscallStats]:
        for p in snap.processes:
            if p.pid == self.pid:
                self.comm = p.comm
                self.state = "exited" if p.exited else ""
                return p.syscalls
        if self.state != "exited":
            self.state = "idle"
        return ()

    def totals(self, rows: list[Row], shown: int) -> str:
        if self.state == "exited" and not rows:
            return f"process {self.pid} has exited"
        if self.state == "idle":
            return f"process {self.pid} made no syscalls in this interval (idle or gone)"
        return super().totals(rows, shown)

    def drill(self, row: Row) -> View | None:
        return None

    def pid_of(self, row: Row | None) -> int | None:
        return self.pid


class SyscallProcessesView(View):
    """The processes making one syscall (Enter on a syscall)."""

    kind = "syscall-processes"
    columns = (
        Column("pid", "PID", 7, descending=False),
        Column("user", "USER", 8, align="left", descending=False, drop=2),
        Column("comm", "COMM", 10, align="left", descending=False, flex=True),
        *_CALL_COLUMNS,
    )
    default_sort = "rate"

    def __init__(self, nr: int, name: str) -> None:
        super().__init__()
        self.nr, self.name = nr, name

    def title(self) -> str:
        return self.name

    def observe(self, snap: Snapshot) -> None:
        interval = snap.interval_s
        rows = []
        nr = self.nr
        for p in snap.processes:
            for s in p.syscalls:
                if s.nr == nr:
                    trend = self._push(p.pid, s.count / interval)
                    values = (p.pid, self.user_of(p.pid), p.comm, *_call_values(s, interval, trend))
                    rows.append(Row(p.pid, values, faded=p.exited))
                    break
        self._prune(r.key for r in rows)
        self._rows = rows

    def drill(self, row: Row) -> View | None:
        return ProcessSyscallsView(int(row.values[0]), str(row.values[2]))

    def pid_of(self, row: Row | None) -> int | None:
        return int(row.values[0]) if row else None

    def totals(self, rows: list[Row], shown: int) -> str:
        counted = self._counted(rows, shown, "processes")
        return f"{counted} calling {self.name}  {self._rate_total(rows, 'rate')} calls/s"


def order_rows(
    view: View, rows: list[Row], previous: list[Hashable] | None, search: str
) -> list[Row]:
    """Rows sorted by the view's sort column (text case-folded), narrowed by `search`.

    With `previous` (stable ordering), rows keep their earlier positions; new rows are
    appended in sort order and vanished ones dropped, so the table does not jump.
    """
    if search:
        needle = search.casefold()
        rows = [r for r in rows if needle in view.search_text(r).casefold()]
    idx = view.sort_index()

    def sort_value(r: Row) -> Any:
        v = r.values[idx]
        return v.casefold() if isinstance(v, str) else v

    ordered = sorted(rows, key=sort_value, reverse=view.sort_descending)
    if previous is None:
        return ordered
    by_key = {r.key: r for r in ordered}
    kept = [by_key.pop(k) for k in previous if k in by_key]
    return kept + [r for r in ordered if r.key in by_key]

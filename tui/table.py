"""LiveTable: a table that scales to thousands of rows refreshed every second.

Textual's DataTable repaints everything on each update (127-1300 ms and ~19 KB per
tick at 2 000-5 000 rows, measured). This one:

- formats cells only for rows on screen (rows carry raw values; `cells_of` formats);
- after new data, compares what each screen line would show with what it last drew
  and refreshes only the lines that differ, so one changed row writes one line;
- keeps the cursor on a row key (a PID), not an index, across re-sorts;
- drops low-priority columns when narrow, and gives the spare width to a flex column.

Line 0 is the column header (click a title to sort); data lines follow.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.views import Cell, Column, Row

CellsOf = Callable[[Row], tuple[Cell, ...]]
Signature = tuple[object, ...]


def _no_cells(row: Row) -> tuple[Cell, ...]:
    return ()


class LiveTable(ScrollView, can_focus=True):
    """A virtualised, diff-repainted table of `Row`s."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "live-table--header",
        "live-table--header-sorted",
        "live-table--cursor",
        "live-table--alarm",
        "live-table--accent",
        "live-table--faded",
    }

    DEFAULT_CSS = """
    LiveTable {
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        & > .live-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .live-table--header-sorted { text-style: bold underline; color: $accent; }
        & > .live-table--cursor { background: $primary 40%; }
        &:focus > .live-table--cursor { background: $primary; color: $text; }
        & > .live-table--alarm { color: $error; }
        & > .live-table--accent { color: $success; }
        & > .live-table--faded { color: $text-muted; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False, id="table.up", tooltip="Previous row"),
        Binding("down", "cursor(1)", "Down", show=False, id="table.down", tooltip="Next row"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.pageup",
                tooltip="One screen up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.pagedown",
                tooltip="One screen down"),
        Binding("home", "jump(0)", "First", show=False, id="table.home", tooltip="First row"),
        Binding("end", "jump(-1)", "Last", show=False, id="table.end", tooltip="Last row"),
        Binding("enter", "activate", "Open", show=False, id="table.open",
                tooltip="Drill into the row under the cursor"),
    ]  # fmt: skip

    class RowActivated(Message):
        def __init__(self, row: Row) -> None:
            super().__init__()
            self.row = row

    class HeaderClicked(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._columns: tuple[Column, ...] = ()
        self._cells_of: CellsOf = _no_cells
        self._rows: list[Row] = []
        self._index: dict[Hashable, int] = {}
        self._cursor = 0
        self.cursor_key: Hashable | None = None
        self._sort_key = ""
        self._sort_descending = True
        self._layout: list[tuple[int, int]] = []  # (column index, width)
        self._layout_width = -1
        self._painted: dict[int, Signature] = {}  # screen line -> what it shows
        self._estimated: frozenset[str] = frozenset()  # column keys titled with a ~
        self.lines_refreshed = 0  # data lines refreshed by diffs (for tests and the bench)

    # -- data in -------------------------------------------------------------------
    def set_view(
        self,
        columns: tuple[Column, ...],
        cells_of: CellsOf,
        sort_key: str,
        sort_descending: bool,
    ) -> None:
        """New columns, formatter or sort: everything is redrawn."""
        changed_columns = columns != self._columns
        self._columns, self._cells_of = columns, cells_of
        self._sort_key, self._sort_descending = sort_key, sort_descending
        if changed_columns:
            self._layout_width = -1
            self._cursor = 0
            self.cursor_key = None
        self._painted.clear()
        self.refresh()

    def mark_estimated(self, keys: frozenset[str]) -> None:
        """Columns whose figures are estimates (from sampled durations): their
        titles end in ~."""
        if keys != self._estimated:
            self._estimated = keys
            self.refresh(Region(0, 0, self.size.width, 1))

    def set_rows(self, rows: Sequence[Row]) -> None:
        """New rows (already ordered). Only screen lines whose content differs repaint."""
        self._rows = list(rows)
        self._index = {r.key: i for i, r in enumerate(self._rows)}
        if self.cursor_key in self._index:
            self._cursor = self._index[self.cursor_key]
        else:
            self._cursor = min(self._cursor, max(len(self._rows) - 1, 0))
            self.cursor_key = self._rows[self._cursor].key if self._rows else None
        size = Size(self.size.width, len(self._rows) + 1)
        if size != self.virtual_size:  # setting it repaints the scrollbar
            self.virtual_size = size
        if self._scroll_to_cursor():
            return  # scrolling repaints the whole widget
        self._repaint_changed()

    # -- queries ---------------------------------------------------------------------
    @property
    def rows(self) -> list[Row]:
        return self._rows

    @property
    def cursor_row(self) -> Row | None:
        return self._rows[self._cursor] if self._rows else None

    def move_cursor_to(self, key: Hashable) -> bool:
        if key not in self._index:
            return False
        self._set_cursor(self._index[key])
        return True

    # -- geometry --------------------------------------------------------------------
    def _body_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 0)

    def _scroll_to_cursor(self) -> bool:
        top = round(self.scroll_y)
        body = self._body_height()
        if body <= 0:
            return False
        if self._cursor < top:
            target = self._cursor
        elif self._cursor >= top + body:
            target = self._cursor - body + 1
        else:
            return False
        self.scroll_to(y=target, animate=False, force=True, immediate=True)
        return True

    def _compute_layout(self, width: int) -> None:
        cols = list(enumerate(self._columns))

        def need(cs: list[tuple[int, Column]]) -> int:
            return sum(c.width for _, c in cs) + max(len(cs) - 1, 0)

        while need(cols) > width:
            droppable = [(c.drop, i) for i, c in cols if c.drop]
            if not droppable:
                break
            _, victim = max(droppable)
            cols = [(i, c) for i, c in cols if i != victim]
        spare = max(width - need(cols), 0)
        widths = {i: c.width for i, c in cols}
        flex = [i for i, c in cols if c.flex]
        if flex:  # the flex column (COMM) grows up to 12 more cells
            grow = min(spare, 12)
            widths[flex[0]] += grow
            spare -= grow
        others = [i for i, c in cols if not c.flex and c.sortable]
        for n, i in enumerate(others):  # the rest is shared out evenly
            widths[i] += spare // len(others) + (1 if n < spare % len(others) else 0)
        self._layout = [(i, widths[i]) for i, _ in cols]
        self._layout_width = width

    # -- painting --------------------------------------------------------------------
    def _signature(self, line: int) -> Signature:
        """What screen line `line` (0 = header) shows, as a comparable value."""
        if line == 0:
            return ("header", self._sort_key, self._sort_descending, self._layout_width,
                    self._estimated)
        index = round(self.scroll_y) + line - 1
        if index >= len(self._rows):
            return ("blank",)
        row = self._rows[index]
        return (row.key, self._cells_of(row), index == self._cursor, row.faded, self.has_focus)

    def _repaint_changed(self) -> None:
        width = self.size.width
        for line in range(1, self._body_height() + 1):
            if self._painted.get(line) != self._signature(line):
                self.lines_refreshed += 1
                self.refresh(Region(0, line, width, 1))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if width != self._layout_width:
            self._compute_layout(width)
        sig = self._signature(y)
        self._painted[y] = sig
        base = self.rich_style
        if y == 0:
            return self._header_strip(base, width)
        if sig[0] == "blank":
            return Strip.blank(width, base)
        cells = sig[1]
        assert isinstance(cells, tuple)
        style = base
        if sig[3]:
            style = style + self.get_component_rich_style("live-table--faded", partial=True)
        if sig[2]:
            style = style + self.get_component_rich_style("live-table--cursor", partial=True)
        return self._cells_strip(cells, style, width)

    def _cells_strip(self, cells: tuple[Cell, ...], style: Style, width: int) -> Strip:
        segments: list[Segment] = []
        alarm = accent = None
        for n, (i, w) in enumerate(self._layout):
            text, cls = cells[i]
            col = self._columns[i]
            text = text[:w]
            text = text.rjust(w) if col.align == "right" else text.ljust(w)
            cell_style = style
            if cls == "alarm":
                alarm = alarm or self.get_component_rich_style("live-table--alarm", partial=True)
                cell_style = style + alarm
            elif cls == "accent":
                accent = accent or self.get_component_rich_style("live-table--accent", partial=True)
                cell_style = style + accent
            if n:
                segments.append(Segment(" ", style))
            segments.append(Segment(text, cell_style))
        return Strip(segments).adjust_cell_length(width, style).simplify()

    def _header_strip(self, base: Style, width: int) -> Strip:
        header = base + self.get_component_rich_style("live-table--header", partial=True)
        sorted_style = header + self.get_component_rich_style(
            "live-table--header-sorted", partial=True
        )
        segments: list[Segment] = []
        for n, (i, w) in enumerate(self._layout):
            col = self._columns[i]
            title = col.title + ("~" if col.key in self._estimated else "")
            is_sorted = col.key == self._sort_key
            if is_sorted:
                title = title + ("▼" if self._sort_descending else "▲")
            title = title[:w]
            title = title.rjust(w) if col.align == "right" else title.ljust(w)
            if n:
                segments.append(Segment(" ", header))
            segments.append(Segment(title, sorted_style if is_sorted else header))
        return Strip(segments).adjust_cell_length(width, header).simplify()

    def column_at(self, x: int) -> str | None:
        pos = 0
        for i, w in self._layout:
            if pos <= x < pos + w:
                return self._columns[i].key
            pos += w + 1
        return None

    # -- cursor and input -----------------------------------------------------------
    def _set_cursor(self, index: int) -> None:
        if not self._rows:
            return
        index = min(max(index, 0), len(self._rows) - 1)
        self._cursor = index
        self.cursor_key = self._rows[index].key
        if not self._scroll_to_cursor():
            self._repaint_changed()

    def action_cursor(self, step: int) -> None:
        self._set_cursor(self._cursor + step)

    def action_page(self, step: int) -> None:
        self._set_cursor(self._cursor + step * max(self._body_height() - 1, 1))

    def action_jump(self, where: int) -> None:
        self._set_cursor(len(self._rows) - 1 if where < 0 else 0)

    def action_activate(self) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.RowActivated(row))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self.column_at(offset.x)
            if column is not None:
                self.post_message(self.HeaderClicked(column))
            return
        index = round(self.scroll_y) + offset.y - 1
        if 0 <= index < len(self._rows):
            self._set_cursor(index)
            if event.chain >= 2:
                self.action_activate()

    def on_focus(self) -> None:
        self._repaint_changed()

    def on_blur(self) -> None:
        self._repaint_changed()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)
        self._layout_width = -1
        self._painted.clear()
        self._scroll_to_cursor()
        self.refresh()

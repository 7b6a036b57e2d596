"""DataTable helpers: columns that fill the screen width, a cursor that survives a rebuild, a row table
whose ``enter`` belongs to the screen (so the footer shows what enter does), and a fill in batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

PADDING = 2  # DataTable's default cell padding, left + right
MIN_FLEX = 8
FIRST_ROWS = 200  # added at once: more than a screen holds, so the first frame is complete
BATCH_ROWS = 1000  # then this many per frame: 10,000 rows arrive within a few frames, none of them long

Columns = tuple[tuple[str, str, float], ...]


def fit_columns(columns: Columns, total: int, *, border: bool = False) -> list[int]:
    """Widths for (key, label, width) columns that fill ``total`` (the table's outer width).

    A width of 1 or more is fixed; 0 takes a share of what is left (weight 1), and a fraction (0 < w < 1) takes
    that weight, so a title can get most of the room and a dedupe key the rest. A flexible column is never
    narrower than 8. A bordered table loses two columns to its border.
    """
    fixed = sum(int(w) for _, _, w in columns if w >= 1) + PADDING * len(columns) + 2 + (2 if border else 0)
    weights = [(1.0 if w == 0 else w) for _, _, w in columns if w < 1]
    room = max(0, total - fixed)
    total_weight = sum(weights) or 1.0
    out: list[int] = []
    given = 0
    flex_seen = 0
    for _, _, w in columns:
        if w >= 1:
            out.append(int(w))
            continue
        flex_seen += 1
        share = (
            room - given if flex_seen == len(weights) else int(room * (1.0 if w == 0 else w) / total_weight)
        )
        given += share
        out.append(max(MIN_FLEX, share))
    return out


def elide_left(text: str, width: int) -> str:
    """Keep the end of a path, which names the file: ``…ory/report.py``."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


class RowTable(DataTable, inherit_bindings=False):
    """A row-cursor table without its own ``enter``: the screen's enter binding (Open, Report) is then the one
    that runs and the one the footer shows. A mouse click on a highlighted row still posts RowSelected."""

    BINDINGS: ClassVar[list[BindingType]] = [
        b for b in DataTable.BINDINGS if not (isinstance(b, Binding) and b.key == "enter")
    ]

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        super().__init__(**kwargs)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures every cell of every new row to size auto-width columns: most of the cost of
        filling 10,000 rows. Our screens give every column a width (fit_columns) and every row one line, so
        the measurements would never be used; only the scrollable size is computed then."""
        new_rows = list(new_rows)
        rows = self.rows
        if any(column.auto_width for column in self.columns.values()) or any(
            (row := rows.get(key)) is not None and (row.label is not None or row.auto_height)
            for key in new_rows
        ):
            super()._update_dimensions(new_rows)
            return
        header_height = self.header_height if self.show_header else 0
        self.virtual_size = Size(
            sum(column.get_render_width(self) for column in self.columns.values())
            + self._row_label_column_width,
            self._total_row_height + header_height,
        )


@contextlib.contextmanager
def keep_cursor(table: DataTable) -> Iterator[None]:
    """Rebuild a table and put the cursor back on the same row key (or the same index if it went away)."""
    key = None
    row = table.cursor_row
    if table.row_count:
        with contextlib.suppress(Exception):
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    scroll_y = table.scroll_y
    yield
    if not table.row_count:
        return
    index = min(row, table.row_count - 1)
    if key is not None:
        with contextlib.suppress(Exception):
            index = table.get_row_index(key)
    table.move_cursor(row=max(0, index), animate=False, scroll=False)
    table.scroll_to(y=scroll_y, animate=False, immediate=True)
    if index != row:
        table.move_cursor(row=index, animate=False)


Row = tuple[str, list[Text]]  # row key, cells


class _CursorMemo:
    """Where the cursor was before a rebuild; put back once its row exists again (unless the user moved)."""

    def __init__(self, table: DataTable) -> None:
        self.key: str | None = None
        self.row = table.cursor_row
        self.scroll_y = table.scroll_y
        self.done = table.row_count == 0
        if table.row_count:
            with contextlib.suppress(Exception):
                self.key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def restore(self, table: DataTable, *, final: bool) -> None:
        if self.done or not table.row_count:
            return
        if table.cursor_row != 0:  # the user moved it while rows were still arriving: theirs wins
            self.done = True
            return
        index = None
        if self.key is not None:
            with contextlib.suppress(Exception):
                index = table.get_row_index(self.key)
        if index is None:
            if not final:
                return  # its row may be in a later batch
            index = min(self.row, table.row_count - 1)
        self.done = True
        table.move_cursor(row=max(0, index), animate=False, scroll=False)
        table.scroll_to(y=self.scroll_y, animate=False, immediate=True)
        if index != self.row:
            table.move_cursor(row=index, animate=False)


class BatchedFill:
    """Rebuilds a table with many rows without freezing the screen: the first rows at once, the rest in batches
    after each refresh. A new ``fill`` cancels the batches of the previous one; the cursor stays on its row."""

    def __init__(self, table: DataTable, *, first: int = FIRST_ROWS, batch: int = BATCH_ROWS) -> None:
        self.table = table
        self.first = first
        self.batch = batch
        self.generation = 0
        self._items: Sequence[Any] = ()
        self._make: Callable[[Any], Row] = lambda item: item
        self._next = 0
        self._memo: _CursorMemo | None = None

    @property
    def pending(self) -> bool:
        """Rows still to be added."""
        return self._next < len(self._items)

    def fill(
        self, columns: Sequence[tuple[str, str, int]], items: Sequence[Any], make: Callable[[Any], Row]
    ) -> None:
        """Replace the table's columns (key, label, width) and rows (``make(item)`` → key and cells)."""
        table = self.table
        self.generation += 1
        self._memo = _CursorMemo(table)
        table.clear(columns=True)
        for key, label, width in columns:
            table.add_column(label, key=key, width=width)
        self._items, self._make, self._next = items, make, 0
        self._add(self.first)
        if self.pending:
            table.call_after_refresh(self._step, self.generation)

    def _step(self, generation: int) -> None:
        if generation != self.generation or not self.table.is_attached:
            return  # a newer fill replaced these rows, or the table is gone
        self._add(self.batch)
        if self.pending:
            self.table.call_after_refresh(self._step, generation)

    def _add(self, count: int) -> None:
        table = self.table
        end = min(len(self._items), self._next + count)
        for item in self._items[self._next : end]:
            key, cells = self._make(item)
            table.add_row(*cells, key=key)
        self._next = end
        if self._memo is not None:
            self._memo.restore(table, final=end == len(self._items))

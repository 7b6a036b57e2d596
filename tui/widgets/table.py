"""DataTable helpers: columns that fill the screen width, and a cursor that survives a rebuild."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from textual.widgets import DataTable

PADDING = 2  # DataTable's default cell padding, left + right


def fit_columns(columns: tuple[tuple[str, str, int], ...], total: int, *, border: bool = False) -> list[int]:
    """Widths for (key, label, width) columns; the one with width 0 takes what is left (at least 8).

    ``total`` is the table's outer width; a bordered table loses two columns to its border.
    """
    fixed = sum(w for _, _, w in columns) + PADDING * len(columns) + 2 + (2 if border else 0)  # 2: scrollbar
    flex = max(8, total - fixed)
    return [w or flex for _, _, w in columns]


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

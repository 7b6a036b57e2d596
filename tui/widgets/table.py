"""DataTable helpers: columns that fill the screen width, a cursor that survives a rebuild, and a row table
whose ``enter`` belongs to the screen (so the footer shows what enter does)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable

PADDING = 2  # DataTable's default cell padding, left + right
MIN_FLEX = 8

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
        share = room - given if flex_seen == len(weights) else int(room * (1.0 if w == 0 else w) / total_weight)
        given += share
        out.append(max(MIN_FLEX, share))
    return out


def elide_left(text: str, width: int) -> str:
    """Keep the end of a path, which names the file: ``…ory/report.py``."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


class RowTable(DataTable, inherit_bindings=False):
    """A row-cursor table without its own ``enter``: the screen's enter binding (Open, Report) is then the one
    that runs and the one the footer shows. A mouse click on a highlighted row still posts RowSelected."""

    BINDINGS: ClassVar[list[BindingType]] = [b for b in DataTable.BINDINGS
                                             if not (isinstance(b, Binding) and b.key == "enter")]

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        super().__init__(**kwargs)



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

"""What the four main screens share: header, tab bar, footer, and a ``reload`` the app calls on store changes.

Textual calls a message handler of every class in the MRO (base classes after subclasses), so subclasses must
not call ``super().on_mount()`` and friends: the base's work would run twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from always_on.tui.widgets.nav import NavTabs
from always_on.tui.widgets.table import BatchedFill

if TYPE_CHECKING:
    from always_on.tui.app import AlwaysOnApp

R = TypeVar("R")


class MainScreen(Screen[None]):
    MODE = ""
    TITLE = ""

    @property
    def ao(self) -> AlwaysOnApp:
        return cast("AlwaysOnApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavTabs(self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    _suspended = False

    def on_mount(self) -> None:
        self.title = self.TITLE
        self.sub_title = self.ao.bridge.display_path
        self.reload()

    def on_screen_suspend(self) -> None:
        self._suspended = True

    def on_screen_resume(self) -> None:
        try:
            self.query_one(NavTabs).reset()
        except NoMatches:
            return  # not composed yet: on_mount loads it
        if self._suspended:  # the resume that follows the first mount has nothing new to show
            self._suspended = False
            self.reload()

    def reload(self) -> None:
        """Re-read what this screen shows from the store (called on resume and when the store changes)."""


class RecordTableScreen(MainScreen):
    """A main screen around one table of records keyed by id: the highlighted record, and enter/click opens it."""

    TABLE_ID = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._by_id: dict[str, object] = {}
        self._version = 0  # bumped when the records read differ from the last ones
        self._filled: tuple | None = None  # what the table was last filled with (version, layout, ...)
        self._batches: BatchedFill | None = None

    def on_mount(self) -> None:  # MainScreen.on_mount (title, reload) runs after this one
        self.table.focus()

    @property
    def filling(self) -> bool:
        """Rows are still being added to the table (a big store arrives in batches)."""
        return self._batches is not None and self._batches.pending

    @property
    def table(self) -> DataTable:
        return self.query_one(f"#{self.TABLE_ID}", DataTable)

    def highlighted(self):
        table = self.table
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._by_id.get(key)

    def fill_rows(
        self,
        columns: Sequence[tuple[str, str, object]],
        widths: Sequence[int],
        records: Sequence[R],
        row: Callable[[R], tuple[str, list[Text]]],
    ) -> None:
        """Fill the table with one row per record (in batches: a big store arrives a screenful at a time)."""
        if self._batches is None:
            self._batches = BatchedFill(self.table)
        self._batches.fill(
            [(key, label, w) for (key, label, _), w in zip(columns, widths, strict=True)], records, row
        )

    def _fill(self) -> None:  # pragma: no cover - every subclass defines it
        """Rebuild the table, unless it already shows these records at this width."""
        raise NotImplementedError

    def _show_detail(self) -> None:  # pragma: no cover - every subclass defines it
        """The highlighted record in full, under the table."""
        raise NotImplementedError

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_resize(self) -> None:
        if self._filled is not None:  # refills only if the width changed the columns
            self._fill()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

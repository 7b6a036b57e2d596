"""Backlog: every plan of the project, filterable by status; open, rerun or archive the highlighted one."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Label, Select

from core.records import RERUNNABLE, PlanRecord, PlanStatus
from tui.screens.base import MainScreen
from tui.widgets.table import fit_columns, keep_cursor

STATUS_STYLE = {
    PlanStatus.READY: "cyan",
    PlanStatus.EXECUTING: "bold yellow",
    PlanStatus.COMPLETED: "green",
    PlanStatus.COMPLETED_NO_REPORT: "yellow",
    PlanStatus.FAILED: "bold red",
    PlanStatus.APPLIED: "blue",
    PlanStatus.ARCHIVED: "dim",
}
ALL = "all"
OPEN = "open"
FILTERS = [ALL, OPEN, *[s.value for s in PlanStatus]]


def status_cell(status: PlanStatus) -> Text:
    return Text(str(status), style=STATUS_STYLE.get(status, ""))


def matches(plan: PlanRecord, flt: str) -> bool:
    if flt == ALL:
        return True
    if flt == OPEN:
        return plan.status not in (PlanStatus.APPLIED, PlanStatus.ARCHIVED)
    return plan.status == flt


class BacklogScreen(MainScreen):
    MODE = "backlog"
    TITLE = "Backlog"
    CSS_PATH = "backlog.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        Binding("r", "rerun", "Rerun"),
        Binding("x", "archive", "Archive"),
        Binding("s", "next_filter", "Filter"),
        Binding("S", "prev_filter", "Filter back", show=False),
    ]
    COLUMNS = (("status", "Status", 19), ("title", "Title", 0), ("key", "Dedupe key", 22),
               ("created", "Created", 11), ("cycle", "Cycle", 6))

    def __init__(self) -> None:
        super().__init__()
        self.filter = ALL
        self._plans: list[PlanRecord] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="filter-bar"):
            yield Label("Status ", id="filter-label")
            yield Select([(f, f) for f in FILTERS], value=ALL, allow_blank=False, id="filter")
            yield Label("", id="count")
        yield DataTable(id="plans", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.table.focus()

    @property
    def table(self) -> DataTable:
        return self.query_one("#plans", DataTable)

    def reload(self) -> None:
        self._plans = self.ao.bridge.plans()
        self._fill()

    def _fill(self) -> None:
        table = self.table
        clock = self.ao.clock
        shown = [p for p in self._plans if matches(p, self.filter)]
        with keep_cursor(table):
            table.clear(columns=True)
            widths = fit_columns(self.COLUMNS, self.size.width or 100)
            for (key, label, _), width in zip(self.COLUMNS, widths, strict=True):
                table.add_column(label, key=key, width=width)
            for plan in shown:
                table.add_row(
                    status_cell(plan.status),
                    Text(plan.title),
                    Text(plan.dedupe_key, style="dim"),
                    Text(clock.short(plan.created_at)),
                    Text((plan.cycle_id or "–")[-6:]),
                    key=plan.id,
                )
        self.query_one("#count", Label).update(f"  {len(shown)} of {len(self._plans)} plans")

    def on_resize(self) -> None:
        if self._plans:
            self._fill()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "filter" and event.value != self.filter:
            self.filter = str(event.value)
            self._fill()

    def set_filter(self, value: str) -> None:
        self.query_one("#filter", Select).value = value  # posts Select.Changed → _fill

    def action_next_filter(self) -> None:
        self.set_filter(FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)])

    def action_prev_filter(self) -> None:
        self.set_filter(FILTERS[(FILTERS.index(self.filter) - 1) % len(FILTERS)])

    def highlighted(self) -> PlanRecord | None:
        table = self.table
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((p for p in self._plans if p.id == key), None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        plan = self.highlighted()
        if plan is not None:
            self.ao.open_plan(plan.id)

    def action_rerun(self) -> None:
        plan = self.highlighted()
        if plan is None:
            return
        if plan.status not in RERUNNABLE:
            self.notify(f"Only failed or ready plans can be rerun; this one is {plan.status}.",
                        title="Cannot rerun", severity="warning")
            return
        self.ao.start_rerun(plan.id)

    def action_archive(self) -> None:
        plan = self.highlighted()
        if plan is not None:
            self.ao.confirm_archive_plan(plan)

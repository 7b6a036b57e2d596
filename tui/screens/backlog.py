"""Backlog: every plan of the project, filterable by status; open, rerun or archive the highlighted one."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Label, Select, Static

from always_on.core.records import OPEN_PLAN_STATUSES, PlanRecord, PlanStatus
from always_on.tui.screens.base import RecordTableScreen
from always_on.tui.styles import plan_status_cell
from always_on.tui.widgets.table import RowTable, fit_columns

ALL = "all"
OPEN = "open"
FILTERS = [ALL, OPEN, *[s.value for s in PlanStatus]]


def matches(plan: PlanRecord, flt: str) -> bool:
    if flt == ALL:
        return True
    if flt == OPEN:
        return plan.status in OPEN_PLAN_STATUSES
    return plan.status == flt


class BacklogScreen(RecordTableScreen):
    TABLE_ID = "plans"
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
    COLUMNS = (
        ("status", "Status", 19),
        ("title", "Title", 0.7),
        ("key", "Dedupe key", 0.3),
        ("created", "Created", 11),
        ("cycle", "Cycle", 6),
    )
    NARROW = 90  # below this width the cycle column goes (the detail line under the table still names it)

    def __init__(self) -> None:
        super().__init__()
        self.filter = ALL
        self._plans: list[PlanRecord] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="filter-bar"):
            yield Label("Status ", id="filter-label")
            yield Select([(f, f) for f in FILTERS], value=ALL, allow_blank=False, id="filter")
            yield Label("", id="count")
        yield RowTable(id="plans", zebra_stripes=True)
        yield Static(id="plan-detail")

    def reload(self) -> None:
        plans = self.ao.bridge.plans()
        if plans != self._plans or not self._version:
            self._plans = plans
            self._by_id = {p.id: p for p in plans}
            self._version += 1
        self._fill()

    def _fill(self) -> None:
        """Rebuild the table, unless it already shows these plans with this filter at this width (and day)."""
        clock = self.ao.clock
        width = self.size.width or 100
        columns = self.COLUMNS if width >= self.NARROW else self.COLUMNS[:-1]
        widths = fit_columns(columns, width)
        wanted = (self._version, self.filter, tuple(widths), clock.local(clock.now()).date())
        if wanted == self._filled:
            return
        self._filled = wanted
        shown = [p for p in self._plans if matches(p, self.filter)]
        n = len(columns)

        def row(plan: PlanRecord) -> tuple[str, list[Text]]:
            cells = [
                plan_status_cell(plan.status),
                Text(plan.title),
                Text(plan.dedupe_key, style="dim"),
                Text(clock.short(plan.created_at)),
                Text((plan.cycle_id or "–")[-6:]),
            ]
            return plan.id, cells[:n]

        self.fill_rows(columns, widths, shown, row)
        self.query_one("#count", Label).update(f"  {len(shown)} of {len(self._plans)} plans")
        self._show_detail()

    def _show_detail(self) -> None:
        """The highlighted plan in full (the table cuts long titles), with what the keys would do to it."""
        plan = self.highlighted()
        detail = self.query_one("#plan-detail", Static)
        if plan is None:
            detail.update(
                Text(
                    "No plans yet: a fire's discovery records one."
                    if not self._plans
                    else "No plan has this status; s cycles the filter.",
                    style="dim",
                )
            )
            return
        out = Text.assemble(
            plan_status_cell(plan.status),
            " ",
            (plan.title, "bold"),
            "\n",
            (plan.dedupe_key, "dim"),
            ("  ·  ", "dim"),
            (plan.id, "dim"),
        )
        if plan.cycle_id:
            out.append(f"  ·  {plan.cycle_id}", style="dim")
        if plan.failure is not None:
            out.append(f"\n{plan.failure.code}: {plan.failure.message}", style="red")
        detail.update(out)

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

    def action_open(self) -> None:
        plan = self.highlighted()
        if plan is not None:
            self.ao.open_plan(plan.id)

    def action_rerun(self) -> None:
        plan = self.highlighted()
        if plan is not None:
            self.ao.start_rerun(plan.id)

    def action_archive(self) -> None:
        plan = self.highlighted()
        if plan is not None:
            self.ao.confirm_archive_plan(plan)

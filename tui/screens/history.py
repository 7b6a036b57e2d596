"""History: every run with outcome, times, duration and error; open its report, or replay its agent log."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from always_on.core.records import RunHistoryEntry
from always_on.tui.clock import duration
from always_on.tui.screens.base import RecordTableScreen
from always_on.tui.styles import outcome_text
from always_on.tui.widgets.table import RowTable, fit_columns


class HistoryScreen(RecordTableScreen):
    TABLE_ID = "runs"
    MODE = "history"
    TITLE = "History"
    CSS_PATH = "history.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Report"),
        Binding("l", "replay", "Replay log"),
    ]
    COLUMNS = (
        ("started", "Started", 11),
        ("kind", "Kind", 5),
        ("outcome", "Outcome", 8),
        ("duration", "Took", 7),
        ("denied", "Denied", 6),
        ("plan", "Plan", 0.65),
        ("error", "Error", 0.35),
    )

    def __init__(self) -> None:
        super().__init__()
        self._runs: list[RunHistoryEntry] = []
        self._titles: dict[str, str] = {}

    def compose_body(self) -> ComposeResult:
        yield RowTable(id="runs", zebra_stripes=True)
        yield Static(id="run-detail")

    def reload(self) -> None:
        runs = self.ao.bridge.history()
        titles = {p.id: p.title for p in self.ao.bridge.plans()}
        if runs != self._runs or titles != self._titles or not self._version:
            self._runs, self._titles = runs, titles
            self._by_id = {r.run_id: r for r in runs}
            self._version += 1
        self._fill()

    def _fill(self) -> None:
        """Rebuild the table, unless it already shows these runs at this width (and day)."""
        clock = self.ao.clock
        widths = fit_columns(self.COLUMNS, self.size.width or 100)
        wanted = (self._version, tuple(widths), clock.local(clock.now()).date())
        if wanted == self._filled:
            return
        self._filled = wanted

        def row(run: RunHistoryEntry) -> tuple[str, list[Text]]:
            error = Text(run.error.code, style="red") if run.error else Text("–", style="dim")
            return run.run_id, [
                Text(clock.short(run.started_at)),
                Text(str(run.kind)),
                outcome_text(run.outcome),
                Text(duration(run.duration_seconds)),
                Text(str(run.denials), style="bold red") if run.denials else Text("–", style="dim"),
                self._plan_cell(run),
                error,
            ]

        self.fill_rows(self.COLUMNS, widths, self._runs, row)
        self._show_detail()

    def _plan_cell(self, run: RunHistoryEntry) -> Text:
        if run.plan_id is None:
            return Text("–", style="dim")
        return Text(self._titles.get(run.plan_id, run.plan_id))

    def _show_detail(self) -> None:
        """The highlighted run in full: its id (for the CLI), plan, and the whole error message."""
        run = self.highlighted()
        detail = self.query_one("#run-detail", Static)
        if run is None:
            detail.update(Text("No runs yet: f on the Dashboard fires discovery now.", style="dim"))
            return
        out = Text.assemble((run.run_id, "bold"), (f"  {run.kind} by {run.agent}", "dim"))
        if run.denials:
            out.append(f"  {run.denials} denied by the policy", style="red")
        if run.plan_id:
            out.append("\n")
            out.append_text(self._plan_cell(run))
        if run.error is not None:
            out.append(f"\n{run.error.code}: {run.error.message}", style="red")
            if run.error.hint:
                out.append(f"\n→ {run.error.hint}", style="yellow")
        detail.update(out)

    def action_open(self) -> None:
        run = self.highlighted()
        if run is not None:
            self.ao.open_run(run.run_id)

    def action_replay(self) -> None:
        run = self.highlighted()
        if run is not None:
            self.ao.replay_run(run.run_id)

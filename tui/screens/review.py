"""Review: the active cycle's plans with their dependency analysis, a selection, its files and diff; apply/archive.

The selection is checked with the orchestrator before anything runs, and the confirm dialog lists every file the
apply will touch. A conflict leaves the checkout untouched and is shown file by file.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import CycleRecord, FileChange, PlanRecord
from always_on.core.selection import SelectionProblem
from always_on.tui.screens.base import MainScreen
from always_on.tui.screens.dialogs import ConfirmDialog, MessageDialog
from always_on.tui.styles import DEPENDENCY_STYLE, plan_status_cell
from always_on.tui.widgets.diff_view import DiffView
from always_on.tui.widgets.table import elide_left, fit_columns, keep_cursor

# A refused apply, by error code: the dialog's title, what to do, and what its file list is.
APPLY_FAILURES = {
    ErrorCode.APPLY_CONFLICT: (
        "Apply conflict — nothing was changed",
        "Your checkout was left exactly as it was.",
        "Conflicting files:",
    ),
    ErrorCode.CHECKOUT_DIRTY: (
        "Uncommitted edits in the way — nothing was changed",
        "Commit or stash your edits to these files, then apply again.",
        "Files with uncommitted edits:",
    ),
}


def short_sha(sha: str | None) -> str:
    return sha[:8] if sha else "–"


class ReviewScreen(MainScreen):
    MODE = "review"
    TITLE = "Review"
    CSS_PATH = "review.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle", "Select"),
        Binding("a", "apply", "Apply"),
        Binding("d", "archive", "Archive cycle"),
        Binding("o", "open_plan", "Open plan"),
        Binding("v", "all_diff", "Whole diff", show=False),
    ]
    PLAN_COLUMNS = (
        ("n", "Sel #", 6),
        ("status", "Status", 19),
        ("title", "Title", 0),
        ("deps", "Depends", 11),
    )
    FILE_COLUMNS = (("path", "File", 0),)

    def __init__(self) -> None:
        super().__init__()
        self.cycle: CycleRecord | None = None
        self.plans: dict[str, PlanRecord] = {}
        self.selection: list[str] = []
        self._offered: set[str] = (
            set()
        )  # plans of this cycle already offered pre-selected (the user decides them)
        self.problems: list[SelectionProblem] = []
        self.files: list[FileChange] = []
        self._files_for: tuple[str, tuple[str, ...]] | None = None
        self._diff_for: tuple | None = None
        self._layout: tuple[int, int] | None = None  # the widths the tables were last laid out for

    def compose_body(self) -> ComposeResult:
        yield Static(id="cycle-info")
        yield DataTable(id="cycle-plans", cursor_type="row")
        yield Static(id="selection-info")
        with Horizontal(id="review-bottom"):
            yield DataTable(id="files", cursor_type="row", show_header=False)
            yield DiffView(id="diff")

    def on_mount(self) -> None:
        self.query_one("#cycle-plans").border_title = "Plans (space selects)"
        self.query_one("#files").border_title = "Files"
        self.plans_table.focus()  # MainScreen.on_mount (title, reload) runs after this one

    @property
    def plans_table(self) -> DataTable:
        return self.query_one("#cycle-plans", DataTable)

    @property
    def files_table(self) -> DataTable:
        return self.query_one("#files", DataTable)

    # --- loading ------------------------------------------------------------------------------------------

    def reload(self) -> None:
        bridge = self.ao.bridge
        previous = self.cycle.id if self.cycle else None
        self.cycle = bridge.active_cycle()
        self.plans = {p.id: p for p in bridge.plans()}
        if self.cycle is None:
            self.selection, self.problems = [], []
        elif self.cycle.id != previous:
            self.selection = bridge.default_selection(self.cycle)
            self._offered = set(self.selection)
        else:  # the user's choices stay; a plan that became applyable since is selected, as on a fresh cycle
            offered = bridge.default_selection(self.cycle)
            fresh = {pid for pid in offered if pid not in self._offered}
            self._offered.update(offered)
            ids = [s.plan_id for s in self.cycle.plans]
            self.selection = [pid for pid in ids if pid in self.selection or pid in fresh]
        self._refresh_view()

    def _number(self, plan_id: str) -> str:
        assert self.cycle is not None
        for index, state in enumerate(self.cycle.plans, 1):
            if state.plan_id == plan_id:
                return f"#{index}"
        return plan_id[-6:]

    def _refresh_view(self) -> None:
        info = self.query_one("#cycle-info", Static)
        table = self.plans_table
        if self.cycle is None:
            info.update(
                Text.assemble(
                    ("No active cycle. ", "bold"),
                    (
                        "A cycle opens when a fire executes a plan; its plans are reviewed and applied here.",
                        "dim",
                    ),
                )
            )
            table.clear(columns=True)
            self.files_table.clear(columns=True)
            self.files_table.border_title = "Files"
            self.files = []
            self._files_for = None
            self._diff_for = None
            self.query_one("#selection-info", Static).update(
                Text(
                    "f on the Dashboard fires discovery now; 2 → Backlog shows every plan so far.",
                    style="dim",
                )
            )
            diff = self.query_one(DiffView)
            diff.border_title = "Diff"
            diff.show_message("Nothing to review.")
            return
        cycle = self.cycle
        info.update(
            Text.assemble(
                ("Cycle ", "bold"),
                (cycle.id, "cyan"),
                ("  ", ""),
                (str(cycle.status), "green"),
                ("  ", ""),
                (
                    cycle.strategy if not cycle.branch or cycle.branch.endswith(cycle.id) else cycle.branch,
                    "dim",
                ),
                ("  base ", "dim"),
                (short_sha(cycle.base_commit), ""),
                (f"  {len(cycle.plans)} plans", "dim"),
            )
        )
        width = self.size.width or 100
        with keep_cursor(table):
            table.clear(columns=True)
            for (key, label, _), w in zip(
                self.PLAN_COLUMNS, fit_columns(self.PLAN_COLUMNS, width, border=True), strict=True
            ):
                table.add_column(label, key=key, width=w)
            for state in cycle.plans:
                plan = self.plans.get(state.plan_id)
                selected = state.plan_id in self.selection
                deps = Text(
                    str(state.dependency_status), style=DEPENDENCY_STYLE.get(state.dependency_status, "")
                )
                if state.depends_on:
                    deps = Text(
                        "needs " + ",".join(self._number(d) for d in state.depends_on), style="yellow"
                    )
                table.add_row(
                    Text.assemble(
                        ("[x]" if selected else "[ ]", "bold green" if selected else "dim"),
                        f" {self._number(state.plan_id)}",
                    ),
                    plan_status_cell(plan.status if plan else state.status),
                    Text(plan.title if plan else state.plan_id),
                    deps,
                    key=state.plan_id,
                )
        self.problems = self.ao.bridge.prepare_apply(cycle.id, self.selection, files=False).problems
        self._show_selection_info()
        self._load_files()

    def _show_selection_info(self) -> None:
        out = Text()
        if self.cycle is None:
            return
        n = len(self.selection)
        if self.problems:
            out.append(f"✗ {n} selected, cannot apply: ", style="bold red")
            out.append("; ".join(self._pretty(p.message) for p in self.problems), style="red")
        else:
            out.append(f"✓ {n} selected, ready to apply", style="bold green")
            out.append("  (a applies, d archives the cycle)", style="dim")
        state = self._highlighted_state()
        if state is not None:
            plan = self.plans.get(state.plan_id)
            out.append(f"\n{self._number(state.plan_id)} ", style="bold")
            if plan is not None:
                out.append(plan.title, style="bold")
                out.append("  ")
            out.append(f"{state.dependency_status}", style=DEPENDENCY_STYLE.get(state.dependency_status, ""))
            if state.depends_on:
                out.append(" on " + ", ".join(self._number(d) for d in state.depends_on), style="yellow")
            if state.dependency_reasons:
                out.append(" — " + "; ".join(self._pretty(r) for r in state.dependency_reasons), style="dim")
            out.append(f"  {len(state.commit_shas)} commit(s)", style="dim")
        self.query_one("#selection-info", Static).update(out)

    def _pretty(self, problem: str) -> str:
        """Plan ids in the orchestrator's words become the #n shown in the table."""
        if self.cycle is not None:
            for state in self.cycle.plans:
                problem = problem.replace(state.plan_id, self._number(state.plan_id))
        return problem

    def _highlighted_state(self):
        if self.cycle is None or self.plans_table.row_count == 0:
            return None
        key = self.plans_table.coordinate_to_cell_key(self.plans_table.cursor_coordinate).row_key.value
        return next((s for s in self.cycle.plans if s.plan_id == key), None)

    def _load_files(self) -> None:
        if self.cycle is None:
            return
        wanted = (self.cycle.id, tuple(self.selection))
        if wanted == self._files_for and self.cycle.updated_at == getattr(self, "_files_stamp", None):
            return
        self._files_for = wanted
        self._files_stamp = self.cycle.updated_at
        if not self.selection:
            self._show_files([])
            return
        self._fetch_files(self.cycle.id, list(self.selection))

    @work(thread=True, exclusive=True, group="files")
    def _fetch_files(self, cycle_id: str, selection: list[str]) -> None:
        try:
            files = self.ao.bridge.cycle_files(cycle_id, selection)
        except AlwaysOnError as exc:
            self.app.call_from_thread(self.query_one(DiffView).show_message, exc.message, "red")
            files = []
        self.app.call_from_thread(self._show_files, files)

    def _show_files(self, files: list[FileChange]) -> None:
        self.files = files
        table = self.files_table
        width = table.size.width + 2 if table.size.width else max(28, (self.size.width or 100) * 35 // 100)
        (path_width,) = fit_columns(self.FILE_COLUMNS, width, border=True)
        with keep_cursor(table):
            table.clear(columns=True)
            table.add_column("File", key="path", width=path_width)
            for f in files:
                name = f.path if not f.old_path else f"{f.old_path} → {f.path}"
                counts = (
                    Text("bin", style="dim")
                    if f.binary
                    else Text.assemble((f"+{f.added}", "green"), " ", (f"-{f.removed}", "red"))
                )
                room = max(4, path_width - len(counts) - 1)
                cell = Text(
                    elide_left(name, room), style={"added": "green", "deleted": "red"}.get(f.change, "")
                )
                cell.append(" " * (path_width - len(cell) - len(counts)))
                cell.append_text(counts)
                table.add_row(cell, key=f.path)
        self.query_one(
            "#files"
        ).border_title = (
            f"Files ({len(files)}, +{sum(f.added for f in files)} -{sum(f.removed for f in files)})"
        )
        self._load_diff()

    def _current_file(self) -> str | None:
        table = self.files_table
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _load_diff(self, whole: bool = False) -> None:
        if self.cycle is None:
            return
        if not self.selection:
            self._diff_for = None
            self.query_one(DiffView).show_message("Select plans with space to see their change.")
            return
        file = None if whole else self._current_file()
        if file is None and not whole:
            self._diff_for = None
            self.query_one(DiffView).show_message("No changed files.")
            return
        wanted = (self.cycle.id, file, tuple(self.selection), self._files_stamp)
        if wanted == self._diff_for:
            return
        self._diff_for = wanted
        self._fetch_diff(self.cycle.id, file, list(self.selection))

    @work(thread=True, exclusive=True, group="diff")
    def _fetch_diff(self, cycle_id: str, file: str | None, selection: list[str]) -> None:
        try:
            text = self._labelled_diff(cycle_id, file, selection)
        except AlwaysOnError as exc:
            self.app.call_from_thread(self.query_one(DiffView).show_message, exc.message, "red")
            return
        self.app.call_from_thread(self.query_one(DiffView).show_diff, text, file or "All files")

    def _labelled_diff(self, cycle_id: str, file: str | None, selection: list[str]) -> str:
        """The selection's change plan by plan, each under a ``# #n title`` line, so that a file touched by two
        plans reads as two labelled steps rather than one diff repeated."""
        bridge = self.ao.bridge
        if len(selection) < 2:
            return bridge.cycle_diff_text(cycle_id, file, selection)
        chunks = []
        for plan_id in selection:
            text = bridge.cycle_diff_text(cycle_id, file, [plan_id])
            if text.strip():
                plan = self.plans.get(plan_id)
                chunks.append(f"# {self._number(plan_id)} {plan.title if plan else plan_id}\n{text}")
        return "\n".join(chunks)

    def on_resize(self) -> None:
        layout = (self.size.width, self.files_table.size.width)
        if layout == self._layout:
            return  # column widths follow these widths only
        self._layout = layout
        if self.cycle is not None:
            self._refresh_view()
            if self.files:
                self._show_files(self.files)

    # --- events -------------------------------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "files":
            self._load_diff()
        elif event.data_table.id == "cycle-plans":
            self._show_selection_info()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "cycle-plans":
            self.action_toggle()

    def action_toggle(self) -> None:
        state = self._highlighted_state()
        if state is None:
            return
        if state.plan_id in self.selection:
            self.selection.remove(state.plan_id)
        else:
            order = [s.plan_id for s in self.cycle.plans] if self.cycle else []
            self.selection = [pid for pid in order if pid in self.selection or pid == state.plan_id]
        self._refresh_view()

    def action_all_diff(self) -> None:
        self._load_diff(whole=True)

    def action_open_plan(self) -> None:
        state = self._highlighted_state()
        if state is not None:
            self.ao.open_plan(state.plan_id)

    # --- apply / archive ----------------------------------------------------------------------------------

    def action_apply(self) -> None:
        if self.cycle is None:
            self.notify("There is no active cycle to apply.", severity="warning")
            return
        self._apply_flow(self.cycle.id, list(self.selection))

    @work(exclusive=True, group="apply")
    async def _apply_flow(self, cycle_id: str, selection: list[str]) -> None:
        bridge = self.ao.bridge
        try:
            prepared = await asyncio.to_thread(bridge.prepare_apply, cycle_id, selection)
        except AlwaysOnError as exc:
            self.show_apply_failure(exc)
            return
        if prepared.problems:
            await self.app.push_screen_wait(
                MessageDialog(
                    "This selection cannot be applied",
                    "Nothing was changed. Fix the selection (space toggles a plan) and try again.",
                    [self._pretty(p.message) for p in prepared.problems],
                    items_title="Problems:",
                )
            )
            return
        files = prepared.files
        titles = [
            f"  {self._number(pid)} {self.plans[pid].title if pid in self.plans else pid}"
            for pid in selection
        ]
        items = [f"{f.path}  +{f.added} -{f.removed}" for f in files] or ["(no file changes found)"]
        confirmed = await self.app.push_screen_wait(
            ConfirmDialog(
                f"Apply {len(selection)} plan(s) to your working tree?",
                "\n".join(titles) + f"\nTheir change lands as uncommitted edits in {len(files)} file(s) "
                "(no commit, no branch switch):",
                items,
                confirm="Apply",
            )
        )
        if not confirmed:
            return
        try:
            report = await asyncio.to_thread(bridge.apply, cycle_id, selection)
        except AlwaysOnError as exc:
            self.show_apply_failure(exc)
            self.reload()
            return
        self.notify(
            f"{len(report.applied)} plan(s) applied, {len(report.files)} file(s) changed in your checkout.",
            title="Applied",
        )
        self.ao.refresh_screens()

    def show_apply_failure(self, exc: AlwaysOnError) -> None:
        files = [str(f) for f in exc.details.get("files", []) or []]
        title, hint, items_title = APPLY_FAILURES.get(
            exc.code, (f"Apply refused ({exc.code})", "Nothing was changed.", "Files:")
        )
        self.app.push_screen(MessageDialog(title, f"{exc.message}\n{hint}", files, items_title=items_title))

    def action_archive(self) -> None:
        if self.cycle is None:
            self.notify("There is no active cycle to archive.", severity="warning")
            return
        self._archive_flow(self.cycle)

    @work(exclusive=True, group="archive")
    async def _archive_flow(self, cycle: CycleRecord) -> None:
        items = [
            f"{self._number(s.plan_id)} {self.plans[s.plan_id].title if s.plan_id in self.plans else s.plan_id}"
            f"  ({self.plans[s.plan_id].status if s.plan_id in self.plans else s.status})"
            for s in cycle.plans
        ]
        confirmed = await self.app.push_screen_wait(
            ConfirmDialog(
                f"Archive cycle {cycle.id}?",
                "Its workspace is removed and its open plans are archived. A branch holding unapplied commits is "
                "kept, so nothing is lost.",
                items,
                confirm="Archive",
                danger=True,
            )
        )
        if not confirmed:
            return
        try:
            kept = await asyncio.to_thread(self.ao.bridge.archive_cycle, cycle.id)
        except AlwaysOnError as exc:
            self.app.push_screen(MessageDialog("Archive refused", exc.message))
            return
        self.notify(f"Cycle archived{f'; branch {kept} kept' if kept else ''}.", title="Archived")
        self.ao.refresh_screens()

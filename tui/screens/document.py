"""Full screen Markdown documents: a plan (rerun/archive/report keys), a run's report or why it failed."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown

if TYPE_CHECKING:
    from always_on.tui.app import AlwaysOnApp


class DocumentScreen(Screen[None]):
    CSS_PATH = "document.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,backspace", "app.pop_screen", "Back")]

    def __init__(self, title: str, markdown: str) -> None:
        super().__init__()
        self.doc_title = title
        self.markdown = markdown

    @property
    def ao(self) -> AlwaysOnApp:
        return cast("AlwaysOnApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="doc-scroll"):
            yield Markdown(self.markdown, id="doc")
        yield Footer()

    def on_mount(self) -> None:
        self.title = self.doc_title
        self.sub_title = self.ao.bridge.display_path
        self.query_one("#doc-scroll").focus()


class PlanScreen(DocumentScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rerun", "Rerun"),
        Binding("x", "archive", "Archive"),
        Binding("o", "report", "Report"),
    ]

    def __init__(self, plan_id: str, title: str, markdown: str) -> None:
        super().__init__(title, markdown)
        self.plan_id = plan_id

    def action_rerun(self) -> None:
        plan = self.ao.bridge.plan(self.plan_id)
        if plan is not None:
            self.ao.start_rerun(plan.id)

    def action_archive(self) -> None:
        plan = self.ao.bridge.plan(self.plan_id)
        if plan is not None:
            self.ao.confirm_archive_plan(plan)

    def action_report(self) -> None:
        plan = self.ao.bridge.plan(self.plan_id)
        if plan is None or not plan.report_run_id:
            self.notify("This plan has no report yet.", severity="warning")
            return
        self.ao.open_run(plan.report_run_id)


class RunScreen(DocumentScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("l", "replay", "Replay log")]

    def __init__(self, run_id: str, title: str, markdown: str) -> None:
        super().__init__(title, markdown)
        self.run_id = run_id

    def action_replay(self) -> None:
        self.app.pop_screen()
        self.ao.replay_run(self.run_id)

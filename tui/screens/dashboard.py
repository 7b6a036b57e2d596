"""Dashboard: the project's scheduler state, the current fire as a phase stepper, and the live agent stream."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from always_on.tui.screens.base import MainScreen
from always_on.tui.widgets.status import ProjectStatus, status_text
from always_on.tui.widgets.stepper import PhaseStepper, stepper_text
from always_on.tui.widgets.stream import AgentStream


class DashboardScreen(MainScreen):
    MODE = "dashboard"
    TITLE = "Dashboard"
    CSS_PATH = "dashboard.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "app.fire", "Fire now"),
        Binding("p", "app.toggle_pause", "Pause/resume"),
        Binding("c", "clear_stream", "Clear stream"),
        Binding("end", "follow", "Follow", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        yield ProjectStatus(id="status")
        yield PhaseStepper(id="stepper")
        yield AgentStream(id="stream")

    def on_mount(self) -> None:
        self.query_one("#status").border_title = "Project"
        self.query_one("#stepper").border_title = "Current fire"
        self.ao.dashboard = self  # MainScreen.on_mount (title, reload) runs after this one
        self.stream.write_lines(self.ao.stream_backlog())
        self.set_interval(1.0, self.tick)

    @property
    def stream(self) -> AgentStream:
        return self.query_one(AgentStream)

    def reload(self) -> None:
        bridge = self.ao.bridge
        self.query_one(ProjectStatus).update(
            status_text(
                bridge.display_path,
                bridge.agent_name,
                bridge.state(),
                bridge.gate(self.ao.clock.now()),
                self.ao.clock,
            )
        )
        self.show_run()

    def show_run(self) -> None:
        self.query_one(PhaseStepper).update(stepper_text(self.ao.current_run, self.ao.clock))

    def tick(self) -> None:
        """Once a second: elapsed times and 'next tick in …' move on (the state and gate only: small reads)."""
        if self.app.screen is self:
            self.reload()

    def action_clear_stream(self) -> None:
        self.stream.clear()

    def action_follow(self) -> None:
        self.stream.log_widget.scroll_end(animate=False)

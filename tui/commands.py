"""The command palette provider (ctrl+p): every always-on action by name, from any screen."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from always_on.tui.app import AlwaysOnApp


class AlwaysOnCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = cast("AlwaysOnApp", self.app)
        return [
            ("Fire discovery now", "Run one fire: discovery, workspace, execution, report", app.action_fire),
            (
                "Pause or resume the scheduler",
                "Toggle scheduled fires for this project",
                app.action_toggle_pause,
            ),
            (
                "Go to Dashboard",
                "Scheduler state, current fire and agent stream",
                partial(app.action_goto, "dashboard"),
            ),
            ("Go to Backlog", "All plans, filter by status", partial(app.action_goto, "backlog")),
            ("Go to History", "Every run with its outcome and report", partial(app.action_goto, "history")),
            ("Go to Review", "Review, select and apply the active cycle", partial(app.action_goto, "review")),
            ("Replay the last run", "Show the last run's agent log in the stream", app.action_replay_last),
            ("Apply the selection", "Apply the selected plans of the active cycle", app.action_review_apply),
            (
                "Archive the active cycle",
                "Remove the cycle's workspace, archive its plans",
                app.action_review_archive,
            ),
            ("Refresh", "Re-read everything from the store", app.refresh_screens),
            ("Keys", "Show the keys of this screen", app.action_help),
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)

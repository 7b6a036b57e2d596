"""The live agent stream: committed lines in a bounded RichLog, the line still being typed shown beneath it.

Lines arrive in batches (the app flushes at most every 50 ms); each batch is written as one renderable so that a
burst of thousands of events costs one render, not thousands.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import RichLog

MAX_LINES = 1000  # scrollback: every kept line is hundreds of GC-tracked objects that full GC passes walk


class PendingLine(Widget):
    """The line the agent is still typing: one row showing its newest end; updates repaint, never re-layout."""

    DEFAULT_CSS = """
    PendingLine { height: 1; width: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text: Text | None = None

    def set_text(self, text: Text | None) -> None:
        if text is None and self.text is None:
            return
        self.text = text
        self.refresh()

    def render(self) -> Text:
        if self.text is None:
            return Text("")
        width = max(1, self.size.width)
        if self.text.cell_len <= width:
            return self.text
        tail = self.text[len(self.text) - (width - 1) :]
        return Text("…", style="dim") + tail


class AgentStream(Vertical):
    DEFAULT_CSS = """
    AgentStream { height: 1fr; border: round $primary 50%; }
    AgentStream > RichLog { height: 1fr; background: transparent; scrollbar-size-vertical: 1; }
    """

    def __init__(self, max_lines: int = MAX_LINES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.border_title = "Agent stream"
        self._early: list[Text] = []  # lines that arrived before the log was composed

    def compose(self) -> ComposeResult:
        yield RichLog(
            max_lines=self.max_lines, wrap=True, markup=False, highlight=False, auto_scroll=True, id="log"
        )
        yield PendingLine(id="pending")

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#log", RichLog)

    def write_lines(self, lines: list[Text]) -> None:
        if not lines:
            return
        found = self.query("#log")
        if not found:  # a flush raced the dashboard's mount (seen under load): written once the log exists
            if not self._early:
                self.call_after_refresh(self._write_early)
            self._early.extend(lines)
            return
        if self._early:
            lines, self._early = [*self._early, *lines], []
        log = self.log_widget
        follow = log.is_vertical_scroll_end or log.max_scroll_y == 0
        log.write(Text("\n").join(lines), expand=True, scroll_end=follow)

    def _write_early(self) -> None:
        if self._early and self.query("#log"):
            lines, self._early = self._early, []
            self.write_lines(lines)
        elif self._early:
            self.call_after_refresh(self._write_early)

    def set_pending(self, text: Text | None) -> None:
        # Not yet composed when a flush races the dashboard's mount (seen once under load): the next flush shows it.
        for line in self.query(PendingLine):
            line.set_text(text)

    def clear(self) -> None:
        self.log_widget.clear()
        self.set_pending(None)

    @property
    def line_count(self) -> int:
        return len(self.log_widget.lines)

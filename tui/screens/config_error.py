"""The configuration file cannot be used: the app refuses it as the CLI does (issue 15).

Shown instead of the dashboard while the file is invalid: the error (its code, the file, the line and column or the
key), the lines around the problem, and what happens next. Nothing fires and the scheduler does not run meanwhile;
the app watches the file and closes this screen by itself once it reads correctly.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from always_on.core.errors import AlwaysOnError
from always_on.tui.bridge import display_path

CONTEXT_LINES = 2  # lines shown before and after the one with the problem


def excerpt(path: Path, line: int, column: int | None) -> Text:
    """The lines of the file around ``line``, numbered, with a caret under ``column``."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return Text()
    out = Text()
    first, last = max(1, line - CONTEXT_LINES), min(len(lines), line + CONTEXT_LINES)
    width = len(str(last))
    for number in range(first, last + 1):
        mark = number == line
        out.append(f" {number:>{width}} │ ", style="bold red" if mark else "dim")
        out.append(lines[number - 1][:200] + "\n", style="bold" if mark else "")
        if mark and column:
            out.append(" " * (width + 2) + "│ " + " " * (column - 1) + "^\n", style="bold red")
    out.rstrip()
    return out


class ConfigErrorScreen(Screen[None]):
    CSS_PATH = "config_error.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "app.quit", "Quit")]

    def __init__(self, error: AlwaysOnError, path: Path) -> None:
        super().__init__()
        self.error = error
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="config-error"):
            yield Static(id="config-error-title")
            yield Static(id="config-error-where")
            yield Static(id="config-error-message")
            yield Static(id="config-error-excerpt")
            yield Static(id="config-error-next")
        yield Footer()

    def on_mount(self) -> None:
        self.show(self.error)

    def show(self, error: AlwaysOnError) -> None:
        """Show this error (the file was saved again, still invalid: the screen follows it)."""
        self.error = error
        details = error.details
        line, column, key = details.get("line"), details.get("column"), details.get("key")
        self.query_one("#config-error-title", Static).update(
            Text("The configuration cannot be used", style="bold red")
        )
        where = Text.assemble((error.code, "bold red"), "  ", (display_path(self.path), "bold"))
        if line:
            where.append(f", line {line}" + (f", column {column}" if column and not key else ""))
        if key:
            where.append("  key ")
            where.append(str(key), style="bold yellow")
        self.query_one("#config-error-where", Static).update(where)
        message = error.message.replace(str(self.path), display_path(self.path))
        self.query_one("#config-error-message", Static).update(Text(message))
        shown = self.query_one("#config-error-excerpt", Static)
        shown.display = bool(line)
        shown.update(
            excerpt(self.path, int(line), int(column) if column and not key else None) if line else ""
        )
        self.query_one("#config-error-next", Static).update(
            Text.assemble(
                ("Nothing fires and the scheduler does not run", "bold"),
                " until the file reads correctly (the CLI refuses it the same way). Fix it and save: "
                "this screen closes by itself.",
            )
        )

"""A unified diff, syntax-highlighted with Rich's ``diff`` lexer; very long diffs are cut with a note."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.containers import ScrollableContainer
from textual.widgets import Static

MAX_DIFF_LINES = 4000


class DiffView(ScrollableContainer):
    DEFAULT_CSS = """
    DiffView { height: 1fr; border: round $primary 50%; }
    DiffView > Static { width: auto; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(Static(id="diff-body"), **kwargs)
        self.border_title = "Diff"
        self.text = ""

    def show_diff(self, text: str, title: str = "Diff") -> None:
        self.border_title = title
        self.text = text
        body = self.query_one("#diff-body", Static)
        if not text.strip():
            body.update(Text("No changes to show.", style="dim"))
            return
        lines = text.splitlines()
        note = None
        if len(lines) > MAX_DIFF_LINES:
            note = f"… {len(lines) - MAX_DIFF_LINES} more lines not shown"
            text = "\n".join(lines[:MAX_DIFF_LINES])
        syntax = Syntax(text, "diff", theme="ansi_dark", background_color="default", word_wrap=False)
        body.update(syntax if note is None else Text.assemble(syntax.highlight(text), ("\n" + note, "dim")))
        self.scroll_home(animate=False)

    def show_message(self, message: str, style: str = "dim") -> None:
        self.text = ""
        self.query_one("#diff-body", Static).update(Text(message, style=style))

"""``?``: the keys of the screen underneath and the app-wide keys, in one table."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

ABOUT = (
    "always-on discovers one improvement at a time, executes it in an isolated workspace and writes a report. "
    "Nothing reaches your checkout until you apply it from the Review screen."
)


def help_rows(screen: Screen) -> list[tuple[str, str]]:
    """(key, what it does) for the screen's and the app's bindings, and the focused widget's visible ones."""
    keys: dict[str, list[str]] = {}
    # This screen's keys first, then the app's, then the focused widget's (tab, copy…) at the end.
    order = sorted(
        screen.active_bindings.values(),
        key=lambda a: 0 if a.node is screen else 1 if a.node is screen.app else 2,
    )
    for active in order:
        binding = active.binding
        own = active.node is screen or active.node is screen.app
        if not binding.description or not (own or binding.show):
            continue
        display = screen.app.get_key_display(binding)
        shown = keys.setdefault(binding.description, [])
        if display not in shown:
            shown.append(display)
    return [(" / ".join(k), description) for description, k in keys.items()]


def bindings_table(rows: list[tuple[str, str]]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column("key", style="bold cyan", no_wrap=True, width=14)
    table.add_column("action")
    for key, description in rows:
        table.add_row(key, description)
    return table


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, target: Screen) -> None:
        super().__init__()
        self.target = target
        self.rows = help_rows(target)

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label(f"Keys — {self.target.title or self.app.title}", id="help-title")
            with VerticalScroll(id="help-keys"):
                yield Static(bindings_table(self.rows))
            yield Static(Text(ABOUT, style="dim"), id="help-about")
            yield Static(
                Text("ctrl+p opens the command palette (all commands, themes) · esc closes", style="dim")
            )

    def on_resize(self) -> None:
        """The key list scrolls when the terminal is short, so the text under it stays visible (80x24)."""
        self.query_one("#help-keys").styles.max_height = max(3, min(18, self.size.height - 15))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)

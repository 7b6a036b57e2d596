"""Modal dialogs: a yes/no confirmation (with the list of what will be touched) and an error/conflict report."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmDialog(ModalScreen[bool]):
    """Ask before anything irreversible; ``y``/enter confirms, ``n``/escape cancels."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(
        self,
        title: str,
        message: str,
        items: list[str] | None = None,
        *,
        confirm: str = "Yes",
        danger: bool = False,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.items = items or []
        self.confirm_label = confirm
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger" if self.danger else ""):
            yield Label(Text(self.title_text), id="dialog-title")
            yield Static(Text(self.message), id="dialog-message")
            if self.items:
                with VerticalScroll(id="dialog-items"):
                    yield Static(Text("\n".join(self.items)))
            with Horizontal(id="dialog-buttons"):
                yield Button(
                    f"{self.confirm_label} (y)", id="yes", variant="error" if self.danger else "primary"
                )
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class MessageDialog(ModalScreen[None]):
    """Explain a refusal or a failure, with the files or problems involved; any of enter/escape closes it."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(
        self,
        title: str,
        message: str,
        items: list[str] | None = None,
        *,
        items_title: str = "",
        error: bool = True,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.items = items or []
        self.items_title = items_title
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger" if self.error else ""):
            yield Label(Text(self.title_text), id="dialog-title")
            yield Static(Text(self.message), id="dialog-message")
            if self.items:
                if self.items_title:
                    yield Label(Text(self.items_title), id="dialog-items-title")
                with VerticalScroll(id="dialog-items"):
                    yield Static(Text("\n".join(f"• {item}" for item in self.items)))
            with Horizontal(id="dialog-buttons"):
                yield Button("Close (esc)", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)

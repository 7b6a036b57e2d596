"""The tab bar at the top of every main screen: Dashboard / Backlog / History / Review (also keys 1–4)."""

from __future__ import annotations

from textual.widgets import Tab, Tabs

MODES = (
    ("dashboard", "1 Dashboard"),
    ("backlog", "2 Backlog"),
    ("history", "3 History"),
    ("review", "4 Review"),
)


class NavTabs(Tabs, can_focus=False):
    """Clickable, never focused: arrow keys belong to the tables, navigation to the number keys."""

    def __init__(self, current: str) -> None:
        super().__init__(*[Tab(label, id=f"nav-{mode}") for mode, label in MODES], active=f"nav-{current}")
        self.current = current

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        mode = (event.tab.id or "").removeprefix("nav-")
        if mode and mode != self.current and mode != self.app.current_mode:
            self.app.switch_mode(mode)

    def reset(self) -> None:
        """Show this screen's own tab as active again (after a click switched away from it)."""
        own = f"nav-{self.current}"
        if self.active != own:
            self.active = own

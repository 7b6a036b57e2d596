"""The per-run agent-event log: every event to subscribers at once, to disk in whole lines, cheaply.

Agents can stream tens of thousands of chunks; one open/write/close per event would dominate. Lines are buffered
and flushed at most every FLUSH_SECONDS (and on close), so another process following the store sees them within a
fraction of a second, and a crash loses at most that window — never a partial line in the middle of the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from always_on.core.records import AgentEvent
from always_on.core.storage import ProjectStore

FLUSH_SECONDS = 0.2


class AgentEventLog:
    def __init__(self, store: ProjectStore, run_id: str, notify: Callable[[AgentEvent], None]) -> None:
        self.path = store.agent_events_path(run_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._notify = notify
        self._pending: list[str] = []
        self._last_flush = time.monotonic()
        self.count = 0

    def record(self, event: AgentEvent) -> None:
        self.count += 1
        self._pending.append(event.model_dump_json())
        self._notify(event)
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self._pending and not self._fh.closed:
            self._fh.write("\n".join(self._pending) + "\n")
            self._fh.flush()
            self._pending.clear()
        self._last_flush = now or time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            self._fh.close()

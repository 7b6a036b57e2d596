"""The per-run agent-event log: every event to subscribers at once, to disk in whole lines, timely and bounded.

Agents can stream tens of thousands of chunks; one open/write/close per event would dominate. Lines are buffered
and written at most FLUSH_SECONDS after the first of them arrived — by a timer on the event loop, so another
process following the log (the TUI following the daemon) sees them within that window even when the agent falls
silent — and at close. A crash loses at most that window, never a partial line in the middle of the file.

Each run's log is capped (``limits.event_log_max_mb``, default 20 MB): past the cap one truncation marker is
written and later events only go to live subscribers, so a runaway agent cannot fill the disk or the memory.
A write that fails (a full disk) is reported once and never takes the run down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from always_on.core.records import AgentEvent, AgentEventKind, json_line
from always_on.core.storage import ProjectStore

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class AgentEventLog:
    def __init__(
        self,
        store: ProjectStore,
        run_id: str,
        notify: Callable[[AgentEvent], None],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.path = store.agent_events_path(run_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")
        self.written = self._fh.tell()
        self.max_bytes = max_bytes
        self.truncated = False
        self.dropped = 0
        self.count = 0
        self._notify = notify
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._last_flush = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._write_failed = False

    def record(self, event: AgentEvent) -> None:
        self.count += 1
        self._notify(event)
        if self.truncated:
            self.dropped += 1
            return
        line = (json_line(event) + "\n").encode("utf-8")
        if self.written + self._pending_bytes + len(line) > self.max_bytes:
            self._truncate(event)
            return
        self._pending.append(line)
        self._pending_bytes += len(line)
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self.flush(now)
        else:
            self._schedule(FLUSH_SECONDS - (now - self._last_flush))

    def _truncate(self, event: AgentEvent) -> None:
        self.truncated = True
        self.dropped += 1
        marker = AgentEvent(
            run_id=event.run_id,
            phase=event.phase,
            kind=AgentEventKind.LIFECYCLE,
            text=f"event log truncated: it reached its cap of {self.max_bytes / 1024 / 1024:g} MB; later events "
            "of this run were shown live but are not kept (limits.event_log_max_mb)",
            data={"truncated": True, "cap_bytes": self.max_bytes},
        )
        line = (json_line(marker) + "\n").encode("utf-8")
        self._pending.append(line)
        self._pending_bytes += len(line)
        self.flush()

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): write now rather than late
            self.flush()
            return
        self._timer = loop.call_later(max(delay, 0.0), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self, now: float | None = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending and not self._fh.closed:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            try:
                self._fh.write(data)
                self._fh.flush()
                self.written += len(data)
            except OSError as exc:
                if not self._write_failed:
                    log.warning("the event log %s could not be written: %s", self.path, exc)
                self._write_failed = True
        self._last_flush = now or time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            try:
                self._fh.close()
            except OSError as exc:  # the buffered tail on a full disk
                log.warning("the event log %s could not be closed cleanly: %s", self.path, exc)

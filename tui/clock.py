"""Time as the UI shows it: one injectable clock and timezone, so screenshots and snapshots are deterministic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo


def duration(seconds: float | None) -> str:
    """Compact duration: 0.4s, 12.3s, 3m 04s, 1h 02m."""
    if seconds is None:
        return "–"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


class Clock:
    def __init__(self, now: Callable[[], datetime] | None = None, tz: tzinfo | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self.tz = tz

    def now(self) -> datetime:
        return self._now()

    def local(self, dt: datetime) -> datetime:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(self.tz) if self.tz is not None else dt.astimezone()

    def stamp(self, dt: datetime | None) -> str:
        return "–" if dt is None else self.local(dt).strftime("%Y-%m-%d %H:%M:%S")

    def short(self, dt: datetime | None) -> str:
        """Time of day for today, month-day and time otherwise."""
        if dt is None:
            return "–"
        local = self.local(dt)
        if local.date() == self.local(self.now()).date():
            return local.strftime("%H:%M:%S")
        return local.strftime("%m-%d %H:%M")

    def relative(self, dt: datetime | None) -> str:
        if dt is None:
            return "–"
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = (dt - self.now()).total_seconds()
        if abs(delta) < 1:
            return "now"
        text = duration(abs(delta)) if abs(delta) >= 60 else f"{int(abs(delta))}s"
        return f"in {text}" if delta > 0 else f"{text} ago"

    def since(self, start: datetime, end: datetime | None = None) -> float:
        return ((end or self.now()) - start).total_seconds()

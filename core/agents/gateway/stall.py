"""Stall detection: an agent that owes us an answer and stays silent — no update, tool call or terminal output —
for `stall_seconds` fails its phase with `agent_stalled`, long before the phase's wall-clock limit; at half that,
the stream says "no activity for N s".

What counts as activity: any message the agent writes on stdout (updates, its requests to the client, answers) and
output of the terminals it runs. While the agent waits on us (a request of its own in flight, e.g. waiting for a
terminal to exit), the clock stands still: it is not silent, it is waiting. Its stderr does not count (an agent
retrying an unreachable API may log there forever).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from always_on.core.agents.gateway import failures
from always_on.core.records import AgentEventKind

if TYPE_CHECKING:
    from always_on.core.agents.gateway.events import PhaseEvents, PhaseState
    from always_on.core.agents.gateway.process import AgentProcess


class Activity:
    """When the agent last did something, and its requests to the client still being answered."""

    __slots__ = ("last", "waiting")

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.waiting: set[object] = set()

    def touch(self) -> None:
        self.last = time.monotonic()

    def idle(self) -> float:
        """Seconds of silence; none while the agent waits on us."""
        if self.waiting:
            self.touch()
        return time.monotonic() - self.last


async def watch(agent: AgentProcess, ph: PhaseState, events: PhaseEvents, stall_seconds: float) -> None:
    """Until cancelled: warn at half of `stall_seconds` of silence, fail the phase at the whole of it."""
    activity = agent.activity
    stderr_before = agent.stderr_count
    half = stall_seconds / 2
    warned = False
    while True:
        idle = activity.idle()
        if idle >= stall_seconds:
            recent = agent.recent_stderr(stderr_before)
            ph.fail_with(failures.stalled(agent.spec, str(ph.phase), stall_seconds, recent))
            return
        if idle >= half and not warned:
            warned = True
            events.emit(
                ph,
                AgentEventKind.LIFECYCLE,
                f"no activity for {half:g} s (the phase fails as stalled at {stall_seconds:g} s)",
                data={"stall_warning": True, "idle_seconds": round(idle, 1), "stall_seconds": stall_seconds},
            )
        elif idle < half:
            warned = False
        await asyncio.sleep((half if idle < half else stall_seconds) - idle + 0.01)

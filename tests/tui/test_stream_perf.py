"""An agent streaming 5,000 events a second: the UI keeps up and shows what matters.

The frame-gap and memory figures are measured by `python -m bench tui` (timing goals are benchmarks, not tests).
"""

from __future__ import annotations

import asyncio
import math

from seed import NOW, SIZE, make_app

from always_on.core.records import AgentEvent, AgentEventKind, Phase, PhaseEvent, PhaseEventType
from always_on.tui.app import MAX_EVENTS_PER_FLUSH

RATE = 5000
SECONDS = 1.5
BATCH_EVERY = 0.01


def burst(run_id: str, n: int, start: int) -> list[AgentEvent]:
    out = []
    for i in range(start, start + n):
        if i % 10 == 9:
            out.append(
                AgentEvent(
                    ts=NOW,
                    run_id=run_id,
                    phase=Phase.EXECUTION,
                    kind=AgentEventKind.TOOL_CALL,
                    text=f"ruff check src/module_{i}.py",
                    data={"tool_call_id": f"t{i}", "status": "pending"},
                )
            )
        elif i % 10 == 5:
            out.append(
                AgentEvent(
                    ts=NOW,
                    run_id=run_id,
                    phase=Phase.EXECUTION,
                    kind=AgentEventKind.PERMISSION,
                    text=f"git push {i}",
                    allowed=False,
                    reason="never allowed",
                )
            )
        else:
            out.append(
                AgentEvent(
                    ts=NOW,
                    run_id=run_id,
                    phase=Phase.EXECUTION,
                    kind=AgentEventKind.MESSAGE,
                    text=f"word{i} " if i % 7 else f"end of sentence {i}.\n",
                )
            )
    return out


async def test_streaming_5000_events_per_second_is_drained_and_rendered(project):
    app = make_app(project)
    handled: list[int] = []  # events taken by each flush of the app's own flush timer
    drained = asyncio.Event()
    flush = app.flush_events

    def counted_flush() -> None:
        waiting = len(app._inbox)
        flush()
        if waiting:
            handled.append(waiting - len(app._inbox))
        if not app._inbox:
            drained.set()

    app.flush_events = counted_flush  # what on_mount hands to the timer: the real flush, counted
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        listener = app.on_core_event  # exactly what the orchestrator calls, in the loop thread
        listener(
            PhaseEvent(
                ts=NOW,
                project_id="p",
                run_id="run-bench",
                type=PhaseEventType.EXECUTION_STARTED,
                phase=Phase.EXECUTION,
            )
        )

        async def produce() -> int:
            """Paced like a fast agent: 50 events every 10 ms (~5,000/s), 7,500 in all."""
            sent = 0
            per_batch = int(RATE * BATCH_EVERY)
            while sent < RATE * SECONDS:
                for event in burst("run-bench", per_batch, sent):
                    listener(event)
                sent += per_batch
                await asyncio.sleep(BATCH_EVERY)
            return sent

        sent = await produce()
        backlog, flushes = len(app._inbox), len(handled)
        drained.clear()
        if not backlog:
            drained.set()
        # Waits on the event (the inbox emptied by the app's timer); the bound is only a safety net.
        await asyncio.wait_for(drained.wait(), 120)
        assert not app._inbox, "the UI fell behind the stream"
        # However slow the machine, a flush takes at most MAX_EVENTS_PER_FLUSH events (a frame's work stays
        # bounded) and the backlog left when the agent stops goes in the fewest flushes that allows.
        assert max(handled) <= MAX_EVENTS_PER_FLUSH and sum(handled) == sent + 1
        assert len(handled) - flushes == math.ceil(backlog / MAX_EVENTS_PER_FLUSH)
        # Every event reached the stream in order: the last denial shown is the last one the agent sent.
        last_denied = max(i for i in range(sent) if i % 10 == 5)
        shown = [line.text for line in app.screen.stream.log_widget.lines]
        denied = [text for text in shown if "DENIED" in text]
        assert denied and f"git push {last_denied} " in denied[-1] + " ", denied[-1:]
        assert any(f"src/module_{last_denied + 4}.py" in text for text in shown[-40:])

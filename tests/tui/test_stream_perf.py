"""An agent streaming 5,000 events a second: the UI keeps up and shows what matters.

The frame-gap and memory figures are measured by `python -m bench tui` (timing goals are benchmarks, not tests).
"""

from __future__ import annotations

import asyncio

from seed import NOW, SIZE, make_app

from always_on.core.records import AgentEvent, AgentEventKind, Phase, PhaseEvent, PhaseEventType

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
        for _ in range(200):
            if not app._inbox:
                break
            await pilot.pause(0.02)
        assert not app._inbox, "the UI fell behind the stream"
        assert sent == RATE * SECONDS
        lines = app.screen.stream.log_widget.lines
        assert lines and "DENIED" in "".join(s.text for s in lines[-40:])

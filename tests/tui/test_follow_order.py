"""Following another process: phase events and the run's agent events arrive in the order they happened."""

from __future__ import annotations

from datetime import timedelta

from seed import NOW, SIZE, make_app

from always_on.core.records import AgentEvent, AgentEventKind, Phase, PhaseEvent, PhaseEventType
from always_on.core.storage import Store


async def test_events_of_both_logs_are_merged_in_time_order(project):
    app = make_app(project)
    ps = Store().project(project)
    run_id = "run-daemon-2"
    async with app.run_test(size=SIZE):
        ps.append_event(
            PhaseEvent(ts=NOW, project_id=ps.project_id, run_id=run_id, type=PhaseEventType.DISCOVERY_STARTED)
        )
        for n in (1, 3):
            ps.append_agent_event(
                AgentEvent(
                    ts=NOW + timedelta(seconds=n),
                    run_id=run_id,
                    phase=Phase.DISCOVERY,
                    kind=AgentEventKind.MESSAGE,
                    text=f"chunk {n}",
                )
            )
        ps.append_event(
            PhaseEvent(
                ts=NOW + timedelta(seconds=2),
                project_id=ps.project_id,
                run_id=run_id,
                type=PhaseEventType.PLAN_PRODUCED,
            )
        )
        app._inbox.clear()
        app.on_store_changed({"events.jsonl", "runs"})  # one batch of changes holds both logs' lines
        order = [e.text if isinstance(e, AgentEvent) else e.type.value for e, _, _ in app._inbox]
        assert order == ["discovery_started", "chunk 1", "plan_produced", "chunk 3"]

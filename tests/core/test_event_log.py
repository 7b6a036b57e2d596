"""The per-run agent-event log: lines reach the file within the flush window even when the agent falls silent
(another process follows it), and a runaway run is capped with exactly one truncation marker."""

from __future__ import annotations

import asyncio

from always_on.core.event_log import FLUSH_SECONDS, AgentEventLog
from always_on.core.records import AgentEvent, AgentEventKind, Phase
from always_on.core.storage import Store


def _event(text: str) -> AgentEvent:
    return AgentEvent(run_id="run-1", phase=Phase.EXECUTION, kind=AgentEventKind.MESSAGE, text=text)


async def test_a_lone_event_is_written_without_waiting_for_the_next_one(tmp_path):
    store = Store().project(tmp_path)
    seen: list[AgentEvent] = []
    log = AgentEventLog(store, "run-1", seen.append)
    log.record(_event("first"))
    log.record(_event("second"))  # both wait in the buffer, and no event follows them
    assert len(seen) == 2  # subscribers get every event at once
    for _ in range(500):  # waits for the file, not for a time: the flush timer must write it by itself
        if "second" in log.path.read_text():
            break
        await asyncio.sleep(FLUSH_SECONDS / 5)
    assert [e.text for e in store.agent_events("run-1")] == ["first", "second"]
    log.close()


def test_a_runaway_run_is_capped_with_one_marker(tmp_path):
    store = Store().project(tmp_path)
    seen: list[AgentEvent] = []
    log = AgentEventLog(store, "run-1", seen.append, max_bytes=20_000)
    for i in range(2_000):
        log.record(_event(f"chunk {i} " + "x" * 100))
    log.close()
    assert len(seen) == 2_000  # the live view still got everything
    events = store.agent_events("run-1")
    markers = [e for e in events if e.data.get("truncated")]
    assert len(markers) == 1 and markers[0] is events[-1]
    assert "truncated" in markers[0].text and log.dropped == 2_000 - (len(events) - 1)
    assert log.path.stat().st_size <= 20_000 + len(markers[0].model_dump_json()) + 1
    assert [e.text for e in events[:-1]] == [f"chunk {i} " + "x" * 100 for i in range(len(events) - 1)]


def test_the_cap_is_configurable():
    from always_on.core.config import parse_config

    assert parse_config({}).limits.event_log_max_mb == 20
    assert parse_config({"limits": {"event_log_max_mb": 0.5}}).limits.event_log_max_mb == 0.5

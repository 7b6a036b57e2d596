"""The pure parts of the TUI: stream coalescing, the phase tracker, the JSONL tail, time formatting."""

from __future__ import annotations

from datetime import UTC, timedelta

from seed import NOW, at, phase_events, rid

from always_on.core.records import (
    AgentEvent,
    AgentEventKind,
    ErrorInfo,
    FireOutcome,
    Phase,
    PhaseEvent,
    PhaseEventType,
)
from always_on.core.storage import Store, append_line
from always_on.tui.clock import Clock, duration
from always_on.tui.feed import MAX_LINE, StreamFeed
from always_on.tui.run_tracker import RunTracker, StepState
from always_on.tui.tail import JsonlTail


def msg(
    text: str, kind: AgentEventKind = AgentEventKind.MESSAGE, phase: Phase = Phase.EXECUTION
) -> AgentEvent:
    return AgentEvent(ts=NOW, run_id="run-x", phase=phase, kind=kind, text=text)


def plain(lines) -> list[str]:
    return [line.plain for line in lines]


def test_message_chunks_are_coalesced_into_lines():
    feed = StreamFeed()
    for chunk in ["Hel", "lo wor", "ld\nsecond ", "line\nthird"]:
        feed.add(msg(chunk))
    assert plain(feed.take()) == ["Hello world", "second line"]
    assert feed.pending is not None and feed.pending.plain == "third"
    feed.add(msg("thinking…", AgentEventKind.THOUGHT))  # another kind ends the open line
    assert plain(feed.take()) == ["third"]
    assert feed.pending.plain == "thinking…" and "dim" in str(feed.pending.style)


def test_tool_calls_permissions_and_denials_are_formatted():
    feed = StreamFeed()
    feed.add(
        AgentEvent(
            ts=NOW,
            run_id="r",
            phase=Phase.EXECUTION,
            kind=AgentEventKind.TOOL_CALL,
            text="ruff check src",
            data={"toolCallId": "t1", "status": "pending"},
        )
    )
    feed.add(
        AgentEvent(
            ts=NOW,
            run_id="r",
            phase=Phase.EXECUTION,
            kind=AgentEventKind.TOOL_CALL_UPDATE,
            text="completed",
            data={"toolCallId": "t1", "status": "completed"},
        )
    )
    feed.add(
        AgentEvent(
            ts=NOW,
            run_id="r",
            phase=Phase.EXECUTION,
            kind=AgentEventKind.PERMISSION,
            text="git push origin main",
            allowed=False,
            reason="git push is never allowed",
        )
    )
    feed.add(
        AgentEvent(
            ts=NOW,
            run_id="r",
            phase=Phase.EXECUTION,
            kind=AgentEventKind.PERMISSION,
            text="cat README.md",
            allowed=True,
            reason="inside the workspace",
        )
    )
    feed.add(AgentEvent(ts=NOW, run_id="r", phase=Phase.EXECUTION, kind=AgentEventKind.USAGE, data={"t": 1}))
    lines = feed.take()
    assert plain(lines) == [
        "⚙ ruff check src [pending]",
        "  ↳ ruff check src [completed]",  # the update borrows the call's title
        "✗ DENIED  git push origin main — git push is never allowed",
        "✓ allowed cat README.md — inside the workspace",
    ]
    denied = lines[2]
    assert any("red" in str(span.style) for span in denied.spans)


def test_every_policy_denial_is_a_red_line_with_its_reason():
    """Issue 15: only permission-request denials were red; a denied command or file access looked like any other
    (a grey `$ git push`), without the reason."""
    feed = StreamFeed()
    for kind, text, reason in (
        (AgentEventKind.TERMINAL, "git push origin main", "git push is never allowed"),
        (AgentEventKind.FILE_READ, "/home/u/.ssh/id_rsa", "outside the workspace"),
        (AgentEventKind.FILE_WRITE, "/etc/passwd", "outside the workspace"),
    ):
        feed.add(
            AgentEvent(
                ts=NOW, run_id="r", phase=Phase.EXECUTION, kind=kind, text=text, allowed=False, reason=reason
            )
        )
    feed.add(
        AgentEvent(
            ts=NOW,
            run_id="r",
            phase=Phase.EXECUTION,
            kind=AgentEventKind.TERMINAL,
            text="ruff check .",
            allowed=True,
            reason="a known read-only command",
        )
    )
    lines = feed.take()
    assert plain(lines) == [
        "✗ DENIED  command git push origin main — git push is never allowed",
        "✗ DENIED  read /home/u/.ssh/id_rsa — outside the workspace",
        "✗ DENIED  write /etc/passwd — outside the workspace",
        "  $ ruff check .",
    ]
    for line in lines[:3]:
        assert line.spans and all("red" in str(span.style) for span in line.spans)


def test_a_line_without_newline_is_cut_at_the_maximum():
    feed = StreamFeed()
    feed.add(msg("x" * (MAX_LINE * 2 + 10)))
    lines = feed.take()
    assert [len(line) for line in lines] == [MAX_LINE, MAX_LINE]
    assert feed.pending.plain == "x" * 10


def test_phase_change_commits_the_open_line_and_phase_events_become_lines():
    feed = StreamFeed()
    feed.add(msg("half a line", phase=Phase.DISCOVERY))
    feed.add(
        PhaseEvent(
            ts=NOW,
            project_id="p",
            run_id="r",
            type=PhaseEventType.RUN_FAILED,
            error=ErrorInfo(code="agent_timeout", message="no answer in 900 s"),
        )
    )
    assert plain(feed.take()) == ["half a line", "── run failed: agent_timeout: no answer in 900 s ──"]


def test_the_stream_says_what_of_the_checkout_discovery_left_out():
    """Issue 15: the run tells how many untracked files were left out, in the app as in the CLI."""
    from always_on.core.workspace.visibility import LeftOut

    feed = StreamFeed()
    words = LeftOut(untracked=2, uncommitted=1).words()
    feed.add(
        PhaseEvent(ts=NOW, project_id="p", run_id="r", type=PhaseEventType.DISCOVERY_STARTED, message=words)
    )
    feed.add(PhaseEvent(ts=NOW, project_id="p", run_id="r", type=PhaseEventType.DISCOVERY_STARTED))
    assert plain(feed.take()) == [
        "── discovery started: 2 untracked files and 1 file with uncommitted changes of the checkout left out: "
        "discovery and execution work on the last commit (commit them to have them considered) ──",
        "── discovery started ──",
    ]


def test_tracker_follows_a_fire_and_times_each_phase():
    store = Store().project("/tmp/somewhere")
    run = RunTracker()
    events = phase_events(store, rid(1), 0, plan="p1", title="Remove unused imports")
    for event in events[:5]:  # discovery started/plan produced, workspace started/ready, execution started
        run.apply(event)
    assert run.running and run.plan_title == "Remove unused imports"
    assert [run.steps[p].state for p in run.steps] == [
        StepState.DONE,
        StepState.DONE,
        StepState.ACTIVE,
        StepState.PENDING,
    ]
    assert run.steps[Phase.DISCOVERY].elapsed(NOW) == 24.0  # 0.4 minutes between the two events
    assert run.steps[Phase.EXECUTION].elapsed(at(10)) == (at(10) - events[4].ts).total_seconds()
    for event in events[5:]:
        run.apply(event)
    assert run.outcome == FireOutcome.EXECUTED and not run.running
    assert all(s.state == StepState.DONE for s in run.steps.values())


def test_tracker_marks_the_failed_phase_and_skips_discovery_of_a_rerun():
    store = Store().project("/tmp/somewhere")
    run = RunTracker()
    for event in phase_events(
        store, rid(4), 0, plan="p4", rerun=True, fail=(Phase.EXECUTION, "execution_failed", "nothing changed")
    ):
        run.apply(event)
    states = {p.value: s.state for p, s in run.steps.items()}
    assert states == {
        "discovery": StepState.SKIPPED,
        "workspace": StepState.DONE,
        "execution": StepState.FAILED,
        "report": StepState.SKIPPED,
    }
    assert run.outcome == FireOutcome.FAILED and run.error.code == "execution_failed"


def test_tracker_no_plan_and_new_run_resets():
    store = Store().project("/tmp/somewhere")
    run = RunTracker()
    for event in phase_events(store, rid(9), 0, plan=None, no_plan=True):
        run.apply(event)
    assert run.outcome == FireOutcome.NO_PLAN
    assert run.steps[Phase.WORKSPACE].state == StepState.SKIPPED
    run.apply(phase_events(store, rid(2), 5, plan="p2", title="t")[0])
    assert (
        run.run_id == rid(2) and run.outcome is None and run.steps[Phase.WORKSPACE].state == StepState.PENDING
    )
    assert not run.apply(PhaseEvent(ts=NOW, project_id="p", type=PhaseEventType.APPLY_STARTED, cycle_id="c"))


def test_tail_returns_only_whole_new_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    first = PhaseEvent(ts=NOW, project_id="p", run_id="a", type=PhaseEventType.DISCOVERY_STARTED)
    append_line(path, first.model_dump_json())
    tail = JsonlTail(path, PhaseEvent)  # from the end: the old line is not news
    assert tail.read_new() == []
    second = first.model_copy(update={"run_id": "b"})
    with open(path, "a") as fh:
        fh.write(second.model_dump_json()[:20])  # a writer mid-line
    assert tail.read_new() == []
    with open(path, "a") as fh:
        fh.write(second.model_dump_json()[20:] + "\n{garbage}\n")
    assert [e.run_id for e in tail.read_new()] == ["b"]
    path.write_text(first.model_dump_json() + "\n")  # replaced by a shorter file: start over
    assert [e.run_id for e in tail.read_new()] == ["a"]


def test_clock_formats_with_the_injected_time_and_zone():
    clock = Clock(lambda: NOW, UTC)
    assert clock.stamp(NOW) == "2025-05-01 12:00:00"
    assert clock.short(NOW - timedelta(hours=1)) == "11:00:00"
    assert clock.short(NOW - timedelta(days=1)) == "04-30 12:00"
    assert clock.relative(NOW + timedelta(minutes=4, seconds=10)) == "in 4m 10s"
    assert clock.relative(NOW - timedelta(seconds=30)) == "30s ago"
    assert [duration(s) for s in (0.42, 75, 3725)] == ["0.4s", "1m 15s", "1h 02m"]

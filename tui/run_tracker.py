"""The state of one fire as a phase stepper needs it, folded from its phase events (live or replayed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from always_on.core.records import (
    AgentEvent,
    AgentEventKind,
    ErrorInfo,
    FireOutcome,
    Phase,
    PhaseEvent,
    PhaseEventType,
)

STEPS = (Phase.DISCOVERY, Phase.WORKSPACE, Phase.EXECUTION, Phase.REPORT)


class StepState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class Step:
    phase: Phase
    state: StepState = StepState.PENDING
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def elapsed(self, now: datetime) -> float | None:
        if self.started_at is None:
            return None
        return ((self.ended_at or now) - self.started_at).total_seconds()


_STARTS = {
    PhaseEventType.DISCOVERY_STARTED: Phase.DISCOVERY,
    PhaseEventType.WORKSPACE_STARTED: Phase.WORKSPACE,
    PhaseEventType.EXECUTION_STARTED: Phase.EXECUTION,
    PhaseEventType.REPORT_STARTED: Phase.REPORT,
}
_ENDS = {
    PhaseEventType.PLAN_PRODUCED: Phase.DISCOVERY,
    PhaseEventType.NO_PLAN: Phase.DISCOVERY,
    PhaseEventType.WORKSPACE_READY: Phase.WORKSPACE,
    PhaseEventType.EXECUTION_COMPLETED: Phase.EXECUTION,
    PhaseEventType.REPORT_PRODUCED: Phase.REPORT,
}


@dataclass
class RunTracker:
    run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: FireOutcome | None = None
    error: ErrorInfo | None = None
    plan_title: str | None = None
    agent: str | None = None  # the agent's own name and version, from its initialize response
    replay: bool = False
    steps: dict[Phase, Step] = field(default_factory=lambda: {p: Step(p) for p in STEPS})

    @property
    def running(self) -> bool:
        return self.run_id is not None and self.finished_at is None

    def reset(self, run_id: str | None, at: datetime | None, *, replay: bool = False) -> None:
        self.run_id = run_id
        self.started_at = at
        self.finished_at = None
        self.outcome = None
        self.error = None
        self.plan_title = None
        self.agent = None
        self.replay = replay
        self.steps = {p: Step(p) for p in STEPS}

    def apply(self, event: PhaseEvent) -> bool:
        """Fold one event in; False when it does not concern fires (apply events, other projects' noise)."""
        if event.run_id is None or event.type not in (
            *_STARTS,
            *_ENDS,
            PhaseEventType.RUN_COMPLETED,
            PhaseEventType.RUN_FAILED,
        ):
            return False
        if event.run_id != self.run_id:
            self.reset(event.run_id, event.ts, replay=self.replay)
        if event.type in _STARTS:
            phase = _STARTS[event.type]
            for earlier in STEPS[: STEPS.index(phase)]:  # a rerun has no discovery; anything unfinished ended
                step = self.steps[earlier]
                if step.state == StepState.PENDING:
                    step.state = StepState.SKIPPED
                elif step.state == StepState.ACTIVE:
                    step.state, step.ended_at = StepState.DONE, event.ts
            step = self.steps[phase]
            step.state, step.started_at, step.ended_at = StepState.ACTIVE, event.ts, None
        elif event.type in _ENDS:
            step = self.steps[_ENDS[event.type]]
            step.state, step.ended_at = StepState.DONE, event.ts
            if step.started_at is None:
                step.started_at = event.ts
            if event.type == PhaseEventType.PLAN_PRODUCED and event.message:
                self.plan_title = event.message
            if event.type == PhaseEventType.NO_PLAN:
                self._finish(event, FireOutcome.NO_PLAN)
        elif event.type == PhaseEventType.RUN_COMPLETED:
            self._finish(event, FireOutcome.EXECUTED)
        elif event.type == PhaseEventType.RUN_FAILED:
            failed_phase = event.phase if event.phase in self.steps else None
            if failed_phase is None:
                failed_phase = next((p for p in STEPS if self.steps[p].state == StepState.ACTIVE), None)
            if failed_phase is not None:
                step = self.steps[failed_phase]
                step.state, step.ended_at = StepState.FAILED, event.ts
                if step.started_at is None:
                    step.started_at = event.ts
            self.error = event.error
            self._finish(event, FireOutcome.FAILED)
        return True

    def note_agent(self, event: AgentEvent) -> bool:
        """The agent's name and version from the run's "agent ready" event (its initialize response)."""
        if event.kind != AgentEventKind.LIFECYCLE or event.run_id != self.run_id:
            return False
        info = event.data.get("agent_info")
        if not isinstance(info, dict) or not info.get("name"):
            return False
        self.agent = f"{info['name']} {info.get('version') or ''}".strip()
        return True

    def _finish(self, event: PhaseEvent, outcome: FireOutcome) -> None:
        self.outcome = outcome
        self.finished_at = event.ts
        for step in self.steps.values():
            if step.state == StepState.ACTIVE:
                step.state, step.ended_at = StepState.DONE, event.ts
            elif step.state == StepState.PENDING:
                step.state = StepState.SKIPPED

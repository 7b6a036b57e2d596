"""Fixtures for the agent tests: the scripted ACP agent as a real subprocess, events, process checks."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from always_on.core.agents.gateway import AgentGateway
from always_on.core.agents.spec import AgentSpec, PhaseLimits
from always_on.core.records import AgentEvent, AgentEventKind, Phase

SCRIPTED_AGENT = Path(__file__).resolve().with_name("scripted_agent.py")


def scripted_spec(script: dict[str, Any], path: Path, name: str = "scripted") -> AgentSpec:
    """An AgentSpec running tests/agents/scripted_agent.py with `script` (written to `path`)."""
    path.write_text(json.dumps(script))
    return AgentSpec(name=name, command=[sys.executable, str(SCRIPTED_AGENT), "--script", str(path)])


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (an unreaped zombie is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is pgid."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def process_tree(pid: int) -> list[int]:
    """Live descendants of pid, whatever their process group or session."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found.extend(frontier)
    return found


class EventSink:
    """on_event target: keeps events, and lets a test await the first event matching a predicate."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self._waiters: list[tuple[Callable[[AgentEvent], bool], asyncio.Future[AgentEvent]]] = []

    def __call__(self, event: AgentEvent) -> None:
        self.events.append(event)
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(event):
                future.set_result(event)

    def of(self, kind: AgentEventKind) -> list[AgentEvent]:
        return [e for e in self.events if e.kind == kind]

    async def wait_for(self, predicate: Callable[[AgentEvent], bool], timeout: float = 30.0) -> AgentEvent:
        for event in self.events:
            if predicate(event):
                return event
        future: asyncio.Future[AgentEvent] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return await asyncio.wait_for(future, timeout)


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README.md").write_text("line 1\nline 2\nline 3\n")
    return ws.resolve()


@pytest.fixture
def agent_log(tmp_path) -> Path:
    return tmp_path / "agent.jsonl"


@pytest.fixture
def sink() -> EventSink:
    return EventSink()


@pytest.fixture
async def make_gateway(tmp_path, workspace, agent_log, sink):
    """make_gateway(script, spec={AgentSpec fields}, **gateway_kwargs) → an AgentGateway (not started) over the
    scripted agent."""
    made: list[AgentGateway] = []

    def make(
        script: dict[str, Any],
        *,
        cwd: Path | None = None,
        spec: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AgentGateway:
        script = {"log": str(agent_log), **script}
        agent = scripted_spec(script, tmp_path / f"script-{len(made)}.json").model_copy(update=spec or {})
        kwargs.setdefault("cancel_grace", 1.0)
        gateway = AgentGateway(agent, on_event=sink, cwd=cwd or workspace, **kwargs)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:  # safety net only: tests close their gateways themselves where it matters
        await gateway.close()


def _policy_for(workspace: Path, **kwargs: Any):
    from always_on.core.agents.policy import Policy

    return Policy(workspace, **kwargs)


async def _run(
    gateway: AgentGateway,
    workspace: Path,
    *,
    phase: Phase = Phase.EXECUTION,
    policy=None,
    timeout: float = 30.0,
    max_tool_calls: int = 200,
    stall_seconds: float | None = 180.0,
    mcp_servers=None,
    prompt: str = "do the work",
):
    return await gateway.run_phase(
        run_id="run-test",
        phase=phase,
        cwd=workspace,
        policy=policy or _policy_for(workspace),
        prompt=prompt,
        mcp_servers=mcp_servers or [],
        limits=PhaseLimits(
            timeout_seconds=timeout, max_tool_calls=max_tool_calls, stall_seconds=stall_seconds
        ),
    )


@pytest.fixture
def policy_for():
    """policy_for(workspace, **kwargs) → the real always_on.core.agents.policy.Policy."""
    return _policy_for


@pytest.fixture
def run_phase():
    """await run_phase(gateway, workspace, phase=..., timeout=..., max_tool_calls=..., stall_seconds=...,
    mcp_servers=...)."""
    return _run


@pytest.fixture
def procs() -> SimpleNamespace:
    """procs.alive(pid), procs.group(pgid), procs.tree(pid): process checks through /proc."""
    return SimpleNamespace(alive=pid_alive, group=group_members, tree=process_tree)


@pytest.fixture
def agent_steps(agent_log):
    """agent_steps("terminal") → the scripted agent's logged results of that step kind, in order."""
    return lambda step: [e for e in read_log(agent_log) if e.get("step") == step]


@pytest.fixture
def agent_events(agent_log):
    """agent_events("cancel") → the scripted agent's logged protocol events of that kind, in order."""
    return lambda event: [e for e in read_log(agent_log) if e.get("event") == event]


VALID_PLAN = {
    "title": "Remove unused imports",
    "summary": "ruff reports three unused imports in src/.",
    "rationale": "Unused imports slow reading and hide real dependencies.",
    "dedupe_key": "ruff:F401",
    "context_signals": ["ruff check output", "chat_1"],
    "proposed_change": "Delete the unused imports reported by ruff F401.",
    "steps": ["1. Run ruff with --fix for F401", "2. Re-run the tests"],
    "verification": ["`ruff check --select F401 .` reports nothing", "`python -m pytest -q` passes"],
}


@pytest.fixture
def valid_plan() -> dict[str, Any]:
    return dict(VALID_PLAN)

"""Scripts for the scripted ACP agent and the harness the orchestrator tests share (imported as `fire_scripts`)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from always_on.core.config import parse_config
from always_on.core.orchestrator import Orchestrator
from always_on.core.records import PhaseEvent

SCRIPTED_AGENT = Path(__file__).resolve().parents[1] / "agents" / "scripted_agent.py"

PLAN = {
    "title": "Add a greeting module",
    "summary": "Add hello.py with a greet() function.",
    "rationale": "The project has no greeting.",
    "dedupe_key": "demo:greeting",
    "context_signals": ["README.md"],
    "proposed_change": "Create hello.py.",
    "steps": ["Write hello.py", "Run the verification"],
    "verification": ["`python -c 'import hello'`"],
}

DISCOVER = [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": PLAN}]}]
EXECUTE = [
    {"op": "message", "text": "Writing hello.py"},
    {"op": "write", "path": "hello.py", "content": "def greet():\n    return 'hi'\n"},
]
REPORT_MD = "## Steps Performed\nWrote hello.py\n## Verification Results\nimport ok\n"
REPORT = [{"op": "mcp", "calls": [{"tool": "always_on_report", "arguments": {"content": REPORT_MD}}]}]


class Harness:
    def __init__(self, project: Path, tmp: Path) -> None:
        self.project = project
        self.tmp = tmp
        self.events: list[PhaseEvent] = []
        self.all_events: list = []

    def orchestrator(
        self, phases: dict | None = None, *, timeout: float = 20.0, limits: dict | None = None, **script
    ) -> Orchestrator:
        script_path = self.tmp / f"script-{len(list(self.tmp.glob('script-*')))}.json"
        body = dict(script)
        if phases is not None:
            body["phases"] = phases
        body.setdefault("log", str(self.tmp / "agent-log.jsonl"))
        script_path.write_text(json.dumps(body))
        cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(SCRIPTED_AGENT))} --script {shlex.quote(str(script_path))}"
        config = parse_config(
            {"limits": {"phase_timeout_seconds": timeout, "max_tool_calls": 50, **(limits or {})}}
        )

        def listen(event) -> None:
            self.all_events.append(event)
            if isinstance(event, PhaseEvent):
                self.events.append(event)

        return Orchestrator(self.project, config=config, agent_cmd=cmd, listeners=[listen])

    def types(self) -> list[str]:
        return [e.type.value for e in self.events]

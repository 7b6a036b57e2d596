"""The ACP client gateway (DESIGN §4, §5): one agent process per fire, one ACP session per phase.

The runtime is the agent's *client*: it advertises file-system and terminal capabilities so that reads, writes
and commands come back through here, where the permission policy is enforced; it answers permission requests
itself; it turns every `session/update` into an AgentEvent; and it bounds each phase (wall-clock timeout, max
tool calls). Whatever the agent does — crash, hang, write garbage, exceed its limits — `run_phase` returns a
PhaseResult with an error code; it never raises for an agent fault and never lets a process outlive `close()`.

Where each part lives:
- `agent_gateway`: `AgentGateway` — start, run_phase (session/new → prompt → wait), close; replacing a broken
  agent between phases.
- `process`: the agent process — `start_agent_process` (the one place it is launched), the stdio transport
  (strict JSON-RPC framing; `session/update` handled inline, in stream order), stopping its process tree.
- `requests`: the requests made of the agent (initialize, session/new, prompt, cancel, close) and the one place
  their failures (crash, error answer, non-ACP answer, timeout) become an ErrorInfo.
- `client`: the ACP Client handlers — permission requests, file reads/writes, terminals — each checked
  against the phase's policy.
- `events`: the phase in progress and its events — the one place an AgentEvent is built.
Terminal commands are run by `agents.terminals` (`start_command_process`, the one place they are launched).
"""

from always_on.core.agents.gateway.agent_gateway import AgentGateway, PhaseResult
from always_on.core.agents.gateway.client import POLICY_DENIED_RPC_CODE
from always_on.core.agents.gateway.events import AGENT_TOOL_LIMIT

__all__ = ["AGENT_TOOL_LIMIT", "POLICY_DENIED_RPC_CODE", "AgentGateway", "PhaseResult"]

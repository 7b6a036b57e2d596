"""What the gateway needs to start an agent and bound one phase: command line, env, limits, MCP servers."""

from __future__ import annotations

import shlex
import sys

from pydantic import BaseModel, Field


class AgentSpec(BaseModel):
    """A configured agent: a command line that speaks ACP on stdio."""

    name: str
    command: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    kind: str = "acp"  # acp | builtin
    model: str | None = None

    @classmethod
    def from_command_line(cls, line: str, name: str | None = None) -> AgentSpec:
        argv = shlex.split(line)
        if not argv:
            raise ValueError("empty agent command line")
        return cls(name=name or argv[0], command=argv)

    @classmethod
    def builtin(cls, name: str) -> AgentSpec:
        return cls(
            name=name,
            command=[sys.executable, "-P", "-m", "always_on.core.agents.builtin", name],
            kind="builtin",
        )


class PhaseLimits(BaseModel):
    timeout_seconds: float = 600.0
    max_tool_calls: int = 200


class McpServerSpec(BaseModel):
    """An MCP server passed to the agent in session/new (stdio transport)."""

    name: str
    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)

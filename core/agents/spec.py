"""What the gateway needs to start an agent and bound one phase: command line, env, credentials, limits, MCP servers."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import PurePath

from pydantic import BaseModel, Field

# Programs that run another program named by their first argument: an agent started as `node x.js` or
# `npx @scope/pkg` is named after what they run, not after the interpreter.
_LAUNCHERS = re.compile(
    r"^(python[0-9.]*|pypy[0-9.]*|node|nodejs|bun|bunx|deno|npx|pnpx|uv|uvx|pipx|ruby|perl|sh|bash|env)$"
)
_SUBCOMMANDS = frozenset({"run", "exec", "x", "dlx", "tool"})


def command_display_name(argv: list[str]) -> str:
    """A short name for an agent given only as a command line: `python -P agent.py` → `agent.py`,
    `npx @zed-industries/codex-acp@0.16.0` → `codex-acp`, `python -m pkg.agent` → `pkg.agent`."""
    words = list(argv)
    while len(words) > 1 and _LAUNCHERS.match(PurePath(words[0]).name):
        rest = words[1:]
        if "-m" in rest[:-1]:
            return rest[rest.index("-m") + 1]
        following = [w for w in rest if not w.startswith("-") and "=" not in w and w not in _SUBCOMMANDS]
        if not following:
            break
        words = rest[rest.index(following[0]) :]
    if not words:
        return "agent"
    first = words[0].split("/", 1)[-1] if words[0].startswith("@") else words[0]
    name = PurePath(first).name
    return re.sub(r"@[^@/]*$", "", name) or name


def split_command_line(line: str) -> list[str]:
    """An agent command line as argv; invalid_agent_command (with the parser's words) when it cannot be one."""
    from always_on.core.errors import AlwaysOnError, ErrorCode

    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise AlwaysOnError(
            ErrorCode.INVALID_AGENT_COMMAND,
            f"the agent command line {line!r} cannot be read: {exc}",
            hint="quote it as you would in a shell, e.g. --agent-cmd 'my-agent --acp --name \"two words\"'",
        ) from None
    if not argv:
        raise AlwaysOnError(
            ErrorCode.INVALID_AGENT_COMMAND,
            "the agent command line is empty",
            hint="give the command that starts an ACP agent, e.g. --agent-cmd 'my-agent --acp', or leave the "
            "option out to use the configured agent",
        )
    return argv


class AgentSpec(BaseModel):
    """A configured agent: a command line that speaks ACP on stdio, and what it needs to run unattended.

    `pass_env` names variables copied from always-on's own environment into the agent process only (credentials
    and endpoints: the allow-list drops them everywhere else, and the terminals the agent asks for never get
    them); `credentials` are those of them that are credentials (what doctor and the hints talk about).
    `auth_methods` maps an ACP auth method id to the variables whose presence selects it (`authenticate`).
    """

    name: str
    command: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    pass_env: list[str] = Field(default_factory=list)
    credentials: list[str] = Field(default_factory=list)
    auth_methods: dict[str, list[str]] = Field(default_factory=dict)
    auth_method: str | None = None  # configured: always this method when authentication is required
    login_hint: str | None = None  # the command that logs the agent in, for the auth error's hint
    install_hint: str | None = None
    kind: str = "acp"  # acp | builtin | openai
    model: str | None = None
    stall_seconds: float | None = None  # per agent; else the phase limits'
    start_timeout_seconds: float | None = None  # per agent; else the gateway's

    @classmethod
    def from_command_line(cls, line: str, name: str | None = None) -> AgentSpec:
        """The agent a command line starts (split as a POSIX shell would); invalid_agent_command when the line is
        empty or cannot be split (an unclosed quote, a trailing backslash)."""
        return cls(name=name or command_display_name(argv := split_command_line(line)), command=argv)

    @classmethod
    def builtin(cls, name: str) -> AgentSpec:
        return cls(
            name=name,
            command=[sys.executable, "-P", "-m", "always_on.core.agents.builtin", name],
            kind="builtin",
        )

    def present_variables(self, environ: Mapping[str, str] | None = None) -> set[str]:
        """Names (never values) of the variables this agent's process gets that are set and not empty."""
        source = os.environ if environ is None else environ
        present = {name for name in self.pass_env if source.get(name)}
        return present | {name for name, value in self.env.items() if value}

    def present_credentials(self, environ: Mapping[str, str] | None = None) -> list[str]:
        present = self.present_variables(environ)
        return [name for name in self.credentials if name in present]


class PhaseLimits(BaseModel):
    timeout_seconds: float = 600.0
    max_tool_calls: int = 200
    stall_seconds: float | None = (
        180.0  # no update, tool call or terminal output for this long: agent_stalled
    )


class McpServerSpec(BaseModel):
    """An MCP server passed to the agent in session/new (stdio transport)."""

    name: str
    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)

"""Agent names → command lines: configured agents, the built-in ones, and presets for known ACP agents."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from pydantic import BaseModel

from always_on.core.agents.spec import AgentSpec
from always_on.core.errors import AlwaysOnError, ErrorCode

if TYPE_CHECKING:
    from always_on.core.config import AgentConfig

BUILTIN = ("tidy", "openai")

PRESETS: dict[str, list[str]] = {
    "claude": ["claude-agent-acp"],
    "codex": ["codex-acp"],
    "gemini": ["gemini", "--experimental-acp"],
    "goose": ["goose", "acp"],
    "opencode": ["opencode", "acp"],
}


class AgentListing(BaseModel):
    name: str
    source: str  # configured | builtin | preset
    command: list[str]
    installed: bool


def _configured_spec(name: str, cfg: AgentConfig) -> AgentSpec:
    import shlex

    argv = shlex.split(cfg.command) if isinstance(cfg.command, str) else list(cfg.command)
    env = dict(cfg.env)
    if cfg.kind == "openai":
        if not argv:
            argv = AgentSpec.builtin("openai").command
        if cfg.base_url:
            env["ALWAYS_ON_OPENAI_BASE_URL"] = cfg.base_url
        if cfg.model:
            env["ALWAYS_ON_OPENAI_MODEL"] = cfg.model
        if cfg.api_key_env:
            env["ALWAYS_ON_OPENAI_API_KEY_ENV"] = cfg.api_key_env
            # The runtime hands agents a scrubbed environment (no credentials); the key the user named is
            # passed to this agent's process only (terminals it asks for never see it).
            key = os.environ.get(cfg.api_key_env)
            if key is not None and cfg.api_key_env not in env:
                env[cfg.api_key_env] = key
    return AgentSpec(name=name, command=argv, env=env, kind=cfg.kind, model=cfg.model)


def resolve_agent(name: str, configured: dict[str, AgentConfig]) -> AgentSpec:
    if name in configured:
        return _configured_spec(name, configured[name])
    if name in BUILTIN:
        return AgentSpec.builtin(name)
    if name in PRESETS:
        return AgentSpec(name=name, command=list(PRESETS[name]))
    known = sorted(set(configured) | set(BUILTIN) | set(PRESETS))
    raise AlwaysOnError(
        ErrorCode.AGENT_NOT_FOUND, f"unknown agent '{name}'; known agents: {', '.join(known)}"
    )


def list_agents(configured: dict[str, AgentConfig]) -> list[AgentListing]:
    out: list[AgentListing] = []
    for name, cfg in configured.items():
        spec = _configured_spec(name, cfg)
        out.append(
            AgentListing(
                name=name,
                source="configured",
                command=spec.command,
                installed=shutil.which(spec.command[0]) is not None,
            )
        )
    for name in BUILTIN:
        if name not in configured:
            out.append(
                AgentListing(
                    name=name, source="builtin", command=AgentSpec.builtin(name).command, installed=True
                )
            )
    for name, argv in PRESETS.items():
        if name not in configured:
            out.append(
                AgentListing(
                    name=name, source="preset", command=argv, installed=shutil.which(argv[0]) is not None
                )
            )
    return out

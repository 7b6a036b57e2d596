"""Agent names → command lines: configured agents, the built-in ones, and presets for known ACP agents.

A preset says what its agent needs to run unattended here (DESIGN §4): the command line; the variables its vendor
documents for credentials and endpoints, which reach the agent process only (`pass_env`); which ACP auth method
each credential selects (`authenticate` when the agent answers that authentication is required); extra
environment; and the commands that install it and log it in, for errors and `always-on doctor`.

Decisions recorded here:
- gemini: `GEMINI_CLI_TRUST_WORKSPACE=true`. Gemini CLI does not start the MCP servers of a folder it does not
  trust, and the workspace is always a new folder; trusting it is what lets it see the always-on tools.
- claude: no `IS_SANDBOX`. As root, claude-agent-acp turns its bypass-permissions mode off unless `IS_SANDBOX` is
  set, and then runs in its default mode, asking permission through ACP (where our policy answers): that is what
  we want, and it works as root (measured with 0.101.0 on Node 20). With `IS_SANDBOX` set to anything but `1`,
  session/new fails as root ("--dangerously-skip-permissions cannot be used with root/sudo"); the allow-list
  drops `IS_SANDBOX` from the inherited environment, so only an explicit agent `env` can bring it back.
- claude: the install hint pins `@agentclientprotocol/claude-agent-acp@0.101.0`. On Node 20 npm resolves the
  package to 0.49.0 (later versions declare `engines: node >= 22`), which fails every session/new; 0.101.0 runs
  fine on Node 20.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import PurePath
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from always_on.core.agents.spec import AgentSpec, command_display_name
from always_on.core.errors import AlwaysOnError, ErrorCode

if TYPE_CHECKING:
    from always_on.core.config import AgentConfig

BUILTIN = ("tidy", "openai")


class Preset(BaseModel):
    """A known ACP agent: how to start it and what it needs (see the module docstring)."""

    command: list[str]
    credentials: list[str] = Field(default_factory=list)  # any one of them is a usable credential
    endpoints: list[str] = Field(
        default_factory=list
    )  # endpoints, provider switches: passed, not credentials
    auth_methods: dict[str, list[str]] = Field(default_factory=dict)  # ACP method id → variables selecting it
    env: dict[str, str] = Field(default_factory=dict)
    login: str | None = None  # the command that logs the agent in (a login file then holds the credential)
    login_files: list[str] = Field(
        default_factory=list
    )  # where that login is kept (checked for existence only)
    install: str | None = None

    @property
    def pass_env(self) -> list[str]:
        return list(dict.fromkeys(self.credentials + self.endpoints))


PRESETS: dict[str, Preset] = {
    "claude": Preset(
        command=["claude-agent-acp"],
        credentials=["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"],
        endpoints=[
            "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", "ANTHROPIC_CUSTOM_HEADERS",
            "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "AWS_REGION", "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
            "ANTHROPIC_VERTEX_PROJECT_ID", "CLOUD_ML_REGION", "GOOGLE_APPLICATION_CREDENTIALS",
            "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
        ],
        login="claude-agent-acp --cli auth login",
        login_files=["~/.claude/.credentials.json"],
        install="npm install -g @agentclientprotocol/claude-agent-acp@0.101.0",
    ),
    "codex": Preset(
        command=["codex-acp"],
        credentials=["OPENAI_API_KEY", "CODEX_API_KEY"],
        endpoints=["OPENAI_BASE_URL", "OPENAI_ORGANIZATION", "OPENAI_PROJECT", "CODEX_HOME",
                   "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"],
        auth_methods={"codex-api-key": ["CODEX_API_KEY"], "openai-api-key": ["OPENAI_API_KEY"]},
        login="codex login",  # the Codex CLI, `npm install -g @openai/codex`
        login_files=["~/.codex/auth.json"],
        install="npm install -g @zed-industries/codex-acp",
    ),
    "gemini": Preset(
        command=["gemini", "--experimental-acp"],
        credentials=["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"],
        endpoints=["GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI",
                   "GOOGLE_GEMINI_BASE_URL", "GEMINI_MODEL", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"],
        auth_methods={
            "gemini-api-key": ["GEMINI_API_KEY"],
            "vertex-ai": ["GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"],
        },
        env={"GEMINI_CLI_TRUST_WORKSPACE": "true"},
        login="gemini",  # then choose "Login with Google"
        login_files=["~/.gemini/oauth_creds.json"],
        install="npm install -g @google/gemini-cli",
    ),
    "goose": Preset(
        command=["goose", "acp"],
        credentials=["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GOOGLE_API_KEY", "OPENROUTER_API_KEY",
                     "GROQ_API_KEY", "DATABRICKS_TOKEN"],
        endpoints=["GOOSE_PROVIDER", "GOOSE_MODEL", "OLLAMA_HOST", "OPENAI_HOST", "ANTHROPIC_HOST",
                   "DATABRICKS_HOST", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"],
        login="goose configure",
        login_files=["~/.config/goose/config.yaml"],
        install="see https://block.github.io/goose/docs/getting-started/installation",
    ),
    "opencode": Preset(
        command=["opencode", "acp"],
        credentials=["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENERATIVE_AI_API_KEY",
                     "OPENROUTER_API_KEY", "GROQ_API_KEY", "XAI_API_KEY", "DEEPSEEK_API_KEY", "MISTRAL_API_KEY"],
        endpoints=["OPENCODE_CONFIG", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "HTTPS_PROXY", "HTTP_PROXY",
                   "NO_PROXY"],
        login="opencode auth login",
        login_files=["~/.local/share/opencode/auth.json"],
        install="npm install -g opencode-ai",
    ),
}  # fmt: skip

#: The built-in `openai` agent reads its key from this variable unless `api_key_env` names another.
OPENAI_DEFAULT_KEY_ENV = "OPENAI_API_KEY"


class AgentListing(BaseModel):
    name: str
    source: str  # configured | builtin | preset
    command: list[str]
    installed: bool


def preset_for(name: str, argv: list[str]) -> Preset | None:
    """The preset an agent inherits: by its name, else by the program its command line runs."""
    if name in PRESETS:
        return PRESETS[name]
    program = command_display_name(argv) if argv else ""
    for preset in PRESETS.values():
        if PurePath(preset.command[0]).name == program:
            return preset
    return None


def _with_preset(spec: AgentSpec, preset: Preset | None) -> AgentSpec:
    if preset is None:
        return spec
    return spec.model_copy(
        update={
            "env": {**preset.env, **spec.env},
            "pass_env": list(dict.fromkeys(preset.pass_env + spec.pass_env)),
            "credentials": list(dict.fromkeys(preset.credentials + spec.credentials)),
            "auth_methods": {**preset.auth_methods, **spec.auth_methods},
            "login_hint": spec.login_hint or preset.login,
            "install_hint": spec.install_hint or preset.install,
        }
    )


def _openai_spec(name: str, cfg: AgentConfig | None) -> AgentSpec:
    """The built-in openai agent: its endpoint and model go in its env; its key variable is passed (pass_env)."""
    argv = AgentSpec.builtin("openai").command
    env: dict[str, str] = {}
    key_env = OPENAI_DEFAULT_KEY_ENV
    if cfg is not None:
        if cfg.command:
            argv = shlex.split(cfg.command) if isinstance(cfg.command, str) else list(cfg.command)
        if cfg.base_url:
            env["ALWAYS_ON_OPENAI_BASE_URL"] = cfg.base_url
        if cfg.model:
            env["ALWAYS_ON_OPENAI_MODEL"] = cfg.model
        if cfg.api_key_env:
            key_env = cfg.api_key_env
            env["ALWAYS_ON_OPENAI_API_KEY_ENV"] = key_env
    return AgentSpec(
        name=name,
        command=argv,
        env=env,
        kind="openai" if cfg is not None else "builtin",
        pass_env=[key_env],
        credentials=[key_env],
        install_hint="built in",
    )


def _configured_spec(name: str, cfg: AgentConfig) -> AgentSpec:
    if cfg.kind == "openai":
        spec = _openai_spec(name, cfg)
    else:
        argv = shlex.split(cfg.command) if isinstance(cfg.command, str) else list(cfg.command)
        spec = _with_preset(AgentSpec(name=name, command=argv, kind=cfg.kind), preset_for(name, argv))
    return spec.model_copy(
        update={
            "env": {**spec.env, **cfg.env},
            "pass_env": list(dict.fromkeys(spec.pass_env + cfg.pass_env)),
            "credentials": list(dict.fromkeys(spec.credentials + cfg.pass_env)),
            "auth_method": cfg.auth_method,
            "model": cfg.model,
            "stall_seconds": cfg.stall_seconds,
            "start_timeout_seconds": cfg.start_timeout_seconds,
        }
    )


def resolve_agent(name: str, configured: dict[str, AgentConfig]) -> AgentSpec:
    if name in configured:
        return _configured_spec(name, configured[name])
    if name == "openai":
        return _openai_spec(name, None)
    if name in BUILTIN:
        return AgentSpec.builtin(name)
    if name in PRESETS:
        preset = PRESETS[name]
        return _with_preset(AgentSpec(name=name, command=list(preset.command)), preset)
    known = sorted(set(configured) | set(BUILTIN) | set(PRESETS))
    raise AlwaysOnError(
        ErrorCode.AGENT_NOT_FOUND, f"unknown agent '{name}'; known agents: {', '.join(known)}"
    )


def resolve_command_line(line: str) -> AgentSpec:
    """An agent given as a raw command line (`--agent-cmd`): a known program gets its preset's credentials."""
    spec = AgentSpec.from_command_line(line)
    return _with_preset(spec, preset_for(spec.name, spec.command))


def agent_names(configured: dict[str, AgentConfig]) -> list[str]:
    """Every agent name, configured first, then built-ins and presets not shadowed by a configured one."""
    return list(dict.fromkeys([*configured, *BUILTIN, *PRESETS]))


def program_path(argv: list[str]) -> str | None:
    """Where the agent's program is, searched on the PATH the agent gets."""
    from always_on.core.agents.policy import agent_environment

    if not argv:
        return None
    return shutil.which(argv[0], path=agent_environment().get("PATH", os.defpath))


def list_agents(configured: dict[str, AgentConfig]) -> list[AgentListing]:
    out: list[AgentListing] = []
    for name in agent_names(configured):
        source = "configured" if name in configured else "builtin" if name in BUILTIN else "preset"
        spec = resolve_agent(name, configured)
        installed = source == "builtin" or program_path(spec.command) is not None
        out.append(AgentListing(name=name, source=source, command=spec.command, installed=installed))
    return out

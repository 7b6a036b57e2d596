"""Configuration (DESIGN §8): one TOML file, defaults that work with no file, per-project overrides by path.

Unknown keys produce warnings (typos should not silently do nothing); invalid values fail with the key named and
the form expected.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from always_on.core import paths
from always_on.core.agents.spec import AgentSpec, PhaseLimits
from always_on.core.errors import AlwaysOnError, ErrorCode


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentConfig(Section):
    command: str | list[str] = ""  # required for kind "acp"; the built-in agent for kind "openai"
    env: dict[str, str] = Field(default_factory=dict)
    pass_env: list[str] = Field(
        default_factory=list
    )  # more variables for the agent process only (credentials)
    auth_method: str | None = None  # the ACP auth method to use when the agent asks for authentication
    kind: Literal["acp", "openai"] = "acp"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    stall_seconds: float | None = Field(None, gt=0)
    start_timeout_seconds: float | None = Field(None, gt=0)

    @field_validator("pass_env", "env")
    @classmethod
    def _no_policy_bypass(cls, value: Any) -> Any:
        from always_on.core.agents.policy.environment import forbidden_variable

        for name in value:
            if forbidden_variable(name):
                raise ValueError(f"{name} would let commands bypass the permission policy")
        return value

    @model_validator(mode="after")
    def _command_for_acp(self) -> AgentConfig:
        if self.kind == "acp" and not self.command:
            raise ValueError("an ACP agent needs a command line (`command`)")
        if isinstance(self.command, str) and self.command:
            import shlex

            try:
                shlex.split(self.command)
            except ValueError as exc:
                raise ValueError(f"the command line cannot be read: {exc}") from None
        return self


class PhaseAgents(Section):
    discovery: str | None = None
    execution: str | None = None
    report: str | None = None
    apply: str | None = None


class SchedulerConfig(Section):
    enabled: bool = True
    interval_seconds: float = Field(900.0, gt=0)
    cooldown_seconds: float = Field(300.0, ge=0)
    daily_budget: int = Field(24, ge=0)
    max_plans_per_cycle: int = Field(5, ge=1)
    failures_before_disable: int = Field(3, ge=1)


class DormancyConfig(Section):
    debounce_ms: int = Field(1500, ge=0)
    ignore: list[str] = Field(
        default_factory=lambda: [
            ".git",
            ".hg",
            ".svn",
            "node_modules",
            ".venv",
            "venv",
            "__pycache__",
            "*.pyc",
            ".mypy_cache",
            ".pytest_cache",
            ".ruff_cache",
            "build",
            "dist",
            "target",
            ".tox",
            ".idea",
            ".vscode",
            "*.egg-info",
        ]
    )


# What a snapshot workspace does not copy (names or globs, matched on every path component), by default.
SNAPSHOT_IGNORE = [
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    "build",
    "dist",
    "*.egg-info",
    ".DS_Store",
]


class WorkspaceConfig(Section):
    strategy: Literal["auto", "worktree", "snapshot"] = "auto"
    base_dir: str | None = None
    snapshot_max_mb: int = Field(500, gt=0)
    snapshot_ignore: list[str] = Field(default_factory=lambda: list(SNAPSHOT_IGNORE))

    def resolved_base(self) -> Path:
        return Path(self.base_dir).expanduser().resolve() if self.base_dir else paths.default_workspace_base()


class PhaseTimeouts(Section):
    """A phase's own wall-clock limit in seconds; unset, ``phase_timeout_seconds`` applies."""

    discovery: float | None = Field(None, gt=0)
    execution: float | None = Field(None, gt=0)
    report: float | None = Field(None, gt=0)


class LimitsConfig(Section):
    phase_timeout_seconds: float = Field(900.0, gt=0)
    phase_timeouts: PhaseTimeouts = Field(default_factory=PhaseTimeouts)
    max_tool_calls: int = Field(300, ge=1)
    # An agent silent this long (no update, tool call or terminal output) fails its phase with agent_stalled.
    stall_seconds: float = Field(180.0, gt=0)
    # initialize, authenticate and session/new, each.
    start_timeout_seconds: float = Field(60.0, gt=0)
    event_log_max_mb: float = Field(20.0, gt=0)  # per run; then one truncation marker (core.event_log)

    def phase_limits(self, phase: str | None = None) -> PhaseLimits:
        """The limits of ``phase`` (``discovery``, ``execution``, ``report``; its own timeout if it has one)."""
        own = getattr(self.phase_timeouts, phase, None) if phase else None
        return PhaseLimits(
            timeout_seconds=own or self.phase_timeout_seconds,
            max_tool_calls=self.max_tool_calls,
            stall_seconds=self.stall_seconds,
        )


class ApplyConfig(Section):
    agent_assisted_conflicts: bool = False


class NotificationsConfig(Section):
    bell: bool = False


class ProjectSettings(Section):
    """Settings that may be overridden per project."""

    language: Literal["en", "zh-CN"] = "en"
    agent: str = "tidy"
    phase_agents: PhaseAgents = Field(default_factory=PhaseAgents)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    dormancy: DormancyConfig = Field(default_factory=DormancyConfig)
    workspace: WorkspaceConfig = Field(default_factory=WorkspaceConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    apply: ApplyConfig = Field(default_factory=ApplyConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)

    def agent_for(self, phase: str) -> str:
        return getattr(self.phase_agents, phase, None) or self.agent


class Config(ProjectSettings):
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = Field(default_factory=dict)

    warnings: list[str] = Field(default_factory=list, exclude=True)
    source: str | None = Field(None, exclude=True)

    def for_project(self, project: Path | str) -> ProjectSettings:
        """Global settings with the project's table (keyed by absolute path) merged over them."""
        key = str(Path(project).expanduser().resolve())
        base = ProjectSettings.model_validate(self.model_dump(include=set(ProjectSettings.model_fields)))
        override = None
        for raw_key, table in self.projects.items():
            if str(Path(raw_key).expanduser().resolve()) == key:
                override = table
        if not override:
            return base
        merged = _deep_merge(base.model_dump(), override)
        try:
            return ProjectSettings.model_validate(merged)
        except ValidationError as exc:
            raise _config_error(exc, prefix=f'projects."{key}".', source=self.source) from None

    def agent_spec(self, name: str) -> AgentSpec:
        """Resolve an agent name: configured table first, then built-ins, then known presets."""
        from always_on.core.agents.presets import resolve_agent

        return resolve_agent(name, self.agents)

    def command_line_spec(self, line: str) -> AgentSpec:
        """An agent given as a raw command line (`--agent-cmd`); a known program gets its preset's credentials."""
        from always_on.core.agents.presets import resolve_command_line

        return resolve_command_line(line)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _unknown_keys(model: type[BaseModel], data: Any, prefix: str = "") -> list[str]:
    """Keys not in the model, reported as warnings; removed from data so validation can go on."""
    found: list[str] = []
    if not isinstance(data, dict):
        return found
    fields = model.model_fields
    for key in list(data):
        if key not in fields or key in ("warnings", "source"):
            found.append(prefix + key)
            del data[key]
            continue
        annotation = fields[key].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _unknown_keys(annotation, data[key], f"{prefix}{key}.")
        elif key == "agents" and isinstance(data[key], dict):
            for name, table in data[key].items():
                found += _unknown_keys(AgentConfig, table, f"agents.{name}.")
        elif key == "projects" and isinstance(data[key], dict):
            for name, table in data[key].items():
                found += _unknown_keys(ProjectSettings, table, f'projects."{name}".')
    return found


def _config_error(exc: ValidationError, prefix: str = "", source: str | None = None) -> AlwaysOnError:
    first = exc.errors()[0]
    key = prefix + ".".join(str(p) for p in first["loc"])
    expected = first["msg"]
    where = f" in {source}" if source else ""
    return AlwaysOnError(
        ErrorCode.CONFIG_INVALID,
        f"invalid value for `{key}`{where}: {expected} (got {first.get('input')!r})",
        key=key,
    )


def parse_config(data: dict[str, Any], source: str | None = None) -> Config:
    data = dict(data)
    warnings = [
        f"unknown configuration key `{k}` ignored" + (f" in {source}" if source else "")
        for k in _unknown_keys(Config, data)
    ]
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, source=source) from None
    config.warnings = warnings
    config.source = source
    for key in config.projects:  # validate project tables eagerly so errors show at load time
        config.for_project(key)
    return config


def load_config(path: Path | None = None) -> Config:
    """The configuration file (defaults when there is none); config_invalid names the file, and the line and
    column of a syntax error or the key (and its line, when it can be found) of an invalid value."""
    path = path or paths.config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        position = {"line": int(where[1]), "column": int(where[2])} if where else {}
        raise AlwaysOnError(
            ErrorCode.CONFIG_INVALID, f"{path} is not valid TOML: {exc}", file=str(path), **position
        ) from None
    try:
        return parse_config(data, source=str(path))
    except AlwaysOnError as exc:
        line = key_line(text, str(exc.details.get("key", "")))
        if line is None:
            raise AlwaysOnError(exc.code, exc.message, file=str(path), **exc.details) from None
        raise AlwaysOnError(
            exc.code, f"{exc.message} (line {line})", file=str(path), line=line, column=1, **exc.details
        ) from None


def _table_path(header: str) -> list[str]:
    """`[projects."/a b".scheduler]` → ["projects", "/a b", "scheduler"] (bare and quoted keys)."""
    return [a or b for a, b in re.findall(r'"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_-]+)', header)]


def key_line(text: str, key: str) -> int | None:
    """The line (1-based) that sets the dotted ``key`` in a TOML text: the `name = ...` line under its table's
    header (or the inline table or header holding it); None when it is written in a way this does not follow."""
    wanted = _table_path(key)
    if not wanted:
        return None
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^\[\[?(.*?)\]\]?\s*(?:#.*)?$", stripped)
        if header:
            table = _table_path(header[1])
            if table == wanted:
                return number
            continue
        assignment = re.match(
            r'^((?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+))*)\s*=',
            stripped,
        )
        if assignment:
            full = table + _table_path(assignment[1])
            if full == wanted[: len(full)]:
                return number
    return None

"""`always-on doctor`: what works on this machine and what to do about what does not, in one screen.

For each agent (configured, built-in, preset; or the one asked for): is it installed (path), does it answer the
ACP `initialize` handshake (name, version, protocol version, auth methods — the agent is started in an empty
temporary folder and stopped right after), which of its credential variables are set (names only, never
values) or whether a login file exists, and which MCP transports it takes. Plus the tools always-on itself uses:
git, ruff, node/npm (the npm-installed adapters), and the OS sandbox level. Every line is ✔ or ✘ with the next
step; `–` is information, not a problem.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from always_on.core.agents.presets import BUILTIN, agent_names, preset_for, program_path
from always_on.core.agents.spec import AgentSpec
from always_on.core.config import Config
from always_on.core.errors import AlwaysOnError

OK, FAIL, INFO = "✔", "✘", "–"


class Check(BaseModel):
    """One line: what was checked, whether it is fine (None: information only), what was found, what to do."""

    name: str
    ok: bool | None
    detail: str
    next: str | None = None

    @property
    def mark(self) -> str:
        return INFO if self.ok is None else OK if self.ok else FAIL


class AgentReport(BaseModel):
    name: str
    source: str  # configured | builtin | preset
    command: list[str]
    checks: list[Check] = Field(default_factory=list)
    initialize: dict[str, Any] | None = None  # the agent's initialize response, as JSON

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)


class DoctorReport(BaseModel):
    checks: list[Check]
    agents: list[AgentReport]
    default_agent: str

    def ok_for(self, names: list[str]) -> bool:
        """No ✘ in the machine checks that matter (git) nor in the given agents."""
        machine = all(c.ok is not False for c in self.checks if c.name == "git")
        return machine and all(a.ok for a in self.agents if a.name in names)


# --- machine ------------------------------------------------------------------------------------------------


def _version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if out.returncode == 0 and text else None


def machine_checks() -> list[Check]:
    from always_on.core.agents.builtin.common import bundled_program

    checks: list[Check] = []
    git = shutil.which("git")
    version = _version([git, "--version"]) if git else None
    checks.append(
        Check(name="git", ok=True, detail=f"{version} ({git})")
        if version
        else Check(name="git", ok=False, detail="git was not found", next="install git (2.30 or newer)")
    )
    ruff = bundled_program("ruff")
    version = _version([ruff, "--version"])
    checks.append(
        Check(name="ruff", ok=True, detail=f"{version} ({shutil.which(ruff) or ruff})")
        if version
        else Check(
            name="ruff",
            ok=False,
            detail="ruff was not found (the tidy agent needs it)",
            next="reinstall always-on (ruff is one of its dependencies) or `pip install ruff`",
        )
    )
    node = shutil.which("node")
    node_version = _version([node, "--version"]) if node else None
    npm = shutil.which("npm")
    npm_version = _version([npm, "--version"]) if npm else None
    if node_version:
        detail = f"node {node_version} ({node})" + (f", npm {npm_version}" if npm_version else ", no npm")
        checks.append(Check(name="node", ok=None, detail=detail + " — for the npm-installed ACP adapters"))
    else:
        checks.append(
            Check(
                name="node",
                ok=None,
                detail="node was not found — only needed for the npm-installed adapters (claude, codex, gemini)",
            )
        )
    sandbox = sandbox_check()
    if sandbox is not None:
        checks.append(sandbox)
    return checks


def sandbox_check() -> Check | None:
    """HOOK for the OS sandbox (core/sandbox, DESIGN §5): return the sandbox level line — e.g.
    `Check(name="sandbox", ok=True, detail="bubblewrap 0.8 (self-test passed)")`, or ok=False with the next
    step when `sandbox = "required"` cannot be met. None (no line) until the sandbox integration wires it."""
    return None


# --- agents -------------------------------------------------------------------------------------------------


def _source(name: str, config: Config) -> str:
    return "configured" if name in config.agents else "builtin" if name in BUILTIN else "preset"


async def _handshake(spec: AgentSpec, timeout: float) -> tuple[Any, float]:
    """Start the agent in an empty folder, `initialize`, stop it. Returns the response and the seconds it took."""
    from always_on.core.agents.gateway import AgentGateway

    with tempfile.TemporaryDirectory(prefix="always-on-doctor-") as folder:
        gateway = AgentGateway(spec, on_event=lambda _event: None, cwd=Path(folder), start_timeout=timeout)
        started = time.monotonic()
        try:
            await gateway.start()
            return gateway.initialized, time.monotonic() - started
        finally:
            await gateway.close()


def _login_found(spec: AgentSpec) -> str | None:
    preset = preset_for(spec.name, spec.command)
    for path in preset.login_files if preset else []:
        if Path(os.path.expanduser(path)).exists():  # existence only: never read
            return path
    return None


def credential_check(spec: AgentSpec, offered: list[Any]) -> Check:
    from always_on.core.agents.gateway.failures import auth_hint
    from always_on.core.agents.gateway.requests import pick_auth_method

    if not spec.credentials:
        return Check(name="credentials", ok=True, detail="none needed")
    present = spec.present_credentials()
    login = _login_found(spec)
    method = pick_auth_method(spec, offered) if offered else None
    if present:
        detail = f"{', '.join(present)} set (passed to the agent process only)"
        if method:
            detail += f"; would authenticate with {method}"
        return Check(name="credentials", ok=True, detail=detail)
    if login:
        return Check(name="credentials", ok=True, detail=f"logged in ({login} exists)")
    if spec.kind in ("builtin", "openai"):
        return Check(
            name="credentials",
            ok=None,
            detail=f"{spec.credentials[0]} is not set — fine for a local server that needs no key",
        )
    return Check(
        name="credentials",
        ok=False,
        detail=f"none of {', '.join(spec.credentials[:4])} is set, and no login was found",
        next=auth_hint(spec),
    )


async def agent_report(name: str, config: Config, timeout: float) -> AgentReport:
    spec = config.agent_spec(name)
    report = AgentReport(name=name, source=_source(name, config), command=spec.command)
    checks = report.checks
    if spec.kind == "builtin":
        checks.append(Check(name="installed", ok=True, detail="built in"))
    else:
        path = program_path(spec.command)
        if path is None:
            checks.append(
                Check(
                    name="installed",
                    ok=False,
                    detail=f"`{spec.command[0]}` was not found on PATH",
                    next=f"install it: {spec.install_hint}"
                    if spec.install_hint
                    else "install it, or fix `command`",
                )
            )
            return report
        checks.append(Check(name="installed", ok=True, detail=path))
    try:
        response, seconds = await _handshake(spec, timeout)
    except AlwaysOnError as exc:
        checks.append(Check(name="initialize", ok=False, detail=exc.message, next=exc.hint))
        return report
    report.initialize = response.model_dump(mode="json", by_alias=True, exclude_none=True)
    info = response.agent_info
    label = f"{info.name} {info.version}" if info is not None else "(no agentInfo)"
    methods = [m.id for m in response.auth_methods or []]
    checks.append(
        Check(
            name="initialize",
            ok=True,
            detail=f"{label}, ACP v{response.protocol_version} ({seconds:.1f} s); "
            f"auth methods: {', '.join(methods) or 'none'}",
        )
    )
    checks.append(credential_check(spec, list(response.auth_methods or [])))
    caps = response.agent_capabilities
    mcp = caps.mcp_capabilities if caps is not None else None
    transports = ["stdio"] + [t for t in ("http", "sse") if mcp is not None and getattr(mcp, t)]
    checks.append(Check(name="mcp", ok=True, detail=", ".join(transports)))
    return report


async def diagnose(config: Config, only: str | None = None, *, timeout: float | None = None) -> DoctorReport:
    """Every check, the agents' handshakes concurrently."""
    names = [only] if only else agent_names(config.agents)
    if only:
        config.agent_spec(only)  # an unknown name fails here, with the known ones listed
    bound = timeout or min(config.limits.start_timeout_seconds, 30.0)
    machine = asyncio.to_thread(machine_checks)
    *agents, checks = await asyncio.gather(*(agent_report(n, config, bound) for n in names), machine)
    return DoctorReport(checks=checks, agents=agents, default_agent=config.agent)


def render(report: DoctorReport) -> str:
    """The one screen: machine checks, then one block per agent; ✘ lines carry their next step."""
    lines = ["always-on doctor"]

    def add(check: Check) -> None:
        lines.append(f"  {check.mark} {check.name:<12} {check.detail}")
        if check.next:
            lines.append(f"  {'':<14} → {check.next}")

    for check in report.checks:
        add(check)
    for agent in report.agents:
        default = ", the default agent" if agent.name == report.default_agent else ""
        lines.append("")
        lines.append(f"{agent.name} ({agent.source}{default}) — {' '.join(agent.command)}")
        for check in agent.checks:
            add(check)
    return "\n".join(lines)

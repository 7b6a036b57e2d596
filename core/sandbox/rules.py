"""What a confined process may touch: one small model, built for a terminal command or for the agent process.

The same rules drive every level: bubblewrap turns them into mounts, Landlock into path rules (read everything
except the hidden paths; write only the writable ones), and the host-side git guard checks the read-only holes
Landlock cannot carve. Two rule sets, from DESIGN §5:

- **terminal** (every command the agent asks for): write the workspace, the git paths a commit on the workspace
  branch needs and a private temp folder; read everything but secrets; no network.
- **agent** (the agent process itself): the same, plus the agent's own config/cache folders (and, for the
  integration, the MCP outbox); keeps its network (it must reach its model API). Its own credentials are not
  hidden from it when they live in its own folders.

Secrets hidden from both (as far as each mechanism allows): credential folders and files in ``$HOME``, agent and
container sockets, and secret-shaped files in the user's checkout (``.env``, keys...). bubblewrap hides them by
mounting an empty folder or ``/dev/null`` over them; Landlock by not granting them (a secret-shaped file inside a
*writable* folder cannot be hidden by Landlock).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from always_on.core.workspace.objects import WorkspaceGit, workspace_git
from always_on.core.workspace.providers import WorkspaceInfo

# In $HOME: folders and files that hold credentials.
HOME_SECRETS = (
    ".ssh",
    ".aws",
    ".gnupg",
    ".azure",
    ".kube",
    ".docker",
    ".password-store",
    ".terraform.d",
    ".config/gcloud",
    ".config/gh",
    ".config/hub",
    ".config/glab-cli",
    ".config/git/credentials",
    ".local/share/keyrings",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".vault-token",
    ".boto",
    ".s3cfg",
    ".dockercfg",
    ".claude/.credentials.json",
    ".codex/auth.json",
)
# Sockets that hand out root or credentials (a unix socket is reachable through any readable path).
SYSTEM_SECRETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd",
    "/run/podman",
    "/var/run/libvirt",
)
# Secret-shaped files in the user's checkout.
CHECKOUT_SECRET_GLOBS = (
    ".env",
    ".env.*",
    ".envrc",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
)
ENV_TEMPLATES = {".env.example", ".env.sample", ".env.template", ".env.dist"}
_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", ".ruff_cache"}
_SCAN_DEPTH = 6
_SCAN_ENTRIES = 50_000


class SandboxRules(BaseModel):
    """One rule set. Paths are absolute and resolved; hidden paths exist (nothing to hide otherwise)."""

    role: Literal["terminal", "agent"]
    workspace: Path | None = None
    writable: list[Path] = Field(default_factory=list)
    read_only: list[Path] = Field(default_factory=list)  # holes inside writable paths
    readable: list[Path] = Field(
        default_factory=list
    )  # must stay visible (bubblewrap re-binds them over /tmp)
    hidden: list[Path] = Field(default_factory=list)
    guarded: list[Path] = Field(default_factory=list)  # re-checked by the host after each command
    network: bool = False
    temp_dir: Path
    env: dict[str, str] = Field(default_factory=dict)


def home_secrets(home: Path) -> list[Path]:
    return [home / rel for rel in HOME_SECRETS]


def runtime_secrets(environ: dict[str, str] | None = None) -> list[Path]:
    """Sockets of agents and services the environment points at (ssh-agent, the user's runtime folder)."""
    env = os.environ if environ is None else environ
    found = [Path(p) for p in SYSTEM_SECRETS]
    for key in ("SSH_AUTH_SOCK", "XDG_RUNTIME_DIR", "GPG_AGENT_INFO", "DBUS_SESSION_BUS_ADDRESS"):
        value = env.get(key, "")
        if key == "DBUS_SESSION_BUS_ADDRESS":
            value = value.split("path=", 1)[1].split(",", 1)[0] if "path=" in value else ""
        elif key == "GPG_AGENT_INFO":
            value = value.split(":", 1)[0]
        if value.startswith("/"):
            found.append(Path(value))
    return found


def is_secret_name(name: str) -> bool:
    return name not in ENV_TEMPLATES and any(fnmatch.fnmatchcase(name, g) for g in CHECKOUT_SECRET_GLOBS)


def checkout_secrets(project: Path) -> list[Path]:
    """Secret-shaped files in the user's checkout (bounded walk; build outputs and dependencies skipped)."""
    found: list[Path] = []
    seen = 0
    stack = [(project, 0)]
    while stack and seen < _SCAN_ENTRIES:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if entry.name not in _SKIP_DIRS and depth < _SCAN_DEPTH:
                    stack.append((Path(entry.path), depth + 1))
            elif is_secret_name(entry.name):
                found.append(Path(entry.path))
    return found


def _existing(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if os.path.lexists(path):
            real = Path(os.path.realpath(path))
            if real not in out:
                out.append(real)
    return out


def _within(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def build_rules(
    role: Literal["terminal", "agent"],
    *,
    project: Path,
    workspace: WorkspaceInfo | None,
    temp_dir: Path,
    extra_writable: Sequence[Path] = (),
    extra_readable: Sequence[Path] = (),
    network: bool | None = None,
    home: Path | None = None,
    environ: dict[str, str] | None = None,
) -> SandboxRules:
    """The rule set of one role for one project and (when it exists yet) its workspace.

    ``workspace=None`` is for the discovery phase: nothing but the temp folder (and ``extra_writable``) is
    writable. ``network`` defaults to off for terminals and on for the agent.
    """
    project = Path(os.path.realpath(project))
    home = Path(os.path.realpath(home or Path.home()))
    git: WorkspaceGit | None = workspace_git(workspace, project) if workspace is not None else None
    temp_dir.mkdir(parents=True, exist_ok=True)
    temp = Path(os.path.realpath(temp_dir))
    extra_w = [Path(os.path.realpath(p)) for p in extra_writable]
    for path in extra_w:
        path.mkdir(parents=True, exist_ok=True)
    writable = [*(git.writable() if git else []), temp, *extra_w]
    secrets = _existing([*home_secrets(home), *runtime_secrets(environ), *checkout_secrets(project)])
    # The agent's own folders are its own (its login lives there); nothing writable can be hidden anyway.
    hidden = [s for s in secrets if not _within(s, writable)]
    readable = _existing([*(git.readable() if git else []), *extra_readable])
    env = {"TMPDIR": str(temp), **(git.env() if git else {})}
    return SandboxRules(
        role=role,
        workspace=git.workspace if git else None,
        writable=writable,
        read_only=git.read_only() if git else [],
        readable=readable,
        hidden=hidden,
        guarded=git.guarded() if git else [],
        network=(role == "agent") if network is None else network,
        temp_dir=temp,
        env=env,
    )


def terminal_rules(
    project: Path, workspace: WorkspaceInfo | None, *, temp_dir: Path, **kwargs: object
) -> SandboxRules:
    """Rules for the commands the agent asks for: workspace + git paths + temp writable, no network."""
    return build_rules("terminal", project=project, workspace=workspace, temp_dir=temp_dir, **kwargs)  # type: ignore[arg-type]


def agent_rules(
    project: Path,
    workspace: WorkspaceInfo | None,
    *,
    temp_dir: Path,
    extra_writable: Sequence[Path] = (),
    **kwargs: object,
) -> SandboxRules:
    """Rules for the agent process: as a terminal, plus its own folders, with network."""
    return build_rules(
        "agent",
        project=project,
        workspace=workspace,
        temp_dir=temp_dir,
        extra_writable=extra_writable,
        **kwargs,  # type: ignore[arg-type]
    )

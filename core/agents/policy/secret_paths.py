"""Secret-shaped paths (`.env`, `~/.ssh/...`, `*.pem`, a repository's config, the agents' own login folders):
never read through a file request or a terminal, whatever the phase."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

_SECRET_DIRS = {
    ".ssh": "SSH keys", ".aws": "AWS credentials", ".gnupg": "GPG keys", ".azure": "Azure credentials",
    ".kube": "Kubernetes credentials", ".docker": "Docker credentials", ".password-store": "passwords",
    ".terraform.d": "Terraform credentials",
}  # fmt: skip
_SECRET_DIR_PAIRS = {
    (".config", "gcloud"): "Google Cloud credentials", (".config", "gh"): "GitHub CLI tokens",
    (".config", "hub"): "GitHub tokens", (".config", "glab-cli"): "GitLab tokens",
}  # fmt: skip
_SECRET_NAMES = {
    ".netrc": "network credentials", "_netrc": "network credentials", ".git-credentials": "git credentials",
    ".npmrc": "registry tokens", ".pypirc": "registry tokens", ".pgpass": "database passwords",
    ".htpasswd": "passwords", ".envrc": "environment secrets", ".vault-token": "a Vault token",
    ".boto": "cloud credentials", ".s3cfg": "cloud credentials", ".dockercfg": "Docker credentials",
}  # fmt: skip
_SECRET_GLOBS = {
    ".env": "environment secrets", ".env.*": "environment secrets", "id_rsa*": "an SSH key",
    "id_dsa*": "an SSH key", "id_ecdsa*": "an SSH key", "id_ed25519*": "an SSH key", "*.pem": "a key or certificate",
    "*.key": "a private key", "*.p12": "a key store", "*.pfx": "a key store", "*.jks": "a key store",
    "*.keystore": "a key store",
}  # fmt: skip
# The coding agents' login and session folders in the home folder. The agent process reads its own directly (that
# is how a logged-in agent authenticates); its file requests and terminals may not (a session token is a key).
# Anchored at the home folder: a project's own `.claude/` (settings, commands) stays readable.
_AGENT_HOME_PATHS = {
    (".claude",): "Claude Code logins and sessions", (".claude.json",): "Claude Code's account and keys",
    (".codex",): "Codex logins and sessions", (".gemini",): "Gemini CLI logins",
    (".config", "goose"): "goose's provider keys", (".local", "share", "opencode"): "opencode's logins",
    (".config", "opencode"): "opencode's configuration and keys",
}  # fmt: skip
_ENV_TEMPLATES = {".env.example", ".env.sample", ".env.template", ".env.dist"}


def secret_reason(path: Path | str) -> str | None:
    """Why `path` looks like it holds secrets (`.env`, `~/.ssh/...`, `*.pem`...), or None."""
    home = Path(os.path.expanduser("~"))
    given = Path(path)
    if given.is_absolute() and home.is_absolute() and home != Path("/"):
        for names, what in _AGENT_HOME_PATHS.items():
            if given.is_relative_to(home.joinpath(*names)):
                return f"`~/{'/'.join(names)}` holds {what}"
    parts = [p.lower() for p in given.parts]
    for i, part in enumerate(parts):
        if part in _SECRET_DIRS:
            return f"`{part}` holds {_SECRET_DIRS[part]}"
        if i + 1 < len(parts) and (part, parts[i + 1]) in _SECRET_DIR_PAIRS:
            return f"`{part}/{parts[i + 1]}` holds {_SECRET_DIR_PAIRS[(part, parts[i + 1])]}"
    name = parts[-1] if parts else ""
    if name in _SECRET_NAMES:
        return f"`{name}` holds {_SECRET_NAMES[name]}"
    if name not in _ENV_TEMPLATES:
        for pattern, what in _SECRET_GLOBS.items():
            if fnmatch.fnmatchcase(name, pattern):
                return f"`{name}` looks like {what}"
    if ".git" in parts[:-1] and name in ("config", "config.worktree"):
        return "a repository config can embed remote credentials"
    return None

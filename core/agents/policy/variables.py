"""Variables inside commands: which a command may set inline or export, and which expansions are refused."""

from __future__ import annotations

import re

from always_on.core.agents.policy.decision import deny
from always_on.core.agents.policy.environment import SECRET_ENV_RE
from always_on.core.agents.shell_parse import Word

# Variables a command may be given inline (`LANG=C sort`, `env NO_COLOR=1 pytest`).
_SAFE_VARS = {
    "LANG", "LANGUAGE", "TZ", "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "TERM", "COLUMNS",
    "LINES", "CI", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONHASHSEED",
    "PYTHONWARNINGS", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONFAULTHANDLER", "PYTHONDEVMODE", "NODE_ENV",
    "DEBUG", "VERBOSE", "LOG_LEVEL", "RUFF_NO_CACHE", "GIT_TERMINAL_PROMPT", "GIT_OPTIONAL_LOCKS", "TMPDIR",
}  # fmt: skip
_PAGER_VARS = {"PAGER", "GIT_PAGER", "MANPAGER"}
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy"}
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _var_reason(name: str) -> str:
    if name.startswith("GIT_"):
        return f"`{name}` changes which repository, config or program git uses"
    if name.startswith(("LD_", "DYLD_")):
        return f"`{name}` injects code into every program"
    if name in ("PATH", "HOME") or name.startswith("XDG_"):
        return f"`{name}` changes which programs and config files are used"
    return (
        f"`{name}` is not on the list of variables a command may set ({', '.join(sorted(_SAFE_VARS)[:6])}...)"
    )


def check_env_var(name: str, value: Word) -> None:
    """An exported variable (`A=b cmd`, `env A=b`, `export A=b`): only harmless names."""
    if name in _PAGER_VARS:
        if value.static and value.value in ("cat", ""):
            return
        deny(f"`{name}` names a program to run; only `{name}=cat` is allowed")
    if name in _SAFE_VARS or name.startswith("LC_"):
        return
    deny(f"setting {_var_reason(name)}")


def check_secret_expansion(word: Word) -> None:
    """`$OPENAI_API_KEY` and friends: a configured agent key must not be echoed into the agent's context."""
    for part in word.parts:
        if part.dynamic and not part.scripts:
            m = re.match(r"\$\{?#?([A-Za-z_][A-Za-z0-9_]*)", part.text)
            if m and SECRET_ENV_RE.search(m.group(1)):
                deny(f"`{part.text}` expands a secret-shaped variable")


def check_shell_var(name: str) -> None:
    """A plain shell assignment (`g=git`): fine for shell variables, not for names programs read from the env."""
    if name in _SAFE_VARS or name.startswith("LC_") or name in _PAGER_VARS:
        return
    if any(c.islower() for c in name) and name not in _PROXY_VARS:
        return
    deny(f"assigning {_var_reason(name)} (it reaches the commands that follow)")

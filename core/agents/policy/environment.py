"""The environment an agent and its terminals get: an allow-list of the runtime's own, with no credentials;
the agent process alone also gets the credential and endpoint variables its preset or configuration names.

`SECRET_ENV_RE` names credential-shaped variables; the command checks use it too (`printenv TOKEN`,
`$OPENAI_API_KEY`), so that a key the user configured for the agent never reaches the model's context.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from always_on.core.errors import AlwaysOnError, ErrorCode

_ENV_ALLOW = {
    "PATH", "HOME", "LANG", "LANGUAGE", "TERM", "COLORTERM", "TMPDIR", "TMP", "TEMP", "USER", "LOGNAME",
    "USERNAME", "SHELL", "TZ", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONPATH",
    "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONWARNINGS", "PYTHONNOUSERSITE",
    "PYTHONSAFEPATH", "PYTHONFAULTHANDLER", "PYTHONDEVMODE", "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "COLUMNS",
    "LINES", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "SYSTEMROOT", "COMSPEC",
    "PATHEXT", "WINDIR", "USERPROFILE", "APPDATA", "LOCALAPPDATA", "PROGRAMDATA",
}  # fmt: skip
_ENV_ALLOW_PREFIXES = ("LC_", "ALWAYS_ON_")
SECRET_ENV_RE = re.compile(
    r"TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|CREDENTIAL|API_?KEY|_KEY$|^KEY$|PRIVATE|AUTH|SESSION|COOKIE"
    r"|^(AWS|AZURE|GCP|GOOGLE|GITHUB|GH|GITLAB|OPENAI|ANTHROPIC|NPM|DOCKER|SSH)_",
    re.IGNORECASE,
)
_ENV_DEFAULTS = {
    "RUFF_NO_CACHE": "true", "PYTHONDONTWRITEBYTECODE": "1", "GIT_OPTIONAL_LOCKS": "0", "GIT_PAGER": "cat",
    "PAGER": "cat", "GIT_EDITOR": "true",
}  # fmt: skip
_ENV_FORCED = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
# Variables that would point git or the loader at other code or repositories, bypassing the command policy.
_ENV_FORBIDDEN_RE = re.compile(
    r"^(GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|COMMON_DIR|NAMESPACE"
    r"|CONFIG.*|SSH.*|ASKPASS|EXEC_PATH|PROXY_COMMAND|EXTERNAL_DIFF)|SSH_ASKPASS|LD_.*|DYLD_.*|BASH_ENV|ENV"
    r"|PROMPT_COMMAND|SHELLOPTS|BASHOPTS|IFS|PS4)$"
)


def forbidden_variable(name: str) -> bool:
    """A variable no configuration may set or pass: it would redirect git or the dynamic loader."""
    return bool(_ENV_FORBIDDEN_RE.match(name))


def agent_environment(
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
    *,
    pass_env: Iterable[str] = (),
) -> dict[str, str]:
    """The agent's and its terminals' environment: an allow-list of `base` (default os.environ), no credentials.

    `extra` is the configured agent env and passes as is; `pass_env` names variables of `base` copied as they are
    (the agent's credentials and endpoints: only the agent process is started with them, never a terminal).
    Variables that would redirect git or the dynamic loader raise CONFIG_INVALID, in either.
    """
    source = os.environ if base is None else base
    env: dict[str, str] = {}
    for name, value in source.items():
        allowed = name in _ENV_ALLOW or name.startswith(_ENV_ALLOW_PREFIXES)
        if allowed and not SECRET_ENV_RE.search(name):
            env[name] = value
    entries = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and os.path.isabs(p)]
    env["PATH"] = os.pathsep.join(entries)  # no "" or "." entries: `git` must never resolve to ./git
    env.update(_ENV_DEFAULTS)
    passed = {name: source[name] for name in pass_env if name in source}
    for name, value in [*passed.items(), *(extra or {}).items()]:
        if forbidden_variable(name):
            raise AlwaysOnError(
                ErrorCode.CONFIG_INVALID,
                f"agent env may not set {name}: it would let commands bypass the permission policy",
            )
        env[name] = str(value)
    env.update(_ENV_FORCED)
    return env

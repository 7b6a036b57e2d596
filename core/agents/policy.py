"""The permission policy: what an agent may run, read and write in its workspace (DESIGN §5).

Every agent action routed through the ACP client (terminal commands, file reads and writes, permission requests)
gets a `Decision` that names the rule behind it, so the user can see why something was allowed or refused.

Shell commands are parsed (`shell_parse`), never glob-matched: wrappers (`sh -c`, `env`, `xargs`, `timeout`...)
are unwrapped, `$(...)` and backticks are checked as commands of their own, every path a command names is resolved
(`..`, symlinks, globs, `cd`) and confined to the workspace, and commands run only if they are on an allow-list.
Whatever cannot be understood with confidence is denied.

Decisions worth knowing:
- Read-only phases (discovery, report) allow reading commands only. pytest is allowed there when it cannot write
  its cache: with `--collect-only` or `-p no:cacheprovider` (tests still run project code, as the user's own
  test runs do); `python script.py`, `make`, `npm test` are writable-phase only.
- No network: curl/wget/ssh/scp/rsync (even local)/nc..., `git fetch/pull/clone/push/ls-remote`, every
  `pip install` (from an index or a URL), npx/uv/poetry... `pip list/show/freeze` are fine.
- git: reads, `add/commit/restore/rm/mv/checkout -- <path>/reset [HEAD]/clean/apply/revert` are allowed; anything
  that changes what the user's checkout shares (config, remotes, branches, tags, stash, notes, refs, worktrees,
  gc) is denied, as are `git -c`, `--git-dir`, `--work-tree`, `-C` outside the workspace, `commit --amend` and
  unknown subcommands (they may be aliases). `git remote -v`, `git config --list/--get-regexp` and credential-ish
  keys are denied too: remote URLs and http headers can embed tokens.
- Variables: `$X` is fine where its value cannot change the meaning (echo, a quoted `-m "$msg"`); it is denied as
  a command name, a git subcommand, a path, or unquoted (it may split into several arguments). `$SECRET_KEY`-
  shaped names, `env`/`printenv`/`set` listings are denied: a configured API key must not reach the model.
- Shell strings run under /bin/sh (dash) or bash: syntax the two read differently (`&>`, `|&`) is denied.

Limits, by design: a command that runs code the agent wrote (`pytest`, `python script.py`, `make test`,
`npm test`) can do anything that code does; the policy allows those only in a writable phase, gives them an
environment without credentials (`agent_environment`), and relies on the OS sandbox (second layer) for the rest.
Paths are checked when the command is checked; a symlink created later by such code is not seen. Recursive
searches (`grep -r`, `rg`) can read secret-shaped files inside the folder they search.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from pydantic import BaseModel

from always_on.core.agents.shell_parse import (
    AndOr,
    Group,
    Part,
    Pipeline,
    Redirect,
    Script,
    ShellParseError,
    Simple,
    Word,
    expand_braces,
    parse,
    split_assignment,
)
from always_on.core.errors import AlwaysOnError, ErrorCode

MAX_COMMAND_CHARS = 20_000
MAX_GLOB_MATCHES = 2_000
MAX_NESTING = 6

Cwds = frozenset[Path]
Outcome = tuple[Cwds, Cwds]  # where the shell may stand after the command succeeded / failed


class Decision(BaseModel):
    """The answer to one agent action; `reason` names the rule, e.g. "denied: `git push` sends commits..."."""

    allowed: bool
    reason: str

    @classmethod
    def allow(cls, reason: str) -> Decision:
        return cls(allowed=True, reason=f"allowed: {reason}")

    @classmethod
    def deny(cls, reason: str) -> Decision:
        return cls(allowed=False, reason=f"denied: {reason}")


class _Denied(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _deny(reason: str) -> NoReturn:
    raise _Denied(reason)


# ---- secret-shaped paths ---------------------------------------------------------------------------------

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
_ENV_TEMPLATES = {".env.example", ".env.sample", ".env.template", ".env.dist"}


def secret_reason(path: Path | str) -> str | None:
    """Why `path` looks like it holds secrets (`.env`, `~/.ssh/...`, `*.pem`...), or None."""
    parts = [p.lower() for p in Path(path).parts]
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


# ---- environment -----------------------------------------------------------------------------------------

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
_SECRET_ENV_RE = re.compile(
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


def agent_environment(
    base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The agent's and its terminals' environment: an allow-list of `base` (default os.environ), no credentials.

    `extra` is the configured agent env and passes as is (that is how a user hands an API key to an agent),
    except variables that would redirect git or the dynamic loader, which raise CONFIG_INVALID.
    """
    source = os.environ if base is None else base
    env: dict[str, str] = {}
    for name, value in source.items():
        allowed = name in _ENV_ALLOW or name.startswith(_ENV_ALLOW_PREFIXES)
        if allowed and not _SECRET_ENV_RE.search(name):
            env[name] = value
    entries = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and os.path.isabs(p)]
    env["PATH"] = os.pathsep.join(entries)  # no "" or "." entries: `git` must never resolve to ./git
    env.update(_ENV_DEFAULTS)
    for name, value in (extra or {}).items():
        if _ENV_FORBIDDEN_RE.match(name):
            raise AlwaysOnError(
                ErrorCode.CONFIG_INVALID,
                f"agent env may not set {name}: it would let commands bypass the permission policy",
            )
        env[name] = str(value)
    env.update(_ENV_FORCED)
    return env


# Variables a command may be given inline (`LANG=C sort`, `env NO_COLOR=1 pytest`).
_SAFE_VARS = {
    "LANG", "LANGUAGE", "TZ", "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "TERM", "COLUMNS",
    "LINES", "CI", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONHASHSEED",
    "PYTHONWARNINGS", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONFAULTHANDLER", "PYTHONDEVMODE", "NODE_ENV",
    "DEBUG", "VERBOSE", "LOG_LEVEL", "RUFF_NO_CACHE", "GIT_TERMINAL_PROMPT", "GIT_OPTIONAL_LOCKS", "TMPDIR",
}  # fmt: skip
_PAGER_VARS = {"PAGER", "GIT_PAGER", "MANPAGER"}
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy"}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


def _check_env_var(name: str, value: Word) -> None:
    """An exported variable (`A=b cmd`, `env A=b`, `export A=b`): only harmless names."""
    if name in _PAGER_VARS:
        if value.static and value.value in ("cat", ""):
            return
        _deny(f"`{name}` names a program to run; only `{name}=cat` is allowed")
    if name in _SAFE_VARS or name.startswith("LC_"):
        return
    _deny(f"setting {_var_reason(name)}")


def _check_secret_expansion(word: Word) -> None:
    """`$OPENAI_API_KEY` and friends: a configured agent key must not be echoed into the agent's context."""
    for part in word.parts:
        if part.dynamic and not part.scripts:
            m = re.match(r"\$\{?#?([A-Za-z_][A-Za-z0-9_]*)", part.text)
            if m and _SECRET_ENV_RE.search(m.group(1)):
                _deny(f"`{part.text}` expands a secret-shaped variable")


def _check_shell_var(name: str) -> None:
    """A plain shell assignment (`g=git`): fine for shell variables, not for names programs read from the env."""
    if name in _SAFE_VARS or name.startswith("LC_") or name in _PAGER_VARS:
        return
    if any(c.islower() for c in name) and name not in _PROXY_VARS:
        return
    _deny(f"assigning {_var_reason(name)} (it reaches the commands that follow)")


# ---- words and options -----------------------------------------------------------------------------------


def _slice(word: Word, start: int) -> Word:
    """The word without its first `start` characters (the value of `--opt=value`, of `-n5`)."""
    parts: list[Part] = []
    skip = start
    for p in word.parts:
        if skip >= len(p.text) and not (p.dynamic and skip == 0):
            skip -= len(p.text)
            continue
        if skip and not p.dynamic:
            p = Part(p.text[skip:], p.quoted, p.dynamic, p.scripts)
        skip = 0
        parts.append(p)
    return Word(tuple(parts) or (Part("", quoted=True),))


def _static_prefix(word: Word) -> str:
    """The word's text up to its first unquoted glob character."""
    out = []
    for p in word.parts:
        if not p.quoted and not p.dynamic:
            cut = min((p.text.index(c) for c in "*?[" if c in p.text), default=None)
            if cut is not None:
                out.append(p.text[:cut])
                break
        out.append(p.text)
    return "".join(out)


def _lead(word: Word) -> str:
    """The static text the word starts with (up to its first expansion)."""
    out = []
    for p in word.parts:
        if p.dynamic:
            break
        out.append(p.text)
    return "".join(out)


_DYNAMIC = Word(
    (Part("{}", quoted=True, dynamic=True),)
)  # an argument only known at run time (xargs input, find's {})


@dataclass
class _Opt:
    name: str  # "-n" or "--lines"
    value: Word | None
    word: Word


def _is_option(word: Word) -> bool:
    lead = _lead(word)
    return lead.startswith("-") and lead != "-" and word.value != "-"


def _options(
    args: Sequence[Word],
    short_values: str = "",
    long_values: Iterable[str] = (),
    *,
    stop_at_positional: bool = False,
) -> tuple[list[_Opt], list[Word]]:
    """GNU-style option parsing: `-abc`, `-n5`, `-n 5`, `--name=value`, `--name value`, `--`."""
    long_values = set(long_values)
    opts: list[_Opt] = []
    positionals: list[Word] = []
    i = 0
    while i < len(args):
        w = args[i]
        if not _is_option(w):
            if stop_at_positional:
                positionals.extend(args[i:])
                break
            positionals.append(w)
            i += 1
            continue
        if w.static and w.value == "--":
            positionals.extend(args[i + 1 :])
            break
        lead = _lead(w)
        if lead.startswith("--"):
            text = w.value if w.static else lead
            name, eq, _ = text.partition("=")
            if not eq and not w.static:
                _deny(f"option `{w.value}` is only known at run time")
            if _prefix_has_glob(w, len(name)):
                _deny(f"option `{w.value}` contains a glob: its meaning depends on file names")
            value: Word | None = _slice(w, len(name) + 1) if eq else None
            if value is None and name in long_values and i + 1 < len(args):
                value = args[i + 1]
                i += 1
            opts.append(_Opt(name, value, w))
        else:
            j = 1
            while j < len(lead):
                c = lead[j]
                if c in short_values:
                    if j + 1 < len(w.value if w.static else lead) or not w.static:
                        value = _slice(w, j + 1)
                    elif i + 1 < len(args):
                        value = args[i + 1]
                        i += 1
                    else:
                        value = None
                    opts.append(_Opt("-" + c, value, w))
                    break
                if _prefix_has_glob(w, j + 1):
                    _deny(f"option `{w.value}` contains a glob: its meaning depends on file names")
                opts.append(_Opt("-" + c, None, w))
                j += 1
            else:
                if not w.static:
                    _deny(f"option `{w.value}` is only known at run time")
        i += 1
    return opts, positionals


def _prefix_has_glob(word: Word, length: int) -> bool:
    """Whether the first `length` characters hold an unquoted glob character."""
    seen = 0
    for p in word.parts:
        if seen >= length:
            break
        chunk = p.text[: length - seen]
        if not p.quoted and not p.dynamic and any(c in chunk for c in "*?["):
            return True
        seen += len(p.text)
    return False


def _has(opts: Sequence[_Opt], *names: str) -> bool:
    return any(o.name in names for o in opts)


def _values(opts: Sequence[_Opt], *names: str) -> list[Word]:
    return [o.value for o in opts if o.name in names and o.value is not None]


def _show(words: Sequence[Word], limit: int = 6) -> str:
    text = " ".join(w.value for w in words[:limit])
    return text + (" ..." if len(words) > limit else "")


# ---- command names ---------------------------------------------------------------------------------------

_ALIASES = {
    "py.test": "pytest", "egrep": "grep", "fgrep": "grep", "gawk": "awk", "mawk": "awk", "nawk": "awk",
    "gmake": "make", "gsed": "sed", "[": "test", "bash": "sh", "dash": "sh", "zsh": "sh", "ksh": "sh",
    "mksh": "sh", "ash": "sh", "yarn": "npm", "pnpm": "npm", "sha1sum": "md5sum", "sha224sum": "md5sum",
    "sha256sum": "md5sum", "sha384sum": "md5sum", "sha512sum": "md5sum", "b2sum": "md5sum", "cksum": "md5sum",
    "nodejs": "node",
}  # fmt: skip
_PYTHON_TOOLS = {"python", "pytest", "ruff", "mypy", "black", "isort", "flake8", "pylint", "coverage", "pip"}

_NETWORK = {
    "curl", "wget", "ssh", "scp", "sftp", "rsync", "nc", "ncat", "netcat", "socat", "telnet", "ftp", "http",
    "https", "xh", "aria2c", "ping", "dig", "nslookup", "host", "gh", "hub", "glab", "aws", "gcloud", "gsutil",
    "az", "kubectl", "docker", "podman", "heroku", "vercel", "netlify", "fly", "flyctl", "openssl", "mail",
    "sendmail", "mutt", "lynx", "w3m", "links", "ssh-add", "ssh-keygen", "ssh-agent", "git-lfs",
}  # fmt: skip
_INSTALLERS = {
    "npx", "pipx", "uv", "uvx", "poetry", "pdm", "hatch", "conda", "mamba", "brew", "apt", "apt-get", "yum",
    "dnf", "pacman", "apk", "snap", "cargo", "go", "gem", "bundle", "composer", "twine", "pre-commit", "tox",
    "nox", "easy_install", "bun", "deno",
}  # fmt: skip
_PRIVILEGE = {"sudo", "doas", "su", "pkexec", "runuser", "chroot", "unshare", "nsenter", "setpriv"}
_SYSTEM = {
    "kill", "pkill", "killall", "shutdown", "reboot", "halt", "poweroff", "systemctl", "service", "mount",
    "umount", "chown", "chgrp", "dd", "mkfs", "fdisk", "crontab", "at", "launchctl", "osascript", "open",
    "xdg-open", "install", "chattr", "setfacl", "sysctl", "iptables", "useradd", "usermod", "passwd", "gpg",
}  # fmt: skip
_OPAQUE = {
    "eval": "`eval` runs a string built at run time",
    "source": "`source` runs a script file whose content cannot be checked",
    ".": "`.` runs a script file whose content cannot be checked",
    "alias": "aliases change what later commands mean",
    "unalias": "aliases change what later commands mean",
    "trap": "`trap` runs a command string later",
    "shopt": "`shopt` changes how the shell parses commands",
    "enable": "`enable` loads builtins",
    "hash": "`hash` can remap command names to other programs",
    "read": "`read` fills variables from input that cannot be checked",
    "mapfile": "`mapfile` fills variables from input that cannot be checked",
    "readarray": "`readarray` fills variables from input that cannot be checked",
    "let": "`let` evaluates arithmetic, which can expand commands",
    "getopts": "`getopts` is not supported",
    "pushd": "`pushd` is not supported; use `cd` inside the workspace",
    "popd": "`popd` is not supported; use `cd` inside the workspace",
    "fc": "`fc` re-runs history", "history": "`history` is not supported", "bind": "`bind` is not supported",
    "complete": "`complete` is not supported", "compgen": "`compgen` is not supported",
    "fish": "fish scripts are not understood", "busybox": "`busybox` applets are not checked one by one",
    "watch": "`watch` runs a command string repeatedly", "flock": "`flock` runs a command string",
    "setsid": "`setsid` is not supported", "script": "`script` runs a shell",
    "less": "pagers are interactive; use `cat`, `head` or `sed -n`", "more": "pagers are interactive",
    "vi": "editors are interactive", "vim": "editors are interactive", "nano": "editors are interactive",
    "emacs": "editors are interactive", "perl": "`perl` scripts are not checked; use Python",
    "ruby": "`ruby` scripts are not checked; use Python", "php": "`php` scripts are not checked",
    "lua": "`lua` scripts are not checked", "osqueryi": "not supported",
}  # fmt: skip

_DENIED_MODULES = {
    "http.server": "serves files over the network", "smtpd": "opens a network server",
    "xmlrpc.server": "opens a network server", "webbrowser": "opens a browser",
    "ensurepip": "installs packages", "venv": "creates a virtual environment (not part of a plan)",
    "virtualenv": "creates a virtual environment (not part of a plan)", "twine": "uploads packages",
    "build": "downloads build dependencies", "pipx": "installs packages", "uv": "installs packages",
    "poetry": "installs packages", "pdm": "installs packages", "hatch": "installs packages",
    "tox": "creates environments and installs packages", "nox": "creates environments and installs packages",
    "pre_commit": "installs hooks from the network", "pydoc": "can serve documentation over the network",
    "timeit": "runs code given on the command line", "code": "reads a program from stdin",
    "asyncio": "reads a program from stdin", "pdb": "is interactive", "ftplib": "reaches the network",
    "telnetlib": "reaches the network", "smtplib": "reaches the network", "urllib.request": "reaches the network",
    "http.client": "reaches the network", "idlelib": "is interactive",
}  # fmt: skip
_PUBLISH_RE = re.compile(r"push|deploy|publish|release|upload|install", re.IGNORECASE)


def _canonical(name: str) -> str:
    low = name.lower()
    if re.fullmatch(r"python(\d+(\.\d+)?)?", low):
        return "python"
    if re.fullmatch(r"pip(\d+(\.\d+)?)?", low):
        return "pip"
    return _ALIASES.get(low, low)


def _trusted_program_dirs() -> set[Path]:
    dirs = {
        Path(p) for p in ("/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin", "/opt/homebrew/bin")
    }
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and os.path.isabs(entry):
            dirs.add(Path(os.path.normpath(entry)))
    dirs.add(Path(sys.executable).parent)
    dirs.add(Path(sys.prefix) / "bin")
    return dirs


# ---- per-call context ------------------------------------------------------------------------------------


@dataclass
class _Call:
    """One command being checked: its canonical name, arguments and the directories it may run in."""

    policy: Policy
    name: str
    words: list[Word]  # argv, name included
    cwds: Cwds
    depth: int
    notes: list[str]
    label: str | None = None  # what the allowed-decision names, e.g. "git status"

    @property
    def args(self) -> list[Word]:
        return self.words[1:]

    @property
    def shown(self) -> str:
        return _show(self.words)

    def deny(self, reason: str) -> NoReturn:
        _deny(reason)

    def text(self, word: Word, what: str = "argument") -> str:
        """A word whose exact text matters (a subcommand, a pattern...): must be static and glob-free."""
        if not word.static:
            _deny(f"`{self.name}` {what} `{word.value}` is only known at run time")
        if word.has_glob:
            _deny(
                f"`{self.name}` {what} `{word.value}` is an unquoted glob (it expands to file names); quote it"
            )
        return word.value

    def need_writable(self, why: str) -> None:
        if not self.policy.writable:
            _deny(f"this phase is read-only: `{self.shown}` {why}")

    def read(self, word: Word, cwds: Cwds | None = None) -> None:
        if _plain(word) == "-":
            return
        for cwd in cwds or self.cwds:
            for shown, path in self.policy._word_paths(word, cwd):
                problem = self.policy._read_problem(path, shown)
                if problem:
                    _deny(f"`{self.shown}`: {problem}")

    def write(self, word: Word, *, delete: bool = False, cwds: Cwds | None = None) -> None:
        if _plain(word) == "-":
            return
        for cwd in cwds or self.cwds:
            for index, (shown, path) in enumerate(self.policy._word_paths(word, cwd)):
                is_glob_base = word.has_glob and index == 0
                problem = self.policy._write_problem(path, shown, delete=delete and not is_glob_base)
                if problem:
                    _deny(f"`{self.shown}`: {problem}")

    def dirs(self, word: Word) -> Cwds:
        """Where `cd DIR` / `git -C DIR` / `make -C DIR` lands; it must be a folder commands may run in."""
        if word.has_glob:
            _deny(f"`{self.shown}`: directory `{word.value}` is an unquoted glob")
        out = set()
        for cwd in self.cwds:
            for shown, path in self.policy._word_paths(word, cwd):
                problem = self.policy._cwd_problem(path, shown)
                if problem:
                    _deny(f"`{self.shown}`: {problem}")
                # bash's `cd` is logical (`cd link; cd ..` returns here) while files resolve physically: keep both
                out.add(Path(os.path.normpath(path)))
                out.add(_resolve(path))
        return frozenset(out)

    def read_values(self, opts: Sequence[_Opt], names: Iterable[str] = ()) -> None:
        """Option values that are paths (named ones always; others when they look like paths) must be readable."""
        names = set(names)
        for opt in opts:
            if opt.value is None:
                continue
            if opt.name in names:
                self.read(opt.value)
            elif not opt.value.static:
                _deny(f"`{self.shown}`: option value `{opt.word.value}` is only known at run time")
            elif _looks_like_path(opt.value.value):
                self.read(opt.value)

    def run(self, words: Sequence[Word], cwds: Cwds | None = None) -> Outcome:
        """Check a wrapped command (`env X cmd`, `timeout 5 cmd`, `xargs cmd`)."""
        return self.policy._argv(list(words), cwds or self.cwds, self.depth + 1, self.notes)

    def shell(self, word: Word) -> None:
        """Check a script given as a string (`sh -c '...'`)."""
        if not word.static:
            _deny(f"`{self.shown}`: the script is only known at run time")
        try:
            script = parse(word.value, depth=self.depth + 1)
        except ShellParseError as exc:
            _deny(f"cannot be understood with confidence ({exc}) in `{self.shown}`")
        self.policy._script(script, self.cwds, self.depth + 1, self.notes)


_UNRESOLVABLE = Path("/nonexistent/always-on/unresolvable")


def _resolve(path: Path) -> Path:
    """Follow `..` and symlinks; a symlink loop resolves to a path outside every root, so it is refused."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return _UNRESOLVABLE


def _plain(word: Word) -> str | None:
    return word.value if word.static else None


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", "./", "../")) or text in (".", "..") or "/" in text


Handler = Callable[[_Call], "Outcome | None"]


# ---- the policy ------------------------------------------------------------------------------------------


class Policy:
    """Decides every agent action against one workspace (DESIGN §5); see the module docstring."""

    def __init__(
        self, workspace: Path, *, writable: bool = True, extra_read_roots: Sequence[Path] = ()
    ) -> None:
        self.workspace = Path(workspace).expanduser().resolve()
        self.writable = writable
        self.extra_read_roots = tuple(Path(r).expanduser().resolve() for r in extra_read_roots)
        self.read_roots = (self.workspace, *self.extra_read_roots)
        self.cwd_roots = self.read_roots if not writable else (self.workspace,)
        self._program_dirs = _trusted_program_dirs()
        self._handlers = _handlers()

    # ---- public API --------------------------------------------------------------------------------------

    def check_read(self, path: str | Path) -> Decision:
        """May the agent read `path` (relative paths are relative to the workspace)?"""
        if str(path) == "":
            return Decision.deny("empty path")
        problem = self._read_problem(self._absolute(path, self.workspace), str(path))
        return (
            Decision.deny(problem)
            if problem
            else Decision.allow(f"reading `{path}` inside the allowed folders")
        )

    def check_write(self, path: str | Path) -> Decision:
        """May the agent write `path`? Only inside the workspace, never inside `.git`, never in a read-only phase."""
        if str(path) == "":
            return Decision.deny("empty path")
        problem = self._write_problem(self._absolute(path, self.workspace), str(path))
        return Decision.deny(problem) if problem else Decision.allow(f"writing `{path}` inside the workspace")

    def check_command(
        self, command: str, args: Sequence[str] | None = None, cwd: Path | None = None
    ) -> Decision:
        """May the agent run this command? With `args` it is an argv; without, a shell command line to parse."""
        start = self._absolute(cwd, self.workspace) if cwd is not None else self.workspace
        problem = self._cwd_problem(start, str(cwd) if cwd is not None else ".")
        if problem:
            return Decision.deny(f"working directory: {problem}")
        cwds = frozenset({_resolve(start)})
        notes: list[str] = []
        try:
            if args:
                if not command or re.search(r"[\s;&|<>()$`'\"\\*?]", command):
                    _deny(f"program name `{command}` given with separate arguments looks like shell syntax")
                self._argv([Word.literal(command), *(Word.literal(str(a)) for a in args)], cwds, 0, notes)
            else:
                if not command.strip():
                    _deny("empty command")
                if len(command) > MAX_COMMAND_CHARS:
                    _deny("command is too long to check")
                try:
                    script = parse(command)
                except ShellParseError as exc:
                    _deny(f"cannot be understood with confidence: {exc}")
                self._script(script, cwds, 0, notes)
        except _Denied as denied:
            return Decision.deny(denied.reason)
        except RecursionError:
            return Decision.deny("the command is nested too deeply to check")
        if not notes:
            return Decision.allow("nothing to run")
        return Decision.allow(f"{'; '.join(dict.fromkeys(notes))} (allow-listed, paths inside the workspace)")

    def check_permission_request(self, tool_kind: str | None, title: str | None, raw_input: Any) -> Decision:
        """Answer ACP `session/request_permission` by the same rules as the direct methods."""
        kind = (tool_kind or "other").lower()
        raw = raw_input if isinstance(raw_input, Mapping) else {}
        own_tool = _is_always_on_tool(title) or _is_always_on_tool(raw.get("tool") or raw.get("name"))
        if kind == "other" and own_tool and "command" not in raw:
            return Decision.allow(f"always-on's own tool `{title}`")
        if kind == "execute" or (kind == "other" and "command" in raw):
            return self._permission_command(raw)
        if kind == "think":
            return Decision.allow("thinking has no side effects")
        if kind == "fetch":
            return Decision.deny(f"`{title or 'fetch'}` reaches the network, which agents may not use")
        if kind == "switch_mode":
            return Decision.deny("agents may not switch their own permission mode")
        paths = _find_paths(raw)
        if kind in ("edit", "delete", "move"):
            if not paths:
                return Decision.deny(f"`{title or kind}` names no path that could be checked")
            return self._all(paths, self.check_write)
        if kind == "read":
            if not paths:
                return Decision.deny(f"`{title or kind}` names no path that could be checked")
            return self._all(paths, self.check_read)
        if kind == "search":
            return self._all(paths, self.check_read) if paths else Decision.allow("searching the workspace")
        return Decision.deny(f"unknown tool `{title or kind}` (kind `{kind}`) cannot be checked")

    # ---- permission-request helpers ----------------------------------------------------------------------

    def _permission_command(self, raw: Mapping[str, Any]) -> Decision:
        command = raw.get("command") or raw.get("cmd")
        cwd = raw.get("cwd") or raw.get("workdir")
        cwd_path = Path(cwd) if isinstance(cwd, str) and cwd else None
        args = raw.get("args")
        if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
            if len(command) == 1:
                return self.check_command(command[0], None, cwd_path)
            return self.check_command(command[0], command[1:], cwd_path)
        if isinstance(command, str) and command:
            if isinstance(args, list) and args:
                return self.check_command(command, [str(a) for a in args], cwd_path)
            return self.check_command(command, None, cwd_path)
        return Decision.deny("the request names no command that could be checked")

    @staticmethod
    def _all(paths: Sequence[str], check: Callable[[str], Decision]) -> Decision:
        decisions = [check(p) for p in paths]
        for decision in decisions:
            if not decision.allowed:
                return decision
        return decisions[-1]

    # ---- paths -------------------------------------------------------------------------------------------

    @staticmethod
    def _absolute(path: str | Path, cwd: Path) -> Path:
        return Path(os.path.join(cwd, os.path.expanduser(str(path))))

    def _where(self, roots: Sequence[Path]) -> str:
        return "the workspace" if len(roots) == 1 else "the workspace and the folders it may read"

    def _read_problem(self, path: Path, shown: str) -> str | None:
        if os.path.normpath(path) in ("/dev/null", "/dev/stdin", "/dev/zero", "/dev/urandom", "/dev/random"):
            return None
        resolved = _resolve(path)
        secret = secret_reason(path) or secret_reason(resolved)
        if secret:
            return f"`{shown}` looks like a secret ({secret})"
        if not any(resolved.is_relative_to(root) for root in self.read_roots):
            via = f" (it resolves to `{resolved}`)" if resolved != Path(os.path.normpath(path)) else ""
            return f"`{shown}` is outside {self._where(self.read_roots)}{via}"
        return None

    def _write_problem(self, path: Path, shown: str, *, delete: bool = False) -> str | None:
        if os.path.normpath(path) in ("/dev/null", "/dev/stdout", "/dev/stderr"):
            return None
        if not self.writable:
            return f"this phase is read-only: writing `{shown}` is not allowed"
        resolved = _resolve(path)
        if delete and not shown.endswith("/") and path.name not in ("", ".", ".."):
            resolved = _resolve(path.parent) / path.name  # `rm link` removes the link, not what it points at
        if not resolved.is_relative_to(self.workspace):
            via = f" (it resolves to `{resolved}`)" if resolved != Path(os.path.normpath(path)) else ""
            return f"`{shown}` is outside the workspace{via}"
        rel = resolved.relative_to(self.workspace)
        if ".git" in rel.parts:
            return f"`{shown}` is inside `.git` (the repository's own data)"
        if delete and rel == Path("."):
            return f"`{shown}` is the workspace itself"
        return None

    def _cwd_problem(self, path: Path, shown: str) -> str | None:
        resolved = _resolve(path)
        if not any(resolved.is_relative_to(root) for root in self.cwd_roots):
            return f"`{shown}` is outside {self._where(self.cwd_roots)}"
        if secret_reason(resolved):
            return f"`{shown}` looks like a secret folder"
        return None

    def _word_paths(self, word: Word, cwd: Path) -> list[tuple[str, Path]]:
        """The paths a shell word names when run in `cwd`: itself, or for a glob its base folder and matches."""
        if not word.static:
            _deny(f"`{word.value}` is only known at run time, so the path it names cannot be checked")
        text = word.value
        if word.has_tilde and not re.fullmatch(r"~([A-Za-z_][A-Za-z0-9_.-]*)?", text.partition("/")[0]):
            _deny(f"`{text}`: `~+`/`~-` name folders only known at run time")
        if not word.has_glob:
            if word.has_tilde:
                head, sep, tail = text.partition("/")
                return [(text, Path(os.path.join(cwd, os.path.expanduser(head) + sep + tail)))]
            return [(text, Path(os.path.join(cwd, text)))]
        pattern = word.glob_pattern
        static_prefix = _static_prefix(word)
        if word.has_tilde:
            head, sep, tail = pattern.partition("/")
            pattern = globmod.escape(os.path.expanduser(head)) + sep + tail
            head, sep, tail = static_prefix.partition("/")
            static_prefix = os.path.expanduser(head) + sep + tail
        for component in pattern.split("/"):
            # without dotglob a leading `.` must be matched literally, so only `.*`-like parts can match `..`
            if (
                component[:1] in ".["
                and globmod.has_magic(component)
                and fnmatch.fnmatchcase("..", component)
            ):
                _deny(f"the glob `{text}` can match `..` (the parent folder)")
        base = Path(
            os.path.join(cwd, static_prefix.rpartition("/")[0] or ("/" if text.startswith("/") else "."))
        )
        if os.path.isabs(pattern):
            matches = [Path(m) for m in globmod.glob(pattern)]
        else:
            matches = [cwd / m for m in globmod.glob(pattern, root_dir=cwd)]
        if len(matches) > MAX_GLOB_MATCHES:
            _deny(f"the glob `{text}` matches too many files to check")
        return [(text, base)] + [(str(m), m) for m in matches]

    def _program(self, name: str, call_cwds: Cwds) -> str:
        """The identity of a program given by path: `/usr/bin/git` is git; `./git` is a workspace file."""
        expanded = os.path.expanduser(name)
        python_tool = _canonical(Path(expanded).name) in _PYTHON_TOOLS
        venv_layout = Path(expanded).parent.name in ("bin", "Scripts")
        for cwd in call_cwds:
            path = Path(os.path.join(cwd, expanded))
            resolved_parent = _resolve(path.parent)
            inside = any(resolved_parent.is_relative_to(r) for r in self.read_roots)
            if inside:
                if not (python_tool and venv_layout):
                    _deny(f"`{name}` runs a file from the workspace, whose content cannot be checked")
            elif not os.path.isabs(expanded):
                _deny(f"`{name}` runs a program by relative path")
            elif Path(os.path.normpath(path.parent)) not in self._program_dirs:
                _deny(f"`{name}` is not in a system program folder")
        return Path(expanded).name

    # ---- the shell -------------------------------------------------------------------------------------

    def _script(self, script: Script, cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        if depth > MAX_NESTING:
            _deny("commands are nested too deeply to check")
        current = cwds
        outcome: Outcome = (cwds, cwds)
        for andor, background in script.items:
            outcome = self._andor(andor, current, depth, notes)
            if background:
                outcome = (current, current)
            current = outcome[0] | outcome[1]
        return outcome

    def _andor(self, andor: AndOr, cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        ok, failed = self._pipeline(andor.first, cwds, depth, notes)
        for op, pipeline in andor.rest:
            if op == "&&":
                ok2, failed2 = self._pipeline(pipeline, ok, depth, notes)
                ok, failed = ok2, failed | failed2
            else:
                ok2, failed2 = self._pipeline(pipeline, failed, depth, notes)
                ok, failed = ok | ok2, failed2
        return ok, failed

    def _pipeline(self, pipeline: Pipeline, cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        if len(pipeline.commands) == 1:
            ok, failed = self._command(pipeline.commands[0], cwds, depth, notes)
        else:
            for command in pipeline.commands:  # each side of a pipe runs in a subshell: no `cd` effect
                self._command(command, cwds, depth, notes)
            ok = failed = cwds
        return (failed, ok) if pipeline.negated else (ok, failed)

    def _command(self, command: Simple | Group, cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        for redirect in command.redirects:
            self._substitutions(redirect.target, cwds, depth, notes)
            self._redirect(redirect, cwds)
        if isinstance(command, Group):
            outcome = self._script(command.body, cwds, depth, notes)
            return (cwds, cwds) if command.subshell else outcome
        for _, value in command.assignments:
            self._substitutions(value, cwds, depth, notes)
        for word in command.words:
            self._substitutions(word, cwds, depth, notes)
        for word in [
            *command.words,
            *(v for _, v in command.assignments),
            *(r.target for r in command.redirects),
        ]:
            _check_secret_expansion(word)
        words = [expanded for word in command.words for expanded in expand_braces(word)]
        if not words:
            for name, _ in command.assignments:
                _check_shell_var(name)
            return cwds, cwds
        for name, value in command.assignments:
            _check_env_var(name, value)
        return self._argv(words, cwds, depth, notes)

    def _substitutions(self, word: Word, cwds: Cwds, depth: int, notes: list[str]) -> None:
        for script in word.scripts:  # `$(...)` and backticks run too, in the same folder
            self._script(script, cwds, depth + 1, notes)

    def _redirect(self, redirect: Redirect, cwds: Cwds) -> None:
        op, target = redirect.op, redirect.target
        targets = expand_braces(target)  # bash brace-expands redirection targets too
        if len(targets) != 1:
            _deny(f"redirection target `{target.value}` expands to several words")
        target = targets[0]
        call = _Call(self, "redirection", [Word.literal(op), target], cwds, 0, [])
        if op == "<<<":
            return
        if op in (">&", "<&") and target.static and re.fullmatch(r"\d+-?|-", target.value):
            return
        if op == "<&":
            _deny(f"redirection `<&{target.value}` is not understood")
        if op == "<":
            call.read(target)
        elif op == "<>":
            call.read(target)
            call.write(target)
        else:
            call.write(target)

    def _argv(self, words: list[Word], cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        if depth > MAX_NESTING:
            _deny("commands are nested too deeply to check")
        head = words[0]
        if not head.static:
            _deny(f"the command name `{head.value}` is only known at run time")
        if head.has_glob and head.value != "[":  # a lone `[` is not a glob: there is no closing `]`
            _deny(f"the command name `{head.value}` is a glob")
        name = head.value
        if not name:
            _deny("empty command name")
        if "/" in name or name.startswith("~"):
            name = self._program(name, cwds)
        canonical = _canonical(name)
        if canonical not in ("echo", "true", "false", ":"):
            for word in words[1:]:
                if any(p.dynamic and not p.quoted for p in word.parts):
                    _deny(f"unquoted `{word.value}` can split into several arguments at run time; quote it")
        call = _Call(self, canonical, words, cwds, depth, notes)
        handler = self._handlers.get(canonical)
        if handler is None:
            _deny(_unknown_reason(canonical, call.shown))
        outcome = handler(call)
        notes.append(_note(call))
        return outcome or (cwds, cwds)


def _note(call: _Call) -> str:
    if call.label:
        return f"`{call.label}`"
    words = [call.name]
    for w in call.args[:2]:
        if w.static and re.fullmatch(r"[A-Za-z][\w.-]*", w.value):
            words.append(w.value)
        else:
            break
    if call.name == "python" and len(call.args) >= 2 and call.args[0].value == "-m":
        return f"`python -m {call.args[1].value}`"
    if call.name in ("git", "python", "npm", "pip", "ruff"):
        return f"`{' '.join(words[:2])}`"
    return f"`{call.name}`"


def _unknown_reason(name: str, shown: str) -> str:
    if name in _NETWORK:
        return f"`{shown}`: `{name}` reaches the network, which agents may not use"
    if name in _INSTALLERS:
        return f"`{shown}`: `{name}` installs or downloads packages (network)"
    if name in _PRIVILEGE:
        return f"`{shown}`: `{name}` runs commands as another user or in another root"
    if name in _SYSTEM:
        return f"`{shown}`: `{name}` changes the system or other processes"
    if name in _OPAQUE:
        return f"`{shown}`: {_OPAQUE[name]}"
    return f"`{name}` is not on the allow-list of commands"


def _is_always_on_tool(name: object) -> bool:
    return isinstance(name, str) and bool(
        re.search(r"always_on_(discovery_plan|report|read_chat_history)\b", name)
    )


_PATH_KEYS = {
    "path", "filepath", "file", "notebookpath", "paths", "files", "oldpath", "newpath", "source", "destination",
    "target", "from", "to", "src", "dst", "dest", "abspath", "absolutepath", "dir", "directory", "filename",
}  # fmt: skip


def _find_paths(raw: Any, depth: int = 0) -> list[str]:
    """Every path-like value in a tool call's rawInput (`file_path`, `paths`, codex's `changes` keys...)."""
    found: list[str] = []
    if depth > 4:
        return found
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            norm = re.sub(r"[^a-z]", "", str(key).lower())
            if norm == "changes" and isinstance(value, Mapping):
                found.extend(str(k) for k in value)
            if norm in _PATH_KEYS:
                if isinstance(value, str) and value:
                    found.append(value)
                elif isinstance(value, list):
                    found.extend(v for v in value if isinstance(v, str) and v)
            if isinstance(value, Mapping | list):
                found.extend(_find_paths(value, depth + 1))
    elif isinstance(raw, list):
        for item in raw:
            found.extend(_find_paths(item, depth + 1))
    return list(dict.fromkeys(found))


# ---- command handlers ------------------------------------------------------------------------------------


_DYNAMIC_OK = {"echo", "exit", "sleep", "seq", "basename", "dirname", "true", "false", ":", "expr"}
_TEST_UNARY = {"-n", "-z", "-e", "-f", "-d", "-s", "-r", "-w", "-x", "-L", "-h", "-p", "-S", "-b", "-c", "!"}
_TEST_BINARY = {"=", "==", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef", "<", ">"}


def _no_paths(call: _Call) -> None:
    """Commands whose arguments are not files (echo, printf, true...)."""
    args = call.args
    if call.name == "printf":
        # the format (or `-v name`) must be fixed: `printf "$a" "$b"` could become `printf -v 'a[$(cmd)]'`
        if args and _plain(args[0]) == "-v":
            name = (
                call.text(args[1], "variable name")
                if len(args) > 1
                else call.deny("`printf -v` without a name")
            )
            if not _NAME_RE.fullmatch(name):
                call.deny(f"`printf -v {name}` assigns to something other than a plain variable")
            _check_shell_var(name)
            args = args[2:]
        elif args and _plain(args[0]) == "--":
            args = args[1:]
        if args:
            call.text(args[0], "format")
    elif call.name == "test":
        if args and _plain(args[-1]) == "]" and call.words[0].value == "[":
            args = args[:-1]
        for w in args:
            if w.value in ("-v", "-R"):
                call.deny("`test -v` evaluates array subscripts, which can run commands")
        for k, w in enumerate(args):
            if w.static or len(args) == 1:
                continue
            prev = _plain(args[k - 1]) if k else None
            nxt = _plain(args[k + 1]) if k + 1 < len(args) else None
            if len(args) > 3 or not (prev in _TEST_UNARY | _TEST_BINARY or nxt in _TEST_BINARY):
                call.deny(f"`{call.shown}`: `{w.value}` could become a test operator at run time")
    elif call.name not in _DYNAMIC_OK:
        for w in args:
            if not w.static:
                call.deny(f"`{call.shown}`: `{w.value}` is only known at run time")
    if call.name == "printenv":
        if not call.args:
            call.deny("`printenv` prints the whole environment, which can hold configured API keys")
        for w in call.args:
            if _SECRET_ENV_RE.search(w.value):
                call.deny(f"`printenv {w.value}` prints a secret-shaped variable")
    if call.name in ("hostname", "wait") and call.args:
        call.deny(f"`{call.shown}` with arguments is not supported")
    if call.name == "date" and any(w.value.startswith(("-s", "--set", "-f", "--file")) for w in call.args):
        call.deny("`date --set/--file` is not supported")


_NO_PATHS = [
    "echo", "printf", "true", "false", ":", "pwd", "sleep", "seq", "date", "uname", "whoami", "id",
    "hostname", "basename", "dirname", "expr", "test", "which", "type", "nproc", "printenv", "realpath",
    "readlink", "umask", "wait", "exit", "tty", "locale", "getconf", "yes", "arch", "logname", "groups",
]  # fmt: skip


# name: (short options taking a value, long options taking a separate value, options naming files read,
#        options naming files written, options denied)
class _Spec(NamedTuple):
    """A file-reading command's options, space-separated: which take a value, name files read or written."""

    short: str = ""  # short options taking a value, e.g. "nc" for `head -n 5`
    long: str = ""  # long options taking a separate value
    reads: str = ""
    writes: str = ""
    denied: str = ""


_READERS: dict[str, _Spec] = {
    "cat": _Spec(), "rev": _Spec(), "join": _Spec("12jteoav"), "nl": _Spec("bdfhilnsvw"),
    "head": _Spec("nc", "--lines --bytes"),
    "tail": _Spec("ncs", "--lines --bytes --sleep-interval --pid --max-unchanged-stats"),
    "wc": _Spec(reads="--files0-from"), "tac": _Spec("s", "--separator"), "od": _Spec("AjNSstw"),
    "hexdump": _Spec("efns", reads="-f"), "strings": _Spec("nte"),
    "file": _Spec("mFeP", reads="-m --magic-file", denied="-C --compile"),
    "stat": _Spec("c", "--format --printf"),
    "du": _Spec("dBtX", "--max-depth --block-size --threshold", reads="-X --exclude-from"),
    "ls": _Spec("ITw", "--ignore --hide --width --tabsize --sort --format --time-style --time --block-size "
                       "--color --indicator-style --quoting-style"),
    "tree": _Spec("LPIHo", "--filelimit --charset --sort", reads="--fromfile", writes="-o"),
    "md5sum": _Spec(denied="-c --check"), "shasum": _Spec("a", "--algorithm", denied="-c --check"),
    "base64": _Spec("w", "--wrap"),
    "cut": _Spec("bcdf", "--bytes --characters --delimiter --fields --output-delimiter"),
    "fold": _Spec("w", "--width"), "fmt": _Spec("wpg", "--width --prefix --goal"),
    "column": _Spec("cstoNRHlEdW", "--separator --output-separator --table-columns"),
    "paste": _Spec("d", "--delimiters"), "comm": _Spec(long="--output-delimiter"),
    "diff": _Spec("CUFIxXLS", "--label --ignore-matching-lines --show-function-line --exclude --starting-file "
                              "--horizon-lines --context --unified",
                  reads="-X --exclude-from --from-file --to-file"),
    "cmp": _Spec("in", "--ignore-initial --bytes"), "expand": _Spec("t", "--tabs"), "unexpand": _Spec("t", "--tabs"),
    "sort": _Spec("ktoSTy", "--key --field-separator --output --buffer-size --temporary-directory --parallel "
                            "--batch-size",
                  reads="--files0-from --random-source", writes="-o --output -T --temporary-directory",
                  denied="--compress-program"),
    "uniq": _Spec("fsw", "--skip-fields --skip-chars --check-chars"),
    "xxd": _Spec("cglsonC"),
}  # fmt: skip


def _reader(call: _Call) -> None:
    spec = _READERS[call.name]
    reads, writes, denied = spec.reads.split(), spec.writes.split(), spec.denied.split()
    opts, positionals = _options(call.args, spec.short, spec.long.split())
    for opt in opts:
        if opt.name in denied or any(opt.name.startswith(d + "=") for d in denied):
            call.deny(f"`{call.name} {opt.name}` is not allowed (it runs programs or reads unlisted files)")
        if opt.name in writes and opt.value is not None:
            call.write(opt.value)
    call.read_values([o for o in opts if o.name in reads], reads)  # other values are counts, fields, formats
    if call.name in ("uniq", "xxd") and len(positionals) >= 2:
        call.write(positionals[1])
        positionals = positionals[:1] + positionals[2:]
    for word in positionals:
        call.read(word)


def _tr(call: _Call) -> None:
    """`tr` reads stdin only; its arguments are character sets."""
    for word in call.args:
        if word.has_glob:
            call.text(word, "set")


_GREP_VALUES = ("--regexp", "--file", "--max-count", "--after-context", "--before-context", "--context",
                "--include", "--exclude", "--exclude-dir", "--exclude-from", "--label", "--binary-files",
                "--devices", "--directories", "--group-separator")  # fmt: skip
_RG_VALUES = ("--regexp", "--file", "--glob", "--iglob", "--type", "--type-not", "--type-add", "--type-clear",
              "--max-count", "--max-depth", "--max-filesize", "--replace", "--sort", "--sortr", "--colors",
              "--context-separator", "--field-match-separator", "--field-context-separator", "--path-separator",
              "--encoding", "--engine", "--threads", "--ignore-file", "--dfa-size-limit", "--regex-size-limit",
              "--max-columns", "--pre-glob", "--after-context", "--before-context", "--context",
              "--hyperlink-format", "--color")  # fmt: skip


def _grep(call: _Call) -> None:
    is_rg = call.name == "rg"
    if is_rg:
        opts, positionals = _options(call.args, "efgtTmABCjMrEd", _RG_VALUES)
    else:
        opts, positionals = _options(call.args, "efmABCdD", _GREP_VALUES)
    for opt in opts:
        if opt.name in ("--pre", "--hostname-bin", "--search-zip", "-z") and is_rg:
            call.deny(f"`rg {opt.name}` runs other programs on the files")
    call.read_values(
        [o for o in opts if o.name not in ("-e", "--regexp", "-g", "--glob", "--iglob", "--include", "--exclude",
                                           "--exclude-dir", "-r", "--replace", "--type-add")],
        ("-f", "--file", "--exclude-from", "--ignore-file"),
    )  # fmt: skip
    has_pattern = _has(opts, "-e", "--regexp", "-f", "--file") or (
        is_rg and _has(opts, "--files", "--type-list")
    )
    if not has_pattern and positionals:
        if not positionals[0].static:
            call.deny(f"`{call.shown}`: a pattern only known at run time must follow `-e`")
        if positionals[0].has_glob:
            call.text(positionals[0], "pattern")
        positionals = positionals[1:]
    for word in positionals:
        call.read(word)


_SED_FLAG_CHARS = set("gpPiImMe0123456789w")


def sed_script_problem(script: str) -> str | None:
    """Why a sed script could run commands or touch files (`e`, `w`, `r`, `s///e`, `s///w`), or None."""
    s, i, n = script, 0, len(script)

    def regex_end(j: int, delim: str) -> int:
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "[":
                k = j + 1
                if k < n and s[k] == "^":
                    k += 1
                if k < n and s[k] == "]":
                    k += 1
                while k < n and s[k] != "]":
                    if s[k] == "[" and k + 1 < n and s[k + 1] in ":=.":
                        close = s.find(s[k + 1] + "]", k + 2)
                        if close < 0:
                            raise ValueError
                        k = close + 2
                    else:
                        k += 1
                j = k + 1
                continue
            if c == delim:
                return j
            if c == "\n":
                raise ValueError
            j += 1
        raise ValueError

    def plain_end(j: int, delim: str) -> int:
        while j < n:
            if s[j] == "\\":
                j += 2
                continue
            if s[j] == delim:
                return j
            j += 1
        raise ValueError

    try:
        while i < n:
            while i < n and s[i] in " \t\n;":
                i += 1
            if i >= n:
                break
            if s[i] == "#":
                while i < n and s[i] != "\n":
                    i += 1
                continue
            for _ in range(2):  # address[,address]
                if i < n and s[i].isdigit():
                    while i < n and (s[i].isdigit() or s[i] == "~"):
                        i += 1
                elif i < n and s[i] == "$":
                    i += 1
                elif i < n and s[i] in "/\\":
                    delim = "/"
                    if s[i] == "\\":
                        i += 1
                        delim = s[i]
                    i = regex_end(i + 1, delim) + 1
                    while i < n and s[i] in "IM":
                        i += 1
                elif i < n and s[i] in "+~" and _ > 0:
                    i += 1
                    while i < n and s[i].isdigit():
                        i += 1
                if i < n and s[i] == "," and _ == 0:
                    i += 1
                    continue
                break
            while i < n and s[i] in " \t!":
                i += 1
            if i >= n:
                return "the script ends after an address"
            cmd = s[i]
            i += 1
            if cmd in "{}=dDgGhHlnNpPxzF":
                while i < n and s[i].isdigit():
                    i += 1
            elif cmd in "qQlL":
                while i < n and (s[i].isdigit() or s[i] in " \t"):
                    i += 1
            elif cmd in ":btTv":
                while i < n and s[i] not in ";\n":
                    i += 1
            elif cmd in "aic":
                while i < n and s[i] != "\n":
                    i += 2 if s[i] == "\\" else 1
            elif cmd in "sy":
                delim = s[i]
                if delim in "\n\\":
                    return "unusual `s` delimiter"
                end1 = regex_end(i + 1, delim) if cmd == "s" else plain_end(i + 1, delim)
                end2 = plain_end(end1 + 1, delim)
                i = end2 + 1
                if cmd == "s":
                    while i < n and s[i] in _SED_FLAG_CHARS:
                        if s[i] == "e":
                            return "the `e` flag of `s` runs the result as a command"
                        if s[i] == "w":
                            return "the `w` flag of `s` writes a file"
                        i += 1
            elif cmd in "eErRwW":
                return f"the `{cmd}` command {'runs commands' if cmd in 'eE' else 'reads or writes files'}"
            else:
                return f"unknown sed command `{cmd}`"
            while i < n and s[i] in " \t":
                i += 1
            if i < n and s[i] not in ";\n}#":
                return f"unexpected `{s[i]}` in the sed script"
    except (ValueError, IndexError):
        return "the sed script cannot be parsed"
    return None


def _sed(call: _Call) -> None:
    scripts: list[Word] = []
    in_place = False
    files: list[Word] = []
    args = call.args
    i = 0
    only_files = False
    while i < len(args):
        w = args[i]
        if only_files or not _is_option(w):
            files.append(w)
            i += 1
            continue
        text = call.text(w, "option")
        if text in ("--version", "--help"):
            return
        if text == "--":
            only_files = True
        elif text.startswith("--"):
            name, eq, value = text.partition("=")
            if name == "--expression":
                if eq:
                    scripts.append(Word.literal(value))
                else:
                    i += 1
                    scripts.append(
                        args[i] if i < len(args) else call.deny("`sed --expression` without a script")
                    )
            elif name == "--in-place":
                in_place = True
            elif name in ("--file",):
                call.deny("`sed --file` runs a script file whose content cannot be checked")
            elif name == "--line-length" and not eq:
                i += 1
            elif name not in ("--quiet", "--silent", "--regexp-extended", "--separate", "--null-data",
                              "--unbuffered", "--posix", "--debug", "--sandbox", "--follow-symlinks",
                              "--line-length", "--zero-terminated", "--binary"):  # fmt: skip
                call.deny(f"`sed {name}` is not understood")
        else:
            j = 1
            while j < len(text):
                c = text[j]
                if c == "i":
                    in_place = True
                    break
                if c == "e":
                    if j + 1 < len(text):
                        scripts.append(_slice(w, j + 1))
                    else:
                        i += 1
                        scripts.append(args[i] if i < len(args) else call.deny("`sed -e` without a script"))
                    break
                if c == "f":
                    call.deny("`sed -f` runs a script file whose content cannot be checked")
                if c == "l":
                    if j + 1 == len(text):
                        i += 1
                    break
                if c not in "nrEsuz":
                    call.deny(f"`sed -{c}` is not understood")
                j += 1
        i += 1
    if not scripts:
        if not files:
            call.deny("`sed` without a script")
        scripts, files = [files[0]], files[1:]
    for script in scripts:
        problem = sed_script_problem(call.text(script, "script"))
        if problem:
            call.deny(f"`{call.shown}`: {problem}")
    for word in files:
        if in_place:
            call.write(word)
        else:
            call.read(word)
    if in_place and not files:
        call.deny("`sed -i` without files")


_AWK_DANGER = re.compile(r"\bsystem\s*\(|\bgetline\b|(?<!\|)\|(?!\|)|\bprintf?\b[^;{}\n]*>|@")


def _awk(call: _Call) -> None:
    opts, positionals = _options(call.args, "Fvfeil", ("--field-separator", "--assign", "--file", "--source"))
    if _has(opts, "-f", "--file", "-i", "--include", "-l", "--load", "-E", "--exec"):
        call.deny("awk program files and extensions cannot be checked")
    programs = _values(opts, "-e", "--source")
    if not programs:
        if not positionals:
            call.deny("`awk` without a program")
        programs, positionals = [positionals[0]], positionals[1:]
    for program in programs:
        if _AWK_DANGER.search(call.text(program, "program")):
            call.deny(f"`{call.shown}`: the awk program may run commands or write files "
                      "(system, getline, |, print >); use grep, sed -n or cut")  # fmt: skip
    for word in positionals:
        if word.static and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", word.value):
            continue  # an awk variable assignment, not a file
        call.read(word)


def _jq(call: _Call) -> None:
    args = call.args
    i = 0
    filter_seen = False
    rest_are_args = False
    while i < len(args):
        w = args[i]
        text = _plain(w)
        if rest_are_args:
            i += 1
            continue
        if text in ("--arg", "--argjson"):
            i += 3
            continue
        if text in ("--slurpfile", "--rawfile"):
            if i + 2 < len(args):
                call.read(args[i + 2])
            i += 3
            continue
        if text in ("-f", "--from-file", "-L"):
            if i + 1 < len(args):
                call.read(args[i + 1])
            filter_seen = filter_seen or text != "-L"
            i += 2
            continue
        if text == "--indent":
            i += 2
            continue
        if text in ("--args", "--jsonargs"):
            rest_are_args = filter_seen
            i += 1
            continue
        if _is_option(w):
            call.text(w, "option")
        elif not filter_seen:
            call.text(w, "filter")
            filter_seen = True
        else:
            call.read(w)
        i += 1


def _find(call: _Call) -> None:
    args = call.args
    i = 0
    while i < len(args) and _plain(args[i]) in ("-H", "-L", "-P", "-O0", "-O1", "-O2", "-O3", "-D"):
        i += 2 if _plain(args[i]) == "-D" else 1
    roots: list[Word] = []
    while i < len(args) and not (args[i].static and args[i].value.startswith(("-", "(", ")", "!", ","))):
        roots.append(args[i])
        i += 1
    roots = roots or [Word.literal(".")]
    deletes = False
    while i < len(args):
        w = args[i]
        text = call.text(w, "expression")  # a run-time word could become `-delete` or `-fprint FILE`
        if text in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            command: list[Word] = []
            while j < len(args) and _plain(args[j]) not in (";", "+"):
                command.append(_DYNAMIC if "{}" in args[j].value else args[j])
                j += 1
            if not command:
                call.deny(f"`find {text}` without a command")
            call.run(command)
            i = j + 1
            continue
        if text == "-delete":
            deletes = True
        elif text in ("-fprint", "-fprint0", "-fls", "-fprintf") and i + 1 < len(args):
            call.write(args[i + 1])
            i += 3 if text == "-fprintf" else 2
            continue
        elif text in ("-files0-from",) and i + 1 < len(args):
            call.read(args[i + 1])
        i += 1
    for root in roots:
        if deletes:
            call.write(root)
        else:
            call.read(root)
    if deletes:
        call.need_writable("deletes files")


def _tee(call: _Call) -> None:
    _, positionals = _options(call.args, "", ("--output-error",))
    for word in positionals:
        call.write(word)


def _mkdir_touch(call: _Call) -> None:
    short = {"mkdir": "m", "touch": "rdt", "truncate": "sr", "rmdir": ""}[call.name]
    opts, positionals = _options(call.args, short, ("--mode", "--reference", "--date", "--size"))
    for ref in _values(opts, "-r", "--reference"):
        call.read(ref)
    if not positionals:
        call.deny(f"`{call.shown}` names no file")
    for word in positionals:
        call.write(word, delete=call.name == "rmdir")


def _rm(call: _Call) -> None:
    opts, positionals = _options(call.args)
    if _has(opts, "--no-preserve-root"):
        call.deny("`rm --no-preserve-root` is never allowed")
    if not positionals:
        call.deny(f"`{call.shown}` names no file")
    for word in positionals:
        call.write(word, delete=True)


def _cp_mv(call: _Call) -> None:
    opts, positionals = _options(call.args, "tS", ("--target-directory", "--suffix"))
    targets = _values(opts, "-t", "--target-directory")
    if targets:
        sources, dest = positionals, targets[-1]
    else:
        if len(positionals) < 2:
            call.deny(f"`{call.shown}` needs a source and a destination")
        sources, dest = positionals[:-1], positionals[-1]
    for word in sources:
        if call.name == "mv":
            call.write(word, delete=True)
        else:
            call.read(word)
    call.write(dest)


def _ln(call: _Call) -> None:
    opts, positionals = _options(call.args, "tS", ("--target-directory", "--suffix"))
    targets = _values(opts, "-t", "--target-directory")
    if targets:
        link_dirs, sources = [targets[-1]], positionals
        for d in link_dirs:
            call.write(d)
    elif len(positionals) >= 2:
        sources, link = positionals[:-1], positionals[-1]
        call.write(link)
        link_dirs = [link]
    elif len(positionals) == 1:
        sources, link_dirs = positionals, [Word.literal(".")]
    else:
        call.deny("`ln` without a target")
    for source in sources:
        text = call.text(source, "target")
        for cwd in call.cwds:
            for link_word in link_dirs:
                link_path = Path(os.path.join(cwd, os.path.expanduser(link_word.value)))
                base = link_path if link_path.is_dir() else link_path.parent
                for anchor in {cwd, base}:
                    target = Path(os.path.join(anchor, os.path.expanduser(text)))
                    problem = call.policy._read_problem(target, text) or call.policy._write_problem(
                        target, text
                    )
                    if problem:
                        call.deny(f"`{call.shown}`: link target {problem}")


def _chmod(call: _Call) -> None:
    mode_seen = False
    files: list[Word] = []
    for word in call.args:
        text = call.text(word, "argument") if _is_option(word) else None
        if text is not None and re.fullmatch(r"-[rwxXst]+|--(recursive|verbose|changes|silent|quiet|preserve-root)|"
                                             r"-[Rvcf]+", text):  # fmt: skip
            mode_seen = mode_seen or bool(re.fullmatch(r"-[rwxXst]+", text))
        elif text is not None and text.startswith("--reference="):
            call.read(_slice(word, len("--reference=")))
            mode_seen = True
        elif text is not None:
            call.deny(f"`chmod {text}` is not understood")
        elif not mode_seen:
            call.text(word, "mode")
            mode_seen = True
        else:
            files.append(word)
    if not files:
        call.deny(f"`{call.shown}` names no file")
    for word in files:
        call.write(word)


def _cd(call: _Call) -> Outcome:
    _, positionals = _options(call.args)
    if not positionals:
        call.deny("`cd` without a folder goes to the home folder, outside the workspace")
    if _plain(positionals[0]) == "-":
        call.deny("`cd -` goes to a folder only known at run time")
    return call.dirs(positionals[0]), call.cwds


def _set(call: _Call) -> None:
    allowed = {"pipefail", "errexit", "nounset", "xtrace", "verbose", "noclobber", "noglob"}
    args = call.args
    if not args:
        call.deny("`set` without options prints every variable, which can hold configured API keys")
    i = 0
    while i < len(args):
        text = call.text(args[i], "option")
        if text in ("-o", "+o"):
            i += 1
            if i >= len(args) or _plain(args[i]) not in allowed:
                call.deny(f"`{call.shown}`: only `set -o` {', '.join(sorted(allowed))} are allowed")
        elif not re.fullmatch(r"[-+][euxvCf]+", text):
            call.deny(f"`{call.shown}`: only `set -e/-u/-x/-v/-C/-f` and `-o pipefail` are allowed")
        i += 1


def _export(call: _Call) -> None:
    exported = call.name == "export"
    if not [w for w in call.args if not _is_option(w)]:
        call.deny(f"`{call.shown}` prints variables, which can hold configured API keys")
    for word in call.args:
        if _is_option(word):
            flags = call.text(word, "option")
            if any(c in flags for c in "aAfFnI") or ("i" in flags and call.name != "export"):
                call.deny(
                    f"`{call.name} {flags}` (arrays, functions, name references, integers) is not supported"
                )
            if "x" in flags:
                exported = True
            continue
        assignment = split_assignment(word)
        name = assignment[0] if assignment else call.text(word, "name")
        if not _NAME_RE.fullmatch(name):
            call.deny(f"`{call.name} {word.value}` does not name a plain variable")
        if exported and assignment:
            _check_env_var(name, assignment[1])
        else:
            _check_shell_var(name)


def _unset(call: _Call) -> None:
    for word in call.args:
        text = call.text(word, "name")
        if not (_NAME_RE.fullmatch(text) or text in ("-v", "-f")):
            call.deny(f"`unset {text}` does not name a plain variable")


# ---- wrappers --------------------------------------------------------------------------------------------


def _sh(call: _Call) -> Outcome:
    args = call.args
    i = 0
    has_c = False
    while i < len(args):
        w = args[i]
        text = call.text(w, "option") if _lead(w).startswith(("-", "+")) else None
        if text is None or text in ("-", "--"):
            if text:
                i += 1
            break
        if text.startswith("--"):
            if text not in ("--login", "--norc", "--noprofile", "--posix", "--restricted", "--noediting",
                            "--verbose"):  # fmt: skip
                call.deny(f"`{call.words[0].value} {text}` is not allowed")
        elif text in ("-o", "+o"):
            i += 1
        else:
            if "o" in text[1:]:
                i += 1  # `-euo pipefail`: the option name follows
            for c in text[1:]:
                if c == "c":
                    has_c = True
                elif c in "isO":
                    call.deny(
                        f"`{call.words[0].value} -{c}` (interactive, stdin or shell options) is not allowed"
                    )
                elif c not in "abefhkmnoptuvxBCEHPTlr":
                    call.deny(f"`{call.words[0].value} -{c}` is not understood")
        i += 1
    rest = args[i:]
    if not has_c:
        if rest:
            call.deny(f"`{call.shown}` runs a script file whose content cannot be checked")
        call.deny(f"`{call.shown}` reads its script from stdin, which cannot be checked")
    if not rest:
        call.deny(f"`{call.shown}` without a script")
    call.shell(rest[0])
    return call.cwds, call.cwds


def _env(call: _Call) -> Outcome | None:
    args = call.args
    i = 0
    cwds = call.cwds
    while i < len(args):
        w = args[i]
        if not _is_option(w):
            break
        text = call.text(w, "option")
        if text == "--":
            i += 1
            break
        if text in ("-u", "--unset"):
            i += 2
            continue
        if text in ("-C", "--chdir") or text.startswith(("--chdir=", "-C")):
            if text in ("-C", "--chdir"):
                i += 1
                target = args[i] if i < len(args) else call.deny("`env -C` without a folder")
            else:
                target = _slice(w, len("--chdir=") if text.startswith("--chdir=") else 2)
            cwds = call.dirs(target)
        elif text in ("-S", "--split-string") or text.startswith(("-S", "--split-string")):
            call.deny("`env -S` splits a string into a command line that cannot be checked")
        elif not (text in ("-i", "--ignore-environment", "-0", "--null", "-v", "--debug")
                  or text.startswith(("--unset=", "-u", "--default-signal", "--ignore-signal", "--block-signal",
                                      "--list-signal-handling"))):  # fmt: skip
            call.deny(f"`env {text}` is not understood")
        i += 1
    while i < len(args):
        assignment = split_assignment(args[i]) if _lead(args[i]) else None
        if not assignment:
            break
        _check_env_var(*assignment)
        i += 1
    if i >= len(args):
        call.deny("`env` without a command prints the whole environment, which can hold configured API keys")
    return call.run(args[i:], cwds)


def _simple_wrapper(call: _Call) -> Outcome | None:
    """`nice`, `nohup`, `timeout`, `time`, `stdbuf`, `command`, `builtin`, `exec`: check the wrapped command."""
    args = call.args
    shorts = {"nice": "n", "timeout": "sk", "time": "fo", "stdbuf": "ioe", "exec": "a", "command": "",
              "nohup": "", "builtin": ""}[call.name]  # fmt: skip
    longs = ("--adjustment", "--signal", "--kill-after", "--format", "--output", "--input")
    opts, rest = _options(args, shorts, longs, stop_at_positional=True)
    for out in _values(opts, "-o", "--output") if call.name == "time" else []:
        call.write(out)
    if call.name == "command" and _has(opts, "-v", "-V"):
        return None  # a lookup, runs nothing
    if call.name == "timeout":
        if not rest:
            call.deny("`timeout` without a duration")
        call.text(rest[0], "duration")
        rest = rest[1:]
    if not rest:
        if call.name in ("exec", "nice", "time"):
            return None
        call.deny(f"`{call.shown}` without a command")
    return call.run(rest)


def _xargs(call: _Call) -> Outcome:
    opts, rest = _options(
        call.args, "ILnPsdEa",
        ("--max-args", "--max-lines", "--max-procs", "--max-chars", "--delimiter", "--arg-file",
         "--process-slot-var"),
        stop_at_positional=True,
    )  # fmt: skip
    for f in _values(opts, "-a", "--arg-file"):
        call.read(f)
    replace = [call.text(v, "replace string") for v in _values(opts, "-I")]
    if _has(opts, "-i", "--replace"):
        replace.append("{}")
    command = rest or [Word.literal("echo")]
    if replace:
        words = [_DYNAMIC if any(r in w.value for r in replace) else w for w in command]
    else:
        words = [*command, _DYNAMIC]
    return call.run(words)


# ---- git ---------------------------------------------------------------------------------------------------

_GIT_SAFE_GLOBAL = {
    "-p", "--paginate", "-P", "--no-pager", "--no-replace-objects", "--literal-pathspecs", "--glob-pathspecs",
    "--noglob-pathspecs", "--icase-pathspecs", "--no-optional-locks", "--no-advice", "--no-lazy-fetch",
    "--version", "--help", "-h", "--html-path", "--man-path", "--info-path", "--exec-path",
}  # fmt: skip
_GIT_READ = {
    "status", "diff", "log", "show", "ls-files", "blame", "annotate", "rev-parse", "shortlog", "describe",
    "rev-list", "cat-file", "ls-tree", "grep", "show-ref", "for-each-ref", "diff-tree", "diff-files",
    "diff-index", "merge-base", "name-rev", "count-objects", "check-ignore", "check-attr", "check-ref-format",
    "whatchanged", "version", "help", "var", "show-branch", "cherry", "range-diff", "verify-commit",
    "verify-tag", "fsck", "hash-object", "reflog", "stash", "notes", "branch", "tag", "remote", "config",
}  # fmt: skip
_GIT_WRITE = {"add", "commit", "restore", "rm", "mv", "checkout", "reset", "clean", "apply", "revert",
              "format-patch"}  # fmt: skip
_GIT_DENIED = {
    "push": "sends commits to a remote",
    "fetch": "reaches a remote (network)", "pull": "reaches a remote (network) and merges",
    "clone": "reaches a remote (network)", "ls-remote": "reaches a remote (network)",
    "send-email": "sends mail", "request-pull": "prepares a pull request for a remote",
    "imap-send": "sends mail", "submodule": "fetches and changes submodules (network, shared config)",
    "worktree": "changes the worktrees of your repository",
    "update-ref": "moves refs of your repository directly",
    "symbolic-ref": "moves refs of your repository directly",
    "filter-branch": "rewrites history", "filter-repo": "rewrites history",
    "gc": "prunes the object store your checkout shares", "prune": "prunes the object store your checkout shares",
    "repack": "rewrites the object store your checkout shares",
    "maintenance": "changes your repository's scheduled maintenance",
    "replace": "changes how history appears in your checkout",
    "rebase": "rewrites the cycle branch (and `--exec` runs commands)",
    "merge": "merges other branches into the cycle branch",
    "cherry-pick": "copies commits from other branches", "am": "applies mailed patches as commits",
    "bisect": "moves HEAD and can run commands",
    "switch": "switches the workspace to another branch",
    "init": "creates a repository", "lfs": "reaches a remote (network)",
    "mergetool": "runs external tools", "difftool": "runs external tools",
    "sparse-checkout": "changes the checkout's shape", "update-index": "edits the index directly",
    "daemon": "serves the repository over the network", "instaweb": "serves the repository over the network",
    "archive": "is not needed to carry out a plan", "bundle": "packages refs for transport",
    "credential": "handles credentials", "credential-store": "handles credentials",
    "credential-cache": "handles credentials", "svn": "reaches a remote", "p4": "reaches a remote",
    "http-push": "reaches a remote", "http-fetch": "reaches a remote", "upload-pack": "serves a remote",
    "receive-pack": "serves a remote", "shell": "serves a remote",
}  # fmt: skip
_CONFIG_SECRET_KEY = re.compile(
    r"url|credential|extraheader|token|password|pass$|auth|proxy|askpass|sshcommand|cookie|secret",
    re.IGNORECASE,
)
_CONFIG_READ_FLAGS = {
    "--get", "--get-all", "--local", "--global", "--system", "--worktree", "--show-origin", "--show-scope",
    "-z", "--null", "--name-only", "--bool", "--int", "--bool-or-int", "--path", "--expiry-date", "--includes",
    "--no-includes", "--type", "--default", "--file", "-f", "--blob",
}  # fmt: skip


def _git(call: _Call) -> Outcome | None:
    args = call.args
    cwds = call.cwds
    i = 0
    while i < len(args):
        w = args[i]
        if not _is_option(w):
            break
        text = call.text(w, "option")
        if text == "-C" or (text.startswith("-C") and len(text) > 2):
            if text == "-C":
                i += 1
                target = args[i] if i < len(args) else call.deny("`git -C` without a folder")
            else:
                target = _slice(w, 2)
            cwds = _Call(call.policy, "git", call.words, cwds, call.depth, call.notes).dirs(target)
        elif text == "-c" or text.startswith("-c"):
            call.deny("`git -c` sets configuration for one command (it can point core.hooksPath, core.sshCommand "
                      "or a credential helper at any program)")  # fmt: skip
        elif text.startswith("--config-env"):
            call.deny("`git --config-env` sets configuration for one command")
        elif text.split("=")[0] in ("--git-dir", "--work-tree", "--namespace", "--super-prefix", "--bare"):
            call.deny(f"`git {text.split('=')[0]}` points git at another repository or layout")
        elif text.startswith("--exec-path="):
            call.deny("`git --exec-path=...` runs git programs from another folder")
        elif text.startswith("--list-cmds=") or text in _GIT_SAFE_GLOBAL:
            pass
        else:
            call.deny(f"`git {text}` is not understood")
        i += 1
    if i >= len(args):
        return None
    sub = call.text(args[i], "subcommand")
    rest = args[i + 1 :]
    sub_call = _Call(call.policy, "git", call.words, cwds, call.depth, call.notes)
    call.label = f"git {sub}"
    if sub in _GIT_DENIED:
        call.deny(f"`git {sub}` {_GIT_DENIED[sub]}")
    if sub not in _GIT_READ and sub not in _GIT_WRITE:
        call.deny(f"`git {sub}` is not on the allow-list (it may be an alias or a git-* program)")
    for j, word in enumerate(rest):
        if not word.static:
            prev = _plain(rest[j - 1]) if j else None
            if not (
                sub == "commit"
                and (prev in ("-m", "--message") or _lead(word).startswith(("-m", "--message=")))
            ):
                call.deny(f"`git {sub}` argument `{word.value}` is only known at run time")
    _GIT_SUBCOMMANDS.get(sub, _git_generic_read)(sub_call, sub, rest)
    return None


_GIT_FILE_OPTIONS = ("-F", "--file", "-t", "--template", "--contents", "--pathspec-from-file")
_RESET_FLAGS = {
    "-q", "--quiet", "--hard", "--mixed", "--soft", "--keep", "--merge", "-N", "--no-refresh", "-p", "--patch",
    "--pathspec-from-file",
}  # fmt: skip


def _git_paths(call: _Call, rest: Sequence[Word], *, write: bool = False) -> list[Word]:
    """Check `--output`, path-like option values and positionals; returns the positionals."""
    positionals: list[Word] = []
    after_dashdash = False
    j = 0
    while j < len(rest):
        w = rest[j]
        text = w.value
        if after_dashdash or not _is_option(w):
            positionals.append(w)
        elif text == "--":
            after_dashdash = True
        elif text.startswith("--output="):
            call.write(_slice(w, len("--output=")))
        elif text == "--output":
            j += 1
            if j < len(rest):
                call.write(rest[j])
        elif "=" in text and w.static:
            value = text.split("=", 1)[1]
            if _looks_like_path(value):
                call.read(_slice(w, len(text.split("=", 1)[0]) + 1))
        elif text in ("-m", "--message", "-F", "--file", "-t", "--template", "-C", "-c", "--author",
                      "--contents", "--pathspec-from-file", "-S", "-G", "--grep", "--format", "--pretty") or (
            re.fullmatch(r"-[a-zA-Z]*m", text)
        ):  # fmt: skip
            j += 1
            if j < len(rest) and text in _GIT_FILE_OPTIONS:
                call.read(rest[j])
        j += 1
    for word in positionals:
        if write:
            call.write(word)
        else:
            call.read(word)
    return positionals


def _git_generic_read(call: _Call, sub: str, rest: Sequence[Word]) -> None:
    if sub == "grep" and any(w.value.startswith(("-O", "--open-files-in-pager")) for w in rest):
        call.deny("`git grep -O` runs a pager program")
    if sub == "help" and any(w.value in ("-w", "--web", "-i", "--info") for w in rest):
        call.deny("`git help --web/--info` opens another program")
    if sub == "fsck" and any(w.value == "--lost-found" for w in rest):
        call.deny("`git fsck --lost-found` writes into `.git`")
    if sub == "hash-object" and any(w.value == "-w" for w in rest):
        call.need_writable("writes objects into the repository")
    if sub == "reflog" and rest and rest[0].value in ("expire", "delete"):
        call.deny(f"`git reflog {rest[0].value}` deletes history of your repository")
    _git_paths(call, [w for w in rest if sub != "reflog" or w.value not in ("show", "exists")])


def _git_listing(call: _Call, sub: str, rest: Sequence[Word]) -> None:
    """`git branch` / `git tag`: listing only; creating, moving or deleting refs changes your repository."""
    listing = {"-a", "--all", "-r", "--remotes", "-l", "--list", "-v", "-vv", "--verbose", "--show-current",
               "--contains", "--no-contains", "--merged", "--no-merged", "--sort", "--format", "--column",
               "--no-column", "--color", "--no-color", "-i", "--ignore-case", "--points-at", "-n", "--omit-empty",
               "-q", "--quiet"}  # fmt: skip
    if sub == "tag":
        listing |= {"--verify"}
    has_list = False
    for w in rest:
        text = w.value
        if _is_option(w):
            name = text.split("=")[0]
            if sub == "tag" and re.fullmatch(r"-n\d*", name):
                continue
            if name not in listing:
                call.deny(f"`git {sub} {text}` changes refs your checkout shares; only listing is allowed")
            has_list = has_list or name in ("-l", "--list", "--contains", "--no-contains", "--merged",
                                            "--no-merged", "--points-at", "--verify")  # fmt: skip
    positionals = [w for w in rest if not _is_option(w)]
    if positionals and not has_list:
        call.deny(
            f"`git {sub} {positionals[0].value}` creates a {sub} in your repository; only listing is allowed"
        )


def _git_remote(call: _Call, sub: str, rest: Sequence[Word]) -> None:
    if not rest:
        return
    first = rest[0].value
    if first in ("-v", "--verbose", "get-url", "show"):
        call.deny(
            f"`git remote {first}` prints remote URLs, which can embed credentials (or reaches the network)"
        )
    call.deny(f"`git remote {first}` changes your repository's remotes")


def _git_config(call: _Call, sub: str, rest: Sequence[Word]) -> None:
    words = list(rest)
    if words and words[0].value in ("get",):
        words = words[1:]
        explicit_read = True
    elif words and words[0].value in ("list",):
        call.deny("`git config list` prints every setting, including remote URLs and http headers that can hold "
                  "credentials; ask for one key with `git config --get <key>`")  # fmt: skip
    else:
        explicit_read = False
    positionals: list[str] = []
    j = 0
    while j < len(words):
        text = words[j].value
        if _is_option(words[j]):
            name = text.split("=")[0]
            if name in ("-l", "--list", "--get-regexp", "--get-urlmatch"):
                call.deny(f"`git config {name}` can print remote URLs and http headers that hold credentials; "
                          "ask for one key with `git config --get <key>`")  # fmt: skip
            if name not in _CONFIG_READ_FLAGS:
                call.deny(
                    f"`git config {text}` changes your repository's configuration (a worktree shares it)"
                )
            if name in ("--get", "--get-all"):
                explicit_read = True
            if name in ("--file", "-f") and "=" not in text:
                j += 1
                if j < len(words):
                    call.read(words[j])
            elif name == "--file":
                call.read(_slice(words[j], len("--file=")))
            elif name in ("--type", "--default", "--blob") and "=" not in text:
                j += 1
        else:
            positionals.append(text)
        j += 1
    if not positionals:
        call.deny("`git config` without a key")
    if positionals[0] in ("set", "unset", "edit", "rename-section", "remove-section", "replace-all", "add"):
        call.deny(
            f"`git config {positionals[0]}` changes your repository's configuration (a worktree shares it)"
        )
    if len(positionals) > 1 and not explicit_read:
        call.deny("`git config <key> <value>` changes your repository's configuration (a worktree shares it)")
    if _CONFIG_SECRET_KEY.search(positionals[0]):
        call.deny(f"`git config {positionals[0]}` may hold credentials")
    if len(positionals) > 2:
        call.deny("`git config` with extra arguments is not understood")


def _git_stash_notes(call: _Call, sub: str, rest: Sequence[Word]) -> None:
    action = rest[0].value if rest else ""
    if action in ("list", "show") or (sub == "notes" and not rest):
        _git_paths(call, rest[1:])
        return
    shown = f"git {sub} {action}".strip()
    call.deny(f"`{shown}` changes `refs/{sub}`, which your checkout shares; only list/show are allowed")


def _git_write(call: _Call, sub: str, rest: Sequence[Word]) -> None:
    call.need_writable(f"(`git {sub}`) changes files or commits")
    texts = [w.value for w in rest]
    if sub == "commit":
        if any(t == "--amend" or t.startswith("--amend") for t in texts):
            call.deny(
                "`git commit --amend` rewrites the previous commit, which may belong to an earlier plan"
            )
        _git_paths(call, rest)
    elif sub == "add":
        _git_paths(call, rest)
    elif sub in ("rm", "mv", "restore", "clean"):
        _git_paths(call, [w for w in rest if not w.value.startswith("--source")], write=True)
    elif sub == "checkout":
        if "--" not in texts:
            call.deny("`git checkout <branch>` switches the workspace away from the cycle branch; "
                      "use `git restore <path>` or `git checkout -- <path>`")  # fmt: skip
        if any(t in ("-b", "-B", "--orphan", "--detach") for t in texts):
            call.deny("`git checkout -b/--orphan/--detach` changes branches")
        cut = texts.index("--")
        _git_paths(call, [w for w in rest[:cut] if _is_option(w)] + [Word.literal("--"), *rest[cut + 1 :]],
                   write=True)  # fmt: skip
    elif sub == "reset":
        cut = texts.index("--") if "--" in texts else len(texts)
        for word in rest[:cut]:
            text = word.value
            if _is_option(word):
                if text.split("=")[0] not in _RESET_FLAGS:
                    call.deny(f"`git reset {text}` is not understood")
            elif (
                "--" not in texts
                and text not in ("HEAD", "@")
                and not any(
                    Path(os.path.join(cwd, text)).exists() or Path(os.path.join(cwd, text)).is_symlink()
                    for cwd in call.cwds
                )
            ):
                call.deny(f"`git reset {text}` moves the cycle branch; only `git reset [HEAD] [-- <paths>]` is "
                          "allowed")  # fmt: skip
            else:
                call.read(word)
        for word in rest[cut + 1 :]:
            call.read(word)
    elif sub == "apply":
        if any(t.startswith(("--unsafe-paths", "--directory")) for t in texts):
            call.deny("`git apply --unsafe-paths/--directory` writes outside the usual places")
        _git_paths(call, rest)
    elif sub == "revert":
        _git_paths(call, rest)
    elif sub == "format-patch":
        opts, _ = _options(rest, "o", ("--output-directory",))
        for out in _values(opts, "-o", "--output-directory"):
            call.write(out)
        if not _has(opts, "--stdout", "-o", "--output-directory"):
            call.write(Word.literal("."))
        _git_paths(call, [w for w in rest if w.value not in ("-o", "--output-directory")
                          and not any(w is v for v in _values(opts, "-o", "--output-directory"))])  # fmt: skip


def _git_read_or_write(call: _Call, sub: str, rest: Sequence[Word]) -> None:
    if sub == "format-patch" and any(w.value == "--stdout" for w in rest):
        _git_paths(call, rest)
        return
    if sub == "apply" and all(w.value in ("--check", "--stat", "--numstat", "--summary") or not _is_option(w)
                              for w in rest) and any(w.value in ("--check", "--stat", "--numstat", "--summary")
                                                     for w in rest):  # fmt: skip
        _git_paths(call, rest)
        return
    _git_write(call, sub, rest)


_GIT_SUBCOMMANDS: dict[str, Callable[[_Call, str, Sequence[Word]], None]] = {
    "branch": _git_listing, "tag": _git_listing, "remote": _git_remote, "config": _git_config,
    "stash": _git_stash_notes, "notes": _git_stash_notes,
    **{sub: _git_read_or_write for sub in _GIT_WRITE},
}  # fmt: skip


# ---- python and friends ------------------------------------------------------------------------------------


def _python(call: _Call) -> Outcome | None:
    args = call.args
    i = 0
    while i < len(args):
        w = args[i]
        text = call.text(w, "option") if _is_option(w) else None
        if text is None:
            break
        if text in ("--version", "-V", "-VV", "--help", "-h", "--help-env", "--help-xoptions", "--help-all"):
            return None
        if text == "--":
            i += 1
            break
        if text.startswith("--"):
            call.deny(f"`python {text}` is not understood")
        for k, c in enumerate(text[1:], start=1):
            if c == "c":
                call.deny(
                    "`python -c` runs inline code that cannot be checked; write a script in the workspace"
                )
            if c == "i":
                call.deny("`python -i` is interactive")
            if c == "m":
                module_word = (
                    _slice(w, k + 1) if k + 1 < len(text) else (args[i + 1] if i + 1 < len(args) else None)
                )
                if module_word is None:
                    call.deny("`python -m` without a module")
                offset = i + 1 if k + 1 < len(text) else i + 2
                return _python_module(call, call.text(module_word, "module"), list(args[offset:]))
            if c in "WX":
                if k + 1 == len(text):
                    i += 1
                break
            if c not in "bBdEhIOPqsSuvx":
                call.deny(f"`python -{c}` is not understood")
        i += 1
    if i >= len(args) or _plain(args[i]) == "-":
        call.deny("`python` without a script reads its program from stdin, which cannot be checked")
    call.need_writable("runs project code, which may write files")
    call.read(args[i])
    if Path(args[i].value).name == "setup.py" and any(_PUBLISH_RE.search(w.value) for w in args[i + 1 :]):
        call.deny("`setup.py install/upload` changes the shared environment or publishes")
    _generic_args(call, args[i + 1 :])
    return None


def _generic_args(call: _Call, args: Sequence[Word], writes: Iterable[str] = ()) -> None:
    """Arguments of a program whose options we do not know: path-like ones must stay inside the workspace."""
    opts, positionals = _options(args)
    writes = set(writes)
    for opt in opts:
        if opt.value is None:
            continue
        if opt.name in writes:
            call.write(opt.value)
        elif not opt.value.static:
            call.deny(f"`{call.shown}`: option value `{opt.word.value}` is only known at run time")
        elif _looks_like_path(opt.value.value):
            call.read(opt.value)
            if call.policy.writable:
                call.write(opt.value)
    for word in positionals:
        if not word.static:
            call.deny(f"`{call.shown}`: argument `{word.value}` is only known at run time")
        if word.has_glob or _looks_like_path(word.value):
            call.read(word)


def _python_module(call: _Call, module: str, rest: list[Word]) -> Outcome | None:
    if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*", module):
        call.deny(f"`python -m {module}` is not a module name")
    top = module.split(".")[0]
    if module in _DENIED_MODULES or top in _DENIED_MODULES:
        call.deny(f"`python -m {module}` {_DENIED_MODULES.get(module) or _DENIED_MODULES[top]}")
    inner = _Call(call.policy, module, [Word.literal(f"python -m {module}"), *rest], call.cwds, call.depth,
                  call.notes)  # fmt: skip
    handler = {"pytest": _pytest, "ruff": _ruff, "pip": _pip, "mypy": _lint_tool, "black": _formatter,
               "isort": _formatter, "flake8": _lint_tool, "pylint": _lint_tool, "coverage": _coverage,
               "unittest": _unittest, "json.tool": _json_tool}.get(module)  # fmt: skip
    if handler is not None:
        handler(inner)
        return None
    if module in ("py_compile", "compileall"):
        call.need_writable("writes bytecode files")
        for word in [w for w in rest if not _is_option(w)]:
            call.read(word)
        return None
    call.need_writable(f"runs the module `{module}` (project code, which may write files)")
    _generic_args(call, rest)
    return None


_PYTEST_VALUES = (
    "-k", "-m", "-p", "-c", "-o", "-W", "-n", "--rootdir", "--basetemp", "--junitxml", "--junit-xml", "--confcutdir",
    "--cov", "--cov-report", "--cov-config", "--html", "--maxfail", "--tb", "--durations", "--deselect", "--ignore",
    "--ignore-glob", "--log-file", "--override-ini", "--import-mode", "--capture", "--timeout", "--dist",
    "--numprocesses", "--log-level", "--log-cli-level", "--config-file", "--json-report-file", "--report-log",
    "--cov-fail-under", "--durations-min", "--color", "--code-highlight", "--pyargs", "--lfnf", "--last-failed-no-failures",
)  # fmt: skip
_PYTEST_WRITES = ("--basetemp", "--junitxml", "--junit-xml", "--log-file", "--html", "--json-report-file",
                  "--report-log", "--result-log", "--resultlog", "--debug")  # fmt: skip
_PYTEST_READS = ("-c", "--config-file", "--rootdir", "--confcutdir", "--ignore", "--deselect", "--cov-config",
                 "--ignore-glob")  # fmt: skip


def _pytest(call: _Call) -> None:
    long_values = [v for v in _PYTEST_VALUES if v.startswith("--")]
    opts, positionals = _options(call.args, "kmpcoWnr", long_values)
    for opt in opts:
        if opt.value is None and opt.name not in _PYTEST_WRITES:
            continue
        if opt.name in _PYTEST_WRITES:
            if opt.name == "--debug" and opt.value is None:
                call.write(Word.literal("pytestdebug.log"))
            elif opt.value is not None:
                call.write(opt.value)
        elif opt.name in ("--cov-report",) and opt.value is not None:
            kind, _, target = call.text(opt.value, "report").partition(":")
            if target:
                call.write(Word.literal(target))
            elif not call.policy.writable and kind not in ("term", "term-missing", ""):
                call.deny(f"this phase is read-only: `--cov-report={kind}` writes a report")
        elif opt.name in ("-o", "--override-ini") and opt.value is not None:
            key, _, value = call.text(opt.value, "ini option").partition("=")
            if key.strip() in ("cache_dir", "log_file"):
                call.write(Word.literal(value))
        elif opt.name in _PYTEST_READS and opt.value is not None:
            call.read(_node_path(opt.value))
        elif opt.value is not None and not opt.value.static:
            call.deny(f"`{call.shown}`: option value `{opt.word.value}` is only known at run time")
    for word in positionals:
        call.read(_node_path(word))
    if not call.policy.writable:
        plugins = [call.text(v, "plugin") for v in _values(opts, "-p")]
        if _has(opts, "--cov", "--cache-clear", "--stepwise", "--sw", "--pdb", "--trace"):
            call.deny(
                "this phase is read-only: `--cov/--cache-clear/--stepwise/--pdb` write files or wait for input"
            )
        if not (_has(opts, "--collect-only", "--co") or "no:cacheprovider" in plugins):
            call.deny("this phase is read-only: run pytest with `-p no:cacheprovider` (or `--collect-only`) so it "
                      "does not write `.pytest_cache`")  # fmt: skip


def _node_path(word: Word) -> Word:
    """`tests/test_x.py::test_a[1]` → `tests/test_x.py` (the part that is a path)."""
    if word.static and "::" in word.value:
        return Word.literal(word.value.split("::", 1)[0])
    return word


def _unittest(call: _Call) -> None:
    opts, positionals = _options(
        call.args, "kspt", ("--start-directory", "--pattern", "--top-level-directory")
    )
    for value in _values(opts, "-s", "--start-directory", "-t", "--top-level-directory"):
        call.read(value)
    for word in positionals:
        if _looks_like_path(word.value) or (word.static and word.value.endswith(".py")):
            call.read(word)
        else:
            call.text(word, "test name")


def _json_tool(call: _Call) -> None:
    _, positionals = _options(call.args, "", ("--indent",))
    if positionals:
        call.read(positionals[0])
    if len(positionals) > 1:
        call.write(positionals[1])


def _ruff(call: _Call) -> Outcome | None:
    args = call.args
    i = 0
    while i < len(args) and _is_option(args[i]):
        text = call.text(args[i], "option")
        if text in ("--version", "-V", "-h", "--help"):
            return None
        if text not in ("--isolated", "-q", "--quiet", "-v", "--verbose", "-s", "--silent", "--no-cache"):
            if text.startswith("--config"):
                if "=" not in text:
                    i += 1
                    value = args[i] if i < len(args) else call.deny("`ruff --config` without a value")
                else:
                    value = _slice(args[i], len("--config="))
                if "=" not in call.text(value, "config"):
                    call.read(value)
            else:
                call.deny(f"`ruff {text}` is not understood")
        i += 1
    if i >= len(args):
        call.deny("`ruff` without a subcommand")
    sub = call.text(args[i], "subcommand")
    rest = args[i + 1 :]
    if sub in ("version", "help", "rule", "linter", "config"):
        return None
    if sub in ("server", "check") and any(w.value == "--watch" for w in rest):
        call.deny("`ruff --watch` never finishes")
    if sub == "server":
        call.deny("`ruff server` is a long-running language server")
    if sub == "clean":
        call.need_writable("deletes caches")
        return None
    if sub not in ("check", "format", "analyze"):
        call.deny(f"`ruff {sub}` is not understood")
    long_values = ("--select", "--ignore", "--extend-select", "--extend-ignore", "--fixable", "--unfixable",
                   "--per-file-ignores", "--extend-per-file-ignores", "--exclude", "--extend-exclude",
                   "--line-length", "--target-version", "--output-format", "--output-file", "--config",
                   "--cache-dir", "--stdin-filename", "--dummy-variable-rgx", "--extension", "--extend-fixable",
                   "--range", "--python", "--direction", "--detect-string-imports")  # fmt: skip
    opts, positionals = _options(rest, "o", long_values)
    dry = _has(opts, "--diff", "--check")
    writes_files = (sub == "check" and _has(opts, "--fix", "--fix-only", "--add-noqa") and not dry) or (
        sub == "format" and not dry
    )
    for opt in opts:
        if opt.value is None:
            continue
        if opt.name in ("-o", "--output-file", "--cache-dir"):
            call.write(opt.value)
        elif opt.name == "--config":
            value = call.text(opt.value, "config")
            if "=" not in value:
                call.read(opt.value)
        elif not opt.value.static:
            call.deny(f"`{call.shown}`: option value `{opt.word.value}` is only known at run time")
    if writes_files:
        call.need_writable("rewrites files (use `--diff` to only show the changes)")
    for word in positionals or [Word.literal(".")]:
        if writes_files:
            call.write(word)
        else:
            call.read(word)
    return None


def _pip(call: _Call) -> None:
    args = call.args
    positionals = [w for w in args if not _is_option(w)]
    flags = [w.value for w in args if _is_option(w)]
    if not positionals:
        if any(f in ("--version", "-V", "--help", "-h") for f in flags):
            return
        call.deny("`pip` without a command")
    sub = call.text(positionals[0], "command")
    if sub in ("install", "download", "wheel", "uninstall", "index", "search"):
        call.deny(f"`pip {sub}` installs, downloads or removes packages (network, shared environment)")
    if sub not in ("list", "show", "freeze", "check", "inspect", "help"):
        call.deny(f"`pip {sub}` is not on the allow-list (list/show/freeze/check are)")
    if any(
        f.split("=")[0] in ("--index-url", "-i", "--extra-index-url", "--path", "--target") for f in flags
    ):
        call.deny("`pip` index or path options are not allowed")


def _lint_tool(call: _Call) -> None:
    name = call.name
    opts, positionals = _options(call.args)
    if name == "mypy":
        if _has(opts, "--install-types"):
            call.deny("`mypy --install-types` installs packages (network)")
        cache = [o for o in opts if o.name == "--cache-dir"]
        if not (cache and cache[0].value is not None and cache[0].value.value == "/dev/null"):
            call.need_writable("writes `.mypy_cache` (use `--cache-dir=/dev/null`)")
    for opt in opts:
        if opt.value is None:
            continue
        if opt.name.endswith(("-report", "-xml", "-output", "-file")) or opt.name in (
            "--output",
            "--junit-xml",
        ):
            call.write(opt.value)
        elif not opt.value.static:
            call.deny(f"`{call.shown}`: option value `{opt.word.value}` is only known at run time")
        elif _looks_like_path(opt.value.value):
            call.read(opt.value)
    for word in positionals:
        call.read(word)


def _formatter(call: _Call) -> None:
    opts, positionals = _options(call.args, "lp", ("--line-length", "--profile", "--target-version", "--config",
                                                   "--settings-path", "--include", "--exclude"))  # fmt: skip
    dry = _has(opts, "--check", "--diff", "--check-only", "-c")
    call.read_values(opts, ("--config", "--settings-path", "--settings-file"))
    for word in positionals:
        if dry:
            call.read(word)
        else:
            call.write(word)
    if not dry:
        call.need_writable("rewrites files (use `--check`/`--diff`)")


def _coverage(call: _Call) -> None:
    rest = call.args
    sub = call.text(rest[0], "command") if rest else ""
    if sub == "run":
        call.need_writable("runs project code")
        args = rest[1:]
        i = 0
        while i < len(args) and _is_option(args[i]) and args[i].value not in ("-m", "--module"):
            text = call.text(args[i], "option")
            if text in (
                "--rcfile",
                "--source",
                "--include",
                "--omit",
                "--data-file",
                "--context",
                "--concurrency",
            ):
                i += 1
            elif text.startswith(("--rcfile=", "--data-file=")):
                call.read(_slice(args[i], len(text.split("=")[0]) + 1))
            i += 1
        words = [Word.literal("python"), *args[i:]]  # `-m module args...` or `script args...`
        _python(_Call(call.policy, "python", words, call.cwds, call.depth, call.notes))
        return
    if sub in ("report", "debug", "help", "--version", "--help"):
        return
    if sub in ("html", "xml", "json", "lcov", "erase", "combine", "annotate"):
        call.need_writable(f"(`coverage {sub}`) writes files")
        return
    call.deny(f"`coverage {sub}` is not understood")


def _make(call: _Call) -> None:
    opts, positionals = _options(call.args, "CfjlIoW", ("--directory", "--file", "--makefile", "--jobs",
                                                        "--include-dir", "--load-average"))  # fmt: skip
    cwds = call.cwds
    for target in _values(opts, "-C", "--directory"):
        cwds = call.dirs(target)
    for makefile in _values(opts, "-f", "--file", "--makefile"):
        call.read(makefile, cwds)
    # even `make -n` runs `$(shell ...)` and `+` lines: make is project code
    call.need_writable("runs recipes (project code, which may write files)")
    for word in positionals:
        text = call.text(word, "target")
        if "=" in text:
            continue
        if _PUBLISH_RE.search(text):
            call.deny(f"`make {text}` looks like it publishes, deploys or installs")


def _npm(call: _Call) -> None:
    tool = call.words[0].value.rsplit("/", 1)[-1]
    opts, positionals = _options(call.args)
    if not positionals:
        if _has(opts, "--version", "-v", "--help", "-h"):
            return
        call.deny(f"`{tool}` without a command installs packages")
    for opt in opts:
        if opt.name not in ("--silent", "-s", "--if-present", "--workspace", "-w", "--workspaces", "--quiet",
                            "-q", "--version", "-v"):  # fmt: skip
            call.deny(f"`{tool} {opt.name}` is not understood")
    sub = call.text(positionals[0], "command")
    if sub in ("ls", "list", "why", "explain"):
        return
    if sub in ("test", "t", "tst"):
        call.need_writable("runs the project's test script")
        return
    if sub in ("run", "run-script"):
        if len(positionals) == 1:
            return  # lists the scripts
        script = call.text(positionals[1], "script")
        if _PUBLISH_RE.search(script):
            call.deny(f"`{tool} run {script}` looks like it publishes, deploys or installs")
        call.need_writable(f"runs the project's `{script}` script")
        return
    call.deny(f"`{tool} {sub}` is not on the allow-list (test, run <script>, ls are)")


def _node(call: _Call) -> None:
    args = call.args
    i = 0
    while i < len(args) and _is_option(args[i]):
        text = call.text(args[i], "option")
        if text in ("--version", "-v", "--help", "-h"):
            return
        if text.split("=")[0] in ("-e", "--eval", "-p", "--print", "-i", "--interactive", "--input-type"):
            call.deny(
                "`node -e/-p/-i` runs inline code that cannot be checked; write a script in the workspace"
            )
        if text in ("-r", "--require", "--import", "--loader"):
            i += 1
        i += 1
    if i >= len(args):
        call.deny("`node` without a script reads its program from stdin")
    call.need_writable("runs project code, which may write files")
    call.read(args[i])
    _generic_args(call, args[i + 1 :])


def _handlers() -> dict[str, Handler]:
    table: dict[str, Handler] = {name: _no_paths for name in _NO_PATHS}
    table.update({name: _reader for name in _READERS})
    table.update({
        "tr": _tr, "grep": _grep, "rg": _grep, "sed": _sed, "awk": _awk, "jq": _jq, "find": _find, "tee": _tee,
        "mkdir": _mkdir_touch, "touch": _mkdir_touch, "truncate": _mkdir_touch, "rmdir": _mkdir_touch, "rm": _rm,
        "cp": _cp_mv, "mv": _cp_mv, "ln": _ln, "chmod": _chmod, "cd": _cd, "set": _set, "export": _export,
        "declare": _export, "typeset": _export, "local": _export, "readonly": _export, "unset": _unset,
        "sh": _sh, "env": _env, "nice": _simple_wrapper, "nohup": _simple_wrapper, "timeout": _simple_wrapper,
        "time": _simple_wrapper, "stdbuf": _simple_wrapper, "command": _simple_wrapper,
        "builtin": _simple_wrapper, "exec": _simple_wrapper, "xargs": _xargs, "git": _git, "python": _python,
        "pytest": _pytest, "ruff": _ruff, "pip": _pip, "mypy": _lint_tool, "flake8": _lint_tool,
        "pylint": _lint_tool, "black": _formatter, "isort": _formatter, "coverage": _coverage, "make": _make,
        "npm": _npm, "node": _node,
    })  # fmt: skip
    return table


__all__ = ["Decision", "Policy", "agent_environment", "secret_reason", "sed_script_problem"]

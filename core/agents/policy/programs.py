"""Programs by name: aliases (`egrep` is grep, `python3.12` is python), the trusted program folders, and why a
command that is not on the allow-list is refused (network, installers, privilege, system, opaque)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

_ALIASES = {
    "py.test": "pytest", "egrep": "grep", "fgrep": "grep", "gawk": "awk", "mawk": "awk", "nawk": "awk",
    "gmake": "make", "gsed": "sed", "[": "test", "bash": "sh", "dash": "sh", "zsh": "sh", "ksh": "sh",
    "mksh": "sh", "ash": "sh", "yarn": "npm", "pnpm": "npm", "sha1sum": "md5sum", "sha224sum": "md5sum",
    "sha256sum": "md5sum", "sha384sum": "md5sum", "sha512sum": "md5sum", "b2sum": "md5sum", "cksum": "md5sum",
    "nodejs": "node",
}  # fmt: skip
PYTHON_TOOLS = {"python", "pytest", "ruff", "mypy", "black", "isort", "flake8", "pylint", "coverage", "pip"}

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

PUBLISH_RE = re.compile(r"push|deploy|publish|release|upload|install", re.IGNORECASE)


def canonical_name(name: str) -> str:
    low = name.lower()
    if re.fullmatch(r"python(\d+(\.\d+)?)?", low):
        return "python"
    if re.fullmatch(r"pip(\d+(\.\d+)?)?", low):
        return "pip"
    return _ALIASES.get(low, low)


def trusted_program_dirs() -> set[Path]:
    dirs = {
        Path(p) for p in ("/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin", "/opt/homebrew/bin")
    }
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and os.path.isabs(entry):
            dirs.add(Path(os.path.normpath(entry)))
    dirs.add(Path(sys.executable).parent)
    dirs.add(Path(sys.prefix) / "bin")
    return dirs


def unknown_reason(name: str, shown: str) -> str:
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

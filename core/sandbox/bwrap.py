"""bubblewrap: the rule set as mounts and namespaces, prefixed to the command line (no code runs in the child).

The sandbox, in mount order (later mounts cover earlier ones):

1. ``/`` read-only; a fresh ``/dev`` and ``/proc`` (the pid namespace's own);
2. ``/tmp`` is the fire's private temp folder (shared by its commands, so ``/tmp/x`` written by one command is
   there for the next), and paths under the real ``/tmp`` that must stay visible are bound back read-only;
3. the writable paths bound read-write, then the read-only holes inside them (the workspace's ``.git`` file,
   the worktree's ``commondir``/``gitdir``): a mount point cannot be written, renamed or deleted;
4. secrets covered: an empty tmpfs over a folder, ``/dev/null`` over a file or socket.

Namespaces: pid, ipc, uts, and net when the network is off (a loopback-only network: local test servers still
work). ``--die-with-parent``: the sandbox dies with the runtime, and with bwrap itself, which exits when the
command's first process ends (so a ``setsid`` double-fork ends just after its command), ``--new-session`` (no ``TIOCSTI`` into the runtime's terminal) and **always** ``--cap-drop ALL``: run as
root, bwrap keeps the capabilities inside, and a sandboxed process could remount ``/`` read-write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from always_on.core.sandbox._sys import LINUX
from always_on.core.sandbox.rules import SandboxRules

TMP = Path("/tmp")
# Guards that tests prove one by one (removing one must make an escape test fail).
GUARD_FLAGS = ("--cap-drop", "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session")


def find_bwrap() -> str | None:
    return shutil.which("bwrap") if LINUX else None


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def bwrap_prefix(rules: SandboxRules, bwrap: str, *, omit: frozenset[str] = frozenset()) -> list[str]:
    """The bwrap command line up to ``--`` for these rules. ``omit`` drops guard flags (tests only)."""
    args = [
        bwrap,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--bind",
        str(rules.temp_dir),
        str(TMP),
    ]
    bound: list[Path] = []
    for path in sorted(rules.readable, key=lambda p: len(p.parts)):
        if _under(path, TMP) and not any(_under(path, b) for b in bound):
            args += ["--ro-bind", str(path), str(path)]
            bound.append(path)
    for path in sorted(rules.writable, key=lambda p: len(p.parts)):
        if path == rules.temp_dir:
            continue  # already at /tmp
        args += ["--bind", str(path), str(path)]
        bound.append(path)
    for path in rules.read_only:
        if os.path.lexists(path):
            args += ["--ro-bind", str(path), str(path)]
    for path in rules.hidden:
        if _under(path, TMP) and not any(_under(path, b) for b in bound):
            continue  # already invisible behind the private /tmp
        if path.is_dir() and not path.is_symlink():
            args += ["--tmpfs", str(path), "--remount-ro", str(path)]
        else:
            args += ["--ro-bind", "/dev/null", str(path)]
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not rules.network:
        args.append("--unshare-net")
    args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--setenv", "TMPDIR", str(TMP)]
    return _omit(args, omit)


def _omit(args: list[str], omit: frozenset[str]) -> list[str]:
    if not omit:
        return args
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in omit:
            skip = arg == "--cap-drop"  # its value (ALL) goes too
        else:
            out.append(arg)
    return out


@cache
def version(bwrap: str) -> str | None:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    return out.stdout.strip().removeprefix("bubblewrap ").strip() or None

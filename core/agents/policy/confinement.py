"""Where paths may lead: the workspace (read and write) and the folders a phase may also read.

Every path a command or a file request names is resolved (`..`, symlinks, `~`, globs) before it is judged, so a
link or a `..` cannot lead outside; a symlink loop resolves to a path outside every root and is refused.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import os
import re
from collections.abc import Sequence
from pathlib import Path

from always_on.core.agents.policy.decision import deny
from always_on.core.agents.policy.programs import PYTHON_TOOLS, canonical_name, trusted_program_dirs
from always_on.core.agents.policy.secret_paths import secret_reason
from always_on.core.agents.policy.words import literal_prefix
from always_on.core.agents.shell_parse import Word

MAX_GLOB_MATCHES = 2_000

Cwds = frozenset[Path]
_UNRESOLVABLE = Path("/nonexistent/always-on/unresolvable")


def resolve_path(path: Path) -> Path:
    """Follow `..` and symlinks; a symlink loop resolves to a path outside every root, so it is refused."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return _UNRESOLVABLE


class Confinement:
    """The roots of one policy, and why a path falls outside them (None when it does not)."""

    def __init__(self, workspace: Path, *, writable: bool, extra_read_roots: Sequence[Path]) -> None:
        self.workspace = Path(workspace).expanduser().resolve()
        self.writable = writable
        self.extra_read_roots = tuple(Path(r).expanduser().resolve() for r in extra_read_roots)
        self.read_roots = (self.workspace, *self.extra_read_roots)
        self.cwd_roots = self.read_roots if not writable else (self.workspace,)
        self.program_dirs = trusted_program_dirs()

    @staticmethod
    def absolute(path: str | Path, cwd: Path) -> Path:
        return Path(os.path.join(cwd, os.path.expanduser(str(path))))

    def _where(self, roots: Sequence[Path]) -> str:
        return "the workspace" if len(roots) == 1 else "the workspace and the folders it may read"

    def read_problem(self, path: Path, shown: str) -> str | None:
        if os.path.normpath(path) in ("/dev/null", "/dev/stdin", "/dev/zero", "/dev/urandom", "/dev/random"):
            return None
        resolved = resolve_path(path)
        secret = secret_reason(path) or secret_reason(resolved)
        if secret:
            return f"`{shown}` looks like a secret ({secret})"
        if not any(resolved.is_relative_to(root) for root in self.read_roots):
            via = f" (it resolves to `{resolved}`)" if resolved != Path(os.path.normpath(path)) else ""
            return f"`{shown}` is outside {self._where(self.read_roots)}{via}"
        return None

    def write_problem(self, path: Path, shown: str, *, delete: bool = False) -> str | None:
        if os.path.normpath(path) in ("/dev/null", "/dev/stdout", "/dev/stderr"):
            return None
        if not self.writable:
            return f"this phase is read-only: writing `{shown}` is not allowed"
        resolved = resolve_path(path)
        if delete and not shown.endswith("/") and path.name not in ("", ".", ".."):
            resolved = (
                resolve_path(path.parent) / path.name
            )  # `rm link` removes the link, not what it points at
        if not resolved.is_relative_to(self.workspace):
            via = f" (it resolves to `{resolved}`)" if resolved != Path(os.path.normpath(path)) else ""
            return f"`{shown}` is outside the workspace{via}"
        rel = resolved.relative_to(self.workspace)
        if ".git" in rel.parts:
            return f"`{shown}` is inside `.git` (the repository's own data)"
        if delete and rel == Path("."):
            return f"`{shown}` is the workspace itself"
        return None

    def cwd_problem(self, path: Path, shown: str) -> str | None:
        resolved = resolve_path(path)
        if not any(resolved.is_relative_to(root) for root in self.cwd_roots):
            return f"`{shown}` is outside {self._where(self.cwd_roots)}"
        if secret_reason(resolved):
            return f"`{shown}` looks like a secret folder"
        return None

    def word_paths(self, word: Word, cwd: Path) -> list[tuple[str, Path]]:
        """The paths a shell word names when run in `cwd`: itself, or for a glob its base folder and matches."""
        if not word.static:
            deny(f"`{word.value}` is only known at run time, so the path it names cannot be checked")
        text = word.value
        if word.has_tilde and not re.fullmatch(r"~([A-Za-z_][A-Za-z0-9_.-]*)?", text.partition("/")[0]):
            deny(f"`{text}`: `~+`/`~-` name folders only known at run time")
        if not word.has_glob:
            if word.has_tilde:
                head, sep, tail = text.partition("/")
                return [(text, Path(os.path.join(cwd, os.path.expanduser(head) + sep + tail)))]
            return [(text, Path(os.path.join(cwd, text)))]
        pattern = word.glob_pattern
        static_prefix = literal_prefix(word)
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
                deny(f"the glob `{text}` can match `..` (the parent folder)")
        base = Path(
            os.path.join(cwd, static_prefix.rpartition("/")[0] or ("/" if text.startswith("/") else "."))
        )
        if os.path.isabs(pattern):
            matches = [Path(m) for m in globmod.glob(pattern)]
        else:
            matches = [cwd / m for m in globmod.glob(pattern, root_dir=cwd)]
        if len(matches) > MAX_GLOB_MATCHES:
            deny(f"the glob `{text}` matches too many files to check")
        return [(text, base)] + [(str(m), m) for m in matches]

    def program(self, name: str, call_cwds: Cwds) -> str:
        """The identity of a program given by path: `/usr/bin/git` is git; `./git` is a workspace file."""
        expanded = os.path.expanduser(name)
        python_tool = canonical_name(Path(expanded).name) in PYTHON_TOOLS
        venv_layout = Path(expanded).parent.name in ("bin", "Scripts")
        for cwd in call_cwds:
            path = Path(os.path.join(cwd, expanded))
            resolved_parent = resolve_path(path.parent)
            inside = any(resolved_parent.is_relative_to(r) for r in self.read_roots)
            if inside:
                if not (python_tool and venv_layout):
                    # guard: policy-no-program-from-the-workspace
                    deny(f"`{name}` runs a file from the workspace, whose content cannot be checked")
            elif not os.path.isabs(expanded):
                deny(f"`{name}` runs a program by relative path")
            elif Path(os.path.normpath(path.parent)) not in self.program_dirs:
                # guard: policy-programs-from-system-folders
                deny(f"`{name}` is not in a system program folder")
        return Path(expanded).name

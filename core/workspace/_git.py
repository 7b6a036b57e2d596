"""Running git for the workspace layer: one place for the flags every invocation needs.

Why: the user's configuration must not change what the runtime does (hooks, signing, colour, diff prefixes,
fsmonitor, auto-gc), read-only commands must never rewrite the user's index (GIT_OPTIONAL_LOCKS=0), paths are
always literal (a file named ``a[1].py`` is not a glob) and nothing may prompt or open an editor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, NamedTuple

from git import Git
from git.exc import GitCommandError

_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.quotePath=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "color.ui=false",
    "diff.noprefix=false",
    "diff.mnemonicPrefix=false",
    "diff.external=",
    "gc.auto=0",
    "maintenance.auto=false",
    "advice.detachedHead=false",
)
_SAFE_ENV = {
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "true",
    "GIT_PAGER": "cat",
    "GIT_LITERAL_PATHSPECS": "1",
}
RUNTIME_IDENTITY = {
    "GIT_AUTHOR_NAME": "always-on",
    "GIT_AUTHOR_EMAIL": "always-on@localhost",
    "GIT_COMMITTER_NAME": "always-on",
    "GIT_COMMITTER_EMAIL": "always-on@localhost",
}
# Patches the runtime builds for machines: exact blob ids (for three-way), binary data, no rename guessing.
PATCH_ARGS = (
    "-p",
    "--binary",
    "--full-index",
    "--no-renames",
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
)


class GitResult(NamedTuple):
    rc: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace").strip()


def run(
    cwd: Path | str,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    stdin: IO[bytes] | None = None,
    config: tuple[str, ...] = (),
) -> GitResult:
    """Run ``git -C cwd args`` through GitPython; raise GitCommandError on failure when ``check``.

    ``-C`` is explicit because GitPython silently falls back to the process's cwd when cwd is missing.
    """
    command = ["git", "-C", str(cwd)]
    for item in (*_SAFE_CONFIG, *config):
        command += ["-c", item]
    command += list(args)
    status, out, err = Git(str(cwd) if os.path.isdir(cwd) else None).execute(
        command,
        istream=stdin,
        env={**_SAFE_ENV, **(env or {})},
        with_extended_output=True,
        with_exceptions=False,
        stdout_as_string=False,
        strip_newline_in_stdout=False,
    )
    if check and status != 0:
        raise GitCommandError(command, status, err, out)
    return GitResult(status, out or b"", err or "")


def text(cwd: Path | str, *args: str, **kwargs) -> str:
    return run(cwd, *args, **kwargs).text


def head(cwd: Path | str) -> str:
    return text(cwd, "rev-parse", "--verify", "HEAD^{commit}")


def ok(cwd: Path | str, *args: str, **kwargs) -> bool:
    return run(cwd, *args, check=False, **kwargs).rc == 0


def zsplit(data: bytes) -> list[str]:
    """Split NUL-terminated git output into paths (git paths are bytes; undecodable ones are kept lossless)."""
    return [item.decode("utf-8", "surrogateescape") for item in data.split(b"\0") if item]


def status(cwd: Path | str, *args: str) -> list[tuple[str, str, str | None]]:
    """``git status --porcelain -z`` as (XY, path, original path of a rename or None); never writes the index."""
    tokens = zsplit(run(cwd, "status", "--porcelain=v1", "-z", *args).out)
    entries, i = [], 0
    while i < len(tokens):
        xy, path = tokens[i][:2], tokens[i][3:]
        orig = None
        if "R" in xy or "C" in xy:
            orig = tokens[i + 1] if i + 1 < len(tokens) else None
            i += 1
        entries.append((xy, path, orig))
        i += 1
    return entries


def error_text(exc: BaseException) -> str:
    """The useful line(s) of a git failure, for messages and dependency reasons."""
    if isinstance(exc, GitCommandError):
        stderr = (exc.stderr or "").strip()
        for prefix in ("stderr: '", "stderr:'"):
            if stderr.startswith(prefix):
                stderr = stderr[len(prefix) :].rstrip("'")
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return "; ".join(lines[-3:]) or f"git exited with status {exc.status}"
    return str(exc)


def resolve(path: Path | str) -> Path:
    return Path(path).expanduser().resolve()


def is_within(child: Path, parent: Path) -> bool:
    """True when child is parent or below it (both already resolved)."""
    return child == parent or parent in child.parents


class Scratch:
    """A throw-away folder with a private index: index-only git work that never touches a checkout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0

    def index_env(self, name: str = "index") -> dict[str, str]:
        return {"GIT_INDEX_FILE": str(self.root / name)}

    def write(self, data: bytes, suffix: str = ".patch") -> Path:
        self._count += 1
        target = self.root / f"{self._count}{suffix}"
        target.write_bytes(data)
        return target


@contextlib.contextmanager
def scratch_space(prefix: str = "always-on-scratch-") -> Iterator[Scratch]:
    """Temporary scratch folder, removed on every exit path (success, git failure, any exception)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield Scratch(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def rmtree(path: Path) -> None:
    """Remove a tree even when an agent left read-only files or folders in it."""

    def _retry(func, target, _exc) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
        func(target)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=_retry)

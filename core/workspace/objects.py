"""A workspace's git as the sandbox sees it: a private object directory, and the exact paths a commit needs.

Why: a worktree shares the user's repository. Given write access to ``.git/objects``, code the agent runs could
delete or corrupt the user's objects or write ``objects/info/alternates``; given ``.git/config`` or ``hooks``, it
could add a remote or a hook. So a confined workspace writes its new objects into a folder of its own, inside the
worktree's own git dir (``GIT_OBJECT_DIRECTORY``), and reads the user's objects as an alternate, read-only
(``GIT_ALTERNATE_OBJECT_DIRECTORIES``). The runtime imports the new objects into the user's repository afterwards
(``import_private_objects``: content-addressed, re-hashed by ``index-pack``, so nothing in the private folder can
corrupt the user's store), before any runtime git command that needs them (commit, set-aside, archive).

What a commit on the workspace branch writes, and so what the sandbox leaves writable (``WorkspaceGit``):
the workspace; the worktree's git dir (HEAD, index, logs, per-worktree refs, the private objects); the folder of
the branch's ref and of its reflog (``refs/heads/always-on/``, ``logs/refs/heads/always-on/``). Read-only holes:
the workspace's ``.git`` file and the worktree's ``commondir`` and ``gitdir``, which tell git (and so the runtime's
own git commands) which repository this is. A snapshot workspace has a repository of its own inside the workspace;
its ``.git/config`` is the hole there (a ``filter``/``fsmonitor`` entry would run code in the runtime's git).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import _git
from always_on.core.workspace._git import resolve
from always_on.core.workspace.providers import WorkspaceInfo

PRIVATE_OBJECTS = (
    "objects"  # inside the worktree's own git dir (git itself reads objects from the common dir)
)
_HEX = re.compile(r"^[0-9a-f]+$")
_UNPACK_LIMIT = 100  # like git's transfer.unpackLimit: fewer objects are stored loose, more as one pack


class WorkspaceGit(BaseModel):
    """Where one workspace's git state lives, found on the host from the user's repository (not from the agent)."""

    strategy: Literal["worktree", "snapshot"]
    workspace: Path
    git_dir: (
        Path  # the worktree's own git dir (<common>/worktrees/<name>), or <workspace>/.git for a snapshot
    )
    common_dir: Path  # the user's repository (worktree) or <workspace>/.git (snapshot)
    branch: str | None = None

    @property
    def private_objects(self) -> Path | None:
        return self.git_dir / PRIVATE_OBJECTS if self.strategy == "worktree" else None

    def env(self) -> dict[str, str]:
        """Environment for every process that may run git in the workspace (agent, terminals)."""
        if self.private_objects is None:
            return {}
        return {
            "GIT_OBJECT_DIRECTORY": str(self.private_objects),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(self.common_dir / "objects"),
        }

    def writable(self) -> list[Path]:
        """What a commit on the workspace branch writes."""
        if self.strategy == "snapshot":
            return [self.workspace]
        paths = [self.workspace, self.git_dir]
        if (self.common_dir / "reftable").is_dir():  # reftable: one stack for all refs (no per-branch folder)
            return [*paths, self.common_dir / "reftable"]
        if self.branch:
            ref = Path("refs/heads", self.branch)
            paths += [self.common_dir / ref.parent, self.common_dir / "logs" / ref.parent]
        return paths

    def read_only(self) -> list[Path]:
        """Files inside writable paths that must not change (bubblewrap binds them read-only)."""
        if self.strategy == "snapshot":
            return [self.git_dir / "config"]
        return [self.workspace / ".git", self.git_dir / "commondir", self.git_dir / "gitdir"]

    def guarded(self) -> list[Path]:
        """Files the host re-checks after each command: the read-only ones, plus ones that must stay absent."""
        if self.strategy == "snapshot":
            return [
                *self.read_only(),
                self.git_dir / "commondir",
                self.git_dir / "objects" / "info" / "alternates",
            ]
        return [*self.read_only(), self.git_dir / "config.worktree"]

    def readable(self) -> list[Path]:
        """Paths outside the workspace that git in the workspace must be able to read."""
        return [self.common_dir] if self.strategy == "worktree" else []


def workspace_git(ws: WorkspaceInfo, project: Path | None = None, *, create: bool = True) -> WorkspaceGit:
    """The git layout of a workspace; ``create`` makes the private object folder and the branch's ref folders.

    With ``project``, the repository is the project's (trusted: the agent cannot write it) and the workspace's
    ``.git`` file must agree with it; without, it is read from the workspace's ``.git`` file and cross-checked.
    Raises workspace_unsafe when the two disagree (the files were tampered with).
    """
    path = resolve(ws.path)
    if ws.strategy == "snapshot":
        return WorkspaceGit(
            strategy="snapshot", workspace=path, git_dir=path / ".git", common_dir=path / ".git"
        )
    dot_git = path / ".git"
    try:
        pointer = dot_git.read_text().strip()
    except OSError as exc:
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_UNSAFE, f"the workspace {path} has no readable .git file: {exc}"
        ) from exc
    if not pointer.startswith("gitdir: "):
        raise AlwaysOnError(ErrorCode.WORKSPACE_UNSAFE, f"{dot_git} is not a worktree's .git file")
    git_dir = resolve(pointer[len("gitdir: ") :])
    if project is not None:
        common = resolve(_git.text(project, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    else:
        try:
            common = resolve(git_dir / (git_dir / "commondir").read_text().strip())
        except OSError as exc:
            raise AlwaysOnError(
                ErrorCode.WORKSPACE_UNSAFE, f"the worktree git dir {git_dir} has no commondir: {exc}"
            ) from exc
    problems = []
    if git_dir.parent != common / "worktrees":
        problems.append(f"{dot_git} points to {git_dir}, not into {common / 'worktrees'}")
    else:
        try:
            back = resolve((git_dir / "gitdir").read_text().strip())
            if back != dot_git:
                problems.append(f"{git_dir / 'gitdir'} points to {back}, not to {dot_git}")
            if resolve(git_dir / (git_dir / "commondir").read_text().strip()) != common:
                problems.append(f"{git_dir / 'commondir'} does not name {common}")
        except OSError as exc:
            problems.append(f"{git_dir} is incomplete: {exc}")
    if problems:
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_UNSAFE, f"the git files of workspace {path} disagree: {'; '.join(problems)}"
        )
    layout = WorkspaceGit(
        strategy="worktree", workspace=path, git_dir=git_dir, common_dir=common, branch=ws.branch
    )
    if create:
        assert layout.private_objects is not None
        for folder in (
            layout.private_objects / "info",
            layout.private_objects / "pack",
            *layout.writable()[2:],
        ):
            folder.mkdir(parents=True, exist_ok=True)
    return layout


def sync_private_objects(ws: WorkspaceInfo) -> ImportResult:
    """``import_private_objects`` for a worktree workspace that has a private object folder; a no-op otherwise."""
    path = resolve(ws.path)
    if ws.strategy != "worktree" or not (path / ".git").is_file():
        return ImportResult()
    return import_private_objects(workspace_git(ws, create=False))


class ImportResult(BaseModel):
    imported: int = 0  # objects new to the user's repository
    cleared: int = 0  # private objects removed because the user's repository now has them


def import_private_objects(ws: WorkspaceInfo | WorkspaceGit) -> ImportResult:
    """Copy the objects the workspace wrote privately into the user's repository; clear those from the private
    folder. Call after each phase, and before runtime git commands that read the workspace's new commits.

    Safe while an agent still runs: only objects the user's repository verifiably has are removed from the private
    folder, and the workspace reads the user's objects as an alternate, so nothing it references goes missing.
    """
    layout = ws if isinstance(ws, WorkspaceGit) else workspace_git(ws, create=False)
    private = layout.private_objects
    if private is None or not private.is_dir():
        return ImportResult()
    loose, packs = _private_objects(private, layout.common_dir)
    names = sorted(set(loose) | {name for names in packs.values() for name in names})
    if not names:
        return ImportResult()
    git_dir = f"--git-dir={layout.common_dir}"
    missing = _missing(layout.common_dir, names)
    if missing:
        (private / "info" / "alternates").unlink(missing_ok=True)  # read only the private objects themselves
        pack = _git.run(
            layout.common_dir,
            git_dir,
            "pack-objects",
            "--stdout",
            "-q",
            env={"GIT_OBJECT_DIRECTORY": str(private)},
            stdin=_stdin("\n".join(missing) + "\n"),
        ).out
        receive = ("unpack-objects", "-q") if len(missing) < _UNPACK_LIMIT else ("index-pack", "--stdin")
        _git.run(layout.common_dir, git_dir, *receive, stdin=_stdin(pack))
        still = _missing(layout.common_dir, missing)
        if still:  # pragma: no cover - git reported success
            raise AlwaysOnError(
                ErrorCode.EXECUTION_FAILED,
                f"{len(still)} objects of {layout.workspace} could not be imported",
            )
    cleared = 0
    for file in loose.values():
        try:
            file.unlink()
            cleared += 1
        except OSError:
            pass
    for idx, pack_names in packs.items():
        for suffix in (".pack", ".rev", ".bitmap", ".keep", ".promisor", ".mtimes", ".idx"):
            idx.with_suffix(suffix).unlink(missing_ok=True)
        cleared += len(pack_names)
    return ImportResult(imported=len(missing), cleared=cleared)


def _private_objects(private: Path, common: Path) -> tuple[dict[str, Path], dict[Path, list[str]]]:
    loose: dict[str, Path] = {}
    for folder in private.iterdir():
        if len(folder.name) == 2 and _HEX.match(folder.name) and folder.is_dir():
            for file in folder.iterdir():
                if _HEX.match(file.name) and len(file.name) in (38, 62):
                    loose[folder.name + file.name] = file
    packs: dict[Path, list[str]] = {}
    for idx in sorted((private / "pack").glob("pack-*.idx")):
        with idx.open("rb") as fh:
            out = _git.run(common, f"--git-dir={common}", "show-index", stdin=fh).text
        packs[idx] = [line.split()[1] for line in out.splitlines() if len(line.split()) >= 2]
    return loose, packs


def _missing(common: Path, names: list[str]) -> list[str]:
    out = _git.run(
        common,
        f"--git-dir={common}",
        "cat-file",
        "--batch-check=%(objectname)",
        stdin=_stdin("\n".join(names) + "\n"),
    ).text
    return [line.split()[0] for line in out.splitlines() if line.endswith(" missing")]


def _stdin(data: str | bytes):
    """A readable file object for GitPython's istream."""
    fh = tempfile.TemporaryFile()
    fh.write(data.encode() if isinstance(data, str) else data)
    fh.seek(0)
    return fh

"""Archive and cleanup: a finished or abandoned cycle's workspace goes away without losing work (§2 Archive).

The worktree folder and its registration in the user's repository are removed (so ``git worktree list`` shows
no leftover); the cycle branch is deleted only when none of its commits is left unapplied, otherwise it is kept
and named. A snapshot has no branch in the user's repository: its unapplied commits are kept as a git bundle
beside the removed folder (``git clone <bundle>`` gets them back). Attempts set aside under
``refs/always-on/attempts/*`` are not branches and are never deleted: in a worktree's repository they simply stay;
a snapshot that holds any is bundled too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from git.exc import GitCommandError

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import _git
from always_on.core.workspace._git import resolve

if TYPE_CHECKING:
    from always_on.core.workspace.providers import WorkspaceInfo

BRANCH_REF_PREFIX = "refs/heads/always-on/"
ATTEMPTS_REFS = "refs/always-on/attempts/"


def unapplied_commits(
    ws: WorkspaceInfo, applied_shas: Iterable[str], *, project: Path | None = None
) -> list[str]:
    """Commits on the cycle branch since the base that are not among the applied plans' commits, oldest first.

    Non-empty means archiving must keep the branch (or the snapshot's bundle). A worktree whose folder is gone is
    read through ``project`` (its repository keeps the branch); a snapshot whose folder is gone holds nothing.
    """
    path = resolve(ws.path)
    if ws.strategy == "snapshot":
        if not (path / ".git").is_dir():
            return []
        repo, tip = path, BRANCH_REF_PREFIX + path.name
        if not _git.ok(repo, "rev-parse", "--verify", "-q", tip):
            tip = "HEAD"
    else:
        if path.is_dir() and _git.ok(path, "rev-parse", "--git-dir"):
            repo = path
            _sync_private_objects(ws)
        elif project is not None:
            repo = resolve(project)
        else:
            raise AlwaysOnError(
                ErrorCode.PROJECT_NOT_FOUND,
                f"the workspace folder {path} is gone; the project is needed to read branch {ws.branch}",
            )
        tip = f"refs/heads/{ws.branch}"
        if not ws.branch or not _git.ok(repo, "rev-parse", "--verify", "-q", tip):
            return []
    applied = set(applied_shas)
    try:
        shas = _git.text(repo, "rev-list", "--reverse", f"{ws.base_commit}..{tip}").split()
    except GitCommandError:  # the base is unknown here: the tip cannot be shown to be applied, so it counts
        shas = [_git.text(repo, "rev-parse", f"{tip}^{{commit}}")]
    return [sha for sha in shas if sha not in applied]


def remove_workspace(project: Path, ws: WorkspaceInfo, *, unapplied_commits: bool) -> str | None:
    """Remove the workspace; return the kept branch (worktree) or bundle path (snapshot), else None."""
    path, project = resolve(ws.path), resolve(project)
    if _git.is_within(path, project) or _git.is_within(project, path):
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_UNSAFE, f"refusing to remove {path}: it overlaps the project folder {project}"
        )
    if ws.strategy == "snapshot":
        kept = None
        if (path / ".git").is_dir() and (unapplied_commits or _has_attempts(path)):
            bundle = path.parent / f"{path.name}.bundle"
            _git.run(path, "bundle", "create", "-q", str(bundle), "--all")
            kept = str(bundle)
        _git.rmtree(path)
        return kept
    is_repo = _git.ok(project, "rev-parse", "--git-dir")
    if is_repo and path.is_dir():
        _sync_private_objects(ws)  # the worktree's git dir, private objects included, goes with the worktree
    if is_repo:
        _git.run(project, "worktree", "remove", "-f", "-f", str(path), check=False)
    if path.exists() or path.is_symlink():
        _git.rmtree(path)
    if not is_repo:
        return None
    prune_stale_worktrees(project)
    if not ws.branch or not _git.ok(project, "rev-parse", "--verify", "-q", f"refs/heads/{ws.branch}"):
        return None
    if unapplied_commits:
        return ws.branch
    _git.run(project, "branch", "-D", "-q", ws.branch)
    return None


def _sync_private_objects(ws: WorkspaceInfo) -> None:
    from always_on.core.workspace.objects import sync_private_objects  # objects imports providers imports us

    sync_private_objects(ws)


def _has_attempts(repo: Path) -> bool:
    return bool(_git.text(repo, "for-each-ref", "--count=1", "--format=%(refname)", ATTEMPTS_REFS))


def prune_stale_worktrees(project: Path, *, only_ours: bool = True) -> list[str]:
    """Drop registrations of worktrees whose folder is gone; by default only always-on's own (not locked ones).

    Why not plain ``git worktree prune``: a user's worktree on an unplugged drive is also "missing", and is theirs.
    """
    project = resolve(project)
    if not _git.ok(project, "rev-parse", "--git-dir"):
        return []
    if not only_ours:
        before = _worktrees(project)
        _git.run(project, "worktree", "prune")
        after = {entry["worktree"] for entry in _worktrees(project)}
        return [entry["worktree"] for entry in before if entry["worktree"] not in after]
    pruned = []
    for entry in _worktrees(project)[1:]:
        ours = entry.get("branch", "").startswith(BRANCH_REF_PREFIX)
        if ours and "prunable" in entry and "locked" not in entry:
            if _git.ok(project, "worktree", "remove", "-f", "-f", entry["worktree"]):
                pruned.append(entry["worktree"])
    return pruned


def _worktrees(project: Path) -> list[dict[str, str]]:
    """``git worktree list --porcelain -z`` as one dict per worktree (main worktree first)."""
    entries: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for field in (
        _git.run(project, "worktree", "list", "--porcelain", "-z")
        .out.decode("utf-8", "surrogateescape")
        .split("\0")
    ):
        if not field:
            if current:
                entries.append(current)
            current = {}
            continue
        key, _, value = field.partition(" ")
        current[key] = value
    if current:
        entries.append(current)
    return entries

"""Leftovers of a crash that no record refers to: workspaces, branches and attempts, pruned at the next fire (§3).

A process killed while ``git worktree add`` runs leaves a worktree *locked* ("initializing"), its branch and its
files, which ``git worktree prune`` never removes; killed before the cycle is recorded, a finished worktree; killed
while a snapshot is copied, a half-made folder. None of them holds work: they are removed. What holds commits
nobody applied (git says so: commits not reachable from the user's HEAD, branches or tags), or uncommitted files
in a finished worktree, is kept and reported instead — nothing is ever silently lost. Attempts set aside under
``refs/always-on/attempts/<plan>/<run>`` hold unapplied work by nature: one whose plan no record knows is reported.

Only what lies under the project's own folder of the workspace base, and only branches ``always-on/*``, are
considered: the user's own worktrees and branches are never touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from always_on.core import text
from always_on.core.workspace import _git
from always_on.core.workspace._git import resolve
from always_on.core.workspace.archive import (
    ATTEMPTS_REFS,
    BRANCH_REF_PREFIX,
    _worktrees,
    prune_stale_worktrees,
)


def our_branches(project: Path) -> list[str]:
    """The ``always-on/*`` branches of the project's repository (none when it is not one)."""
    found = _git.run(project, "for-each-ref", "--format=%(refname)", BRANCH_REF_PREFIX, check=False)
    if found.rc != 0:
        return []
    return [ref.removeprefix("refs/heads/") for ref in found.text.split()]


def unapplied_count(repo: Path, tip: str) -> int:
    """Commits of ``tip`` that none of the user's refs (HEAD, branches other than ours, tags) contains.

    A tip that is no commit (a worktree killed before git gave it one: HEAD is still all zeros) holds nothing.
    """
    if not tip or not _git.ok(repo, "rev-parse", "--verify", "-q", f"{tip}^{{commit}}"):
        return 0
    found = _git.run(
        repo,
        "rev-list",
        "--count",
        tip,
        "--not",
        "--exclude=always-on/*",  # patterns for --branches are relative to refs/heads/
        "--branches",
        "--tags",
        *(["HEAD"] if _git.ok(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}") else []),
        check=False,
    )
    return int(found.text) if found.rc == 0 and found.text.isdigit() else 1  # unknown: count it as work


def clear_stale_locks(project: Path, root: Path, *, shared_after: float = 10.0) -> list[str]:
    """Lock files a killed ``git`` leaves behind, which make every later git command on them fail.

    Those in always-on's own namespace (``refs/heads/always-on/``, ``refs/always-on/``, the admin folders of its
    worktrees) are removed: the caller holds the fire lock, so no git command of ours can be running, and no one
    else writes there. The repository's shared ones (``packed-refs.lock``) are the user's too: removed only once
    older than any live git holds them (``shared_after`` seconds), else reported.
    """
    import time

    found = _git.run(project, "rev-parse", "--path-format=absolute", "--git-common-dir", check=False)
    if found.rc != 0:
        return []
    common = Path(found.text)
    stale: list[Path] = []
    for folder in ("refs/heads/always-on", "refs/always-on", "logs/refs/heads/always-on"):
        if (common / folder).is_dir():
            stale += (common / folder).rglob("*.lock")
    admin_root = common / "worktrees"
    if admin_root.is_dir():
        for admin in admin_root.iterdir():
            if _is_ours(admin, root):
                stale += admin.glob("*.lock")
    for lock in stale:
        lock.unlink(missing_ok=True)
    notes = [f"removed {len(stale)} lock file(s) a killed git left in always-on's own refs"] if stale else []
    for name in ("packed-refs.lock", "packed-refs.new"):
        shared = common / name
        try:
            age = time.time() - shared.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > shared_after:
            shared.unlink(missing_ok=True)
            notes.append(f"removed {shared}, left {age:.0f} s ago by a git that was killed")
        else:
            notes.append(f"{shared} exists (a git is running, or was killed); if none runs, remove it")
    return notes


def _is_ours(admin: Path, root: Path) -> bool:
    """Is this worktree admin folder one of always-on's (its branch is ours, or it lives under our base)?"""
    try:
        if (admin / "HEAD").read_text(errors="replace").startswith("ref: " + BRANCH_REF_PREFIX):
            return True
        return _git.is_within(resolve(Path((admin / "gitdir").read_text().strip()).parent), resolve(root))
    except OSError:
        return False


def prune_orphans(
    project: Path,
    root: Path,
    *,
    live_paths: set[Path],
    known_branches: set[str],
    plan_exists: Callable[[str], bool],
) -> list[str]:
    """Remove what no record refers to under ``root`` (the project's workspace folder); notes for the user.

    ``live_paths``: workspaces of the project's open cycles; ``known_branches``: branches a record names.
    """
    project, root = resolve(project), resolve(root)
    notes: list[str] = []
    is_repo = _git.ok(project, "rev-parse", "--git-dir") and (project / ".git").exists()
    registered: set[Path] = set()
    checked_out: set[str] = set()
    if is_repo:
        for entry in _worktrees(project)[1:]:
            path = resolve(entry["worktree"])
            branch = entry.get("branch", "").removeprefix("refs/heads/")
            if branch:
                checked_out.add(branch)
            if not _git.is_within(path, root) or path == root:
                continue
            registered.add(path)
            if path in live_paths:
                continue
            notes += _prune_worktree(project, path, branch, entry)
        prune_stale_worktrees(project)
    if root.is_dir():
        for child in sorted(root.iterdir()):
            path = resolve(child)
            if not child.is_dir() or child.is_symlink() or path in live_paths or path in registered:
                continue
            notes += _prune_folder(path)
    if is_repo:
        for branch in our_branches(project):
            if branch in known_branches or branch in checked_out:
                continue
            count = unapplied_count(project, f"refs/heads/{branch}")
            if count:
                notes.append(
                    f"kept branch {branch}: no record refers to it, but it holds {count} commit(s) nobody applied"
                )
            else:
                _git.run(project, "branch", "-D", "-q", branch, check=False)
                notes.append(f"removed branch {branch}, left by an interrupted fire (no work on it)")
        refs = _git.run(
            project, "for-each-ref", "--format=%(refname)", ATTEMPTS_REFS, check=False
        ).text.split()
        for ref in refs:
            plan_id = ref[len(ATTEMPTS_REFS) :].split("/", 1)[0]
            if not plan_exists(plan_id):
                notes.append(
                    f"kept {ref}: it holds the set-aside work of plan {plan_id}, which no record knows"
                )
    return notes


def _prune_worktree(project: Path, path: Path, branch: str, entry: dict[str, str]) -> list[str]:
    initializing = entry.get("locked", "").strip() == "initializing"  # killed inside `git worktree add`
    tip = f"refs/heads/{branch}" if branch else entry.get("HEAD", "")
    count = unapplied_count(project, tip)
    dirty = False
    if not initializing and path.is_dir() and "prunable" not in entry:
        status = _git.run(path, "status", "--porcelain", "--untracked-files=normal", check=False)
        dirty = status.rc != 0 or bool(status.out.strip())
    where = text.display(str(path))
    if count or dirty:
        what = f"{count} commit(s) nobody applied" if count else "uncommitted files"
        return [f"kept workspace {where}: no record refers to it, but it holds {what}"]
    if "locked" in entry:
        _git.run(project, "worktree", "unlock", str(path), check=False)
    _git.run(project, "worktree", "remove", "-f", "-f", str(path), check=False)
    if os.path.lexists(path):
        _git.rmtree(path)
    if branch:
        prune_stale_worktrees(project)
        _git.run(project, "branch", "-D", "-q", branch, check=False)
    how = "while it was being created" if initializing else "before it was recorded"
    return [
        f"removed workspace {where}"
        + (f" and branch {branch}" if branch else "")
        + f", left by a fire killed {how}"
    ]


def _prune_folder(path: Path) -> list[str]:
    """A folder under the workspace base that git does not know as a worktree: a snapshot, or half of one."""
    where = text.display(str(path))
    if (path / ".git").is_dir():
        commits = _git.run(path, "rev-list", "--count", "--all", check=False)
        count = int(commits.text) if commits.rc == 0 and commits.text.isdigit() else 0
        if count > 1:  # the first commit is the snapshot itself; later ones are plans' work
            return [f"kept snapshot {where}: no record refers to it, but it holds {count - 1} commit(s)"]
    _git.rmtree(path)
    return [f"removed {where}, a workspace left half-made by an interrupted fire"]

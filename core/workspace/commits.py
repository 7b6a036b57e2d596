"""Per-plan commits: after execution, whatever the agent left becomes known commits on the cycle branch (§2).

Why commits and not a saved diff: apply, dependency analysis and the report all work from exact commit ranges,
and commits the agent made itself are kept as they are. The runtime commits with its own identity, never runs the
user's hooks or signing, and marks each plan's end with a per-worktree ref so that the next plan's range is known
even when the caller does not pass ``before_head``.
"""

from __future__ import annotations

import os
from pathlib import Path

from git.exc import GitCommandError
from pydantic import BaseModel, Field

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import _git
from always_on.core.workspace.objects import sync_private_objects
from always_on.core.workspace.providers import WorkspaceInfo

# Per-worktree ref (refs/worktree/* is private to each worktree): where the last committed plan ended.
LAST_PLAN_REF = "refs/worktree/always-on/last-plan"


class CommitResult(BaseModel):
    before_head: str
    after_head: str
    commit_shas: list[str] = Field(default_factory=list)  # oldest first, the agent's own commits included
    dirty_after: bool = False  # always False when returned: a tree still dirty raises instead


def head_of(ws: WorkspaceInfo | Path | str) -> str:
    """The workspace's HEAD commit (record it before execution and pass it to commit_plan as before_head)."""
    return _git.head(_path(ws))


def commit_plan(
    ws: WorkspaceInfo, *, plan_id: str, run_id: str, title: str, before_head: str | None = None
) -> CommitResult:
    """Commit everything uncommitted (untracked too, .gitignore respected) and list the plan's commits.

    ``before_head`` is the HEAD when the plan started; without it, the end of the previous plan (or the cycle's
    base commit) is used. Raises workspace_dirty_after_commit when the tree is still dirty afterwards.
    """
    path = _path(ws)
    if not path.is_dir():
        raise AlwaysOnError(ErrorCode.EXECUTION_FAILED, f"the workspace folder {path} is gone")
    try:
        return _commit(ws, path, plan_id, run_id, title, before_head)
    except GitCommandError as exc:
        raise AlwaysOnError(
            ErrorCode.EXECUTION_FAILED, f"could not commit plan {plan_id} in {path}: {_git.error_text(exc)}"
        ) from exc


def _commit(
    ws: WorkspaceInfo, path: Path, plan_id: str, run_id: str, title: str, before_head: str | None
) -> CommitResult:
    sync_private_objects(ws)  # what the agent committed or staged in the workspace's private object folder
    if ws.branch:
        on = _git.run(path, "symbolic-ref", "-q", "HEAD", check=False).text
        if on != f"refs/heads/{ws.branch}":
            raise AlwaysOnError(
                ErrorCode.EXECUTION_FAILED,
                f"the workspace left its branch {ws.branch} (HEAD is now {on or 'detached'}); plan {plan_id} "
                "cannot be committed",
            )
    before = before_head or _last_plan_end(path) or ws.base_commit
    if not _git.ok(path, "merge-base", "--is-ancestor", before, "HEAD"):
        raise AlwaysOnError(
            ErrorCode.EXECUTION_FAILED,
            f"the workspace history was rewritten: {before[:12]} is no longer an ancestor of HEAD (plan {plan_id})",
        )
    _git.run(path, "add", "-A")
    embedded = _embedded_repositories(path)
    if embedded:
        _git.run(path, "reset", "-q", "--", *embedded)
    if not _git.ok(path, "diff", "--cached", "--quiet", "--no-ext-diff"):
        _git.run(
            path,
            "commit",
            "-q",
            "--no-verify",
            "--cleanup=whitespace",
            "-m",
            _message(title, plan_id, run_id),
            env=_git.RUNTIME_IDENTITY,
        )
    after = head_of(path)
    _git.run(path, "update-ref", LAST_PLAN_REF, after)
    shas = _git.text(path, "rev-list", "--reverse", f"{before}..{after}").split()
    left = _git.status(path, "--untracked-files=all")
    if left:
        files = sorted({entry[1] for entry in left})
        hint = f" (embedded git repositories cannot be committed: {', '.join(embedded)})" if embedded else ""
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_DIRTY_AFTER_COMMIT,
            f"the workspace is still dirty after committing plan {plan_id}: {', '.join(files[:10])}{hint}",
            files=files,
            before_head=before,
            after_head=after,
            commit_shas=shas,
        )
    return CommitResult(before_head=before, after_head=after, commit_shas=shas, dirty_after=False)


def submodule_files(ws: WorkspaceInfo | Path | str) -> dict[str, tuple[int, int]]:
    """Files inside the workspace's uninitialised submodule folders, with (size, mtime_ns).

    A worktree gets its submodules as empty folders; git records nothing written inside one (``git status`` and
    ``git add -A`` are silent about it), so such files would vanish from the plan without a word. Compare this
    before and after execution to say which ones the agent wrote.
    """
    path = _path(ws)
    raw = _git.run(path, "ls-files", "-s", "-z", check=False).out
    found: dict[str, tuple[int, int]] = {}
    for entry in _git.zsplit(raw):
        meta, _, name = entry.partition("\t")
        folder = path / name
        if not meta.startswith("160000 ") or not folder.is_dir() or (folder / ".git").exists():
            continue
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for file in files:
                full = Path(root) / file
                try:
                    info = full.lstat()
                except OSError:
                    continue
                found[full.relative_to(path).as_posix()] = (info.st_size, info.st_mtime_ns)
    return found


def _message(title: str, plan_id: str, run_id: str) -> str:
    subject = " ".join(title.split())[:72] or f"always-on plan {plan_id}"
    return f"{subject}\n\nAlways-On-Plan: {plan_id}\nAlways-On-Run: {run_id}\n"


def _last_plan_end(path: Path) -> str | None:
    result = _git.run(path, "rev-parse", "--verify", "-q", f"{LAST_PLAN_REF}^{{commit}}", check=False)
    return result.text if result.rc == 0 else None


def _embedded_repositories(path: Path) -> list[str]:
    """Newly staged gitlinks: a repository the agent cloned or created inside the workspace."""
    raw = _git.run(path, "diff", "--cached", "--raw", "-z", "--no-renames", "--no-ext-diff").out
    tokens = _git.zsplit(raw)
    return [
        tokens[i + 1]
        for i in range(0, len(tokens) - 1, 2)
        if tokens[i].split()[1] == "160000" and tokens[i].split()[0] != ":160000"
    ]


def _path(ws: WorkspaceInfo | Path | str) -> Path:
    return Path(ws.path if isinstance(ws, WorkspaceInfo) else ws)

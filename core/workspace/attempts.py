"""Setting a failed or interrupted attempt aside, so the next plan starts from a clean workspace (§2 Execution).

Why: whatever a failed plan left (its commits, uncommitted or untracked files) would otherwise be inherited by the
next plan and committed under its name. Nothing is thrown away: all of it is recorded under a ref that is not a
branch (``refs/always-on/attempts/<plan>/<run>``), in the workspace's repository (for a worktree that is the
user's repository, which is fine: such refs are never pushed and no branch list shows them). The leftovers are
committed through a private index with ``commit-tree``, so no checkout or index (the user's or the workspace's)
is touched before the workspace is reset.
"""

from __future__ import annotations

from pathlib import Path

from git.exc import GitCommandError

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import _git
from always_on.core.workspace.archive import ATTEMPTS_REFS as ATTEMPTS_REF_PREFIX
from always_on.core.workspace.commits import LAST_PLAN_REF
from always_on.core.workspace.objects import sync_private_objects
from always_on.core.workspace.providers import BRANCH_PREFIX, WorkspaceInfo

_NOT_HERE = ("refs/heads/", "refs/tags/", "refs/remotes/", "refs/worktree/", "refs/bisect/")


def attempt_ref(plan_id: str, run_id: str) -> str:
    """The conventional ref for one attempt of a plan."""
    return f"{ATTEMPTS_REF_PREFIX}{plan_id}/{run_id}"


def set_aside(ws: WorkspaceInfo, *, to: str, ref: str) -> str | None:
    """Record everything after ``to`` under ``ref``, then reset the workspace (branch and files) to ``to``.

    Recorded: commits on HEAD (or on the cycle branch, if the agent left it) that ``to`` lacks, plus every
    uncommitted or untracked, non-ignored file. Returns the sha stored under ``ref``, or None when there was
    nothing to set aside (the workspace is reset to ``to`` and cleaned either way; ignored files stay).
    """
    path = Path(ws.path)
    if not path.is_dir():
        raise AlwaysOnError(ErrorCode.EXECUTION_FAILED, f"the workspace folder {path} is gone")
    if not ref.startswith("refs/") or ref.startswith(_NOT_HERE) or not _git.ok(path, "check-ref-format", ref):
        raise AlwaysOnError(
            ErrorCode.EXECUTION_FAILED,
            f"{ref!r} cannot hold a set-aside attempt (use {ATTEMPTS_REF_PREFIX}...)",
        )
    try:
        return _set_aside(ws, path, to, ref)
    except GitCommandError as exc:
        raise AlwaysOnError(
            ErrorCode.EXECUTION_FAILED,
            f"could not set the leftovers in {path} aside under {ref}: {_git.error_text(exc)}",
        ) from exc


def _set_aside(ws: WorkspaceInfo, path: Path, to: str, ref: str) -> str | None:
    sync_private_objects(ws)
    target = _git.text(path, "rev-parse", "--verify", f"{to}^{{commit}}")
    branch = own_branch(ws)
    head = _git.head(path)
    tips = [head]
    found = _git.run(path, "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}", check=False)
    if found.rc == 0 and found.text != head and not _is_ancestor(path, found.text, head):
        tips.append(found.text)  # the agent left the cycle branch: keep what is on both
    tips = [tip for tip in tips if not _is_ancestor(path, tip, target)]
    sha = None
    if _git.status(path, "--untracked-files=all"):
        sha = _commit(path, _leftover_tree(path, head), tips or [head], ref)
    elif len(tips) == 1:
        sha = tips[0]
    elif tips:
        sha = _commit(path, _git.text(path, "rev-parse", f"{head}^{{tree}}"), tips, ref)
    if sha is not None:
        sha = _store(path, ref, sha)
    _reset(path, branch, target)
    return sha


def own_branch(ws: WorkspaceInfo) -> str:
    """The cycle branch: in the user's repository for a worktree, in the snapshot's own repository otherwise."""
    return ws.branch or BRANCH_PREFIX + Path(ws.path).name


def _is_ancestor(path: Path, older: str, newer: str) -> bool:
    return _git.ok(path, "merge-base", "--is-ancestor", older, newer)


def _leftover_tree(path: Path, head: str) -> str:
    """The work tree as it is (.gitignore respected), staged in a private index: nobody's index is written."""
    with _git.scratch_space("always-on-aside-") as scratch:
        env = scratch.index_env()
        _git.run(path, "read-tree", head, env=env)
        _git.run(path, "add", "-A", env=env)
        return _git.text(path, "write-tree", env=env)


def _commit(path: Path, tree: str, parents: list[str], ref: str) -> str:
    args = [arg for parent in parents for arg in ("-p", parent)]
    message = f"always-on: leftovers set aside\n\nAlways-On-Set-Aside: {ref}\n"
    return _git.text(path, "commit-tree", tree, *args, "-m", message, env=_git.RUNTIME_IDENTITY)


def _store(path: Path, ref: str, sha: str) -> str:
    """Point ``ref`` at ``sha``; a retry that finds the same content already recorded keeps the first record."""
    old = _git.run(path, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
    if old.rc == 0 and old.text != sha:
        same_tree = _git.text(path, "rev-parse", f"{old.text}^{{tree}}") == _git.text(
            path, "rev-parse", f"{sha}^{{tree}}"
        )
        if same_tree:
            return old.text
        raise AlwaysOnError(
            ErrorCode.EXECUTION_FAILED,
            f"{ref} already records another attempt ({old.text[:12]}); it was not overwritten",
        )
    _git.run(path, "update-ref", ref, sha)
    return sha


def _reset(path: Path, branch: str, target: str) -> None:
    """Back onto the cycle branch at ``target`` with nothing uncommitted, no operation in progress."""
    _git.run(path, "rebase", "--quit", check=False)
    _git.run(path, "checkout", "-q", "-f", "--no-recurse-submodules", "-B", branch, target)
    _git.run(path, "reset", "-q", "--hard", target)  # also drops a merge or cherry-pick in progress
    _git.run(path, "clean", "-q", "-f", "-f", "-d")  # untracked, non-ignored files and folders
    last = _git.run(path, "rev-parse", "--verify", "-q", f"{LAST_PLAN_REF}^{{commit}}", check=False)
    if last.rc == 0 and not _is_ancestor(path, last.text, target):
        _git.run(path, "update-ref", LAST_PLAN_REF, target)

"""Workspace providers: the isolated copy of a project that one work cycle's plans run in (DESIGN §2, §5).

Policy, case by case (the README copies this):

- **The user's checkout is read-only.** Preparing a workspace never commits, stashes, checks out, resets or
  stages anything in the project, and never rewrites its index (read commands run with GIT_OPTIONAL_LOCKS=0).
  The user's git hooks never run for runtime git commands.
- **Strategy.** ``auto`` makes a git worktree when the project folder is the top of a git repository with at least
  one commit, and a snapshot copy otherwise. ``worktree`` on a folder that cannot have one is refused
  (``workspace_prepare_failed``); ``snapshot`` always copies.
- **Worktree.** Branch ``always-on/<cycle_id>`` from the project's HEAD commit, folder
  ``<base_dir>/<project-id>/<cycle_id>``. A detached HEAD works: the workspace starts from the HEAD commit (noted).
- **Dirty tracked files** (worktree): the workspace starts from HEAD; the edits stay in the checkout only (noted).
- **Untracked files** (worktree): not part of the workspace (noted, with their count).
- **Repository without commits**: a snapshot copy of the files on disk (noted).
- **Project inside a repository but not its root**: a snapshot copy of the project folder (noted).
- **Not a git repository**: a snapshot copy. The copy honours the project's ``.gitignore`` files (git's own
  rules, via ``git ls-files --others --exclude-standard``) and the ignore globs, which also go to the snapshot's
  ``.git/info/exclude`` so later commits honour them too. Nested repositories are skipped (noted). Above
  ``snapshot_max_bytes`` the copy is refused (``snapshot_too_large``, naming size and cap) before anything is
  copied. Files are copied (``cp --reflink=auto``: copy-on-write where the filesystem can), never hard-linked,
  because agents edit files in place. The copy gets its own repository whose first commit, by the runtime
  identity, is the cycle's base commit, so per-plan commits work as in a worktree.
- **Path missing** → ``project_not_found``; **not a directory** → ``not_a_directory``.
- **Safety.** The workspace folder must be inside ``base_dir`` and never equal to, inside, or around the project
  (``workspace_unsafe``).
- **Reuse.** An ``existing`` workspace whose folder is still a valid workspace of this project is reused as is.
  One whose folder vanished has its stale worktree registration pruned and is recreated from the same base commit
  (a vanished snapshot is copied afresh). A branch that already exists is reset only when it holds no commits
  beyond the base; otherwise it is kept and a new suffix is used (``always-on/<cycle_id>-2``): commits are never
  lost.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from git.exc import GitCommandError
from pydantic import BaseModel, Field

from always_on.core.config import SNAPSHOT_IGNORE
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.paths import project_id_for
from always_on.core.workspace import _git
from always_on.core.workspace._git import resolve
from always_on.core.workspace.archive import prune_stale_worktrees

DEFAULT_SNAPSHOT_IGNORE: list[str] = SNAPSHOT_IGNORE  # the configuration's default
DEFAULT_SNAPSHOT_MAX_BYTES = 500_000_000
BRANCH_PREFIX = "always-on/"
_CYCLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


class WorkspaceInfo(BaseModel):
    """Where a cycle's plans run; persisted by the orchestrator in the cycle record."""

    strategy: Literal["worktree", "snapshot"]
    path: str
    branch: str | None = None  # the cycle branch in the user's repository (worktrees only)
    base_commit: str
    cycle_id: str
    reused: bool = False
    notes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class _RepoFacts:
    top: Path | None  # top of the repository containing the project, if any
    has_head: bool

    def is_root_of(self, project: Path) -> bool:
        return self.top == project


def prepare_workspace(
    project: Path,
    *,
    cycle_id: str,
    base_dir: Path,
    strategy: str = "auto",
    snapshot_ignore: list[str] | None = None,
    snapshot_max_bytes: int = DEFAULT_SNAPSHOT_MAX_BYTES,
    existing: WorkspaceInfo | None = None,
) -> WorkspaceInfo:
    """Reuse ``existing`` when still valid, else create a workspace for ``cycle_id`` (policy: module doc)."""
    project = check_project(project)
    if not _CYCLE_ID.match(cycle_id) or ".." in cycle_id or cycle_id.endswith((".lock", ".")):
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_PREPARE_FAILED, f"cycle id {cycle_id!r} is not a safe folder name"
        )
    if strategy not in ("auto", "worktree", "snapshot"):
        raise AlwaysOnError(
            ErrorCode.CONFIG_INVALID,
            f"workspace strategy {strategy!r} is not one of auto, worktree, snapshot",
        )
    base = resolve(base_dir)
    root = base / project_id_for(project)
    check_safe(root / cycle_id, base, project)
    ignore = DEFAULT_SNAPSHOT_IGNORE if snapshot_ignore is None else snapshot_ignore
    facts = _inspect(project)
    notes: list[str] = []

    if existing is not None:
        path = resolve(existing.path)
        check_safe(path, base, project)
        if _is_valid(existing, path, project):
            return existing.model_copy(
                update={"reused": True, "notes": [f"reusing the workspace of cycle {existing.cycle_id}"]}
            )
        cycle_id = existing.cycle_id
        what = "is missing" if not os.path.lexists(path) else "is no longer a valid workspace"
        if (
            existing.strategy == "worktree"
            and facts.is_root_of(project)
            and _commit_exists(project, existing.base_commit)
        ):
            prune_stale_worktrees(project)
            notes.append(
                f"the workspace folder {path} {what}; recreated from base commit {existing.base_commit[:12]}"
            )
            return _create_worktree(project, root, base, cycle_id, existing.base_commit, notes)
        notes.append(f"the workspace folder {path} {what}; a fresh workspace was made (new base commit)")

    chosen = _choose_strategy(strategy, project, facts, notes)
    if chosen == "worktree":
        head = _git.head(project)
        notes.extend(_checkout_notes(project, head))
        return _create_worktree(project, root, base, cycle_id, head, notes)
    return _create_snapshot(project, root, base, cycle_id, ignore, snapshot_max_bytes, facts, notes)


def check_project(project: Path) -> Path:
    """The resolved project folder, or the error that says why it cannot be one."""
    path = resolve(project)
    if not path.exists():
        raise AlwaysOnError(ErrorCode.PROJECT_NOT_FOUND, f"project folder {path} does not exist")
    if not path.is_dir():
        raise AlwaysOnError(ErrorCode.NOT_A_DIRECTORY, f"project path {path} is not a directory")
    return path


def check_safe(workspace: Path, base: Path, project: Path) -> None:
    """Refuse a workspace outside the base, or equal to / inside / around the project (DESIGN §2)."""
    ws = resolve(workspace)
    if not _git.is_within(ws, base) or ws == base:
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_UNSAFE, f"workspace {ws} is not inside the workspace base folder {base}"
        )
    if _git.is_within(ws, project) or _git.is_within(project, ws):
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_UNSAFE,
            f"workspace {ws} would overlap the project folder {project}; choose a workspace base outside it",
        )


# --- inspection ------------------------------------------------------------------------------------------


def _inspect(project: Path) -> _RepoFacts:
    top = _git.run(project, "rev-parse", "--show-toplevel", check=False)
    if top.rc != 0 or not top.text:
        return _RepoFacts(None, False)
    has_head = _git.ok(project, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    return _RepoFacts(resolve(top.text), has_head)


def _commit_exists(repo: Path, sha: str) -> bool:
    return _git.ok(repo, "cat-file", "-e", f"{sha}^{{commit}}")


def _common_dir(path: Path) -> Path | None:
    result = _git.run(path, "rev-parse", "--path-format=absolute", "--git-common-dir", check=False)
    return resolve(result.text) if result.rc == 0 else None


def _is_valid(existing: WorkspaceInfo, path: Path, project: Path) -> bool:
    """The folder is still the workspace it claims to be: its own top level, right repository, base present."""
    if not path.is_dir():
        return False
    top = _git.run(path, "rev-parse", "--show-toplevel", check=False)
    if top.rc != 0 or resolve(top.text) != path or not _commit_exists(path, existing.base_commit):
        return False
    if existing.strategy == "worktree":
        return _common_dir(path) == _common_dir(project)
    return (path / ".git").is_dir()


def _choose_strategy(strategy: str, project: Path, facts: _RepoFacts, notes: list[str]) -> str:
    can_worktree = facts.is_root_of(project) and facts.has_head
    if strategy == "worktree" and not can_worktree:
        if facts.top is None:
            why = "it is not a git repository"
        elif not facts.is_root_of(project):
            why = f"it is inside the git repository at {facts.top} but not its top folder"
        else:
            why = "its repository has no commits yet"
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_PREPARE_FAILED,
            f"cannot make a git worktree of {project}: {why}; use the snapshot or auto strategy",
        )
    if strategy == "worktree" or (strategy == "auto" and can_worktree):
        return "worktree"
    if strategy == "auto":
        if facts.is_root_of(project):
            notes.append(
                "the repository has no commits yet; the workspace is a snapshot copy of the files on disk"
            )
        elif facts.top is not None:
            notes.append(
                f"the project is inside the git repository at {facts.top} but not its top folder; "
                "the workspace is a snapshot copy of the project folder"
            )
        else:
            notes.append("the project is not a git repository; the workspace is a snapshot copy")
    elif facts.is_root_of(project) and facts.has_head:
        notes.append("snapshot strategy: the copy includes the checkout's uncommitted changes")
    return "snapshot"


def _checkout_notes(project: Path, head: str) -> list[str]:
    notes = []
    entries = _git.status(project, "--untracked-files=normal")
    untracked = sum(1 for xy, _, _ in entries if xy == "??")
    if len(entries) - untracked:
        notes.append(
            f"the checkout has uncommitted changes ({len(entries) - untracked} files); "
            "the workspace starts from HEAD and they stay in the checkout only"
        )
    if untracked:
        notes.append(
            f"the checkout has {untracked} untracked files or folders; they are not in the workspace"
        )
    if not _git.ok(project, "symbolic-ref", "-q", "HEAD"):
        notes.append(f"the checkout is on a detached HEAD; the workspace starts from commit {head[:12]}")
    if (project / ".gitmodules").exists():
        notes.append("the project has submodules; they are not initialised in the workspace")
    return notes


# --- worktree --------------------------------------------------------------------------------------------


def _branch_exists(project: Path, branch: str) -> bool:
    return _git.ok(project, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")


def _branches_in_use(project: Path) -> set[str]:
    out = _git.run(project, "worktree", "list", "--porcelain", "-z").out
    return {
        item[len("branch refs/heads/") :]
        for item in _git.zsplit(out)
        if item.startswith("branch refs/heads/")
    }


def _create_worktree(
    project: Path, root: Path, base: Path, cycle_id: str, base_commit: str, notes: list[str]
) -> WorkspaceInfo:
    in_use = _branches_in_use(project)
    for n in range(1, 1000):
        name = cycle_id if n == 1 else f"{cycle_id}-{n}"
        path, branch = root / name, BRANCH_PREFIX + name
        if os.path.lexists(path):
            continue
        exists = _branch_exists(project, branch)
        if exists:
            if branch in in_use:
                continue
            unique = int(_git.text(project, "rev-list", "--count", f"{base_commit}..refs/heads/{branch}"))
            if unique:
                notes.append(
                    f"branch {branch} holds {unique} commits not in the base; kept, using a new branch"
                )
                continue
        break
    else:  # pragma: no cover - a thousand leftovers means something else is wrong
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_PREPARE_FAILED, f"no free workspace folder for cycle {cycle_id}"
        )
    check_safe(path, base, project)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _git.run(
            project,
            "worktree",
            "add",
            "-q",
            "--no-track",
            "-B" if exists else "-b",
            branch,
            str(path),
            base_commit,
        )
    except GitCommandError as exc:
        _git.run(project, "worktree", "remove", "-f", "-f", str(path), check=False)
        if path.exists():
            _git.rmtree(path)
        if not exists:
            _git.run(project, "branch", "-D", branch, check=False)
        raise AlwaysOnError(
            ErrorCode.WORKSPACE_PREPARE_FAILED,
            f"git could not create the worktree {path}: {_git.error_text(exc)}",
        ) from exc
    return WorkspaceInfo(
        strategy="worktree",
        path=str(path),
        branch=branch,
        base_commit=base_commit,
        cycle_id=cycle_id,
        notes=notes,
    )


# --- snapshot --------------------------------------------------------------------------------------------


def _create_snapshot(
    project: Path,
    root: Path,
    base: Path,
    cycle_id: str,
    ignore: list[str],
    max_bytes: int,
    facts: _RepoFacts,
    notes: list[str],
) -> WorkspaceInfo:
    name = next(n for n in _names(cycle_id) if not os.path.lexists(root / n))
    path = root / name
    check_safe(path, base, project)
    path.mkdir(parents=True)
    try:
        _git.run(path, "init", "-q", "-b", BRANCH_PREFIX + name)
        (path / ".git" / "info").mkdir(exist_ok=True)
        (path / ".git" / "info" / "exclude").write_text(_exclude_text(project, ignore, facts))
        listed = _git.run(
            project,
            f"--git-dir={path / '.git'}",
            f"--work-tree={project}",
            "ls-files",
            "-o",
            "--exclude-standard",
            "-z",
        ).out
        files, nested = [], []
        for rel in _git.zsplit(listed):
            (nested if rel.endswith("/") else files).append(rel)
        if nested:
            shown = ", ".join(nested[:5]) + (" ..." if len(nested) > 5 else "")
            notes.append(f"skipped {len(nested)} nested git repositories: {shown}")
        files, total = _sizes(project, files)
        if total > max_bytes:
            raise AlwaysOnError(
                ErrorCode.SNAPSHOT_TOO_LARGE,
                f"the snapshot of {project} would copy {_mb(total)} ({len(files)} files), over the cap of "
                f"{_mb(max_bytes)}; add ignore globs or raise workspace.snapshot_max_bytes",
                size=total,
                cap=max_bytes,
            )
        _bulk_copy(project, path, files)
        _git.run(
            path, "add", "-A", config=("core.bigFileThreshold=1",)
        )  # one pack instead of N loose objects
        _git.run(
            path,
            "commit",
            "-q",
            "--no-verify",
            "--allow-empty",
            "--cleanup=whitespace",
            "-m",
            f"always-on snapshot of {project.name}",
            env=_git.RUNTIME_IDENTITY,
        )
        base_commit = _git.head(path)
    except BaseException as exc:
        _git.rmtree(path)
        if isinstance(exc, AlwaysOnError):
            raise
        if isinstance(exc, (GitCommandError, OSError, subprocess.CalledProcessError)):
            raise AlwaysOnError(
                ErrorCode.WORKSPACE_PREPARE_FAILED,
                f"could not copy {project} to {path}: {_git.error_text(exc)}",
            ) from exc
        raise
    notes.append(f"snapshot of {len(files)} files, {_mb(total)}")
    return WorkspaceInfo(
        strategy="snapshot", path=str(path), base_commit=base_commit, cycle_id=cycle_id, notes=notes
    )


def _names(cycle_id: str):
    yield cycle_id
    n = 2
    while True:
        yield f"{cycle_id}-{n}"
        n += 1


def _exclude_text(project: Path, ignore: list[str], facts: _RepoFacts) -> str:
    lines = ["# always-on snapshot ignore globs", *ignore]
    if facts.is_root_of(project):
        own = _git.run(
            project, "rev-parse", "--path-format=absolute", "--git-path", "info/exclude", check=False
        )
        if own.rc == 0 and Path(own.text).is_file():
            lines += ["# the project's .git/info/exclude", Path(own.text).read_text(errors="replace")]
    return "\n".join(lines) + "\n"


def _sizes(project: Path, files: list[str]) -> tuple[list[str], int]:
    kept, total = [], 0
    for rel in files:
        try:
            total += os.lstat(project / rel).st_size
        except FileNotFoundError:  # removed between listing and copying
            continue
        kept.append(rel)
    return kept, total


def _mb(size: int) -> str:
    return f"{size:,} bytes" + (f" ({size / 1_000_000:.1f} MB)" if size >= 1_000_000 else "")


@cache
def _gnu_cp() -> bool:
    cp = shutil.which("cp")
    if not cp:
        return False
    probe = subprocess.run([cp, "--version"], capture_output=True, text=True, check=False)
    return probe.returncode == 0 and "GNU" in probe.stdout


def _bulk_copy(src: Path, dest: Path, files: list[str]) -> None:
    """Copy the listed files preserving modes and symlinks, in a few ``cp`` processes (no per-file Python)."""
    for folder in sorted({os.path.dirname(rel) for rel in files} - {""}):
        (dest / folder).mkdir(
            parents=True, exist_ok=True
        )  # up front: parallel cp processes never race on them
    if not _gnu_cp():
        for rel in files:
            shutil.copy2(src / rel, dest / rel, follow_symlinks=False)
        return
    # Two workers roughly halve the wall time of a cold copy on two cores; batches also bound argv size.
    workers = 2 if len(files) > 2000 and (os.cpu_count() or 1) > 1 else 1
    count = max(workers, -(-sum(len(rel) + 1 for rel in files) // 400_000))
    step = -(-len(files) // count) if files else 1
    running: list[subprocess.Popen] = []
    errors: list[str] = []
    for start in range(0, len(files), step):
        if len(running) >= workers:
            _reap(running.pop(0), errors)
        running.append(
            subprocess.Popen(
                [
                    "cp",
                    "-a",
                    "--reflink=auto",
                    "--parents",
                    "-t",
                    str(dest),
                    "--",
                    *files[start : start + step],
                ],
                cwd=src,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    for proc in running:
        _reap(proc, errors)
    if errors:
        raise OSError(f"cp failed: {'; '.join(errors)[:500]}")


def _reap(proc: subprocess.Popen, errors: list[str]) -> None:
    _, err = proc.communicate()
    if proc.returncode != 0:
        errors.append(err.decode(errors="replace").strip())

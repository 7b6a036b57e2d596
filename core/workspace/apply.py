"""Apply: the selected plans' combined change lands in the user's working tree as uncommitted changes (§2).

Never automatic, never a commit, merge or branch switch, and all-or-nothing. How:

1. The selection is validated (``invalid_selection``, ``dependency_analysis_failed``, ``nothing_to_apply``).
2. The combined change is computed in a private index: cycle base + plans applied earlier = *start*, then the
   selected plans in cycle order (three-way where they overlap) = *end*.
3. Git projects: a touched file with uncommitted user edits refuses the apply (``checkout_dirty``); other dirty
   files are left alone. The change is merged three-way onto the user's HEAD in another private index; a
   conflict refuses the apply (``apply_conflict``, ``details["files"]``). The user's index is never written.
   Snapshot projects: a file that differs from the snapshot's version is a conflict.
4. The merged files are written to a staging folder beside the project and swapped in file by file; on any
   failure every step is undone, so the checkout is byte-for-byte as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from git.exc import GitCommandError
from pydantic import BaseModel, Field

from core.errors import AlwaysOnError, ErrorCode
from core.records import APPLYABLE, DependencyStatus, FileChange, PlanStatus
from core.workspace import _git
from core.workspace.dependencies import plan_patch
from core.workspace.diff import diff_files
from core.workspace.providers import WorkspaceInfo, check_project


class PlanApplyInfo(BaseModel):
    plan_id: str
    status: PlanStatus
    commit_shas: list[str] = Field(default_factory=list)
    dependency_status: DependencyStatus = DependencyStatus.PENDING
    depends_on: list[str] = Field(default_factory=list)


class ApplyResult(BaseModel):
    applied: list[str]
    files: list[FileChange] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


FINAL_INDEX = "final"  # the scratch index holding the merged result that gets written out


@dataclass(frozen=True)
class _Entry:
    """One path of the combined change (no rename detection: a rename is a delete plus an add)."""

    path: str
    status: str  # A | M | D | T
    old_sha: str
    new_sha: str


def apply_plans(
    project: Path, ws: WorkspaceInfo, selected: list[str], plans: list[PlanApplyInfo]
) -> ApplyResult:
    """Apply ``selected`` plans (``plans`` = all plans of the cycle, in cycle order) to the project."""
    project = check_project(project)
    chosen = _validate(selected, plans)
    earlier = [plan for plan in plans if plan.status == PlanStatus.APPLIED and plan.commit_shas]
    repo = project if ws.strategy == "worktree" else Path(ws.path)
    if ws.strategy == "snapshot" and not (repo / ".git").is_dir():
        raise AlwaysOnError(
            ErrorCode.APPLY_FAILED, f"the snapshot workspace {repo} is gone; its plans cannot be applied"
        )
    ids = [plan.plan_id for plan in chosen]
    try:
        with _git.scratch_space("always-on-apply-") as scratch:
            start, end = _combined_trees(repo, ws.base_commit, earlier, chosen, scratch)
            if start == end:
                return ApplyResult(applied=ids, notes=["the selected plans make no net change"])
            files = diff_files(repo, start, end)
            entries = _entries(repo, start, end)
            if ws.strategy == "worktree":
                writes, deletes = _merge_git(project, start, end, entries, scratch)
            else:
                writes, deletes = _merge_snapshot(project, repo, end, entries, scratch)
            _check_paths(project, writes + deletes)
            with _staging(project) as staging:
                if writes:
                    _checkout_to(
                        project if ws.strategy == "worktree" else repo, writes, staging / "new", scratch
                    )
                _swap(project, staging, writes, deletes)
    except GitCommandError as exc:
        raise AlwaysOnError(
            ErrorCode.APPLY_FAILED,
            f"applying plans {', '.join(ids)} failed: {_git.error_text(exc)}",
            plans=ids,
        ) from exc
    except OSError as exc:
        raise AlwaysOnError(
            ErrorCode.APPLY_FAILED,
            f"applying plans {', '.join(ids)} failed and was rolled back: {exc}",
            plans=ids,
        ) from exc
    notes = [
        f"{len(files)} files changed in {project} as uncommitted changes (nothing was staged or committed)"
    ]
    return ApplyResult(applied=ids, files=files, notes=notes)


# --- selection -------------------------------------------------------------------------------------------


def _validate(selected: list[str], plans: list[PlanApplyInfo]) -> list[PlanApplyInfo]:
    if not selected:
        raise AlwaysOnError(ErrorCode.NOTHING_TO_APPLY, "no plans were selected to apply")
    by_id = {plan.plan_id: plan for plan in plans}
    unknown = [pid for pid in selected if pid not in by_id]
    if unknown:
        raise _invalid(f"unknown plan(s) in this cycle: {', '.join(unknown)}", unknown)
    wanted = set(selected)
    chosen = [plan for plan in plans if plan.plan_id in wanted]
    for plan in chosen:
        if plan.status not in APPLYABLE:
            why = "is already applied" if plan.status == PlanStatus.APPLIED else f"is '{plan.status}'"
            raise _invalid(f"plan {plan.plan_id} {why}; only completed plans can be applied", [plan.plan_id])
        if not plan.commit_shas:
            raise _invalid(
                f"plan {plan.plan_id} has no commits: there is nothing of it to apply", [plan.plan_id]
            )
    for plan in chosen:
        if plan.dependency_status in (DependencyStatus.FAILED, DependencyStatus.PENDING):
            what = "failed" if plan.dependency_status == DependencyStatus.FAILED else "has not run"
            raise AlwaysOnError(
                ErrorCode.DEPENDENCY_ANALYSIS_FAILED,
                f"the dependency analysis of plan {plan.plan_id} {what}; it cannot be applied safely",
                plans=[plan.plan_id],
            )
    for plan in chosen:
        for dep in plan.depends_on:
            if dep not in wanted and (dep not in by_id or by_id[dep].status != PlanStatus.APPLIED):
                raise _invalid(
                    f"plan {plan.plan_id} depends on plan {dep}, which is not selected; select both or neither",
                    [plan.plan_id, dep],
                )
    return chosen


def _invalid(message: str, plans: list[str]) -> AlwaysOnError:
    return AlwaysOnError(ErrorCode.INVALID_SELECTION, message, plans=plans)


# --- the combined change ---------------------------------------------------------------------------------


def _combined_trees(
    repo: Path, base: str, earlier: list[PlanApplyInfo], chosen: list[PlanApplyInfo], scratch: _git.Scratch
) -> tuple[str, str]:
    env = scratch.index_env("combined")
    _git.run(repo, "read-tree", base, env=env)
    for plan in earlier:
        if _apply_3way(repo, plan, env, scratch):
            raise AlwaysOnError(
                ErrorCode.APPLY_FAILED,
                f"plan {plan.plan_id}, applied earlier, no longer combines with the cycle base",
                plans=[plan.plan_id],
            )
    start = _git.text(repo, "write-tree", env=env)
    for plan in chosen:
        conflicts = _apply_3way(repo, plan, env, scratch)
        if conflicts:
            raise AlwaysOnError(
                ErrorCode.APPLY_CONFLICT,
                f"plan {plan.plan_id} conflicts with the other selected plans in: {', '.join(conflicts)}",
                files=conflicts,
                plans=[p.plan_id for p in chosen],
            )
    return start, _git.text(repo, "write-tree", env=env)


def _apply_3way(repo: Path, plan: PlanApplyInfo, env: dict[str, str], scratch: _git.Scratch) -> list[str]:
    """Apply one plan to the scratch index; the conflicting files, or [] when it applied."""
    patch = plan_patch(repo, plan.commit_shas, scratch)
    if patch is None:
        return []
    return _apply_patch(repo, patch.file, env, sorted(patch.touched))


def _apply_patch(repo: Path, patch: Path, env: dict[str, str], touched: list[str]) -> list[str]:
    result = _git.run(
        repo, "apply", "--cached", "--3way", "--whitespace=nowarn", str(patch), env=env, check=False
    )
    if result.rc == 0:
        return []
    stages = _git.zsplit(_git.run(repo, "ls-files", "-u", "-z", env=env).out)
    unmerged = sorted({entry.split("\t", 1)[1] for entry in stages})
    return unmerged or [path for path in touched if path in result.err] or touched


def _entries(repo: Path, start: str, end: str) -> list[_Entry]:
    tokens = _git.zsplit(_git.run(repo, "diff-tree", "-r", "-z", "--raw", "--no-renames", start, end).out)
    entries = []
    for i in range(0, len(tokens) - 1, 2):
        _old_mode, _new_mode, old_sha, new_sha, status = tokens[i].lstrip(":").split()
        entries.append(_Entry(tokens[i + 1], status[0], old_sha, new_sha))
    return entries


# --- merging onto the user's checkout -------------------------------------------------------------------


def _merge_git(
    project: Path, start: str, end: str, entries: list[_Entry], scratch: _git.Scratch
) -> tuple[list[str], list[str]]:
    """Three-way merge of the change onto the user's HEAD in a private index; (files to write, to delete)."""
    touched = [entry.path for entry in entries]
    dirty = set()
    for _xy, path, orig in _git.status(project, "--untracked-files=all"):
        dirty.add(path)
        if orig:
            dirty.add(orig)
    blocked = sorted(set(touched) & dirty)
    if blocked:
        raise AlwaysOnError(
            ErrorCode.CHECKOUT_DIRTY,
            f"files the change touches have uncommitted edits in your checkout: {', '.join(blocked)}; "
            "commit or stash them, then apply again",
            files=blocked,
        )
    env = scratch.index_env(FINAL_INDEX)
    head = _git.run(project, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    _git.run(project, "read-tree", *([head.text] if head.rc == 0 else ["--empty"]), env=env)
    tracked = set(_git.zsplit(_git.run(project, "ls-files", "-z", env=env).out))
    clobbered = sorted(e.path for e in entries if e.path not in tracked and os.path.lexists(project / e.path))
    if clobbered:
        raise AlwaysOnError(
            ErrorCode.CHECKOUT_DIRTY,
            f"the change would overwrite files that exist in your checkout but are not tracked: {', '.join(clobbered)}",
            files=clobbered,
        )
    patch = scratch.write(_git.run(project, "diff-tree", *_git.PATCH_ARGS, start, end).out)
    conflicts = _apply_patch(project, patch, env, touched)
    if conflicts:
        raise AlwaysOnError(
            ErrorCode.APPLY_CONFLICT,
            f"the change conflicts with your checkout in: {', '.join(conflicts)}; nothing was changed",
            files=conflicts,
        )
    merged = set(_git.zsplit(_git.run(project, "ls-files", "-z", env=env).out))
    writes = [path for path in touched if path in merged]
    deletes = [path for path in touched if path not in merged and os.path.lexists(project / path)]
    return writes, deletes


def _merge_snapshot(
    project: Path, snapshot: Path, end: str, entries: list[_Entry], scratch: _git.Scratch
) -> tuple[list[str], list[str]]:
    """A project file must still be the snapshot's version (or already the new one); else it is a conflict."""
    current = _current_blobs(project, snapshot, [entry.path for entry in entries])
    writes, deletes, conflicts = [], [], []
    for entry in entries:
        before = None if entry.status == "A" else entry.old_sha
        after = None if entry.status == "D" else entry.new_sha
        now = current[entry.path]
        if now == after and entry.status != "T":
            continue
        if now != before:
            conflicts.append(entry.path)
        elif after is None:
            deletes.append(entry.path)
        else:
            writes.append(entry.path)
    if conflicts:
        raise AlwaysOnError(
            ErrorCode.APPLY_CONFLICT,
            f"files changed in the project since the snapshot was taken: {', '.join(conflicts)}; nothing was changed",
            files=conflicts,
        )
    _git.run(snapshot, "read-tree", end, env=scratch.index_env(FINAL_INDEX))
    return writes, deletes


def _current_blobs(project: Path, snapshot: Path, paths: list[str]) -> dict[str, str | None]:
    """Blob id each project file would have in the snapshot repository (its filters and attributes apply)."""
    blobs: dict[str, str | None] = {}
    regular = []
    for rel in paths:
        target = project / rel
        if target.is_symlink():
            blobs[rel] = _blob_id(os.readlink(target).encode("utf-8", "surrogateescape"))
        elif target.is_file():
            regular.append(rel)
        else:
            blobs[rel] = None if not os.path.lexists(target) else "directory"
    batch = [rel for rel in regular if "\n" not in rel]
    for rel in regular:
        if "\n" in rel:
            blobs[rel] = _blob_id((project / rel).read_bytes())
    if batch:
        with tempfile.TemporaryFile() as listing:
            listing.write("".join(f"{rel}\n" for rel in batch).encode("utf-8", "surrogateescape"))
            listing.seek(0)
            out = _git.run(
                project,
                f"--git-dir={snapshot / '.git'}",
                f"--work-tree={project}",
                "hash-object",
                "--stdin-paths",
                stdin=listing,
            ).text.split()
        blobs.update(zip(batch, out, strict=True))
    return blobs


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --- writing ---------------------------------------------------------------------------------------------


def _check_paths(project: Path, paths: list[str]) -> None:
    """Refuse paths that would be written through a symbolic link or onto a folder of the checkout."""
    bad = []
    for rel in paths:
        parts = Path(rel).parts
        if any((project.joinpath(*parts[:i])).is_symlink() for i in range(1, len(parts))):
            bad.append(rel)
    if bad:
        raise AlwaysOnError(
            ErrorCode.APPLY_CONFLICT,
            f"these paths lead through a symbolic link in your checkout: {', '.join(bad)}; nothing was changed",
            files=bad,
        )


@contextlib.contextmanager
def _staging(project: Path):
    """A staging folder beside the project (same filesystem, so moves are renames), removed afterwards."""
    try:
        root = Path(tempfile.mkdtemp(prefix=f".{project.name}.always-on-apply-", dir=project.parent))
    except OSError:
        root = Path(tempfile.mkdtemp(prefix="always-on-apply-"))
    try:
        yield root
    finally:
        _git.rmtree(root)


def _checkout_to(repo: Path, paths: list[str], target: Path, scratch: _git.Scratch) -> None:
    """Write the final index's version of ``paths`` under ``target`` (checkout filters and modes apply)."""
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as listing:
        listing.write(b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths))
        listing.seek(0)
        env = scratch.index_env(FINAL_INDEX)
        _git.run(repo, "checkout-index", "-f", "-z", "--stdin", f"--prefix={target}/", env=env, stdin=listing)


def _swap(project: Path, staging: Path, writes: list[str], deletes: list[str]) -> None:
    """Move old files aside and new ones in; undo everything, in reverse, if any step fails."""
    undo: list[Callable[[], None]] = []
    backup, new = staging / "backup", staging / "new"
    try:
        for rel in sorted(deletes, key=lambda p: -p.count("/")):
            _move_aside(project, rel, backup, undo)
        for rel in deletes:
            _prune_empty_parents(project, rel, undo)
        for rel in writes:
            target = project / rel
            if target.is_dir() and not target.is_symlink():
                raise AlwaysOnError(
                    ErrorCode.APPLY_CONFLICT,
                    f"{rel} is a folder in your checkout; nothing was changed",
                    files=[rel],
                )
            if os.path.lexists(target):
                _move_aside(project, rel, backup, undo)
        for rel in writes:
            target = project / rel
            for folder in reversed(_missing_parents(project, target)):
                folder.mkdir()
                undo.append(lambda folder=folder: folder.rmdir())
            shutil.move(new / rel, target)
            undo.append(lambda target=target: target.unlink())
    except BaseException:
        failures = []
        for step in reversed(undo):
            try:
                step()
            except OSError as exc:  # pragma: no cover - reported, the staging folder keeps the backups
                failures.append(str(exc))
        if failures:  # pragma: no cover
            raise OSError(f"rollback incomplete ({'; '.join(failures)}); backups are in {backup}") from None
        raise


def _move_aside(project: Path, rel: str, backup: Path, undo: list[Callable[[], None]]) -> None:
    source, kept = project / rel, backup / rel
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, kept)
    undo.append(lambda: shutil.move(kept, source))


def _prune_empty_parents(project: Path, rel: str, undo: list[Callable[[], None]]) -> None:
    """Like git: a folder emptied by a deletion goes too (a user's other files keep it)."""
    folder = (project / rel).parent
    while folder != project and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        undo.append(lambda folder=folder: folder.mkdir())
        folder = folder.parent


def _missing_parents(project: Path, target: Path) -> list[Path]:
    missing = []
    folder = target.parent
    while folder != project and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing

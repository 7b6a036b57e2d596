"""Apply: the selected plans' combined change lands in the user's working tree as uncommitted changes (§2).

Never automatic, never a commit, merge or branch switch, and all-or-nothing. How:

1. The selection is validated (``invalid_selection``, ``dependency_analysis_failed``, ``nothing_to_apply``).
2. The combined change is computed in a private index: cycle base + plans applied earlier = *start*, then the
   selected plans in cycle order (three-way where they overlap) = *end*.
3. Git projects: a touched file with uncommitted user edits refuses the apply (``checkout_dirty``); other dirty
   files are left alone. A touched file whose content is exactly HEAD + the plans applied earlier (a partial
   apply left it uncommitted) is not a user edit: the merge continues from that content. The change is merged
   three-way onto the user's HEAD in another private index; a conflict refuses the apply (``apply_conflict``,
   ``details["files"]``). The user's index is never written.
   Snapshot projects: a file that differs from the snapshot's version is a conflict.
4. The merged files are staged with the originals in a folder inside the store, a journal names them all
   (core.workspace.journal), and only then are they swapped in file by file. On any failure — or a ``kill -9``
   at any instant, settled by the next command — the checkout is put back byte-for-byte as before, or finished
   when every new file was already in place. Nothing is kept beside the user's project.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from git.exc import GitCommandError
from pydantic import BaseModel, Field

from always_on.core.errors import AlwaysOnError, ErrorCode, disk_full_at
from always_on.core.records import APPLYABLE, DependencyStatus, FileChange, PlanStatus
from always_on.core.workspace import _git
from always_on.core.workspace.dependencies import plan_patch
from always_on.core.workspace.diff import diff_files
from always_on.core.workspace.journal import Journal, rollback, stage, swap
from always_on.core.workspace.providers import WorkspaceInfo, check_project


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


@dataclass
class StagedApply:
    """An apply whose change is computed and staged, with its journal; the checkout is not touched yet."""

    applied: list[str]
    files: list[FileChange]
    journal: Journal | None  # None: the selected plans make no net change
    notes: list[str]


def stage_apply(
    project: Path,
    ws: WorkspaceInfo,
    selected: list[str],
    plans: list[PlanApplyInfo],
    *,
    folder: Path,
    apply_id: str,
) -> StagedApply:
    """Validate the selection, merge the change onto the checkout in private indexes and stage it in ``folder``.

    Raises the refusals of the module doc (nothing changed, nothing left in ``folder``' s place but the folder).
    ``plans`` = all plans of the cycle, in cycle order.
    """
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
                return StagedApply(ids, [], None, ["the selected plans make no net change"])
            files = diff_files(repo, start, end)
            entries = _entries(repo, start, end)
            if ws.strategy == "worktree":
                writes, deletes = _merge_git(project, ws.base_commit, start, end, entries, scratch)
            else:
                writes, deletes = _merge_snapshot(project, repo, end, entries, scratch)
            # guard: apply-no-write-through-symlink
            _check_paths(project, writes + deletes)
            source = project if ws.strategy == "worktree" else repo
            journal = stage(
                project,
                folder,
                apply_id=apply_id,
                cycle_id=ws.cycle_id,
                plan_ids=ids,
                writes=writes,
                deletes=deletes,
                checkout=lambda target: _checkout_to(source, writes, target, scratch),
            )
    except GitCommandError as exc:
        full = disk_full_at(folder)
        _discard_folder(folder)
        if full is not None:
            raise full from exc
        raise AlwaysOnError(
            ErrorCode.APPLY_FAILED,
            f"applying plans {', '.join(ids)} failed: {_git.error_text(exc)}; nothing was changed",
            plans=ids,
        ) from exc
    except OSError as exc:
        _discard_folder(folder)
        raise AlwaysOnError(
            ErrorCode.APPLY_FAILED,
            f"applying plans {', '.join(ids)} failed before anything was changed: {exc}",
            plans=ids,
        ) from exc
    except BaseException:
        _discard_folder(folder)
        raise
    notes = [
        f"{len(files)} files changed in {project} as uncommitted changes (nothing was staged or committed)"
    ]
    return StagedApply(ids, files, journal, notes)


def _discard_folder(folder: Path) -> None:
    if folder.exists():
        _git.rmtree(folder)


def swap_in(staged: StagedApply) -> None:
    """Swap a staged apply into the checkout (its journal must be recorded first); all or nothing.

    On failure the checkout is rolled back before the error is raised; if even that fails, the journal stays
    and the next command settles it.
    """
    journal = staged.journal
    if journal is None:
        return
    try:
        swap(journal)
    except BaseException as exc:
        try:
            # guard: apply-failure-rolls-back
            rollback(journal)
        except OSError as undo:
            raise AlwaysOnError(
                ErrorCode.APPLY_FAILED,
                f"applying plans {', '.join(staged.applied)} failed ({exc}) and the checkout could not be put "
                f"back yet ({undo}); the originals are kept in {journal.folder} and the next always-on command "
                "finishes restoring them",
                plans=staged.applied,
                rolled_back=False,
            ) from exc
        if isinstance(exc, OSError):
            raise AlwaysOnError(
                ErrorCode.APPLY_FAILED,
                f"applying plans {', '.join(staged.applied)} failed and was rolled back: {exc}",
                plans=staged.applied,
            ) from exc
        raise


def apply_plans(
    project: Path, ws: WorkspaceInfo, selected: list[str], plans: list[PlanApplyInfo]
) -> ApplyResult:
    """Apply ``selected`` plans (``plans`` = all plans of the cycle, in cycle order) to the project.

    Without a store (tests, benchmarks): the journal lives in memory and its folder in the system temp folder, so
    a failure is rolled back but a crash is not recovered. The orchestrator records the journal in the store.
    """
    folder = Path(tempfile.mkdtemp(prefix="always-on-apply-"))
    try:
        staged = stage_apply(project, ws, selected, plans, folder=folder / "stage", apply_id=folder.name)
        swap_in(staged)
    finally:
        # guard: apply-leaves-no-temp-folder
        _discard_folder(folder)
    return ApplyResult(applied=staged.applied, files=staged.files, notes=staged.notes)


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
        # guard: apply-only-completed-plans
        if plan.status not in APPLYABLE:
            why = "is already applied" if plan.status == PlanStatus.APPLIED else f"is '{plan.status}'"
            raise _invalid(f"plan {plan.plan_id} {why}; only completed plans can be applied", [plan.plan_id])
        if not plan.commit_shas:
            raise _invalid(
                f"plan {plan.plan_id} has no commits: there is nothing of it to apply", [plan.plan_id]
            )
    for plan in chosen:
        # guard: apply-needs-dependency-analysis
        if plan.dependency_status in (DependencyStatus.FAILED, DependencyStatus.PENDING):
            what = "failed" if plan.dependency_status == DependencyStatus.FAILED else "has not run"
            raise AlwaysOnError(
                ErrorCode.DEPENDENCY_ANALYSIS_FAILED,
                f"the dependency analysis of plan {plan.plan_id} {what}; it cannot be applied safely",
                plans=[plan.plan_id],
            )
    for plan in chosen:
        for dep in plan.depends_on:
            # guard: apply-dependencies-selected-together
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
        # guard: apply-plans-conflict-refused
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
    project: Path, base: str, start: str, end: str, entries: list[_Entry], scratch: _git.Scratch
) -> tuple[list[str], list[str]]:
    """Three-way merge of the change onto the user's HEAD in a private index; (files to write, to delete).

    A touched file that differs from HEAD only by what the plans applied earlier put there is not a user edit:
    the merge starts from that content instead (so the rest of a cycle can follow a partial apply).
    """
    touched = [entry.path for entry in entries]
    env = scratch.index_env(FINAL_INDEX)
    found = _git.run(project, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    head = found.text if found.rc == 0 else None
    _git.run(project, "read-tree", *([head] if head else ["--empty"]), env=env)
    at_head, _ = _index_entries(project, touched, env)
    dirty = set()
    for _xy, path, orig in _git.status(project, "--untracked-files=all"):
        dirty.add(path)
        if orig:
            dirty.add(orig)
    candidates = [p for p in touched if p in dirty or (p not in at_head and os.path.lexists(project / p))]
    accepted = (
        _applied_earlier(project, head, base, start, candidates, at_head, scratch) if candidates else {}
    )
    blocked = sorted(p for p in candidates if p in dirty and p not in accepted)
    # guard: apply-refuses-dirty-touched-file
    if blocked:
        raise AlwaysOnError(
            ErrorCode.CHECKOUT_DIRTY,
            f"files the change touches have uncommitted edits in your checkout: {', '.join(blocked)}; "
            "commit or stash them, then apply again",
            files=blocked,
        )
    clobbered = sorted(p for p in candidates if p not in at_head and p not in accepted)
    # guard: apply-refuses-untracked-in-the-way
    if clobbered:
        raise AlwaysOnError(
            ErrorCode.CHECKOUT_DIRTY,
            f"the change would overwrite files that exist in your checkout but are not tracked: {', '.join(clobbered)}",
            files=clobbered,
        )
    if accepted:
        _set_entries(project, accepted, env)
    patch = scratch.write(_git.run(project, "diff-tree", *_git.PATCH_ARGS, start, end).out)
    conflicts = _apply_patch(project, patch, env, touched)
    # guard: apply-checkout-conflict-refused
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


_Blob = tuple[str, str]  # (mode, blob id) of an index entry or of a file on disk
_ZERO_SHA = "0" * 40


def _applied_earlier(
    project: Path,
    head: str | None,
    base: str,
    start: str,
    paths: list[str],
    at_head: dict[str, _Blob],
    scratch: _git.Scratch,
) -> dict[str, _Blob | None]:
    """The paths whose checkout state is exactly HEAD + the plans applied earlier, with that entry (None: absent).

    Why: after a partial apply the earlier plans' changes sit uncommitted in the checkout; they are ours, not
    the user's. Both the file on disk and the user's index entry must match (the index may also still be HEAD's).
    """
    if _git.text(project, "rev-parse", f"{base}^{{tree}}") == start:
        return {}
    env = scratch.index_env("applied")
    _git.run(project, "read-tree", *([head] if head else ["--empty"]), env=env)
    patch = scratch.write(_git.run(project, "diff-tree", *_git.PATCH_ARGS, base, start).out)
    _apply_patch(project, patch, env, paths)  # conflicting paths stay unmerged and are never accepted
    applied, unsure = _index_entries(project, paths, env)
    in_index, unmerged = _index_entries(project, paths, None)
    on_disk = _disk_entries(project, paths)
    filemode = _git.run(project, "config", "--bool", "core.fileMode", check=False).text != "false"
    accepted: dict[str, _Blob | None] = {}
    for path in paths:
        want = applied.get(path)
        # guard: apply-earlier-content-exact
        if path in unsure or path in unmerged or not _same(on_disk[path], want, filemode):
            continue
        # guard: apply-earlier-index-matches
        if in_index.get(path) in (at_head.get(path), want):
            accepted[path] = want
    return accepted


def _index_entries(
    repo: Path, paths: list[str], env: dict[str, str] | None
) -> tuple[dict[str, _Blob], set[str]]:
    """Stage-0 entries of ``paths`` in an index (the user's when env is None), and the paths left unmerged."""
    if not paths:
        return {}, set()
    wanted = set(paths)
    entries: dict[str, _Blob] = {}
    unmerged: set[str] = set()
    spec = ["--", *paths] if len(paths) <= 1000 else []  # a long list: read the whole index, keep argv short
    out = _git.run(repo, "ls-files", "-s", "-z", *spec, env=env).out
    for item in _git.zsplit(out):
        info, path = item.split("\t", 1)
        if path not in wanted:
            continue
        mode, sha, stage = info.split()
        if stage == "0":
            entries[path] = (mode, sha)
        else:
            unmerged.add(path)
    return entries, unmerged


def _disk_entries(project: Path, paths: list[str]) -> dict[str, _Blob | None]:
    blobs = _current_blobs(project, paths)
    entries: dict[str, _Blob | None] = {}
    for path in paths:
        sha = blobs[path]
        if sha is None or sha == "directory":
            entries[path] = None if sha is None else ("040000", sha)
            continue
        info = os.lstat(project / path)
        if stat.S_ISLNK(info.st_mode):
            mode = "120000"
        else:
            mode = "100755" if info.st_mode & 0o100 else "100644"
        entries[path] = (mode, sha)
    return entries


def _same(disk: _Blob | None, want: _Blob | None, filemode: bool) -> bool:
    if disk is None or want is None:
        return disk == want
    regular = {"100644", "100755"}
    if not filemode and disk[0] in regular and want[0] in regular:
        return disk[1] == want[1]
    return disk == want


def _set_entries(repo: Path, entries: dict[str, _Blob | None], env: dict[str, str]) -> None:
    """Put these entries into a private index (None removes the path)."""
    lines = []
    for path, entry in entries.items():
        mode, sha = entry or ("0", _ZERO_SHA)
        lines.append(f"{mode} {sha}\t{path}".encode("utf-8", "surrogateescape") + b"\0")
    with tempfile.TemporaryFile() as listing:
        listing.write(b"".join(lines))
        listing.seek(0)
        _git.run(repo, "update-index", "-z", "--index-info", env=env, stdin=listing)


def _merge_snapshot(
    project: Path, snapshot: Path, end: str, entries: list[_Entry], scratch: _git.Scratch
) -> tuple[list[str], list[str]]:
    """A project file must still be the snapshot's version (or already the new one); else it is a conflict."""
    current = _current_blobs(project, [entry.path for entry in entries], snapshot)
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
    # guard: apply-snapshot-conflict-refused
    if conflicts:
        raise AlwaysOnError(
            ErrorCode.APPLY_CONFLICT,
            f"files changed in the project since the snapshot was taken: {', '.join(conflicts)}; nothing was changed",
            files=conflicts,
        )
    _git.run(snapshot, "read-tree", end, env=scratch.index_env(FINAL_INDEX))
    return writes, deletes


def _current_blobs(project: Path, paths: list[str], snapshot: Path | None = None) -> dict[str, str | None]:
    """Blob id each project file would have in its repository, or the snapshot's (filters and attributes apply)."""
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
            where = () if snapshot is None else (f"--git-dir={snapshot / '.git'}", f"--work-tree={project}")
            out = _git.run(
                project,
                *where,
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


def _checkout_to(repo: Path, paths: list[str], target: Path, scratch: _git.Scratch) -> None:
    """Write the final index's version of ``paths`` under ``target`` (checkout filters and modes apply)."""
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as listing:
        listing.write(b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths))
        listing.seek(0)
        env = scratch.index_env(FINAL_INDEX)
        _git.run(repo, "checkout-index", "-f", "-z", "--stdin", f"--prefix={target}/", env=env, stdin=listing)

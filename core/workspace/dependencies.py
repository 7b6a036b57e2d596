"""Dependency analysis: does a plan's patch apply on the cycle base alone, or does it need earlier plans? (§2)

Why it matters: the user may apply plans selectively; a plan that builds on another one cannot go alone.
How: every check runs in a private index in a scratch folder (``GIT_INDEX_FILE`` + ``git read-tree`` +
``git apply --cached``), never in a checkout, and the scratch folder is removed on every exit path.
For a plan that does not apply on the base, the candidates are the earlier plans touching the same files; the
set is verified (base + those plans, with what they need in turn + this plan applies) and then reduced by
dropping every candidate the plan still applies without. Any git failure makes the plan ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from git.exc import GitCommandError
from pydantic import BaseModel, Field

from always_on.core.errors import AlwaysOnError
from always_on.core.records import DependencyStatus
from always_on.core.workspace import _git
from always_on.core.workspace.diff import plan_range
from always_on.core.workspace.providers import WorkspaceInfo


class PlanCommits(BaseModel):
    plan_id: str
    commit_shas: list[str] = Field(default_factory=list)


class DependencyResult(BaseModel):
    status: DependencyStatus
    depends_on: list[str] = Field(default_factory=list)  # cycle order, closed (what dependencies need too)
    reasons: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class _Patch:
    file: Path
    touched: set[str]


def plan_patch(repo: Path, commit_shas: list[str], scratch: _git.Scratch) -> _Patch | None:
    """The plan's combined change as a binary, full-index patch file (None when it changes nothing)."""
    base, head = plan_range(commit_shas)
    data = _git.run(repo, "diff-tree", *_git.PATCH_ARGS, base, head).out
    if not data.strip():
        return None
    names = _git.run(repo, "diff-tree", "-r", "-z", "--name-only", "--no-renames", base, head).out
    return _Patch(file=scratch.write(data), touched=set(_git.zsplit(names)))


def analyze_dependencies(ws: WorkspaceInfo, plans: list[PlanCommits]) -> dict[str, DependencyResult]:
    """Dependency status of every plan, ``plans`` in cycle order."""
    repo = Path(ws.path)
    results: dict[str, DependencyResult] = {}
    order = {plan.plan_id: i for i, plan in enumerate(plans)}
    patches: dict[str, _Patch] = {}
    with _git.scratch_space("always-on-deps-") as scratch:
        for plan in plans:
            try:
                results[plan.plan_id] = _analyze(repo, ws.base_commit, plan, patches, results, order, scratch)
            except (GitCommandError, AlwaysOnError, ValueError, OSError) as exc:
                reason = exc.message if isinstance(exc, AlwaysOnError) else _git.error_text(exc)
                results[plan.plan_id] = DependencyResult(
                    status=DependencyStatus.FAILED,
                    reasons=[f"dependency analysis of plan {plan.plan_id} failed: {reason}"],
                )
    return results


def _analyze(
    repo: Path,
    base: str,
    plan: PlanCommits,
    patches: dict[str, _Patch],
    results: dict[str, DependencyResult],
    order: dict[str, int],
    scratch: _git.Scratch,
) -> DependencyResult:
    if not plan.commit_shas:
        return DependencyResult(status=DependencyStatus.CLEAN, reasons=["the plan has no commits"])
    patch = plan_patch(repo, plan.commit_shas, scratch)
    if patch is None:
        return DependencyResult(
            status=DependencyStatus.CLEAN, reasons=["the plan's commits make no net change"]
        )
    patches[plan.plan_id] = patch
    earlier = [pid for pid in order if order[pid] < order[plan.plan_id] and pid in patches]

    def closure(chosen: list[str]) -> list[str]:
        needed = set(chosen)
        for pid in chosen:
            needed.update(results[pid].depends_on)
        return sorted(needed, key=order.__getitem__)

    last_error: list[str] = []

    def applies(chosen: list[str]) -> bool:
        env = scratch.index_env()
        _git.run(repo, "read-tree", base, env=env)
        for pid in closure(chosen):
            if error := _apply_cached(repo, patches[pid].file, env, check_only=False):
                last_error.append(f"plan {pid}: {error}")
                return False
        if error := _apply_cached(repo, patch.file, env, check_only=True):
            last_error.append(error)
            return False
        return True

    if applies([]):
        return DependencyResult(status=DependencyStatus.CLEAN)
    overlapping = [pid for pid in earlier if patches[pid].touched & patch.touched]
    if overlapping and applies(overlapping):
        candidates = overlapping
    elif applies(earlier):
        candidates = earlier
    else:
        return DependencyResult(
            status=DependencyStatus.FAILED,
            reasons=[
                f"plan {plan.plan_id} does not apply on the base commit even with all earlier plans of the cycle "
                + f"({last_error[-1]})"
            ],
        )
    needed = list(candidates)
    for pid in reversed(candidates):
        trial = [other for other in needed if other != pid]
        if applies(trial):
            needed = trial
    reasons = []
    for pid in needed:
        shared = sorted(patches[pid].touched & patch.touched)
        if shared:
            shown = ", ".join(shared[:3]) + (f" and {len(shared) - 3} more" if len(shared) > 3 else "")
            reasons.append(f"touches {shown} changed by plan {pid}")
        else:
            reasons.append(f"does not apply without plan {pid}")
    for pid in closure(needed):
        if pid not in needed:
            via = next(other for other in needed if pid in results[other].depends_on)
            reasons.append(f"needs plan {pid} because plan {via} depends on it")
    return DependencyResult(status=DependencyStatus.DEPENDENT, depends_on=closure(needed), reasons=reasons)


def _apply_cached(repo: Path, patch: Path, env: dict[str, str], *, check_only: bool) -> str | None:
    """Apply a patch to the scratch index only; git's complaint when it does not apply, else None."""
    args = ["apply", "--cached", "--whitespace=nowarn", *(["--check"] if check_only else []), str(patch)]
    result = _git.run(repo, *args, env=env, check=False)
    if result.rc == 0:
        return None
    lines = [line.removeprefix("error: ") for line in result.err.splitlines() if line.strip()]
    return "; ".join(lines[-2:]) or f"git apply exited with status {result.rc}"

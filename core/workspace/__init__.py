"""The workspace layer (DESIGN §2): isolated workspaces, per-plan commits, diffs, dependency analysis, apply
and archive. Everything here is deterministic git work; no agent is involved."""

from always_on.core.workspace.apply import ApplyResult, PlanApplyInfo, apply_plans
from always_on.core.workspace.archive import prune_stale_worktrees, remove_workspace, unapplied_commits
from always_on.core.workspace.attempts import ATTEMPTS_REF_PREFIX, attempt_ref, set_aside
from always_on.core.workspace.commits import CommitResult, commit_plan, head_of, submodule_files
from always_on.core.workspace.dependencies import DependencyResult, PlanCommits, analyze_dependencies
from always_on.core.workspace.diff import diff_files, diff_text, plan_range
from always_on.core.workspace.providers import (
    DEFAULT_SNAPSHOT_IGNORE,
    DEFAULT_SNAPSHOT_MAX_BYTES,
    WorkspaceInfo,
    prepare_workspace,
)

__all__ = [
    "ATTEMPTS_REF_PREFIX",
    "DEFAULT_SNAPSHOT_IGNORE",
    "DEFAULT_SNAPSHOT_MAX_BYTES",
    "ApplyResult",
    "CommitResult",
    "DependencyResult",
    "PlanApplyInfo",
    "PlanCommits",
    "WorkspaceInfo",
    "analyze_dependencies",
    "apply_plans",
    "attempt_ref",
    "commit_plan",
    "diff_files",
    "diff_text",
    "head_of",
    "plan_range",
    "prepare_workspace",
    "prune_stale_worktrees",
    "remove_workspace",
    "set_aside",
    "submodule_files",
    "unapplied_commits",
]

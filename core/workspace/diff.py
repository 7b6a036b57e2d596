"""What changed between two commits of a workspace: file list with line counts, and the text of the diff.

Whole cycle = ``base_commit..HEAD``; one plan = :func:`plan_range` of its commits. The runtime, not the agent,
fills the report's file list from here (DESIGN §2 Report), so renames, deletions, binary files and mode changes
must come out right whatever the user's diff configuration says.
"""

from __future__ import annotations

from pathlib import Path

from always_on.core.records import FileChange
from always_on.core.workspace import _git
from always_on.core.workspace.providers import WorkspaceInfo

_DIFF_ARGS = ("-M", "--no-ext-diff", "--no-textconv", "--no-color", "--no-relative")
_CHANGE = {"A": "added", "D": "deleted", "M": "modified", "T": "modified", "R": "renamed", "C": "added"}


def plan_range(commit_shas: list[str]) -> tuple[str, str]:
    """(base, head) of a plan's consecutive commits: the first one's parent to the last one."""
    if not commit_shas:
        raise ValueError("a plan with no commits has no range")
    return f"{commit_shas[0]}~1", commit_shas[-1]


def diff_files(ws_or_repo: WorkspaceInfo | Path | str, base: str, head: str) -> list[FileChange]:
    """Changed files between two commits (or trees), renames detected, sorted by path."""
    path = _repo_path(ws_or_repo)
    raw = _git.zsplit(_git.run(path, "diff", "--raw", "-z", "--no-abbrev", *_DIFF_ARGS, base, head).out)
    changes: dict[str, FileChange] = {}
    i = 0
    while i < len(raw):
        old_mode, new_mode, old_sha, new_sha, status = raw[i].lstrip(":").split()
        letter = status[0]
        if letter in "RC":
            old, new = raw[i + 1], raw[i + 2]
            i += 3
        else:
            old, new = None, raw[i + 1]
            i += 2
        change = _CHANGE.get(letter, "modified")
        if letter == "M" and old_sha == new_sha and old_mode != new_mode:
            change = "mode"
        changes[new] = FileChange(path=new, old_path=old if letter == "R" else None, change=change)
    counts = _git.run(path, "diff", "--numstat", "-z", *_DIFF_ARGS, base, head).out.split(b"\0")
    i = 0
    while i < len(counts):
        if not counts[i]:
            i += 1
            continue
        added, removed, name = counts[i].split(b"\t", 2)
        if name:
            i += 1
        else:  # a rename: the old and new paths follow as their own fields
            name = counts[i + 2]
            i += 3
        entry = changes.get(name.decode("utf-8", "surrogateescape"))
        if entry is None:
            continue
        if added == b"-":
            entry.binary = True
        else:
            entry.added, entry.removed = int(added), int(removed)
    return sorted(changes.values(), key=lambda c: c.path)


def diff_text(ws_or_repo: WorkspaceInfo | Path | str, base: str, head: str, file: str | None = None) -> str:
    """Unified diff text for display; with ``file``, only that file (its old name included for a rename)."""
    path = _repo_path(ws_or_repo)
    paths: list[str] = []
    if file is not None:
        paths = [file]
        for change in diff_files(path, base, head):
            if change.path == file and change.old_path:
                paths.append(change.old_path)
    out = _git.run(
        path, "diff", *_DIFF_ARGS, "--src-prefix=a/", "--dst-prefix=b/", base, head, "--", *paths
    ).out
    return out.decode("utf-8", "replace")


def _repo_path(ws_or_repo: WorkspaceInfo | Path | str) -> Path:
    return Path(ws_or_repo.path if isinstance(ws_or_repo, WorkspaceInfo) else ws_or_repo)

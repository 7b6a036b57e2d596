"""What the workspace holds of the user's checkout, and what it leaves out (issue 15).

A worktree starts from the project's last commit: untracked files and uncommitted edits of the checkout are not in
it. Discovery reads that same workspace (the orchestrator prepares it first), so a plan is made about what the
execution will work on; ``left_out`` says how much of the checkout that leaves out, for the run to tell the user.
The plan tool also refuses a plan naming a file that is in the checkout but not in the workspace
(``missing_from_workspace``), with the reason, so an agent that learnt of such a file elsewhere (a chat, a path in
its prompt) picks another change instead of a plan that cannot be carried out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from always_on.core.workspace import _git
from always_on.core.workspace.providers import WorkspaceInfo


class LeftOut(BaseModel):
    """How much of the checkout a worktree workspace does not hold."""

    untracked: int = 0  # untracked files (not ignored)
    uncommitted: int = 0  # tracked files with uncommitted changes (staged or not)

    def words(self) -> str | None:
        """One sentence for the run's output, or None when nothing is left out."""
        parts = []
        if self.untracked:
            parts.append(f"{self.untracked} untracked file{'s' * (self.untracked != 1)}")
        if self.uncommitted:
            parts.append(f"{self.uncommitted} file{'s' * (self.uncommitted != 1)} with uncommitted changes")
        if not parts:
            return None
        them = "it" if self.untracked + self.uncommitted == 1 else "them"
        return (
            f"{' and '.join(parts)} of the checkout left out: discovery and execution work on the last commit "
            f"(commit {them} to have {them} considered)"
        )


def left_out(project: Path, ws: WorkspaceInfo) -> LeftOut:
    """What of the checkout the workspace leaves out (a snapshot copies the files on disk: nothing)."""
    if ws.strategy != "worktree":
        return LeftOut()
    entries = _git.status(project, "--untracked-files=all")
    untracked = sum(1 for xy, _, _ in entries if xy == "??")
    return LeftOut(untracked=untracked, uncommitted=len(entries) - untracked)


# A path as plans write them: `src/app.py`, `src/app.py:12:5`, "untracked_mod.py", /abs/path/x.py.
_PATH_WORD = re.compile(r"(?<![\w./-])(/?[\w.-]+(?:/[\w.-]+)*)")
_POSITION = re.compile(r"(?::\d+)+$")


def named_paths(texts: Iterable[str], checkout: Path) -> list[str]:
    """Relative paths of files in the checkout that the texts name (in words or backticks, with or without a
    `:line:col` suffix); a word is a path only when such a file exists, so prose never matches."""
    root = _git.resolve(checkout)
    found: dict[str, None] = {}
    for text in texts:
        for word in _PATH_WORD.findall(text or ""):
            word = _POSITION.sub("", word).rstrip(".")
            if "/" not in word and "." not in word:
                continue
            path = Path(word)
            if path.is_absolute():
                try:
                    path = path.relative_to(root)
                except ValueError:
                    continue
            if ".." in path.parts or not path.parts:
                continue
            if (root / path).is_file():
                found[path.as_posix()] = None
    return list(found)


def missing_from_workspace(texts: Iterable[str], checkout: Path, workspace: Path) -> list[str]:
    """Files the texts name that exist in the checkout but not in the workspace (untracked there, or added and
    not committed): a plan about them cannot be carried out."""
    ws = Path(workspace)
    return [p for p in named_paths(texts, checkout) if not os.path.lexists(ws / p)]

"""Stable error codes and the one exception type the runtime raises for expected failures.

Codes are strings that scripts, the UI and the records depend on (DESIGN §2); never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    DISCOVERY_FAILED = "discovery_failed"
    WORKSPACE_PREPARE_FAILED = "workspace_prepare_failed"
    EXECUTION_FAILED = "execution_failed"
    REPORT_FAILED = "report_failed"
    PLAN_NOT_FOUND = "plan_not_found"
    CYCLE_NOT_FOUND = "cycle_not_found"
    RUN_NOT_FOUND = "run_not_found"
    PLAN_NOT_RERUNNABLE = "plan_not_rerunnable"
    INVALID_SELECTION = "invalid_selection"
    DEPENDENCY_ANALYSIS_FAILED = "dependency_analysis_failed"
    APPLY_CONFLICT = "apply_conflict"
    APPLY_FAILED = "apply_failed"
    CHECKOUT_DIRTY = "checkout_dirty"
    NOTHING_TO_APPLY = "nothing_to_apply"
    CYCLE_NOT_ACTIVE = "cycle_not_active"
    LOCK_BUSY = "lock_busy"
    AGENT_TIMEOUT = "agent_timeout"
    AGENT_CRASHED = "agent_crashed"
    AGENT_PROTOCOL_ERROR = "agent_protocol_error"
    AGENT_TOOL_LIMIT = "agent_tool_limit"
    AGENT_NOT_FOUND = "agent_not_found"
    AGENT_AUTH_REQUIRED = "agent_auth_required"
    MODEL_UNREACHABLE = "model_unreachable"
    AGENT_STALLED = "agent_stalled"
    AGENT_ERROR = "agent_error"
    INVALID_AGENT_COMMAND = "invalid_agent_command"
    STORE_CORRUPT = "store_corrupt"
    DISK_FULL = "disk_full"
    CONFIG_INVALID = "config_invalid"
    ILLEGAL_TRANSITION = "illegal_transition"
    WORKSPACE_DIRTY_AFTER_COMMIT = "workspace_dirty_after_commit"
    WORKSPACE_UNSAFE = "workspace_unsafe"
    SNAPSHOT_TOO_LARGE = "snapshot_too_large"
    PROJECT_NOT_FOUND = "project_not_found"
    NOT_A_DIRECTORY = "not_a_directory"
    INTERRUPTED = "interrupted"
    PLAN_INVALID = "plan_invalid"
    PLAN_QUOTA_EXHAUSTED = "plan_quota_exhausted"
    POLICY_DENIED = "policy_denied"
    DEMO_PATH_EXISTS = "demo_path_exists"
    USAGE = "usage"
    SANDBOX_UNAVAILABLE = "sandbox_unavailable"
    SANDBOX_FAILED = "sandbox_failed"
    CYCLE_FULL = "cycle_full"


#: Failures of the agent's own setup or of its model API, not of the project or the phase: a run that meets one
#: fails with that code whatever phase it was in, since it is what the user has to act on (DESIGN §4).
AGENT_SETUP_CODES = frozenset(
    {
        ErrorCode.AGENT_AUTH_REQUIRED,
        ErrorCode.MODEL_UNREACHABLE,
        ErrorCode.AGENT_STALLED,
        ErrorCode.AGENT_NOT_FOUND,
    }
)


class AlwaysOnError(Exception):
    """An expected failure with a stable code, a message a person can act on, and optionally the next step
    (`hint`: the variable to set, the command to run)."""

    def __init__(
        self, code: ErrorCode | str, message: str, *, hint: str | None = None, **details: object
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = str(code)
        self.message = message
        self.hint = hint
        self.details = details

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


_NO_SPACE = ("No space left on device", "database or disk is full", "Disk quota exceeded")


def disk_full(exc: BaseException) -> AlwaysOnError | None:
    """The `disk_full` error for an exception caused by a full disk (OSError, SQLite, git's words), else None.

    Why one place: a full disk surfaces as OSError ENOSPC from Python, SQLITE_FULL from SQLite and only as words
    on stderr from git; every command must still end as its contract says, with the same code.
    """
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, AlwaysOnError) and current.code == ErrorCode.DISK_FULL:
            return current
        full = isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT)
        full = full or getattr(current, "sqlite_errorcode", None) == 13  # SQLITE_FULL
        full = full or any(words in str(current) for words in _NO_SPACE)
        if full:
            where = getattr(current, "filename", None)
            return AlwaysOnError(
                ErrorCode.DISK_FULL,
                "the disk is full"
                + (f" (writing {where})" if where else "")
                + "; free some space and run again",
            )
        current = current.__cause__ or current.__context__
    return None


def disk_full_at(path: object, *, under: int = 256 * 1024) -> AlwaysOnError | None:
    """The `disk_full` error when the file system holding ``path`` has (almost) no space left, else None.

    For failures whose words do not say why (git: "unable to write file X"): a write that failed on a file system
    with less than ``under`` bytes free failed because the disk is full.
    """
    import os

    folder = os.fspath(path)
    while folder and not os.path.exists(folder):
        folder = os.path.dirname(folder)
    try:
        info = os.statvfs(folder or "/")
    except OSError:
        return None
    if info.f_bavail * info.f_frsize >= under:
        return None
    return AlwaysOnError(
        ErrorCode.DISK_FULL, f"the disk holding {path} is full; free some space and run again", path=str(path)
    )

"""A policy decision, and how a check deep inside a command family refuses: `deny(reason)` ends the check."""

from __future__ import annotations

from typing import NoReturn

from pydantic import BaseModel


class Decision(BaseModel):
    """The answer to one agent action; `reason` names the rule, e.g. "denied: `git push` sends commits..."."""

    allowed: bool
    reason: str

    @classmethod
    def allow(cls, reason: str) -> Decision:
        return cls(allowed=True, reason=f"allowed: {reason}")

    @classmethod
    def deny(cls, reason: str) -> Decision:
        return cls(allowed=False, reason=f"denied: {reason}")


class Denied(Exception):
    """Raised by `deny`; the kernel turns it into a `Decision`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def deny(reason: str) -> NoReturn:
    raise Denied(reason)

"""Text that may carry undecodable bytes: file names that are not valid UTF-8.

Python keeps such a name exactly as a ``str`` with lone surrogates (``os.fsdecode``, git output decoded with
``surrogateescape``). Those strings work for every file operation but cannot be written as UTF-8 — not to JSON,
SQLite or a markdown file. So: people read a *display* form (the odd bytes as ``\\xNN``, like git's quoting), and
records that must find the file again carry the exact bytes beside it (base64).
"""

from __future__ import annotations

import base64
import os
from typing import Any


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds undecodable bytes (it cannot be encoded as UTF-8 as is)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def display(text: str) -> str:
    """A UTF-8-safe form for people: undecodable bytes become ``\\xNN`` (valid text is returned unchanged)."""
    if not has_surrogates(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def to_b64(path: str) -> str:
    """The exact bytes of a file name, base64 (what a record stores beside the display form)."""
    return base64.b64encode(os.fsencode(path)).decode("ascii")


def from_b64(data: str) -> str:
    return os.fsdecode(base64.b64decode(data))


def clean(value: Any) -> Any:
    """``value`` with every string made UTF-8-safe (for JSON meant for people: events, messages)."""
    if isinstance(value, str):
        return display(value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value

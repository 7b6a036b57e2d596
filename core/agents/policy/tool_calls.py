"""What an ACP permission request asks to touch: the paths named anywhere in a tool call's `rawInput`, and
whether the tool is one of always-on's own (the plan and report tools, the chat history)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def is_always_on_tool(name: object) -> bool:
    return isinstance(name, str) and bool(
        re.search(r"always_on_(discovery_plan|report|read_chat_history)\b", name)
    )


_PATH_KEYS = {
    "path", "filepath", "file", "notebookpath", "paths", "files", "oldpath", "newpath", "source", "destination",
    "target", "from", "to", "src", "dst", "dest", "abspath", "absolutepath", "dir", "directory", "filename",
}  # fmt: skip


def find_paths(raw: Any, depth: int = 0) -> list[str]:
    """Every path-like value in a tool call's rawInput (`file_path`, `paths`, codex's `changes` keys...)."""
    found: list[str] = []
    if depth > 4:
        return found
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            norm = re.sub(r"[^a-z]", "", str(key).lower())
            if norm == "changes" and isinstance(value, Mapping):
                found.extend(str(k) for k in value)
            if norm in _PATH_KEYS:
                if isinstance(value, str) and value:
                    found.append(value)
                elif isinstance(value, list):
                    found.extend(v for v in value if isinstance(v, str) and v)
            if isinstance(value, Mapping | list):
                found.extend(find_paths(value, depth + 1))
    elif isinstance(raw, list):
        for item in raw:
            found.extend(find_paths(item, depth + 1))
    return list(dict.fromkeys(found))

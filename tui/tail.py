"""Follow a JSONL log another process appends to: return only whole lines added since the last read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class JsonlTail(Generic[M]):
    def __init__(self, path: Path, model: type[M], *, from_end: bool = True) -> None:
        self.path = path
        self.model = model
        self.offset = self._size() if from_end else 0

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def read_new(self) -> list[M]:
        size = self._size()
        if size < self.offset:  # replaced or truncated: start over
            self.offset = 0
        if size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        end = data.rfind(b"\n")
        if end < 0:
            return []  # a line still being written
        self.offset += end + 1
        out: list[M] = []
        for line in data[: end + 1].splitlines():
            if line.strip():
                try:
                    out.append(self.model.model_validate_json(line))
                except ValidationError:
                    continue  # the store's own reader reports torn lines; a live view just skips them
        return out

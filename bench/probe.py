"""Bench-only instrumentation: time spent inside named product functions, without editing the product.

Why: a figure alone does not say what to fix. ``Probe`` temporarily wraps module attributes (e.g. the workspace
layer's git runner, the store's write methods) with timers that add a few microseconds per call, and restores
them on exit. Nested probes on the same call path count both (e.g. a store write inside an event emit).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Self


class Probe:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._restore: list[tuple[Any, str, Any]] = []

    def wrap(self, target: str, label: str | Callable[..., str] | None = None) -> Probe:
        """Wrap ``module.attr`` or ``module.Class.method`` (a dotted path); label may depend on the call args."""
        owner, attr = _resolve(target)
        original = inspect.getattr_static(owner, attr)
        func = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
        name = label or target.rsplit(".", 1)[-1]
        seconds, calls = self.seconds, self.calls

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                key = name(*args, **kwargs) if callable(name) else name
                t0 = time.perf_counter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    seconds[key] += time.perf_counter() - t0
                    calls[key] += 1

            wrapped: Any = timed_async
        else:

            @functools.wraps(func)
            def timed(*args: Any, **kwargs: Any) -> Any:
                key = name(*args, **kwargs) if callable(name) else name
                t0 = time.perf_counter()
                try:
                    return func(*args, **kwargs)
                finally:
                    seconds[key] += time.perf_counter() - t0
                    calls[key] += 1

            wrapped = timed
        if isinstance(original, staticmethod):
            wrapped = staticmethod(wrapped)
        elif isinstance(original, classmethod):
            wrapped = classmethod(wrapped)
        setattr(owner, attr, wrapped)
        self._restore.append((owner, attr, original))
        return self

    def wrap_git(self, prefix: str = "git") -> Probe:
        """Time every git command of the workspace layer, by subcommand (``git worktree``, ``git add``, ...)."""
        return self.wrap(
            "always_on.core.workspace._git.run", lambda cwd, *args, **kw: f"{prefix} {_subcommand(args)}"
        )

    def restore(self) -> None:
        while self._restore:
            owner, attr, original = self._restore.pop()
            setattr(owner, attr, original)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def take(self) -> dict[str, float]:
        """Accumulated seconds per label since the last take (then reset)."""
        out = dict(self.seconds)
        self.seconds.clear()
        self.calls.clear()
        return out


def _resolve(target: str) -> tuple[Any, str]:
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1]
    raise ImportError(f"cannot resolve {target}")


def _subcommand(args: tuple[str, ...]) -> str:
    for arg in args:
        if not arg.startswith("-"):
            return arg
    return "?"


def merge_medians(samples: list[dict[str, float]]) -> dict[str, float]:
    """Per-label median over samples (a label missing from a sample counts as 0 there)."""
    import statistics

    keys = sorted({key for sample in samples for key in sample})
    return {key: statistics.median([sample.get(key, 0.0) for sample in samples]) for key in keys}

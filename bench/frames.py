"""Measuring a headless Textual app: when frames are produced, how long the event loop stalls, a realistic feed.

Why this way: ``App.run_test`` runs the real app (screens, timers, compositor) on a headless driver that skips
only the final write to the terminal. ``FrameRecorder`` hooks ``App._display`` — called once per composed frame —
records its time, and still renders the frame to terminal escape sequences (without writing them), so the cost
of a frame is the same as in a terminal. ``LagMonitor`` is a 5 ms ticker whose lateness is the longest time the
loop was blocked. ``agent_events`` makes the kind of stream an agent produces (mostly short message chunks,
some thoughts, tool calls with status updates, permission decisions), made on the fly so that they do not
count as the app's memory.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from textual.app import App

WORDS = (
    "the",
    "file",
    "tests",
    "ruff",
    "import",
    "function",
    "returns",
    "value",
    "check",
    "now",
    "fix",
    "module",
    "passes",
    "line",
    "config",
    "I",
    "will",
    "look",
    "at",
    "unused",
    "reported",
    "by",
)


class FrameRecorder:
    """Mix into an App subclass (first in the bases): ``frames`` = perf_counter times of composed frames;
    ``await wait_frame(predicate)`` = the time of the first frame composed once ``predicate()`` holds."""

    frames: list[float]
    _frame_waiters: list[tuple[Callable[[], bool], asyncio.Future[float]]]

    def _display(self, screen: Any, renderable: Any) -> None:
        if renderable is not None:
            from textual._compositor import CompositorUpdate

            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(self.console)  # what a terminal frame costs, minus the write
            now = time.perf_counter()
            self.__dict__.setdefault("frames", []).append(now)
            for waiter in list(self.__dict__.get("_frame_waiters", [])):
                predicate, future = waiter
                if not future.done() and predicate():
                    future.set_result(now)
                    self._frame_waiters.remove(waiter)
        super()._display(screen, renderable)  # type: ignore[misc]

    def wait_frame(self, predicate: Callable[[], bool]) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.__dict__.setdefault("_frame_waiters", []).append((predicate, future))
        return future


def max_gap(times: list[float], start: float, end: float) -> tuple[float, float, int]:
    """(longest gap, 99th percentile gap, frames) between consecutive frames inside [start, end]."""
    inside = [t for t in times if start <= t <= end]
    gaps = sorted(b - a for a, b in itertools.pairwise([start, *inside]))
    if not gaps:
        return end - start, end - start, 0
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
    return gaps[-1], p99, len(inside)


class LagMonitor:
    """Ticks every 5 ms; ``worst`` is the largest lateness seen (how long the loop was blocked)."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.worst = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.period)
            self.worst = max(self.worst, time.perf_counter() - t0 - self.period)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class GcMonitor:
    """Collector pauses (``gc.callbacks``): a full collection blocks the loop like any other long callback."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._t0 = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._t0))

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, float]:
        full = [seconds for gen, seconds in self.pauses if gen == 2]
        return {
            "gc_full_collections": float(len(full)),
            "gc_pause_max_ms": max((seconds for _, seconds in self.pauses), default=0.0) * 1000,
        }


def agent_events(run_id: str, seed: int = 1) -> Iterator[Any]:
    """An endless, realistic agent stream for run ``run_id``, in blocks as agents send them: a thought (10-60
    chunks), a message (20-200 chunks of one or two words, a newline every ~17 chunks), tool calls with a status
    update each and sometimes a permission decision."""
    from always_on.core.records import AgentEvent, AgentEventKind, Phase

    rng = random.Random(seed)
    tool = 0
    phase = Phase.EXECUTION
    while True:
        roll = rng.random()
        if roll < 0.7:
            for _ in range(rng.randint(20, 200)):
                text = " ".join(rng.choices(WORDS, k=rng.randint(1, 2))) + (
                    "\n" if rng.random() < 0.06 else " "
                )
                yield AgentEvent(run_id=run_id, phase=phase, kind=AgentEventKind.MESSAGE, text=text)
        elif roll < 0.9:
            for _ in range(rng.randint(10, 60)):
                text = " ".join(rng.choices(WORDS, k=rng.randint(1, 2))) + (
                    "\n" if rng.random() < 0.03 else " "
                )
                yield AgentEvent(run_id=run_id, phase=phase, kind=AgentEventKind.THOUGHT, text=text)
        else:
            for _ in range(rng.randint(1, 3)):
                tool += 1
                call = f"call-{tool}"
                title = f"ruff check src/module_{tool % 97}.py"
                yield AgentEvent(
                    run_id=run_id,
                    phase=phase,
                    kind=AgentEventKind.TOOL_CALL,
                    text=title,
                    data={"toolCallId": call, "title": title, "status": "pending", "kind": "execute"},
                )
                if rng.random() < 0.3:
                    yield AgentEvent(
                        run_id=run_id,
                        phase=phase,
                        kind=AgentEventKind.PERMISSION,
                        text=title,
                        allowed=True,
                        reason="runs inside the workspace",
                    )
                yield AgentEvent(
                    run_id=run_id,
                    phase=phase,
                    kind=AgentEventKind.TOOL_CALL_UPDATE,
                    text="completed",
                    data={"toolCallId": call, "status": "completed"},
                )


async def feed(
    deliver, events: Iterator[Any], total: int, rate: float, tick: float = 0.01
) -> tuple[float, float]:
    """Deliver ``total`` events at ``rate`` per second (paced on the clock, in ticks); returns (start, end)."""
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            deliver(next(events))
            sent += 1
        await asyncio.sleep(tick)
    return start, time.perf_counter()


class BareStreamApp(App[None]):
    """The raw baseline: a bare Textual app with one RichLog, fed the same events, flushed every 50 ms."""

    CSS = "RichLog { height: 1fr; }"

    def __init__(self) -> None:
        super().__init__()
        self.inbox: list[Any] = []
        self.partial = ""

    def compose(self):
        from textual.widgets import RichLog

        yield RichLog(max_lines=5000, wrap=True, markup=False, highlight=False, auto_scroll=True)

    def on_mount(self) -> None:
        self.set_interval(0.05, self.flush)

    def deliver(self, event: Any) -> None:
        self.inbox.append(event)

    def flush(self) -> None:
        if not self.inbox:
            return
        from rich.text import Text
        from textual.widgets import RichLog

        text = self.partial + "".join(
            e.text if e.kind in ("message", "thought") else f"\n{e.text}\n" for e in self.inbox
        )
        self.inbox.clear()
        *lines, self.partial = text.split("\n")
        if lines:
            self.query_one(RichLog).write(Text("\n".join(lines)))

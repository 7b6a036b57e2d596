"""Benchmark 6b: startup of ``always-on-tui`` to its first frame on the 10,000-plan store vs an empty Textual app.

Both run for real in a pseudo-terminal (160x48, TERM=xterm-256color), exactly as from a shell: the clock starts
when the process is spawned and stops when the terminal has received the first frame with the screen's content —
the dashboard's scheduler line (which needs the project state read from the store) for always-on-tui, the app's
only label for the empty app. ``always-on-tui`` runs with its default options (the in-app scheduler included; the
seeded project is paused, so it never fires). Each process is then asked to quit (its quit key), and killed only
if it does not exit.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

from bench.common import PYTHON, REPO_ROOT, BenchResult, Context, Timer, figure, interleaved, median
from bench.seed import backlog_project

TITLE = "always-on-tui startup to first frame (10,000-plan store) vs an empty Textual app"
ROWS, COLS = 48, 160
EMPTY_APP = """
from textual.app import App
from textual.widgets import Static

class Empty(App):
    def compose(self):
        yield Static("bench-ready")

Empty().run()
"""
_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=$]*[a-zA-Z~]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")


def first_frame(
    argv: list[str], marker: bytes, quit_key: bytes, env: dict[str, str], timeout: float = 60.0
) -> float:
    """Seconds from spawning ``argv`` in a pty to ``marker`` appearing on its screen."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO_ROOT, start_new_session=True
    )
    os.close(slave)
    seen = b""
    elapsed = None
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                break
            seen += data
            if marker in _ESCAPES.sub(b"", seen):
                elapsed = time.perf_counter() - t0
                break
        if elapsed is None:
            tail = _ESCAPES.sub(b"", seen)[-500:].decode(errors="replace")
            raise RuntimeError(
                f"{argv[2:4]} showed no {marker!r} within {timeout:.0f} s; last output: {tail!r}"
            )
        os.write(master, quit_key)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own child's group (start_new_session above)
            proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _drain(master)
        os.close(master)
    return elapsed


def _drain(fd: int) -> None:
    while True:
        ready, _, _ = select.select([fd], [], [], 0)
        if not ready:
            return
        try:
            if not os.read(fd, 1 << 16):
                return
        except OSError:
            return


def run(ctx: Context) -> BenchResult:
    project = backlog_project(ctx)
    env = ctx.child_env(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
    env.pop("TEXTUAL", None)

    def app(i: int) -> float:
        return first_frame(
            [PYTHON, "-m", "always_on.tui.app", "--project", str(project)], b"Scheduler", b"q", env
        )

    def empty(i: int) -> float:
        return first_frame([PYTHON, "-c", EMPTY_APP], b"bench-ready", b"\x11", env)

    app(-1), empty(-1)  # warm the page cache (imports) for both
    ours, base = interleaved(ctx.runs, app, empty)
    fig = figure(
        "startup.tui",
        "always-on-tui: spawn → first frame with the dashboard (10,000-plan store)",
        "s",
        ours,
        baseline_label="empty Textual app (one label): spawn → first frame",
        baseline_samples=base,
        check="ratio_max",
        limit=2.0,
    )
    breakdown = {}
    for label, code in (
        ("python -c 'import always_on.tui.app' (wall)", "import always_on.tui.app"),
        ("python -c 'import textual.app, textual.widgets' (wall)", "import textual.app, textual.widgets"),
    ):
        samples = []
        for _ in range(ctx.runs):
            with Timer() as t:
                subprocess.run([PYTHON, "-c", code], env=env, cwd=REPO_ROOT, check=True)
            samples.append(t.seconds)
        breakdown[label] = median(samples)
    return BenchResult(name="startup", title=TITLE, figures=[fig], breakdown=breakdown)

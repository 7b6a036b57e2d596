"""Processes the agent runs through the client (ACP `terminal/*`), each in its own process group.

The gateway decides *whether* a command may run (policy); this module only runs it: argv without a shell
(the gateway passes `/bin/sh -c` explicitly for shell strings the policy parsed), output captured up to a
byte limit (truncated from the beginning, on a character boundary, as ACP specifies), and kill/release/close
that take the whole process tree so a command's children never outlive the phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

DEFAULT_OUTPUT_LIMIT = 1_000_000
_READ_CHUNK = 65_536
_DRAIN_AFTER_EXIT = (
    2.0  # output still buffered in the pipe after the process exits is read for at most this long
)


def process_tree(pid: int) -> list[int]:
    """Descendants of pid (Linux /proc; empty elsewhere). Take it *before* a kill: orphans lose their parent.

    Needed because children may leave our process groups: the MCP SDK starts stdio servers in new sessions.
    """
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_tree(pgid: int, descendants: Sequence[int], sig: int = signal.SIGKILL) -> None:
    """Signal a process group, then each descendant (its group too if it leads one); gone ones are fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in descendants:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if (
                os.getpgid(pid) == pid
            ):  # a leader (e.g. a server started with start_new_session): take its group
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)


async def start_command_process(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]
) -> asyncio.subprocess.Process:
    """The one place a terminal command is launched: argv as is (no shell), in `cwd` with `env`, in a new
    session (its own process group), stdin closed, stdout and stderr captured together.

    Raises OSError if it cannot be started.
    """
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=str(cwd),
        env=dict(env),
        start_new_session=True,
    )


class ExitStatus(BaseModel):
    exit_code: int | None = None
    signal: str | None = None


class Terminal:
    """One running (or finished) command and its captured output."""

    def __init__(
        self,
        terminal_id: str,
        owner: str,
        argv: list[str],
        process: asyncio.subprocess.Process,
        limit: int,
        on_output: Callable[[], None] | None = None,
    ) -> None:
        self.id = terminal_id
        self._on_output = on_output
        self.owner = owner
        self.argv = argv
        self.process = process
        self.pid = process.pid
        self.limit = max(0, limit)
        self.truncated = False
        self.exit_status: ExitStatus | None = None
        self._buffer = bytearray()
        self._reader: asyncio.Task[None] | None = None
        self._exited = asyncio.Event()

    # --- output ---------------------------------------------------------------------------------------------

    def _append(self, data: bytes) -> None:
        self._buffer += data
        excess = len(self._buffer) - self.limit
        if excess > 0:
            # Drop from the front, then skip UTF-8 continuation bytes so the kept text starts on a character.
            while excess < len(self._buffer) and (self._buffer[excess] & 0xC0) == 0x80:
                excess += 1
            del self._buffer[:excess]
            self.truncated = True

    def output(self) -> str:
        return self._buffer.decode("utf-8", errors="replace")

    async def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        with contextlib.suppress(Exception):
            while chunk := await stream.read(_READ_CHUNK):
                self._append(chunk)
                if self._on_output is not None:
                    self._on_output()

    # --- lifecycle ------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.exit_status is None

    async def wait(self) -> ExitStatus:
        await self._exited.wait()
        assert self.exit_status is not None
        return self.exit_status

    async def _watch(self, on_exit: Callable[[Terminal], None] | None) -> None:
        code = await self.process.wait()
        if self._reader is not None:
            # A background child may keep the pipe open after the command exited: read what is there, briefly.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), _DRAIN_AFTER_EXIT)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"SIG{-code}"
            self.exit_status = ExitStatus(exit_code=None, signal=name)
        else:
            self.exit_status = ExitStatus(exit_code=code, signal=None)
        self._exited.set()
        if on_exit is not None:
            with contextlib.suppress(Exception):
                on_exit(self)

    async def kill(self) -> None:
        """Kill the command's process group (it leads one), and descendants that left it; reap the leader."""
        kill_tree(self.pid, process_tree(self.pid))
        with contextlib.suppress(Exception):
            await self.process.wait()  # reap, so the pid is really gone


class TerminalManager:
    """All terminals of one gateway, grouped by owner (the ACP session that created them)."""

    def __init__(
        self,
        on_exit: Callable[[Terminal], None] | None = None,
        on_output: Callable[[], None] | None = None,
    ) -> None:
        self._terminals: dict[str, Terminal] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._on_exit = on_exit
        self._on_output = on_output  # each chunk of output of any terminal (the agent's stall clock)

    async def create(
        self,
        argv: Sequence[str],
        *,
        owner: str,
        cwd: Path,
        env: Mapping[str, str],
        output_byte_limit: int | None = None,
    ) -> Terminal:
        """Start argv (no shell) in a new session/process group; raises OSError if it cannot be started."""
        process = await start_command_process(argv, cwd=cwd, env=env)
        limit = (
            DEFAULT_OUTPUT_LIMIT
            if output_byte_limit is None
            else min(output_byte_limit, DEFAULT_OUTPUT_LIMIT)
        )
        term = Terminal(f"term-{next(self._ids)}", owner, list(argv), process, limit, self._on_output)
        term._reader = asyncio.create_task(term._read(), name=f"terminal-read-{term.id}")
        watcher = asyncio.create_task(term._watch(self._on_exit), name=f"terminal-watch-{term.id}")
        for task in (term._reader, watcher):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._terminals[term.id] = term
        return term

    def get(self, terminal_id: str, owner: str) -> Terminal | None:
        term = self._terminals.get(terminal_id)
        return term if term is not None and term.owner == owner else None

    def pids(self) -> list[int]:
        return [t.pid for t in self._terminals.values()]

    async def release(self, terminal_id: str) -> None:
        term = self._terminals.pop(terminal_id, None)
        if term is not None:
            await term.kill()

    async def close_owner(self, owner: str) -> None:
        for tid in [t.id for t in self._terminals.values() if t.owner == owner]:
            await self.release(tid)

    async def close_all(self) -> None:
        for tid in list(self._terminals):
            await self.release(tid)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

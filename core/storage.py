"""The on-disk store of DESIGN §3: one folder per project, atomic JSON, whole-line JSONL, cross-process locks.

Layout of ``<data>/projects/<project_id>/``::

    state.json        ProjectState
    plans.json        {plan_id: PlanRecord}
    plans/<id>.md     canonical plan markdown
    cycles.json       {cycle_id: CycleRecord}
    reports/<run>.md  report markdown, reports/<run>.json ReportMetadata
    history.jsonl     RunHistoryEntry per finished run
    events.jsonl      PhaseEvent log
    runs/<run>.jsonl  AgentEvent log of one run
    fire.lock         the fire lock (pid, host, start time)
    .store.lock       flock serialising read-modify-write across processes
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from always_on.core import paths
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import (
    AgentEvent,
    CycleRecord,
    PhaseEvent,
    PlanRecord,
    ProjectState,
    ReportMetadata,
    RunHistoryEntry,
    utcnow,
)

M = TypeVar("M", bound=BaseModel)


class StoreCorruptError(AlwaysOnError):
    def __init__(self, path: Path, moved_to: Path, problem: str) -> None:
        super().__init__(
            ErrorCode.STORE_CORRUPT,
            f"{path} could not be read ({problem}); it was moved aside to {moved_to.name} "
            "and the store continues without it",
            path=str(path),
            moved_to=str(moved_to),
        )
        self.path = path
        self.moved_to = moved_to


# --- file primitives ----------------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    """Write via temp file + fsync + rename so readers only ever see the old or the new whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def append_line(path: Path, line: str) -> None:
    """Append one whole line with a single O_APPEND write (never interleaved with another writer's line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a previous writer died mid-line: start ours on a fresh line
        os.write(fd, data)
    finally:
        os.close(fd)


def move_aside(path: Path) -> Path:
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    return target


def read_model(path: Path, model: type[M]) -> M | None:
    """Read one JSON record; a file that does not parse is moved aside and reported, never defaulted."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return model.model_validate_json(raw)
    except (ValidationError, ValueError) as exc:
        moved = move_aside(path)
        raise StoreCorruptError(path, moved, _short(exc)) from None


def read_model_map(path: Path, model: type[M]) -> dict[str, M]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        return _map_adapter(model).validate_json(raw)  # one pass in pydantic-core: 10,000 plans in ~0.1 s
    except (ValueError, ValidationError) as exc:
        moved = move_aside(path)
        raise StoreCorruptError(path, moved, _short(exc)) from None


@functools.cache
def _map_adapter(model: type[M]) -> TypeAdapter[dict[str, M]]:
    return TypeAdapter(dict[str, model])


def write_model_map(path: Path, records: dict[str, BaseModel]) -> None:
    payload = {key: rec.model_dump(mode="json") for key, rec in records.items()}
    atomic_write_text(path, json.dumps(payload, indent=1, ensure_ascii=False))


def read_jsonl(path: Path, model: type[M], warnings: list[str] | None = None) -> list[M]:
    """Read a JSONL log; a torn or garbage line is skipped and noted, the rest is kept."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out: list[M] = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            if warnings is not None:
                warnings.append(f"{path.name}:{number}: skipped unreadable line ({_short(exc)})")
    return out


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


_held = threading.local()
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive cross-process lock (flock), re-entrant within one thread, exclusive across threads."""
    key = str(path)
    depths: dict[str, int] = _held.__dict__.setdefault("depths", {})
    if depths.get(key):
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(key, threading.Lock())
    with tlock:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            depths[key] = 1
            try:
                yield
            finally:
                depths[key] = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


# --- fire lock --------------------------------------------------------------------------------------------


class LockInfo(BaseModel):
    pid: int
    host: str
    started_at: datetime
    run_id: str | None = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FireLock:
    """One fire per project at a time, across processes; a lock left by a dead process is taken over."""

    def __init__(self, path: Path, guard: Path) -> None:
        self.path = path
        self.guard = guard
        self.taken_over: LockInfo | None = None

    def holder(self) -> LockInfo | None:
        try:
            return LockInfo.model_validate_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError):
            return None

    def is_stale(self, info: LockInfo | None) -> bool:
        if info is None:
            return True
        return info.host == socket.gethostname() and not pid_alive(info.pid)

    def busy(self) -> LockInfo | None:
        """The live holder, or None when the lock is free or stale."""
        info = self.holder()
        if not self.path.exists() or self.is_stale(info):
            return None
        return info

    def acquire(self, run_id: str | None = None) -> LockInfo:
        with file_lock(self.guard):
            if self.path.exists():
                info = self.holder()
                if not self.is_stale(info):
                    assert info is not None
                    raise AlwaysOnError(
                        ErrorCode.LOCK_BUSY,
                        f"another fire holds the lock (pid {info.pid} on {info.host}, "
                        f"since {info.started_at:%Y-%m-%d %H:%M:%S} UTC)",
                    )
                self.taken_over = info
            mine = LockInfo(pid=os.getpid(), host=socket.gethostname(), started_at=utcnow(), run_id=run_id)
            atomic_write_text(self.path, mine.model_dump_json())
            return mine

    def release(self) -> None:
        with file_lock(self.guard):
            info = self.holder()
            if info is not None and info.pid == os.getpid() and info.host == socket.gethostname():
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    def clear_stale(self) -> LockInfo | None:
        with file_lock(self.guard):
            if self.path.exists():
                info = self.holder()
                if self.is_stale(info):
                    self.path.unlink()
                    return info
        return None

    @contextlib.contextmanager
    def held(self, run_id: str | None = None) -> Iterator[LockInfo]:
        info = self.acquire(run_id)
        try:
            yield info
        finally:
            self.release()


# --- project store ------------------------------------------------------------------------------------------


class ProjectStore:
    """All records of one project. Mutations go through ``update_*`` which hold the store lock."""

    def __init__(self, root: Path, project_path: Path) -> None:
        self.project_path = project_path
        self.project_id = paths.project_id_for(project_path)
        self.dir = root / self.project_id
        self.warnings: list[str] = []

    # paths
    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    @property
    def plans_path(self) -> Path:
        return self.dir / "plans.json"

    @property
    def cycles_path(self) -> Path:
        return self.dir / "cycles.json"

    @property
    def history_path(self) -> Path:
        return self.dir / "history.jsonl"

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.dir / ".store.lock"

    def plan_md_path(self, plan_id: str) -> Path:
        return self.dir / "plans" / f"{plan_id}.md"

    def report_path(self, run_id: str) -> Path:
        return self.dir / "reports" / f"{run_id}.md"

    def report_meta_path(self, run_id: str) -> Path:
        return self.dir / "reports" / f"{run_id}.json"

    def agent_events_path(self, run_id: str) -> Path:
        return self.dir / "runs" / f"{run_id}.jsonl"

    def fire_lock(self) -> FireLock:
        return FireLock(self.dir / "fire.lock", self.lock_path)

    def exists(self) -> bool:
        return self.state_path.exists()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with file_lock(self.lock_path):
            yield

    # state
    def read_state(self) -> ProjectState:
        state = read_model(self.state_path, ProjectState)
        if state is None:
            state = ProjectState(project_id=self.project_id, path=str(self.project_path))
            # a state moved aside must not orphan the work cycle: the one active cycle is still the active one
            active = [c.id for c in self.cycles().values() if c.status in ("active", "applying")]
            if len(active) == 1:
                state.active_cycle_id = active[0]
        return state

    def write_state(self, state: ProjectState) -> None:
        atomic_write_text(self.state_path, state.model_dump_json(indent=1))

    def update_state(self, fn: Callable[[ProjectState], None]) -> ProjectState:
        with self.locked():
            state = self.read_state()
            fn(state)
            self.write_state(state)
            return state

    # plans
    def plans(self) -> dict[str, PlanRecord]:
        return read_model_map(self.plans_path, PlanRecord)

    def get_plan(self, plan_id: str) -> PlanRecord:
        plans = self.plans()
        if plan_id in plans:
            return plans[plan_id]
        matches = [p for pid, p in plans.items() if pid.endswith(plan_id) or pid.startswith(plan_id)]
        if len(matches) == 1:
            return matches[0]
        raise AlwaysOnError(ErrorCode.PLAN_NOT_FOUND, f"no plan with id '{plan_id}' in this project")

    def save_plan(self, plan: PlanRecord, markdown: str | None = None) -> None:
        with self.locked():
            plans = self.plans()
            plans[plan.id] = plan
            write_model_map(self.plans_path, plans)
            if markdown is not None:
                atomic_write_text(self.plan_md_path(plan.id), markdown)

    def update_plan(self, plan_id: str, fn: Callable[[PlanRecord], None]) -> PlanRecord:
        with self.locked():
            plans = self.plans()
            if plan_id not in plans:
                raise AlwaysOnError(ErrorCode.PLAN_NOT_FOUND, f"no plan with id '{plan_id}' in this project")
            fn(plans[plan_id])
            plans[plan_id].updated_at = utcnow()
            write_model_map(self.plans_path, plans)
            return plans[plan_id]

    def read_plan_markdown(self, plan_id: str) -> str | None:
        try:
            return self.plan_md_path(plan_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    # cycles
    def cycles(self) -> dict[str, CycleRecord]:
        return read_model_map(self.cycles_path, CycleRecord)

    def get_cycle(self, cycle_id: str) -> CycleRecord:
        cycles = self.cycles()
        if cycle_id in cycles:
            return cycles[cycle_id]
        matches = [c for cid, c in cycles.items() if cid.endswith(cycle_id) or cid.startswith(cycle_id)]
        if len(matches) == 1:
            return matches[0]
        raise AlwaysOnError(ErrorCode.CYCLE_NOT_FOUND, f"no cycle with id '{cycle_id}' in this project")

    def save_cycle(self, cycle: CycleRecord) -> None:
        with self.locked():
            cycles = self.cycles()
            cycles[cycle.id] = cycle
            write_model_map(self.cycles_path, cycles)

    def update_cycle(self, cycle_id: str, fn: Callable[[CycleRecord], None]) -> CycleRecord:
        with self.locked():
            cycles = self.cycles()
            if cycle_id not in cycles:
                raise AlwaysOnError(
                    ErrorCode.CYCLE_NOT_FOUND, f"no cycle with id '{cycle_id}' in this project"
                )
            fn(cycles[cycle_id])
            cycles[cycle_id].updated_at = utcnow()
            write_model_map(self.cycles_path, cycles)
            return cycles[cycle_id]

    def active_cycle(self) -> CycleRecord | None:
        cycle_id = self.read_state().active_cycle_id
        if not cycle_id:
            return None
        return self.cycles().get(cycle_id)

    # reports
    def write_report(self, meta: ReportMetadata, markdown: str) -> None:
        atomic_write_text(self.report_path(meta.run_id), markdown)
        atomic_write_text(self.report_meta_path(meta.run_id), meta.model_dump_json(indent=1))

    def read_report(self, run_id: str) -> tuple[ReportMetadata | None, str | None]:
        meta = read_model(self.report_meta_path(run_id), ReportMetadata)
        try:
            text = self.report_path(run_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        return meta, text

    # logs
    def append_history(self, entry: RunHistoryEntry) -> None:
        append_line(self.history_path, entry.model_dump_json())

    def history(self) -> list[RunHistoryEntry]:
        return read_jsonl(self.history_path, RunHistoryEntry, self.warnings)

    def append_event(self, event: PhaseEvent) -> None:
        append_line(self.events_path, event.model_dump_json())

    def events(self) -> list[PhaseEvent]:
        return read_jsonl(self.events_path, PhaseEvent, self.warnings)

    def append_agent_event(self, event: AgentEvent) -> None:
        append_line(self.agent_events_path(event.run_id), event.model_dump_json())

    def agent_events(self, run_id: str) -> list[AgentEvent]:
        return read_jsonl(self.agent_events_path(run_id), AgentEvent, self.warnings)


class Store:
    """The whole data directory: a registry of project stores."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or paths.data_dir()) / "projects"

    def project(self, project_path: Path | str) -> ProjectStore:
        return ProjectStore(self.root, Path(project_path).expanduser().resolve())

    def projects(self, warnings: list[str] | None = None) -> list[ProjectStore]:
        """Registered projects; one whose state does not parse is reported in `warnings`, not hidden."""
        out: list[ProjectStore] = []
        if not self.root.is_dir():
            return out
        for child in sorted(self.root.iterdir()):
            state_file = child / "state.json"
            if not state_file.is_file():
                continue
            try:
                state = ProjectState.model_validate_json(state_file.read_text(encoding="utf-8"))
            except (ValidationError, OSError, ValueError) as exc:
                if warnings is not None:
                    warnings.append(
                        f"{state_file} could not be read ({_short(exc)}); that project is skipped "
                        "until it is fixed or moved aside"
                    )
                continue
            out.append(self.project(state.path))
        return out

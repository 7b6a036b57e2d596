"""The on-disk store of DESIGN §3: records in one SQLite database per project, append-only logs, the fire lock.

Layout of ``<data>/projects/<project_id>/``::

    store.db (-wal, -shm)   the records (core.storage.db): state, plans, cycles, cycle_plans, runs, reports,
                            decisions, and the journal of an unfinished apply (applies)
    plans/<id>.md           canonical plan markdown
    reports/<run>.md        report markdown (its metadata is a row)
    events.jsonl            PhaseEvent log (append-only)
    runs/<run>.jsonl        AgentEvent log of one run (append-only, capped: core.event_log)
    runs/<run>/<phase>/     the outbox of a phase's MCP tool server
    apply/<apply_id>/       the originals and new files of an apply until it is settled (named by its journal)
    fire.lock               the fire lock (pid, host, process start time)
    .store.lock             flock guarding the fire lock and the JSON import
    json-imported-<time>/   the JSON files of a store made before SQLite, after their import (kept)
"""

from always_on.core.storage.db import Database, StoreCorruptError
from always_on.core.storage.files import append_line, atomic_write_text, file_lock, read_jsonl
from always_on.core.storage.lock import FireLock, LockInfo, holder_alive, pid_alive, process_start
from always_on.core.storage.project import ProjectStore
from always_on.core.storage.registry import Store

__all__ = [
    "Database",
    "FireLock",
    "LockInfo",
    "ProjectStore",
    "Store",
    "StoreCorruptError",
    "append_line",
    "atomic_write_text",
    "file_lock",
    "holder_alive",
    "pid_alive",
    "process_start",
    "read_jsonl",
]

"""The SQLite database of one project's records: schema, connections, transactions, error mapping (DESIGN §3).

Why one database per project (``<data>/projects/<id>/store.db``), not one per user: a damaged file stops one
project, not all of them; the project folder stays the unit that holds everything of a project (markdown, logs,
an unfinished apply's originals) and that the TUI watches; two projects never wait for each other's writes. The
cost — ``status`` and the daemon open one file per project — is a fraction of a millisecond each.

WAL journal (readers never block the writer, and see whole transactions only), ``busy_timeout`` for concurrent
writers, ``BEGIN IMMEDIATE`` for every state change (one transaction each; the read-modify-write happens inside
it, so no update is ever lost), ``synchronous=NORMAL`` (a killed process loses nothing committed).

A file that is not an always-on database (garbage, another program's SQLite file, a newer schema) is reported
as ``store_corrupt`` naming the file and left exactly as it is: nothing is ever replaced silently.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from always_on.core.errors import AlwaysOnError, ErrorCode, disk_full

DB_NAME = "store.db"
APPLICATION_ID = 0x414F4E31  # "AON1": marks the file as an always-on store
SCHEMA_VERSION = 1
BUSY_MS = 30_000
_CACHE = 32  # open connections kept per thread (LRU); each holds three file descriptors

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- one row: the project's scheduler-facing state (ProjectState without path and active_cycle_id)
CREATE TABLE IF NOT EXISTS state (
    project_id TEXT PRIMARY KEY,
    path       TEXT NOT NULL,
    data       TEXT NOT NULL
);
-- times are UTC text 'YYYY-MM-DDTHH:MM:SS.ffffffZ': fixed width, so they sort as times
CREATE TABLE IF NOT EXISTS plans (
    id               TEXT PRIMARY KEY,
    status           TEXT NOT NULL,
    title            TEXT NOT NULL,
    summary          TEXT NOT NULL,
    dedupe_key       TEXT NOT NULL,
    cycle_id         TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    discovery_run_id TEXT,
    report_run_id    TEXT,
    run_ids          TEXT NOT NULL DEFAULT '[]',
    failure_code     TEXT,
    failure_message  TEXT,
    failure_hint     TEXT,
    content          TEXT NOT NULL,  -- the rest of PlanContent (JSON): rationale, signals, change, steps, checks
    schema_version   INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS plans_created ON plans (created_at, id);
CREATE INDEX IF NOT EXISTS plans_status ON plans (status, created_at);
CREATE INDEX IF NOT EXISTS plans_updated ON plans (updated_at);
CREATE INDEX IF NOT EXISTS plans_title ON plans (title COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS plans_dedupe ON plans (dedupe_key);
CREATE INDEX IF NOT EXISTS plans_cycle ON plans (cycle_id);
CREATE INDEX IF NOT EXISTS plans_discovery ON plans (discovery_run_id);
CREATE TABLE IF NOT EXISTS cycles (
    id             TEXT PRIMARY KEY,
    status         TEXT NOT NULL,
    strategy       TEXT NOT NULL,
    workspace_path TEXT NOT NULL,
    branch         TEXT,
    base_commit    TEXT NOT NULL,
    kept_branch    TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS cycles_status ON cycles (status);
CREATE INDEX IF NOT EXISTS cycles_created ON cycles (created_at, id);
-- a plan's place and git facts in its cycle; its status is the plan's (never copied here)
CREATE TABLE IF NOT EXISTS cycle_plans (
    cycle_id           TEXT NOT NULL,
    plan_id            TEXT NOT NULL,
    position           INTEGER NOT NULL,
    commit_shas        TEXT NOT NULL DEFAULT '[]',
    before_head        TEXT,
    after_head         TEXT,
    depends_on         TEXT NOT NULL DEFAULT '[]',
    dependency_reasons TEXT NOT NULL DEFAULT '[]',
    dependency_status  TEXT NOT NULL DEFAULT 'pending',
    attempts           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cycle_id, plan_id)
);
CREATE INDEX IF NOT EXISTS cycle_plans_plan ON cycle_plans (plan_id);
-- every run from its start: finished_at/outcome stay NULL while it runs (or until recovery finds it dead)
CREATE TABLE IF NOT EXISTS runs (
    run_id           TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    agent            TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    outcome          TEXT,
    plan_id          TEXT,
    cycle_id         TEXT,
    error_code       TEXT,
    error_message    TEXT,
    error_hint       TEXT,
    report_available INTEGER NOT NULL DEFAULT 0,
    denials          INTEGER NOT NULL DEFAULT 0,  -- requests the permission policy refused during the run
    pid              INTEGER,
    host             TEXT,
    schema_version   INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at, run_id);
CREATE INDEX IF NOT EXISTS runs_open ON runs (run_id) WHERE finished_at IS NULL;
CREATE INDEX IF NOT EXISTS runs_plan ON runs (plan_id);
-- report metadata (the markdown is reports/<run_id>.md)
CREATE TABLE IF NOT EXISTS reports (
    run_id  TEXT PRIMARY KEY,
    plan_id TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_plan ON reports (plan_id);
-- review decisions (issue #14): applied, archived, a file or hunk left out, with an optional one-line reason
CREATE TABLE IF NOT EXISTS decisions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    plan_id  TEXT,
    cycle_id TEXT,
    path     BLOB,  -- exact bytes of the file name (may not be UTF-8)
    hunk     TEXT,
    reason   TEXT
);
CREATE INDEX IF NOT EXISTS decisions_ts ON decisions (ts);
CREATE INDEX IF NOT EXISTS decisions_plan ON decisions (plan_id, ts);
-- the apply journal: a row exists exactly while an apply may have changed the checkout (core.workspace.journal)
CREATE TABLE IF NOT EXISTS applies (
    id         TEXT PRIMARY KEY,
    cycle_id   TEXT NOT NULL,
    plan_ids   TEXT NOT NULL,
    started_at TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    data       TEXT NOT NULL
);
"""


class StoreCorruptError(AlwaysOnError):
    """A store file that cannot be used; it is named and left as it is."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            ErrorCode.STORE_CORRUPT,
            f"{path} cannot be used ({problem}); it was left untouched. Move it aside to start this project's "
            "records afresh, or restore it from a backup",
            path=str(path),
        )
        self.path = path


def create_schema(conn: sqlite3.Connection) -> None:
    """Tables, indexes and the marks that identify the file (inside the caller's transaction)."""
    for statement in SCHEMA.split(";\n"):  # not executescript: it would commit the caller's transaction
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def map_error(path: Path, exc: sqlite3.Error) -> AlwaysOnError:
    """What an SQLite failure means to the user: a full disk, a busy store, or a file that cannot be used."""
    full = disk_full(exc)
    if full is None and getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_IOERR:
        with contextlib.suppress(OSError):  # an I/O error on a full file system is a full disk
            if os.statvfs(path.parent).f_bavail == 0:
                full = disk_full(OSError(errno.ENOSPC, "No space left on device", str(path)))
    if full is not None:
        return full
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in str(exc) or "busy" in str(exc):
            return AlwaysOnError(
                ErrorCode.LOCK_BUSY, f"the store {path} stayed busy for {BUSY_MS // 1000} s; try again"
            )
        return AlwaysOnError(ErrorCode.STORE_CORRUPT, f"{path}: {exc}", path=str(path))
    return StoreCorruptError(path, str(exc))


class Database:
    """One connection to one project's database, with nesting-aware transactions and mapped errors."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self._depth = 0
        self._writing = False
        self.inode = _inode(path)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise map_error(self.path, exc) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[Database]:
        """One transaction (``BEGIN IMMEDIATE``); nested calls join the outer one, which commits once."""
        if self._depth:
            if not self._writing:
                raise RuntimeError("a write cannot start inside a read transaction")
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        with self.guard():
            self.conn.execute("BEGIN IMMEDIATE")
        self._depth, self._writing = 1, True
        try:
            yield self
        except BaseException:
            self._end("ROLLBACK")
            raise
        else:
            try:
                with self.guard():
                    self.conn.execute("COMMIT")
            except BaseException:
                self._end("ROLLBACK")
                raise
        finally:
            self._depth, self._writing = 0, False

    @contextlib.contextmanager
    def read(self) -> Iterator[Database]:
        """A consistent snapshot for several queries (joins any transaction already open)."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        with self.guard():
            self.conn.execute("BEGIN")
        self._depth = 1
        try:
            yield self
        finally:
            self._depth = 0
            self._end("COMMIT")

    def _end(self, statement: str) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute(statement)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.guard():
            return self.conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        with self.guard():
            return self.conn.execute(sql, params).fetchone()

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self.row(sql, params)
        return found[0] if found else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; the number of rows it changed."""
        with self.guard():
            return self.conn.execute(sql, params).rowcount

    def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self.guard():
            self.conn.executemany(sql, params)


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def open_database(path: Path) -> Database:
    """Open (creating when new) the database at ``path``; refuse a file that is not an always-on store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        _check_or_create(path, conn)
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise map_error(path, exc) from exc
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return Database(path, conn)


def _check_or_create(path: Path, conn: sqlite3.Connection) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
        return
    if app_id == 0 and version == 0:
        conn.execute("BEGIN IMMEDIATE")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]  # another process may have won
            if app_id == 0:
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise StoreCorruptError(path, "it is an SQLite database of another program")
                create_schema(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id != APPLICATION_ID:
        raise StoreCorruptError(path, f"it is not an always-on database (application id {app_id:#x})")
    if version > SCHEMA_VERSION:
        raise StoreCorruptError(
            path, f"it was written by a newer always-on (schema {version}; this one reads {SCHEMA_VERSION})"
        )
    if version < SCHEMA_VERSION:  # pragma: no cover - there is one schema so far; upgrades go here
        raise StoreCorruptError(path, f"schema {version} has no upgrade path")


_local = threading.local()


def connect(path: Path) -> Database:
    """This thread's open connection to ``path`` (kept, LRU), reopened when the file was replaced or removed."""
    cache: collections.OrderedDict[str, Database] | None = getattr(_local, "cache", None)
    if cache is None or getattr(_local, "pid", None) != os.getpid():  # never reuse a connection across fork
        cache = _local.cache = collections.OrderedDict()
        _local.pid = os.getpid()
    key = str(path)
    db = cache.get(key)
    if db is not None:
        if db.inode == _inode(path) and db.inode is not None:
            cache.move_to_end(key)
            return db
        del cache[key]
        if not db._depth:
            db.conn.close()
    db = open_database(path)
    cache[key] = db
    while len(cache) > _CACHE:
        _, old = cache.popitem(last=False)
        if not old._depth:
            old.conn.close()
    return db


def forget(path: Path) -> None:
    """Close this thread's connection to ``path`` (before the file is moved, removed or replaced)."""
    cache = getattr(_local, "cache", None)
    if cache is not None:
        db = cache.pop(str(path), None)
        if db is not None and not db._depth:
            db.conn.close()

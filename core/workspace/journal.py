"""The apply journal: an apply to the user's checkout that survives ``kill -9`` at any instant (DESIGN §3).

Before the first file of the checkout changes, the journal is recorded (by the caller, in the store's database,
together with the cycle's ``applying`` status). It names every path the apply touches, the state each had before
(``old``: kind, exec bit, SHA-1 of the bytes, or absent) and the state it gets (``new``), where the original is
kept (``<folder>/orig/<seq>``: a hard link when the store is on the checkout's file system, else a copy) and
where the new version waits (``<folder>/new/<path>``); plus the folders the apply creates and those it removes
because a deletion emptied them. ``<folder>`` is inside the store: nothing is kept beside the user's project.

The swap then deletes, prunes, creates folders and moves each new file into place with one rename (or, across
file systems, a copy to a temporary name in the same folder and a rename), so each file is at any instant either
its old or its new version. Whoever finds an unsettled journal (the next command of any kind, when no live
process holds the fire lock) settles it:

- **forward** when every path is in its new state (the swap had finished): remaining empty folders are pruned,
  and the caller records the apply as done;
- **back** otherwise: added files are removed, created folders removed, removed folders recreated, and every
  original is copied back from ``orig/`` — byte for byte, with its mode. A file that is in neither state (edited
  by someone after the crash) is first copied to ``<folder>/found/<seq>`` and named, so nothing is lost.

Settling is idempotent: a crash while settling is settled by the next command the same way.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from always_on.core import text
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.faults import checkpoint
from always_on.core.workspace import _git

JOURNAL_VERSION = 1


@dataclass(frozen=True)
class FileState:
    """What is at a path: a regular file or a symbolic link, its bytes (SHA-1) and exec bit."""

    kind: str  # "file" | "link" | "dir" (a folder never matches a recorded state)
    sha: str = ""
    exec: bool = False

    def to_json(self) -> dict:
        return {"kind": self.kind, "sha": self.sha, "exec": self.exec}

    @classmethod
    def from_json(cls, data: dict | None) -> FileState | None:
        return None if data is None else cls(data["kind"], data.get("sha", ""), bool(data.get("exec")))


@dataclass
class Entry:
    seq: int
    path: str  # relative to the project; exact (undecodable bytes as surrogates)
    old: FileState | None
    new: FileState | None  # None: the apply deletes the path


@dataclass
class Journal:
    id: str
    cycle_id: str
    plan_ids: list[str]
    project: str
    folder: str
    entries: list[Entry] = field(default_factory=list)
    made_dirs: list[str] = field(default_factory=list)  # created for new files, outermost first
    pruned_dirs: list[str] = field(default_factory=list)  # emptied by deletions, innermost first

    @property
    def root(self) -> Path:
        return Path(self.project)

    @property
    def store(self) -> Path:
        return Path(self.folder)

    def backup(self, entry: Entry) -> Path:
        return self.store / "orig" / str(entry.seq)

    def staged(self, entry: Entry) -> Path:
        return self.store / "new" / entry.path

    def temp_name(self, target: Path) -> Path:
        return target.with_name(f".{target.name}.always-on-{self.id}.tmp")

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": JOURNAL_VERSION,
                "id": self.id,
                "cycle_id": self.cycle_id,
                "plan_ids": self.plan_ids,
                "project": _path_out(self.project),
                "folder": _path_out(self.folder),
                "entries": [
                    {
                        "seq": e.seq,
                        "path": _path_out(e.path),
                        "old": e.old.to_json() if e.old else None,
                        "new": e.new.to_json() if e.new else None,
                    }
                    for e in self.entries
                ],
                "made_dirs": [_path_out(p) for p in self.made_dirs],
                "pruned_dirs": [_path_out(p) for p in self.pruned_dirs],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, raw: str) -> Journal:
        data = json.loads(raw)
        if data.get("version") != JOURNAL_VERSION:
            raise ValueError(f"journal version {data.get('version')} is not {JOURNAL_VERSION}")
        return cls(
            id=data["id"],
            cycle_id=data["cycle_id"],
            plan_ids=list(data["plan_ids"]),
            project=_path_in(data["project"]),
            folder=_path_in(data["folder"]),
            entries=[
                Entry(
                    e["seq"],
                    _path_in(e["path"]),
                    FileState.from_json(e["old"]),
                    FileState.from_json(e["new"]),
                )
                for e in data["entries"]
            ],
            made_dirs=[_path_in(p) for p in data["made_dirs"]],
            pruned_dirs=[_path_in(p) for p in data["pruned_dirs"]],
        )


def _path_out(path: str) -> str | dict:
    """A path for the journal: itself when it is valid UTF-8, else its exact bytes beside its display form."""
    return {"display": text.display(path), "bytes": text.to_b64(path)} if text.has_surrogates(path) else path


def _path_in(value: str | dict) -> str:
    return text.from_b64(value["bytes"]) if isinstance(value, dict) else value


# --- reading the checkout -------------------------------------------------------------------------------


def state_of(path: Path) -> FileState | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a parent is a file now
        return None
    if stat.S_ISLNK(info.st_mode):
        return FileState("link", hashlib.sha1(os.fsencode(os.readlink(path))).hexdigest())
    if stat.S_ISDIR(info.st_mode):
        return FileState("dir")
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return FileState("file", digest.hexdigest(), bool(info.st_mode & 0o100))


def _same(a: FileState | None, b: FileState | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.kind == b.kind and a.sha == b.sha and (a.kind != "file" or a.exec == b.exec)


# --- staging: nothing in the checkout changes -------------------------------------------------------------


def stage(
    project: Path,
    folder: Path,
    *,
    apply_id: str,
    cycle_id: str,
    plan_ids: list[str],
    writes: list[str],
    deletes: list[str],
    checkout: Callable[[Path], None],
) -> Journal:
    """Keep the originals and write the new versions into ``folder``; the journal that names them.

    Refuses (``apply_conflict``) a write onto a folder that stays, or under a file that stays.
    """
    made, pruned = _plan_folders(project, writes, deletes)
    folder.mkdir(parents=True, exist_ok=True)
    journal = Journal(
        id=apply_id,
        cycle_id=cycle_id,
        plan_ids=list(plan_ids),
        project=str(project),
        folder=str(folder),
        made_dirs=made,
        pruned_dirs=pruned,
    )
    if writes:
        checkout(folder / "new")
    (folder / "orig").mkdir(exist_ok=True)
    emptied = set(pruned)
    for seq, rel in enumerate([*deletes, *writes]):
        target = project / rel
        entry = Entry(seq, rel, state_of(target), None)
        if entry.old is not None and entry.old.kind == "dir":
            # guard: journal-folder-is-not-a-file
            if rel not in emptied:
                raise AlwaysOnError(
                    ErrorCode.APPLY_CONFLICT,
                    f"{text.display(rel)} is a folder in your checkout; nothing was changed",
                    files=[rel],
                )
            entry.old = None  # a folder the deletions empty and remove: restored through pruned_dirs
        if seq >= len(deletes):
            entry.new = state_of(journal.staged(entry))
        if entry.old is not None:
            # guard: journal-keeps-originals
            _keep(target, journal.backup(entry))
        journal.entries.append(entry)
    checkpoint("apply.staged")
    return journal


def _ancestors(rel: str) -> list[str]:
    """Folders above ``rel`` inside the project, outermost first."""
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _plan_folders(project: Path, writes: list[str], deletes: list[str]) -> tuple[list[str], list[str]]:
    """(folders to create for the writes, folders the deletions empty), checking that the writes can land."""
    gone = set(deletes)
    write_parents = {folder for rel in writes for folder in _ancestors(rel)}
    pruned: list[str] = []
    for folder in sorted({f for rel in deletes for f in _ancestors(rel)}, key=lambda f: -f.count("/")):
        if folder in write_parents:
            continue
        try:
            names = os.listdir(project / folder)
        except OSError:
            continue
        if all(f"{folder}/{name}" in gone for name in names):  # like git: an emptied folder goes too
            gone.add(folder)
            pruned.append(folder)
    made: list[str] = []
    blocked: list[str] = []
    for rel in writes:
        for folder in _ancestors(rel):
            where = project / folder
            if where.is_dir() and not where.is_symlink():
                continue
            if os.path.lexists(where) and folder not in gone:
                blocked.append(rel)
                break
            if folder not in made:
                made.append(folder)
        target = project / rel
        if target.is_dir() and not target.is_symlink() and rel not in gone:
            blocked.append(rel)
    # guard: apply-nothing-in-the-way
    if blocked:
        raise AlwaysOnError(
            ErrorCode.APPLY_CONFLICT,
            "these paths cannot be written because a folder or file of your checkout is in the way: "
            + ", ".join(text.display(p) for p in blocked)
            + "; nothing was changed",
            files=blocked,
        )
    return sorted(made, key=lambda f: f.count("/")), pruned


def _keep(source: Path, kept: Path) -> None:
    """Keep the original: a hard link when possible (instant, and the checkout's file is untouched), else a copy."""
    kept.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        kept.unlink()
    try:
        os.link(source, kept, follow_symlinks=False)
    except OSError:
        _copy(source, kept)


def _copy(source: Path, target: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    else:
        shutil.copy2(source, target, follow_symlinks=False)
        with open(target, "rb") as fh:
            os.fsync(fh.fileno())


def _put(source: Path, target: Path, temp: Path, *, move: bool) -> None:
    """Make ``target`` hold ``source``'s bytes in one rename (a move, or a copy to ``temp`` then a rename)."""
    if move:
        try:
            os.replace(source, target)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    _copy(source, temp)
    os.replace(temp, target)


# --- the swap ---------------------------------------------------------------------------------------------


def swap(journal: Journal) -> None:
    """Change the checkout as the journal says. On failure the caller rolls back (``rollback``)."""
    root = journal.root
    for entry in sorted(journal.entries, key=lambda e: -e.path.count("/")):
        if entry.new is None and os.path.lexists(root / entry.path):
            os.unlink(root / entry.path)
            checkpoint("apply.swap")
    for folder in journal.pruned_dirs:
        with contextlib.suppress(OSError):  # gone already, or someone put a file in it: it stays
            os.rmdir(root / folder)
            checkpoint("apply.swap")
    for folder in journal.made_dirs:
        if not (root / folder).is_dir():
            os.mkdir(root / folder)
            checkpoint("apply.swap")
    for entry in journal.entries:
        if entry.new is not None:
            target = root / entry.path
            _put(journal.staged(entry), target, journal.temp_name(target), move=True)
            checkpoint("apply.swap")
    checkpoint("apply.swapped")


def complete(journal: Journal) -> bool:
    """Is every path in its new state (the swap finished)?"""
    root, made = journal.root, set(journal.made_dirs)

    def in_place(entry: Entry) -> bool:
        now = state_of(root / entry.path)
        if entry.new is None and entry.path in made:  # a deleted file whose path is now a folder
            return now is not None and now.kind == "dir"
        return _same(now, entry.new)

    return all(in_place(e) for e in journal.entries)


def finish_forward(journal: Journal) -> None:
    """After a finished swap: the emptied folders go (if still empty), no temporary file is left."""
    root = journal.root
    for entry in journal.entries:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            journal.temp_name(root / entry.path).unlink()
    for folder in journal.pruned_dirs:
        with contextlib.suppress(OSError):
            os.rmdir(root / folder)


def rollback(journal: Journal) -> list[str]:
    """Put the checkout back exactly as it was; returns the paths whose unexpected content was kept aside."""
    root = journal.root
    found: list[str] = []

    def keep_found(entry: Entry, target: Path) -> None:
        _keep(target, journal.store / "found" / str(entry.seq))
        found.append(entry.path)

    by_depth = sorted(journal.entries, key=lambda e: -e.path.count("/"))
    for entry in by_depth:  # temporary files, and files that did not exist before
        target = root / entry.path
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            journal.temp_name(target).unlink()
        if entry.old is None:
            now = state_of(target)
            if now is not None and now.kind != "dir":
                if not _same(now, entry.new):
                    # guard: rollback-keeps-found-added
                    keep_found(entry, target)
                # guard: rollback-removes-added-files
                os.unlink(target)
                checkpoint("recover.restore")
    for folder in reversed(journal.made_dirs):  # folders the apply created, innermost first
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, OSError):
            if (root / folder).is_dir() and not (root / folder).is_symlink():
                # guard: rollback-removes-made-folders
                os.rmdir(root / folder)
                checkpoint("recover.restore")
    for folder in reversed(journal.pruned_dirs):  # folders it removed, outermost first
        os.makedirs(root / folder, exist_ok=True)
    for entry in journal.entries:
        if entry.old is None:
            continue
        target = root / entry.path
        now = state_of(target)
        if _same(now, entry.old):
            continue
        if now is not None and now.kind != "dir" and not _same(now, entry.new):
            # guard: rollback-keeps-found-changed
            keep_found(entry, target)
        backup = journal.backup(entry)
        if not os.path.lexists(backup):
            raise OSError(errno.ENOENT, "the kept original is missing", str(backup))
        target.parent.mkdir(parents=True, exist_ok=True)
        # guard: rollback-restores-originals
        _put(backup, target, journal.temp_name(target), move=False)
        checkpoint("recover.restore")
    return found


def discard(journal: Journal) -> None:
    """Remove the journal's folder (the originals and new versions) once the journal is settled."""
    if journal.store.exists():
        _git.rmtree(journal.store)


def describe(journal: Journal) -> str:
    plans = ", ".join(journal.plan_ids)
    return f"the apply of plan(s) {plans} of cycle {journal.cycle_id} ({len(journal.entries)} files)"

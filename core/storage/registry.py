"""The whole data directory: a registry of project stores (one folder, one database per project)."""

from __future__ import annotations

from pathlib import Path

from always_on.core import paths
from always_on.core.errors import AlwaysOnError
from always_on.core.storage.db import DB_NAME, connect
from always_on.core.storage.json_import import has_json_store
from always_on.core.storage.project import ProjectStore


class Store:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or paths.data_dir()) / "projects"

    def project(self, project_path: Path | str) -> ProjectStore:
        return ProjectStore(self.root, Path(project_path).expanduser().resolve())

    def projects(self, warnings: list[str] | None = None) -> list[ProjectStore]:
        """Registered projects; one whose store cannot be read is reported in `warnings`, not hidden."""
        found, broken = self.scan()
        if warnings is not None:
            warnings += [f"{exc.message}; that project is skipped until it is fixed" for exc in broken]
        return found

    def scan(self) -> tuple[list[ProjectStore], list[AlwaysOnError]]:
        """Registered projects, and the error of each project folder whose store cannot be read (naming the
        file): `status` shows those as projects too, so that a broken store is never mistaken for no project."""
        out: list[ProjectStore] = []
        broken: list[AlwaysOnError] = []
        if not self.root.is_dir():
            return out, broken
        for child in sorted(self.root.iterdir()):
            if not (child / DB_NAME).is_file() and not has_json_store(child):
                continue
            try:
                if not (child / DB_NAME).is_file():  # a JSON store: imported on first use
                    path = _json_store_path(child)
                else:
                    found = connect(child / DB_NAME).row("SELECT path FROM state LIMIT 1")
                    path = found[0] if found else None
            except AlwaysOnError as exc:
                exc.details.setdefault("folder", str(child))
                broken.append(exc)
                continue
            if path:
                out.append(self.project(path))
        return out, broken


def _json_store_path(folder: Path) -> str | None:
    from always_on.core.records import ProjectState

    try:
        return ProjectState.model_validate_json((folder / "state.json").read_bytes()).path
    except FileNotFoundError:
        return None
    except ValueError as exc:
        from always_on.core.storage.db import StoreCorruptError
        from always_on.core.storage.files import short

        raise StoreCorruptError(folder / "state.json", short(exc)) from None

"""Where always-on keeps its data and configuration (platformdirs, moved wholesale by ALWAYS_ON_HOME)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import platformdirs

APP_NAME = "always-on"


def home_override() -> Path | None:
    value = os.environ.get("ALWAYS_ON_HOME")
    return Path(value).expanduser().resolve() if value else None


def data_dir() -> Path:
    home = home_override()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def config_dir() -> Path:
    home = home_override()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def config_file() -> Path:
    return config_dir() / "config.toml"


def default_workspace_base() -> Path:
    home = home_override()
    return home / "workspaces" if home else Path(platformdirs.user_cache_dir(APP_NAME)) / "workspaces"


def project_id_for(path: Path | str) -> str:
    """Stable id for a project folder: readable name plus a hash of the resolved absolute path."""
    resolved = Path(path).expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", resolved.name).strip("-") or "root"
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    return f"{slug[:40]}-{digest}"

"""Import names and the core/tui boundary (DESIGN §10).

The folders `core/` and `tui/` install as `always_on.core` and `always_on.tui`: a user's own `core` package never
shadows ours, ours never collides with another `core` in site-packages, and the core never loads the UI.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from helpers import make_repo

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"always_on.core": ROOT / "core", "always_on.tui": ROOT / "tui"}


def _source_packages() -> set[str]:
    found = set()
    for name, folder in SOURCES.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([name, *rel.parts]))
    return found


def test_every_source_package_is_listed_in_pyproject():
    """A new subpackage left out of the explicit list would be missing from a non-editable install."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"always_on.core": "core", "always_on.tui": "tui"}
    assert set(config["packages"]) == _source_packages()


def test_wheel_installs_no_top_level_core_or_tui(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources, never in the repository.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".ci", "build", "*.egg-info", "__pycache__", ".venv"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("always_on-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"always_on"}
    for data in (
        "always_on/tui/app.tcss",
        "always_on/tui/screens/review.tcss",
        "always_on/core/prompts/en.toml",
    ):
        assert data in names
    assert "always_on/core/agents/builtin/__main__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "always_on.core.cli:main" in text and "always_on.tui.app:main" in text


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_core_module_imports_textual_or_the_tui():
    offenders = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        for name in _imports_of(path):
            if (
                name.split(".")[0] == "textual"
                or name.startswith("always_on.tui")
                or name.split(".")[0] in ("core", "tui")
            ):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_importing_the_core_never_loads_textual():
    """Runtime check too: a lazy import inside a function would pass the static scan."""
    code = (
        "import sys, json\n"
        "import always_on.core.cli, always_on.core.orchestrator, always_on.core.scheduler\n"
        "import always_on.core.agents.gateway, always_on.core.agents.mcp_server, always_on.core.agents.builtin.tidy\n"
        "import always_on.core.agents.builtin.openai_agent, always_on.core.workspace, always_on.core.demo\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'textual' or m.startswith('always_on.tui'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], check=True, capture_output=True, text=True, cwd="/"
    )
    assert json.loads(out.stdout) == []


def test_cli_help_never_loads_textual():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['always-on', 'agents']\n"
        "try:\n    runpy.run_module('always_on.core.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('TEXTUAL' if any(m.split('.')[0] == 'textual' for m in sys.modules) else 'CLEAN')\n"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], check=True, capture_output=True, text=True, cwd="/"
    )
    assert out.stdout.strip().splitlines()[-1] == "CLEAN"


def test_a_fire_in_a_project_with_its_own_core_and_tui_packages(tmp_path):
    """Django-style projects have a `core/` package, others an `mcp/` or `acp/` one: the built-in agent and the MCP
    server start in the project folder (`-P`: it is not on their sys.path) and must import ours."""
    project = make_repo(
        tmp_path / "django-like",
        {
            "core/__init__.py": "raise ImportError('the user project core package was imported')\n",
            "core/agents/__init__.py": "",
            "tui/__init__.py": "raise ImportError('the user project tui package was imported')\n",
            "acp/__init__.py": "raise ImportError('the user project acp package was imported')\n",
            "mcp/__init__.py": "raise ImportError('the user project mcp package was imported')\n",
            "app/views.py": "import os\nimport sys\n\n\ndef view():\n    return sys.argv\n",
        },
    )
    proc = subprocess.run(
        # the console script, as a user runs it (it never puts the cwd on sys.path)
        [
            str(Path(sys.executable).parent / "always-on"),
            "run",
            "--json",
            "--project",
            str(project),
            "--agent",
            "tidy",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "executed", (result, proc.stderr)
    assert result["error"] is None

"""Generated benchmark data: source trees, git repositories and seeded stores, always in a temp folder.

Why generated: the figures must be reproducible on any machine without shipping a 20,000-file fixture, and every
benchmark must run on the same shape of data as its raw baseline. Contents are deterministic (seeded), sizes are
a realistic mix for a source repository (a few hundred bytes to ~12 KB, ~2.5 KB on average), and repositories are
packed like a real clone, not 20,000 loose objects.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_AUTHOR_DATE": "2025-05-01T12:00:00+0000",
    "GIT_COMMITTER_DATE": "2025-05-01T12:00:00+0000",
    "GIT_CONFIG_NOSYSTEM": "1",
}
_WORDS = (
    "value",
    "items",
    "result",
    "config",
    "path",
    "index",
    "count",
    "name",
    "data",
    "record",
    "store",
    "cycle",
    "plan",
    "report",
    "event",
    "state",
    "limit",
    "buffer",
    "token",
    "stream",
)


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Plain ``git`` (the raw baselines use this too): no always-on flags, the bench identity."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, input=stdin, check=True, capture_output=True
    ).stdout


def _source(rng: random.Random, index: int) -> str:
    """A plausible Python module: a docstring and a few small functions (one line changes are easy to make)."""
    lines = [f'"""Module {index}: generated for the always-on benchmarks."""', "", "import os", ""]
    for f in range(rng.choice((1, 1, 2, 3, 4, 6, 10))):
        a, b = rng.sample(_WORDS, 2)
        lines += ["", f"def {a}_{b}_{f}({a}, {b}=None):", f'    """Return the {a} of the {b}."""']
        lines += [
            f"    {rng.choice(_WORDS)}_{n} = {a} * {n} + len(str({b}))" for n in range(rng.randint(3, 12))
        ]
        lines += [f"    return {a}", ""]
    return "\n".join(lines) + "\n"


def layout(count: int, prefix: str = "src") -> list[str]:
    """``count`` relative file paths spread over nested folders (~40 files per folder, three levels)."""
    paths = []
    for i in range(count):
        pkg, mod = divmod(i // 40, 25)
        paths.append(f"{prefix}/pkg{pkg:03d}/mod{mod:02d}/file_{i:05d}.py")
    return paths


def write_tree(root: Path, count: int, *, prefix: str = "src", seed: int = 7) -> list[str]:
    """Write ``count`` source files under ``root/prefix``; returns their relative paths."""
    rng = random.Random(seed)
    rels = layout(count, prefix)
    made: set[Path] = set()
    for i, rel in enumerate(rels):
        target = root / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_text(_source(rng, i))
    return rels


def make_git_repo(path: Path, files: int = 20_000) -> Path:
    """A packed git repository with one commit of ``files`` files (plus a README and a .gitignore)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    write_tree(path, files - 2)
    (path / "README.md").write_text("# generated benchmark project\n")
    (path / ".gitignore").write_text("node_modules/\n.venv/\n__pycache__/\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    git(path, "repack", "-adq")
    git(path, "prune-packed")
    return path


def make_plain_folder(path: Path, files: int = 20_000, ignored: int = 5_000) -> tuple[int, int]:
    """A non-git project of ``files`` files in all, ``ignored`` of them in node_modules/ and .venv/ (half each).

    Returns (files the snapshot must copy, files it must skip).
    """
    path.mkdir(parents=True)
    kept = files - ignored
    write_tree(path, kept - 1)
    (path / "README.md").write_text("# generated benchmark project (not a git repository)\n")
    half = ignored // 2
    write_tree(path, half, prefix="node_modules/lib", seed=11)
    write_tree(path, ignored - half, prefix=".venv/lib/python3.11/site-packages", seed=13)
    return kept, ignored


def clone(source: Path, dest: Path, *args: str) -> Path:
    """A local clone (objects hard-linked, as fast as git makes it)."""
    git(source.parent, "clone", "-q", *args, str(source), str(dest))
    return dest


def change_files(root: Path, rels: list[str], *, add: int = 0, delete: int = 0, seed: int = 3) -> list[str]:
    """Edit the files (one changed line and one new line each); also add/delete some; returns touched paths."""
    rng = random.Random(seed)
    touched = []
    edit, removed = rels[: len(rels) - delete], rels[len(rels) - delete :]
    for rel in edit:
        target = root / rel
        lines = target.read_text().splitlines(keepends=True)
        at = rng.randrange(1, max(2, len(lines)))
        lines[at] = lines[at].rstrip("\n") + "  # reviewed\n"
        lines.append(f"# touched by the benchmark change {rng.random():.6f}\n")
        target.write_text("".join(lines))
        touched.append(rel)
    for rel in removed:
        (root / rel).unlink()
        touched.append(rel)
    for i in range(add):
        rel = f"src/added/new_{i:04d}.py"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(_source(rng, 90_000 + i))
        touched.append(rel)
    return touched


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))

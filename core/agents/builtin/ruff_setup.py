"""What a project's own ruff tooling asks for, read from its files: configuration, formatter opt-in, version pins.

tidy proposes only what the project's own tooling would produce (issue 15):
- lint fixes only for the rules the project's configuration selects. ruff applies an explicit `select` itself.
  Without one, the project gets *its* ruff's defaults — and those changed in ruff 0.16 (from E4/E7/E9/F, 59 rules,
  to over 400), so for a project whose ruff is older or not pinned tidy passes the old default selection
  explicitly, with the project's `extend-select` and `ignore`. A project that does not configure ruff at all gets
  only the old defaults too (pyflakes and pycodestyle errors: what any Python developer accepts), isolated from
  the user's own ruff configuration.
- `ruff format` only when the project opts into the formatter *and* pins a ruff of the same minor version as the
  one tidy runs — ruff's style changes between minor versions, so formatting with another one restyles code the
  project's own ruff leaves alone.

Pure functions over file texts (no YAML or packaging dependency: the formats are read with small, tolerant
patterns), so the decisions are testable without a client.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from typing import Any

from pydantic import BaseModel

# ruff's own order of precedence for configuration files in one directory (.ruff.toml wins).
CONFIG_FILES = (".ruff.toml", "ruff.toml", "pyproject.toml")
PRE_COMMIT_FILES = (".pre-commit-config.yaml", ".pre-commit-config.yml")
TASK_FILES = ("tox.ini", "noxfile.py", "Makefile", "justfile", ".gitlab-ci.yml", "setup.cfg", "Pipfile")
LOCK_FILES = ("uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock")
LEGACY_DEFAULT_RULES = ("E4", "E7", "E9", "F")  # ruff's default selection from 0.1 to 0.15
EXPANDED_DEFAULTS_SINCE = (0, 16)  # ruff 0.16 enables over 400 rules by default
_REQUIREMENTS_NAME = re.compile(r"^(?:.*requirements.*|constraints.*)\.(?:txt|in)$", re.IGNORECASE)
_WORKFLOW_NAME = re.compile(r"\.ya?ml$")

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")
# `ruff format` as a command (also `python -m ruff format`, `uvx ruff@0.5.0 format`, `ruff --quiet format`).
_FORMAT_COMMAND = re.compile(r"\bruff(?:@[\w.]+)?(?:\s+-{1,2}[\w-]+)*\s+format\b")
# Requirement-style pins: `ruff==0.5.0`, `ruff~=0.5.1`, `ruff[extra]==0.5.*`, `ruff@0.5.0` (uvx), and ranges.
_REQUIREMENT = re.compile(
    r"(?<![\w.-])ruff(?:\[[^\]]*\])?\s*((?:[=~<>!]=?=?|@)\s*v?[\d.*]+(?:\s*,\s*[=~<>!]=?\s*[\d.*]+)*)"
)
# Poetry: `ruff = "^0.5.0"`, `ruff = "0.5.0"`, `ruff = { version = "~0.5" }`.
_POETRY = re.compile(r"^\s*ruff\s*=\s*(?:\{[^}\n]*?version\s*=\s*)?[\"']([^\"']+)[\"']", re.MULTILINE)
_LOCKED = re.compile(r"name\s*=\s*\"ruff\"\s*\r?\n\s*version\s*=\s*\"([^\"]+)\"")
_PIPFILE_LOCK = re.compile(r"\"ruff\"\s*:\s*\{[^}]*?\"version\"\s*:\s*\"==([^\"]+)\"", re.DOTALL)
# The ruff GitHub Action: `uses: astral-sh/ruff-action@v3` with `args: "format --check"` and `version: "0.5.0"`.
_RUFF_ACTION = re.compile(r"uses:\s*['\"]?[\w-]+/ruff-action@")
_ACTION_FORMAT = re.compile(r"^\s*args:\s*['\"]?format\b", re.MULTILINE)
_ACTION_VERSION = re.compile(r"^\s*version:\s*['\"]?v?(\d+\.\d+(?:\.\d+)?)['\"]?\s*$", re.MULTILINE)


class RuffPin(BaseModel):
    """One place that fixes which ruff the project uses."""

    where: str  # e.g. "`rev: v0.5.0` of the ruff-pre-commit hook in .pre-commit-config.yaml"
    version: str  # "0.5.0" (or "0.5" when only the minor is fixed)

    @property
    def minor(self) -> tuple[int, int]:
        m = _VERSION.match(self.version)
        assert m is not None  # only built from matching text
        return int(m.group(1)), int(m.group(2))


class RuffSetup(BaseModel):
    """The project's ruff tooling as far as tidy needs it."""

    config_file: str | None = None  # the file ruff reads at the project root, with the table it uses
    select: list[str] | None = None  # None: ruff's defaults
    extend_select: list[str] = []
    ignore: list[str] = []  # `ignore` and the older `extend-ignore`
    extends: str | None = None  # `extend = "path"`: the configuration this one builds on
    format_opt_ins: list[str] = []  # why the project wants `ruff format`, one entry per place
    pins: list[RuffPin] = []
    ranges: list[str] = []  # version constraints that do not fix a minor version (not pins)
    notes: list[str] = []  # files that could not be read as what they claim to be

    @property
    def configured(self) -> bool:
        return self.config_file is not None

    def project_minor(self) -> tuple[int, int] | None:
        """The oldest minor version the project pins ruff at (None: not pinned)."""
        return min((p.minor for p in self.pins), default=None)


class LintSelection(BaseModel):
    """How tidy runs `ruff check` so it reports exactly the rules the project's own ruff would."""

    isolated: bool = False  # `ruff --isolated`: no configuration file at all (not the user's own either)
    check_options: list[str] = []  # `--select ... --ignore ...` after `check`, when tidy must spell them out
    description: str


def lint_selection(setup: RuffSetup) -> LintSelection:
    """The project's rule selection as ruff options, and in words for the run's messages."""
    legacy = ", ".join(LEGACY_DEFAULT_RULES)
    if not setup.configured:
        return LintSelection(
            isolated=True,
            check_options=["--select", ",".join(LEGACY_DEFAULT_RULES)],
            description=(
                f"the project does not configure ruff, so only ruff's long-standing default rules ({legacy}: "
                "pyflakes and pycodestyle errors), isolated from any user-level ruff configuration"
            ),
        )
    extra = f"; extend-select {', '.join(setup.extend_select)}" if setup.extend_select else ""
    ignored = f"; ignore {', '.join(setup.ignore)}" if setup.ignore else ""
    if setup.select is not None or setup.extends:
        chosen = (
            f"select {', '.join(setup.select)}" if setup.select is not None else f"extend {setup.extends}"
        )
        return LintSelection(
            description=f"the rules the project's configuration selects ({setup.config_file}: {chosen}{extra}{ignored})"
        )
    minor = setup.project_minor()
    if minor is not None and minor >= EXPANDED_DEFAULTS_SINCE:
        return LintSelection(
            description=(
                f"ruff's default rules: the project's configuration ({setup.config_file}) sets no `select`, and its "
                f"ruff {minor[0]}.{minor[1]} has the same expanded defaults as tidy's{extra}{ignored}"
            )
        )
    whose = f"ruff {minor[0]}.{minor[1]}" if minor else "ruff (not pinned)"
    options = ["--select", ",".join([*LEGACY_DEFAULT_RULES, *setup.extend_select])]
    if setup.ignore:
        options += ["--ignore", ",".join(setup.ignore)]
    return LintSelection(
        check_options=options,
        description=(
            f"the default rules of the project's {whose}: {legacy}, as its configuration ({setup.config_file}) "
            f"sets no `select`{extra}{ignored} — not the expanded defaults of ruff 0.16 and later"
        ),
    )


def version_of(output: str) -> str | None:
    """`ruff --version` → "0.17.6"."""
    m = re.search(r"\bruff\s+v?(\d+\.\d+\.\d+)", output)
    return m.group(1) if m else None


def minor_of(version: str) -> tuple[int, int] | None:
    m = _VERSION.match(version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def wanted_files(listing: dict[str, list[str]]) -> list[str]:
    """The files to read, given directory listings (`.` → root names, `.github/workflows` → its names...)."""
    names = [*CONFIG_FILES, *PRE_COMMIT_FILES, *TASK_FILES, *LOCK_FILES]
    names += sorted(n for n in listing.get(".", []) if _REQUIREMENTS_NAME.match(n))
    names += sorted(
        f"requirements/{n}" for n in listing.get("requirements", []) if n.endswith((".txt", ".in"))
    )
    names += sorted(
        f".github/workflows/{n}" for n in listing.get(".github/workflows", []) if _WORKFLOW_NAME.search(n)
    )
    present = set(listing.get(".", []))
    return [n for n in names if not present or n.split("/", 1)[0] in present]


# ---- pins ----------------------------------------------------------------------------------------------------


def _pin_from_spec(spec: str) -> str | None:
    """The version a requirement spec fixes to one minor release, else None (`>=0.5` allows every later one)."""
    spec = spec.replace(" ", "")
    m = re.fullmatch(r"(?:===?|@)v?(\d+\.\d+(?:\.\d+)?)(?:\.\*)?", spec)
    if m:
        return m.group(1)
    m = re.fullmatch(r"~=(\d+\.\d+\.\d+)", spec)  # ~=0.5.1 means >=0.5.1,<0.6
    if m:
        return m.group(1)
    lower = re.search(r">=?(\d+)\.(\d+)", spec)
    upper = re.search(r"<(\d+)\.(\d+)(?:\.0)?(?![\d.])", spec)
    if (
        lower
        and upper
        and lower.group(1) == upper.group(1)
        and int(upper.group(2)) == int(lower.group(2)) + 1
    ):
        return f"{lower.group(1)}.{lower.group(2)}"
    return None


def _poetry_pin(spec: str) -> str | None:
    spec = spec.strip()
    m = re.fullmatch(r"(?:==)?v?(\d+\.\d+\.\d+)", spec)
    if m:
        return m.group(1)
    m = re.fullmatch(r"\^0\.(\d+)(?:\.\d+)?", spec)  # caret on 0.x fixes the minor
    if m:
        return f"0.{m.group(1)}"
    m = re.fullmatch(r"~(\d+)\.(\d+)(?:\.\d+)?", spec)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    return _pin_from_spec(spec)


def _requirement_pins(name: str, text: str, setup: RuffSetup) -> None:
    for match in _REQUIREMENT.finditer(text):
        spec = match.group(1).strip()
        version = _pin_from_spec(spec)
        if version:
            setup.pins.append(RuffPin(where=f"`ruff{spec}` in {name}", version=version))
        else:
            setup.ranges.append(f"`ruff{spec}` in {name}")
    if name in ("pyproject.toml", "Pipfile"):
        for match in _POETRY.finditer(text):
            version = _poetry_pin(match.group(1))
            where = f'`ruff = "{match.group(1)}"` in {name}'
            if version:
                setup.pins.append(RuffPin(where=where, version=version))
            else:
                setup.ranges.append(where)


# ---- configuration ------------------------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _read_config(name: str, text: str, setup: RuffSetup) -> bool:
    """Fill the setup from one configuration file; False when the file does not configure ruff."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        setup.notes.append(f"{name} is not valid TOML ({exc})")
        return False
    pyproject = name.rsplit("/", 1)[-1] == "pyproject.toml"
    table = data.get("tool", {}).get("ruff") if pyproject else data
    if not isinstance(table, dict):
        return False
    lint = table.get("lint") if isinstance(table.get("lint"), dict) else {}
    setup.config_file = f"{name} [tool.ruff]" if pyproject else name

    def setting(key: str) -> Any:
        """`[tool.ruff] select` is the older spelling of `[tool.ruff.lint] select`."""
        return lint.get(key, table.get(key))

    if setting("select") is not None:
        setup.select = _strings(setting("select"))
    setup.extend_select = [*setup.extend_select, *_strings(setting("extend-select"))]
    setup.ignore = [*setup.ignore, *_strings(setting("ignore")), *_strings(setting("extend-ignore"))]
    if isinstance(table.get("extend"), str):
        setup.extends = table["extend"]
    if isinstance(table.get("format"), dict):
        where = "[tool.ruff.format]" if pyproject else "[format]"
        setup.format_opt_ins.append(f"{where} in {name}")
    required = table.get("required-version")
    if isinstance(required, str):
        version = _pin_from_spec(required if required[:1] in "=~<>" else f"=={required}")
        if version:
            setup.pins.append(RuffPin(where=f'`required-version = "{required}"` in {name}', version=version))
        else:
            setup.ranges.append(f'`required-version = "{required}"` in {name}')
    return True


# ---- pre-commit -----------------------------------------------------------------------------------------------


def _pre_commit(name: str, text: str, setup: RuffSetup) -> None:
    """Hooks of `.pre-commit-config.yaml`, read line by line (block and flow style both name `repo:`/`rev:`/`id:`)."""
    repos: list[dict[str, Any]] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0]
        repo = re.search(r"\brepo:\s*['\"]?([^'\"\s,}]+)", line)
        if repo:
            repos.append({"repo": repo.group(1), "rev": None, "hooks": [], "entries": []})
        if not repos:
            continue
        rev = re.search(r"\brev:\s*['\"]?([^'\"\s,}]+)", line)
        if rev:
            repos[-1]["rev"] = rev.group(1)
        repos[-1]["hooks"] += re.findall(r"\bid:\s*['\"]?([\w.-]+)", line)
        entry = re.search(r"\bentry:\s*(.+)", line)
        if entry:
            repos[-1]["entries"].append(entry.group(1))
    for repo in repos:
        is_ruff = "ruff-pre-commit" in repo["repo"]
        if is_ruff and "ruff-format" in repo["hooks"]:
            setup.format_opt_ins.append(f"the `ruff-format` pre-commit hook in {name}")
        elif any(_FORMAT_COMMAND.search(e) for e in repo["entries"]):
            setup.format_opt_ins.append(f"a pre-commit hook running `ruff format` in {name}")
        if is_ruff and repo["rev"]:
            if minor_of(repo["rev"]):
                version = _VERSION.match(repo["rev"])
                assert version is not None
                setup.pins.append(
                    RuffPin(
                        where=f"`rev: {repo['rev']}` of the ruff-pre-commit hooks in {name}",
                        version=version.group(0).lstrip("v"),
                    )
                )
            else:
                setup.ranges.append(f"`rev: {repo['rev']}` of the ruff-pre-commit hooks in {name}")


def _ruff_action(name: str, text: str, setup: RuffSetup) -> None:
    """Steps using the ruff GitHub Action: its `args` (format?) and `version` inputs, read up to the next step."""
    for match in _RUFF_ACTION.finditer(text):
        following = re.search(r"\n\s*-\s", text[match.end() :])
        step = text[match.end() : match.end() + following.start() if following else len(text)]
        if _ACTION_FORMAT.search(step):
            setup.format_opt_ins.append(f"the ruff action running `format` in {name}")
        for version in _ACTION_VERSION.findall(step):
            setup.pins.append(
                RuffPin(where=f"`version: {version}` of the ruff action in {name}", version=version)
            )


def extended_file(setup: RuffSetup) -> str | None:
    """The project-relative path of the configuration `extend` names, when it is inside the project."""
    if not setup.extends:
        return None
    path = posixpath.normpath(setup.extends.replace("\\", "/"))
    return None if path.startswith(("../", "/", "~")) or path == ".." else path


def _read_extended(setup: RuffSetup, files: dict[str, str]) -> None:
    """`extend = "base.toml"`: the base's selection comes first, then this file's (one level, as read)."""
    name = extended_file(setup)
    if name is None or name not in files:
        return
    base = RuffSetup()
    if not _read_config(name, files[name], base):
        return
    setup.select = setup.select if setup.select is not None else base.select
    setup.extend_select = [*base.extend_select, *setup.extend_select]
    setup.ignore = [*base.ignore, *setup.ignore]
    setup.config_file = f"{setup.config_file} extending {name}"
    setup.extends = base.extends
    setup.format_opt_ins += [f"{o} (extended by the project's configuration)" for o in base.format_opt_ins]
    setup.pins += base.pins


def read_setup(files: dict[str, str]) -> RuffSetup:
    """The project's ruff setup from its files (path relative to the root → text; absent files left out)."""
    setup = RuffSetup()
    for name in CONFIG_FILES:  # the first one that configures ruff is the one ruff uses
        if name in files and _read_config(name, files[name], setup):
            break
    _read_extended(setup, files)
    for name in PRE_COMMIT_FILES:
        if name in files:
            _pre_commit(name, files[name], setup)
    for name, text in files.items():
        is_ci = name.startswith(".github/workflows/") or name in TASK_FILES
        if is_ci and _FORMAT_COMMAND.search(text):
            kind = "a CI step" if name.startswith(".github/") or name == ".gitlab-ci.yml" else "a task"
            setup.format_opt_ins.append(f"{kind} running `ruff format` in {name}")
        if name.startswith(".github/workflows/"):
            _ruff_action(name, text, setup)
        if name in LOCK_FILES:
            pattern = _PIPFILE_LOCK if name == "Pipfile.lock" else _LOCKED
            for version in pattern.findall(text):
                setup.pins.append(RuffPin(where=f"ruff {version} locked in {name}", version=version))
        elif name != ".ruff.toml" and name != "ruff.toml" and name not in PRE_COMMIT_FILES:
            _requirement_pins(name, text, setup)
    return setup


def format_decision(setup: RuffSetup, bundled: str | None) -> tuple[bool, str]:
    """Whether tidy may propose `ruff format`, and the reason in one sentence (said in the run either way)."""
    if not setup.format_opt_ins:
        return False, (
            "Formatting is not proposed: the project does not use ruff's formatter (no `ruff-format` pre-commit "
            "hook, no [tool.ruff.format] table, no CI step or task running `ruff format`)."
        )
    why = "; ".join(setup.format_opt_ins)
    bundled_minor = minor_of(bundled) if bundled else None
    if bundled_minor is None:
        return False, (
            f"Formatting is not proposed: the project opts into ruff format ({why}), but the version of the ruff "
            "tidy runs is unknown, so it cannot tell whether both format alike."
        )
    if not setup.pins:
        ranges = f" (only {', '.join(setup.ranges)})" if setup.ranges else ""
        return False, (
            f"Formatting is not proposed: the project opts into ruff format ({why}) but pins no ruff "
            f"version{ranges}; tidy's ruff {bundled} may format differently from the ruff its developers run."
        )
    other = [p for p in setup.pins if p.minor != bundled_minor]
    if other:
        pins = ", ".join(f"{p.version} ({p.where})" for p in other)
        return False, (
            f"Formatting is not proposed: the project pins ruff {pins}, and tidy runs ruff {bundled}; ruff's "
            "style changes between minor versions, so formatting with it would restyle code the project's own "
            "ruff leaves alone."
        )
    pins = ", ".join(p.where for p in setup.pins)
    return True, (
        f"Formatting is checked: the project opts into ruff format ({why}) and pins ruff "
        f"{setup.pins[0].version} ({pins}), the same minor version as tidy's ruff {bundled}."
    )

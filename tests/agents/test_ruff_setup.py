"""Reading a project's ruff tooling from its files: formatter opt-in, version pins, rule selection (pure)."""

from __future__ import annotations

import pytest

from always_on.core.agents.builtin.ruff_setup import (
    format_decision,
    lint_selection,
    read_setup,
    version_of,
    wanted_files,
)

HOOKS = """repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v4.6.0  # not ruff
    hooks:
      - id: trailing-whitespace
  - repo: https://github.com/astral-sh/ruff-pre-commit
    rev: "v0.5.7"
    hooks:
      - id: ruff
        args: [--fix]
      - id: ruff-format
"""


def test_pre_commit_hook_opts_in_and_its_rev_is_the_pin() -> None:
    setup = read_setup({".pre-commit-config.yaml": HOOKS})
    assert setup.format_opt_ins == ["the `ruff-format` pre-commit hook in .pre-commit-config.yaml"]
    assert [(p.version, p.minor) for p in setup.pins] == [("0.5.7", (0, 5))]  # v4.6.0 is another repo's rev
    assert not setup.configured


def test_flow_style_pre_commit_and_a_local_hook_running_ruff_format() -> None:
    flow = (
        "repos:\n- {repo: https://github.com/astral-sh/ruff-pre-commit, rev: v0.6.1, hooks: [{id: ruff}]}\n"
    )
    local = "repos:\n  - repo: local\n    hooks:\n      - id: fmt\n        entry: uv run ruff format\n"
    setup = read_setup({".pre-commit-config.yaml": flow})
    assert setup.format_opt_ins == [] and setup.pins[0].version == "0.6.1"
    setup = read_setup({".pre-commit-config.yaml": local})
    assert setup.format_opt_ins == ["a pre-commit hook running `ruff format` in .pre-commit-config.yaml"]
    assert setup.pins == []


@pytest.mark.parametrize(
    "files,pins,ranges",
    [
        ({"pyproject.toml": '[dependency-groups]\ndev = ["ruff==0.15.2", "pytest"]\n'}, ["0.15.2"], []),
        ({"pyproject.toml": '[project.optional-dependencies]\nlint = ["ruff>=0.5"]\n'}, [], ["`ruff>=0.5`"]),
        ({"pyproject.toml": '[tool.uv]\ndev-dependencies = ["ruff >=0.5.1, <0.6"]\n'}, ["0.5"], []),
        ({"pyproject.toml": '[tool.poetry.group.dev.dependencies]\nruff = "^0.4.2"\n'}, ["0.4"], []),
        (
            {"pyproject.toml": '[tool.poetry.group.dev.dependencies]\nruff = { version = "~0.3" }\n'},
            ["0.3"],
            [],
        ),
        (
            {"pyproject.toml": '[tool.ruff]\nrequired-version = ">=0.9"\n'},
            [],
            ['`required-version = ">=0.9"`'],
        ),
        ({"ruff.toml": 'required-version = "==0.9.4"\n'}, ["0.9.4"], []),
        ({"requirements-dev.txt": "ruff~=0.8.1\nruff-lsp==0.0.50\n"}, ["0.8.1"], []),
        ({"uv.lock": 'version = 1\n\n[[package]]\nname = "ruff"\nversion = "0.11.0"\n'}, ["0.11.0"], []),
        ({"Pipfile.lock": '{"develop": {"ruff": {"hashes": [], "version": "==0.12.3"}}}'}, ["0.12.3"], []),
        ({"tox.ini": "[testenv:lint]\ncommands = uvx ruff@0.7.0 check\n"}, ["0.7.0"], []),
    ],
)
def test_version_pins_and_ranges(files: dict[str, str], pins: list[str], ranges: list[str]) -> None:
    setup = read_setup(files)
    assert [p.version for p in setup.pins] == pins
    assert [r.split(" in ")[0] for r in setup.ranges] == ranges


def test_formatter_opt_ins_from_configuration_ci_and_the_ruff_action() -> None:
    action = (
        "jobs:\n  l:\n    steps:\n      - uses: astral-sh/setup-uv@v6\n        with:\n          version: 0.4.0\n"
        "      - uses: astral-sh/ruff-action@v3\n        with:\n          args: format --check\n"
        "          version: 0.17.2\n"
    )
    setup = read_setup(
        {
            "pyproject.toml": "[tool.ruff.format]\nquote-style = 'single'\n",
            ".github/workflows/lint.yml": action,
            "Makefile": "fmt:\n\tpython -m ruff --quiet format src\n",
        }
    )
    assert setup.format_opt_ins == [
        "[tool.ruff.format] in pyproject.toml",
        "the ruff action running `format` in .github/workflows/lint.yml",
        "a task running `ruff format` in Makefile",
    ]
    assert [p.version for p in setup.pins] == ["0.17.2"]  # setup-uv's `version` is uv's, not ruff's


def test_format_decision_needs_an_opt_in_and_a_pin_of_the_same_minor() -> None:
    none = read_setup({"pyproject.toml": "[tool.ruff]\n"})
    assert format_decision(none, "0.17.6")[0] is False
    assert "does not use ruff's formatter" in format_decision(none, "0.17.6")[1]
    unpinned = read_setup({"pyproject.toml": '[tool.ruff.format]\n[project]\ndependencies = ["ruff>=0.5"]\n'})
    allowed, why = format_decision(unpinned, "0.17.6")
    assert not allowed and "pins no ruff version (only `ruff>=0.5` in pyproject.toml)" in why
    other = read_setup({".pre-commit-config.yaml": HOOKS})
    allowed, why = format_decision(other, "0.17.6")
    assert not allowed and "pins ruff 0.5.7" in why and "tidy runs ruff 0.17.6" in why
    same = read_setup({".pre-commit-config.yaml": HOOKS.replace("v0.5.7", "v0.17.0")})
    assert format_decision(same, "0.17.6")[0] is True
    mixed = read_setup(
        {".pre-commit-config.yaml": HOOKS.replace("v0.5.7", "v0.17.0"), "uv.lock": _lock("0.16.1")}
    )
    allowed, why = format_decision(mixed, "0.17.6")
    assert not allowed and "0.16.1 (ruff 0.16.1 locked in uv.lock)" in why
    assert format_decision(same, None)[0] is False


def _lock(version: str) -> str:
    return f'[[package]]\nname = "ruff"\nversion = "{version}"\n'


def test_lint_selection_follows_the_project_and_its_ruff_era() -> None:
    explicit = lint_selection(read_setup({"pyproject.toml": '[tool.ruff.lint]\nselect = ["E", "F"]\n'}))
    assert explicit.check_options == [] and not explicit.isolated
    assert "select E, F" in explicit.description
    legacy_top_level = read_setup(
        {"pyproject.toml": '[tool.ruff]\nselect = ["I"]\nextend-ignore = ["I001"]\n'}
    )
    assert legacy_top_level.select == ["I"] and legacy_top_level.ignore == ["I001"]
    old = lint_selection(
        read_setup(
            {
                "ruff.toml": '[lint]\nextend-select = ["UP006"]\nignore = ["F541"]\n',
                "uv.lock": _lock("0.9.0"),
            }
        )
    )
    assert old.check_options == ["--select", "E4,E7,E9,F,UP006", "--ignore", "F541"]
    assert "the project's ruff 0.9" in old.description
    unpinned = lint_selection(read_setup({"pyproject.toml": "[tool.ruff]\nline-length = 99\n"}))
    assert (
        unpinned.check_options == ["--select", "E4,E7,E9,F"] and "ruff (not pinned)" in unpinned.description
    )
    current = lint_selection(read_setup({"pyproject.toml": "[tool.ruff]\n", "uv.lock": _lock("0.16.0")}))
    assert current.check_options == []
    without = lint_selection(read_setup({"setup.cfg": "[flake8]\nmax-line-length = 100\n"}))
    assert without.isolated and without.check_options == ["--select", "E4,E7,E9,F"]


def test_configuration_files_follow_ruffs_precedence_and_extend() -> None:
    files = {
        "pyproject.toml": '[tool.ruff.lint]\nselect = ["ALL"]\n',
        "ruff.toml": 'extend = "configs/base.toml"\n[lint]\nextend-select = ["B"]\n',
        "configs/base.toml": '[lint]\nselect = ["E", "F"]\nignore = ["E501"]\n',
    }
    setup = read_setup(files)
    assert setup.config_file == "ruff.toml extending configs/base.toml"  # ruff.toml wins over pyproject.toml
    assert setup.select == ["E", "F"] and setup.extend_select == ["B"] and setup.ignore == ["E501"]
    no_ruff_table = read_setup({"pyproject.toml": "[project]\nname = 'x'\n"})
    assert not no_ruff_table.configured
    broken = read_setup({"pyproject.toml": "[tool.ruff\n"})
    assert not broken.configured and "pyproject.toml is not valid TOML" in broken.notes[0]


def test_files_to_read_come_from_the_listings() -> None:
    listing = {
        ".": ["pyproject.toml", ".github", "requirements", "dev-requirements.txt", "README.md", "uv.lock"],
        "requirements": ["lint.txt", "notes.md"],
        ".github/workflows": ["ci.yml", "release.yaml", "README"],
    }
    assert wanted_files(listing) == [
        "pyproject.toml",
        "uv.lock",
        "dev-requirements.txt",
        "requirements/lint.txt",
        ".github/workflows/ci.yml",
        ".github/workflows/release.yaml",
    ]
    assert "tox.ini" in wanted_files({})  # no listing (refused): try the usual names


def test_version_of_ruff_output() -> None:
    assert version_of("ruff 0.17.6\n") == "0.17.6"
    assert version_of("command not found") is None

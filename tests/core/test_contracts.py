from __future__ import annotations

from datetime import UTC, datetime

import pytest

from always_on.core.contracts.plan import (
    PlanValidationError,
    parse_plan_markdown,
    render_plan_markdown,
    validate_plan,
    verification_commands,
)
from always_on.core.contracts.report import SECTIONS, fallback_report, parse_report, render_report
from always_on.core.records import FileChange, ReportMetadata

GOOD = {
    "title": "Remove unused imports",
    "summary": "Drop 3 unused imports flagged by ruff F401.",
    "rationale": "Unused imports slow imports and hide real dependencies.",
    "dedupe_key": "ruff:F401",
    "context_signals": ["src/a.py:1", "chat_2 asked for lint cleanup"],
    "proposed_change": "Run ruff's safe autofix for F401.",
    "steps": ["Run `ruff check --fix --select F401 .`", "Run the verification"],
    "verification": ["`ruff check --select F401 .` exits 0"],
}


def bad(**changes):
    data = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(PlanValidationError) as err:
        validate_plan(data)
    return " | ".join(err.value.problems)


def test_valid_plan_accepted():
    content = validate_plan(GOOD)
    assert content.dedupe_key == "ruff:F401"
    assert verification_commands(content) == ["ruff check --select F401 ."]


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"summary": "x" * 201}, "`summary` is 201 characters; shorten it to at most 200"),
        ({"verification": ...}, "`verification` is missing"),
        ({"verification": []}, "`verification` is empty"),
        ({"verification": ["looks good to me"]}, "automatically checkable"),
        ({"steps": ["2. second", "1. first"]}, "`steps` are not in order"),
        ({"steps": ["1. first", "then second"]}, "mixes numbered and unnumbered"),
        ({"steps": []}, "`steps` is empty"),
        ({"proposed_change": "  "}, "`proposed_change` is empty"),
        ({"proposed_change": ...}, "`proposed_change` is missing"),
        ({"title": 42}, "`title` must be a string"),
        ({"title": "t" * 121}, "`title` is 121 characters"),
        ({"dedupe_key": "has spaces in it"}, "`dedupe_key` must be"),
        ({"context_signals": "not-a-list-but-ok"}, None),
        ({"extra_field": 1}, "unknown fields ['extra_field']"),
    ],
)
def test_plan_rules(changes, needle):
    if needle is None:
        assert validate_plan({**GOOD, **changes}).context_signals == ["not-a-list-but-ok"]
        return
    assert needle in bad(**changes)


def test_every_problem_is_listed_at_once():
    problems = bad(summary="x" * 300, verification=..., steps=[])
    assert "summary" in problems and "verification" in problems and "steps" in problems


def test_numbered_steps_are_normalised():
    content = validate_plan({**GOOD, "steps": ["1. a", "2) b"]})
    assert content.steps == ["a", "b"]


@pytest.mark.parametrize(
    "entry,commands",
    [
        ("test -f out.txt", ["test -f out.txt"]),  # issue 15: a command on its own line, whatever its name
        ("[ -s build/report.json ]", ["[ -s build/report.json ]"]),
        (
            "grep -q 'def main' app.py && python -P app.py --help",
            ["grep -q 'def main' app.py && python -P app.py --help"],
        ),
        ("$ ruff check .", ["ruff check ."]),
        ("`test -f out.txt` succeeds", ["test -f out.txt"]),
        ("Run `ls out.txt` and then `python -m pytest -q`.", ["ls out.txt", "python -m pytest -q"]),
        ("The file `out.txt` exists and `wc -l out.txt` prints 3", ["wc -l out.txt"]),
        ("```sh\ntest -d dist\n```", ["test -d dist"]),
        ("./scripts/check.sh --fast", ["./scripts/check.sh --fast"]),
    ],
)
def test_any_shell_command_line_is_a_checkable_verification(entry, commands):
    content = validate_plan({**GOOD, "verification": [entry]})
    assert verification_commands(content) == commands


@pytest.mark.parametrize(
    "entry,reason",
    [
        ("All tests pass", "`All` is neither a shell builtin nor a program on PATH"),
        ("the output looks right", "`the` is neither a shell builtin nor a program on PATH"),
        ("pytest passes.", "ends like a sentence (`passes.`)"),
        (
            "Check that `out.txt` is there",
            "`out.txt`: `out.txt` is neither a shell builtin nor a program on PATH",
        ),
        ("for f in *.py; do python -m py_compile $f; done", "the policy's shell parser cannot read it"),
        ("python -m http.server &", "runs in the background"),
        ("$CHECKER --all", "the program `$CHECKER` is only known when it runs"),
    ],
)
def test_prose_is_refused_with_the_reason_for_each_entry(entry, reason):
    problems = bad(verification=[entry, "Looks good to me."])
    assert "`verification` needs at least one automatically checkable entry" in problems
    assert f"entry 1 {entry!r}: " in problems and reason in problems
    assert "entry 2 'Looks good to me.': `Looks` is neither" in problems


def test_prose_entries_beside_a_command_are_kept_but_not_run():
    content = validate_plan({**GOOD, "verification": ["Diff touches only imports", "test -f out.txt"]})
    assert content.verification == ["Diff touches only imports", "test -f out.txt"]
    assert verification_commands(content) == ["test -f out.txt"]


def test_markdown_round_trip_is_lossless():
    content = validate_plan({**GOOD, "proposed_change": "line one\n\nline three", "steps": ["a\nmore", "b"]})
    md = render_plan_markdown(content)
    assert md.startswith("# Remove unused imports\n")
    assert "Dedupe key: `ruff:F401`" in md
    assert parse_plan_markdown(md) == content


def meta(**kw):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ReportMetadata(
        run_id="run-1",
        project_id="p",
        plan_id="plan-1",
        started_at=now,
        finished_at=now,
        files_changed=[FileChange(path="a.py", added=2, removed=1)],
        **kw,
    )


def test_report_canonical_sections_parsed():
    md = "\n".join(f"## {name}\n\ntext for {name}\n" for name in SECTIONS)
    parsed = parse_report(md)
    assert set(parsed.sections) == set(SECTIONS)
    assert parsed.fallbacks == []


def test_report_fallbacks_are_noted():
    parsed = parse_report("Intro\n\n## What I did\n- edited\n## Tests\nall green\n## Banana\nx")
    assert parsed.sections["Steps Performed"] == "- edited"
    assert parsed.sections["Verification Results"].startswith("all green")
    assert "heading 'What I did' read as 'Steps Performed'" in parsed.fallbacks
    assert any("Banana" in f for f in parsed.fallbacks)
    assert any("'Follow-ups' was missing" in f for f in parsed.fallbacks)
    assert parsed.sections["Notes"] == "Intro"


def test_report_without_headings_becomes_steps():
    parsed = parse_report("I fixed the imports and ran ruff.")
    assert parsed.sections["Steps Performed"] == "I fixed the imports and ran ruff."
    assert any("no recognisable sections" in f for f in parsed.fallbacks)


def test_rendered_report_uses_runtime_file_list_and_notes_fallbacks():
    parsed = parse_report("## Files Changed\n- b.py (claimed)\n")
    text = render_report(meta(), parsed, title="T")
    assert "`a.py` (modified, +2 −1)" in text
    assert "b.py (claimed)" in text
    assert "Report fallback: section 'Plan Reference' was missing" in text
    for name in SECTIONS:
        assert f"## {name}" in text


def test_fallback_report_for_failure():
    m = meta()
    text = fallback_report(
        m, title="T", reason="agent_crashed: exited with code 3", last_agent_text="I was fixing"
    )
    assert m.fallback
    assert "fallback report" in text and "agent_crashed" in text and "I was fixing" in text

"""The chat digest (DESIGN §7) over sample transcripts of Claude Code, Codex and aider in temp homes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from always_on.core.digest import AIDER_HISTORY, Digest, build_digest, claude_dir_name

DATA = Path(__file__).parent / "data" / "digest"
T0 = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = (tmp_path / "work" / "proj").resolve()
    path.mkdir(parents=True)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def _sample(name: str, project: Path) -> str:
    return (DATA / name).read_text(encoding="utf-8").replace("__PROJECT__", json.dumps(str(project))[1:-1])


def _touch(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def _claude_dir(home: Path, project: Path) -> Path:
    folder = home / ".claude" / "projects" / claude_dir_name(project)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _codex_dir(home: Path, day: str = "2025/05/03") -> Path:
    folder = home / ".codex" / "sessions" / day
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def install_claude(
    home: Path, project: Path, name: str = "claude_session.jsonl", when: datetime = T0
) -> Path:
    path = _claude_dir(home, project) / f"{Path(name).stem}.jsonl"
    path.write_text(_sample(name, project), encoding="utf-8")
    _touch(path, when)
    return path


def install_codex(home: Path, project: Path, name: str, when: datetime = T0) -> Path:
    path = _codex_dir(home) / f"rollout-2025-05-03T08-00-00-{Path(name).stem}.jsonl"
    path.write_text(_sample(name, project), encoding="utf-8")
    _touch(path, when)
    return path


def install_aider(project: Path, when: datetime = T0) -> Path:
    path = project / AIDER_HISTORY
    path.write_text(_sample("aider.chat.history.md", project), encoding="utf-8")
    _touch(path, when)
    return path


def claude_lines(project: Path, prompts: list[str], start: datetime, *, assistant: str | None = None) -> str:
    lines = []
    for i, prompt in enumerate(prompts):
        ts = (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
        msg = {"role": "user", "content": prompt}
        lines.append(
            {"type": "user", "cwd": str(project), "isSidechain": False, "message": msg, "timestamp": ts}
        )
        if assistant:
            reply = {"role": "assistant", "content": [{"type": "text", "text": f"{assistant} {i}"}]}
            lines.append({"type": "assistant", "cwd": str(project), "message": reply, "timestamp": ts})
    return "\n".join(json.dumps(line) for line in lines) + "\n"


def write_claude(home: Path, project: Path, name: str, prompts: list[str], start: datetime, **kw) -> Path:
    path = _claude_dir(home, project) / f"{name}.jsonl"
    path.write_text(claude_lines(project, prompts, start, **kw), encoding="utf-8")
    _touch(path, start + timedelta(seconds=len(prompts)))
    return path


# --- per source -------------------------------------------------------------------------------------------


def test_claude_keeps_only_what_the_user_typed(home: Path, project: Path) -> None:
    path = install_claude(home, project)
    digest = build_digest(project, home=home)
    assert [s.alias for s in digest.sessions] == ["chat_1"]
    session = digest.sessions[0]
    assert session.source == "claude" and session.path == str(path)
    assert session.prompts == [
        "The CSV importer drops the last row when the file has no trailing newline. Please fix it.",
        "Also add a regression test for the trailing newline case.",
    ]
    assert session.started_at == datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    assert session.updated_at == datetime(2025, 5, 1, 9, 6, tzinfo=UTC)
    # two malformed lines (one broken, one a bare number) were skipped and noted, the file still counted
    assert any(str(path) in note and "2 malformed" in note for note in digest.notes)


def test_claude_sessions_of_other_folders_are_excluded(home: Path, project: Path) -> None:
    install_claude(home, project, "claude_other_cwd.jsonl")  # same folder name, but its cwd is elsewhere
    sibling = project.parent / "proj-other"  # its folder name starts with ours: cwd must decide
    write_claude(home, sibling, "sib", ["SIBLING PROMPT"], T0)
    sub = project / "sub"  # a session started in a subfolder of the project belongs to it
    write_claude(home, sub, "inner", ["prompt from a subfolder"], T0)
    digest = build_digest(project, home=home)
    assert [s.prompts for s in digest.sessions] == [["prompt from a subfolder"]]


def test_codex_current_format_uses_each_prompt_once_and_skips_injected_context(
    home: Path, project: Path
) -> None:
    install_codex(home, project, "codex_session.jsonl")
    digest = build_digest(project, home=home)
    assert len(digest.sessions) == 1
    session = digest.sessions[0]
    assert session.source == "codex"
    assert session.prompts == [
        "Why does `make docs` fail on a clean checkout?",
        "Add sphinx to requirements-dev.txt then.",
    ]
    assert session.started_at == datetime(2025, 5, 3, 8, 0, tzinfo=UTC)


def test_codex_legacy_format_and_other_projects(home: Path, project: Path) -> None:
    install_codex(home, project, "codex_legacy.jsonl")
    install_codex(home, project, "codex_other_project.jsonl", when=T0 + timedelta(hours=1))
    digest = build_digest(project, home=home)
    assert [s.prompts for s in digest.sessions] == [["Rename the misleading `tmp` variable in cli.py."]]
    assert not any("UNRELATED" in p for s in digest.sessions for p in s.prompts)
    assert digest.notes == []  # another project's session is not a problem worth a note


def test_aider_history_splits_sessions_and_skips_commands(home: Path, project: Path) -> None:
    install_aider(project)
    digest = build_digest(project, home=home)
    assert [s.source for s in digest.sessions] == ["aider", "aider"]
    newest, oldest = digest.sessions
    assert newest.prompts == [
        "how is the config loaded?",
        "please document the config loading order in README",
    ]
    assert oldest.prompts == ["The parser crashes on empty input.\nMake it return an empty list instead."]
    assert oldest.started_at == datetime(2025, 4, 10, 14, 0).astimezone()
    assert newest.started_at == datetime(2025, 4, 12, 9, 30).astimezone()
    assert (newest.alias, oldest.alias) == ("chat_1", "chat_2")


# --- merging, ordering, limits ------------------------------------------------------------------------------


def test_all_sources_newest_first_with_aliases_in_order(home: Path, project: Path) -> None:
    install_claude(home, project, when=datetime(2025, 5, 1, 9, 6, tzinfo=UTC))
    install_codex(home, project, "codex_session.jsonl", when=datetime(2025, 5, 3, 8, 3, 5, tzinfo=UTC))
    install_codex(home, project, "codex_legacy.jsonl", when=datetime(2025, 4, 20, 12, 0, tzinfo=UTC))
    install_aider(project, when=datetime(2025, 4, 12, 10, 0).astimezone())
    digest = build_digest(project, home=home)
    order = [(s.alias, s.source, s.prompts[0][:20]) for s in digest.sessions]
    assert order == [
        ("chat_1", "codex", "Why does `make docs`"),
        ("chat_2", "claude", "The CSV importer dro"),
        ("chat_3", "codex", "Rename the misleadin"),
        ("chat_4", "aider", "how is the config lo"),
        ("chat_5", "aider", "The parser crashes o"),
    ]
    keys = [s.updated_at or s.started_at for s in digest.sessions]
    assert keys == sorted(keys, reverse=True)


def test_limits_sessions_prompts_and_characters(home: Path, project: Path) -> None:
    for n in range(12):
        prompts = [f"session {n} prompt {i} " + "x" * 600 for i in range(10)]
        write_claude(home, project, f"s{n:02}", prompts, T0 + timedelta(hours=n))
    digest = build_digest(project, home=home)
    assert len(digest.sessions) == 10
    assert [s.alias for s in digest.sessions] == [f"chat_{i}" for i in range(1, 11)]
    assert digest.sessions[0].prompts[0].startswith("session 11 prompt 2 ")  # newest session first
    assert digest.sessions[-1].prompts[0].startswith("session 2 prompt 2 ")  # sessions 0 and 1 fell off
    for session in digest.sessions:
        assert len(session.prompts) == 8  # the most recent eight, in chronological order
        assert [p.split()[3] for p in session.prompts] == [str(i) for i in range(2, 10)]
        assert all(len(p) == 500 and p.endswith("…") for p in session.prompts)

    small = build_digest(project, home=home, max_sessions=3, max_prompts=2, max_chars=40)
    assert [len(s.prompts) for s in small.sessions] == [2, 2, 2]
    assert all(len(p) <= 40 and p.endswith("…") for s in small.sessions for p in s.prompts)
    assert small.sessions[0].prompts[-1].startswith("session 11 prompt 9")


def test_short_prompts_are_not_truncated(home: Path, project: Path) -> None:
    exact = "y" * 500
    write_claude(home, project, "short", [exact, "short one"], T0)
    assert build_digest(project, home=home).sessions[0].prompts == [exact, "short one"]


def test_prompts_are_deduplicated_across_and_within_sessions(home: Path, project: Path) -> None:
    write_claude(home, project, "old", ["run the tests", "fix the login bug", "only in old"], T0)
    write_claude(home, project, "mid", ["fix  the login\nbug", "run the tests"], T0 + timedelta(hours=1))
    write_claude(
        home, project, "new", ["run the tests", "deploy docs", "run the tests"], T0 + timedelta(hours=2)
    )
    digest = build_digest(project, home=home)
    assert [s.prompts for s in digest.sessions] == [
        ["deploy docs", "run the tests"],
        ["fix  the login\nbug"],
        ["only in old"],
    ]


def test_a_session_with_only_repeated_prompts_is_left_out(home: Path, project: Path) -> None:
    write_claude(home, project, "old", ["continue"], T0)
    write_claude(home, project, "new", ["continue"], T0 + timedelta(hours=1))
    digest = build_digest(project, home=home)
    assert [(s.alias, Path(s.path).stem) for s in digest.sessions] == [("chat_1", "new")]


# --- broken inputs --------------------------------------------------------------------------------------------


def test_malformed_and_missing_files_are_skipped_with_a_note(home: Path, project: Path) -> None:
    good = write_claude(home, project, "good", ["a real prompt"], T0)
    bad = _claude_dir(home, project) / "broken.jsonl"
    bad.write_text((DATA / "malformed.jsonl").read_text(), encoding="utf-8")
    missing = _claude_dir(home, project) / "gone.jsonl"
    missing.symlink_to(home / "does-not-exist.jsonl")
    codex_bad = _codex_dir(home) / "rollout-bad.jsonl"
    codex_bad.write_bytes(b"\xff\xfe\x00garbage\n{not json}\n")
    (project / AIDER_HISTORY).write_bytes(b"\x00\x01 binary junk \xff\n")

    digest = build_digest(project, home=home)
    assert [(s.path, s.prompts) for s in digest.sessions] == [(str(good), ["a real prompt"])]
    notes = "\n".join(digest.notes)
    for path in (bad, missing, codex_bad, project / AIDER_HISTORY):
        assert str(path) in notes, f"no note about {path}: {notes}"


def test_nothing_to_read_is_an_empty_digest(home: Path, project: Path) -> None:
    digest = build_digest(project, home=home)
    assert digest.sessions == [] and digest.notes == []
    (home / ".codex" / "sessions").mkdir(parents=True)
    (home / ".claude" / "projects").mkdir(parents=True)
    assert build_digest(project, home=home).sessions == []


def test_unreadable_claude_folder_member_does_not_stop_other_sources(home: Path, project: Path) -> None:
    folder = _claude_dir(home, project)
    (folder / "dir.jsonl").mkdir()  # a directory named like a transcript
    install_codex(home, project, "codex_session.jsonl")
    digest = build_digest(project, home=home)
    assert [s.source for s in digest.sessions] == ["codex"]
    assert any("dir.jsonl" in note for note in digest.notes)


# --- transcripts ---------------------------------------------------------------------------------------------


def test_transcript_has_user_and_assistant_text_and_survives_json(home: Path, project: Path) -> None:
    install_claude(home, project)
    install_codex(home, project, "codex_session.jsonl", when=T0 + timedelta(hours=1))
    digest = Digest.model_validate_json(
        build_digest(project, home=home).model_dump_json()
    )  # as the MCP server
    codex = digest.transcript("chat_1")
    claude = digest.transcript("chat_2")
    assert codex is not None and claude is not None
    assert "Why does `make docs` fail" in codex
    assert codex.count("The docs target needs sphinx") == 1  # the duplicated record appears once
    assert "AGENTS.md CONTENT" not in codex and "FUNCTION OUTPUT" not in codex
    assert "I'll look at importer.py first." in claude
    assert "Also add a regression test" in claude
    assert (
        claude.index("The CSV importer")
        < claude.index("I'll look at")
        < claude.index("Also add a regression")
    )
    for noise in ("TOOL RESULT TEXT", "secret reasoning", "SIDECHAIN", "REMINDER NOISE", "COMPACT SUMMARY"):
        assert noise not in claude
    assert digest.transcript("chat_9") is None


def test_transcript_of_an_aider_session_is_that_session_only(home: Path, project: Path) -> None:
    install_aider(project)
    digest = build_digest(project, home=home)
    newest = digest.transcript("chat_1")
    oldest = digest.transcript("chat_2")
    assert newest is not None and oldest is not None
    assert "The config is loaded in `config.py`" in newest and "parser crashes" not in newest
    assert "return `[]` for empty input" in oldest and "config loading order" not in oldest


def test_transcript_is_capped_and_keeps_the_latest_messages(home: Path, project: Path) -> None:
    prompts = [f"prompt {i:03} " + "p" * 300 for i in range(120)]
    write_claude(home, project, "long", prompts, T0, assistant="answer " + "a" * 300)
    digest = build_digest(project, home=home)
    text = digest.transcript("chat_1")
    assert text is not None
    assert 15_000 < len(text) <= 21_000
    assert "prompt 119" in text and "prompt 000" not in text
    assert "earlier message(s) omitted" in text


def test_transcript_falls_back_to_digest_prompts_when_the_file_is_gone(home: Path, project: Path) -> None:
    path = write_claude(home, project, "gone", ["remember this prompt"], T0)
    digest = build_digest(project, home=home)
    path.unlink()
    text = digest.transcript("chat_1")
    assert text is not None and "remember this prompt" in text and "no longer be read" in text


def test_tool_payload_inlines_transcripts_for_the_chat_history_tool(home: Path, project: Path) -> None:
    install_claude(home, project)
    digest = build_digest(project, home=home)
    payload = json.loads(json.dumps(digest.tool_payload()))
    (session,) = payload["sessions"]
    assert session["alias"] == "chat_1" and session["source"] == "claude"
    assert session["prompts"] == digest.sessions[0].prompts
    assert session["transcript"] == digest.transcript("chat_1")
    assert "I'll look at importer.py first." in session["transcript"]

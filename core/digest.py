"""The chat digest (DESIGN §7): what the user recently asked their coding agents about this project.

Discovery reads it to find improvements the user actually cares about. Sources are Claude Code transcripts
(``~/.claude/projects/<encoded path>/*.jsonl``), Codex rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``)
and aider's ``<project>/.aider.chat.history.md``. Transcripts belong to other programs whose formats drift, so
every reader is tolerant: a missing or malformed file or line is skipped with a note, never an error.

A ``Digest`` holds only plain fields (source, path, part), so it survives a JSON round trip and ``transcript()``
can re-read a session in another process (the MCP tool server of ``always_on_read_chat_history``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

Source = Literal["claude", "codex", "aider"]

TRANSCRIPT_MAX_CHARS = 20_000
_TURN_MAX_CHARS = {"user": 4_000, "assistant": 2_000}
_EPOCH = datetime.min.replace(tzinfo=UTC)
AIDER_HISTORY = ".aider.chat.history.md"


class DigestSession(BaseModel):
    alias: str
    source: Source
    path: str
    started_at: datetime | None = None
    updated_at: datetime | None = None
    prompts: list[str] = Field(default_factory=list)
    part: int = 0  # which session of a multi-session file (aider keeps all sessions in one file)


class Digest(BaseModel):
    sessions: list[DigestSession] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def session(self, alias: str) -> DigestSession | None:
        return next((s for s in self.sessions if s.alias == alias), None)

    def transcript(self, alias: str) -> str | None:
        """The session's full text (user prompts and assistant text), the most recent ~20k characters of it."""
        session = self.session(alias.strip())
        if session is None:
            return None
        header = [f"# {session.alias}: {session.source} session", f"File: {session.path}"]
        if session.started_at:
            header.append(f"Started: {_fmt(session.started_at)}")
        if session.updated_at:
            header.append(f"Last activity: {_fmt(session.updated_at)}")
        raw = _reparse(session)
        if raw is None:
            header.append("The transcript file can no longer be read; these are the prompts from the digest.")
            turns = [("user", p) for p in session.prompts]
        else:
            turns = raw.turns
        blocks = [_render_turn(role, text) for role, text in turns]
        return "\n".join(header) + "\n\n" + _keep_tail(blocks, TRANSCRIPT_MAX_CHARS)

    def tool_payload(self) -> dict[str, Any]:
        """The digest with each session's transcript inlined: the ``--digest`` file of always_on.core.agents.mcp_server,
        read there without access to the user's home (and without re-parsing foreign formats)."""
        sessions = [
            {**s.model_dump(mode="json"), "transcript": self.transcript(s.alias)} for s in self.sessions
        ]
        return {"sessions": sessions, "notes": list(self.notes)}


# --- building ---------------------------------------------------------------------------------------------


def build_digest(
    project: Path,
    *,
    home: Path | None = None,
    max_sessions: int = 10,
    max_prompts: int = 8,
    max_chars: int = 500,
) -> Digest:
    """Recent sessions for ``project``, newest first, user prompts only, deduplicated across sessions."""
    project = Path(project).expanduser().absolute()
    roots = _project_variants(project)
    claude_dir, codex_dir = _agent_dirs(home)
    notes: list[str] = []
    candidates = [
        *_claude_candidates(claude_dir, roots, notes),
        *_codex_candidates(codex_dir, notes),
        *_aider_candidates(project, notes),
    ]
    candidates.sort(key=lambda c: (c.mtime, str(c.path)), reverse=True)
    raw: list[_RawSession] = []
    selected: list[DigestSession] = []
    for cand in candidates:
        # Sessions are never newer than their file, so once we hold enough sessions newer than this file, stop.
        if len(selected) >= max_sessions and _key_of(selected[-1]) >= cand.mtime:
            break
        try:
            sessions = cand.parse(roots, notes)
        except _Skip as skip:
            _note(notes, f"skipped {cand.path}: {skip}")
            continue
        useful = [s for s in sessions if s.prompts]
        if useful:
            raw.extend(useful)
            selected = _select(raw, max_sessions, max_prompts, max_chars)
    return Digest(sessions=selected, notes=notes)


def _select(
    raw: list[_RawSession], max_sessions: int, max_prompts: int, max_chars: int
) -> list[DigestSession]:
    seen: set[str] = set()
    out: list[DigestSession] = []
    for s in sorted(raw, key=lambda r: (r.key, r.path, -r.part), reverse=True):
        picked: list[str] = []
        for prompt in reversed(s.prompts):  # the most recent prompts win the session's slots
            norm = " ".join(prompt.split())
            if not norm or norm in seen:
                continue
            seen.add(norm)
            picked.append(_truncate(prompt.strip(), max_chars))
            if len(picked) == max_prompts:
                break
        if not picked:
            continue
        out.append(
            DigestSession(
                alias=f"chat_{len(out) + 1}",
                source=s.source,
                path=s.path,
                started_at=s.started_at,
                updated_at=s.updated_at,
                prompts=picked[::-1],
                part=s.part,
            )
        )
        if len(out) == max_sessions:
            break
    return out


def _key_of(session: DigestSession) -> datetime:
    return session.updated_at or session.started_at or _EPOCH


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def _note(notes: list[str], message: str) -> None:
    log.debug("chat digest: %s", message)
    notes.append(message)


class _Skip(Exception):
    """A transcript file that cannot be used; the message says why."""


@dataclass
class _RawSession:
    source: Source
    path: str
    part: int = 0
    started_at: datetime | None = None
    updated_at: datetime | None = None
    turns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def prompts(self) -> list[str]:
        return [text for role, text in self.turns if role == "user"]

    @property
    def key(self) -> datetime:
        return self.updated_at or self.started_at or _EPOCH


@dataclass
class _Candidate:
    path: Path
    source: Source
    mtime: datetime
    # claude: the folder name is exactly the project's; otherwise it is a subfolder's and cwd must confirm it
    exact: bool = True

    def parse(self, roots: list[Path], notes: list[str]) -> list[_RawSession]:
        if self.source == "claude":
            return _parse_claude(self.path, notes, roots=roots, exact=self.exact)
        if self.source == "codex":
            return _parse_codex(self.path, notes, roots=roots)
        return _parse_aider(self.path, notes)


def _agent_dirs(home: Path | None) -> tuple[Path, Path]:
    """The agents' data folders; their own env overrides count only when no explicit home was given."""
    if home is None:
        base = Path.home()
        claude = os.environ.get("CLAUDE_CONFIG_DIR")
        codex = os.environ.get("CODEX_HOME")
        return (Path(claude) if claude else base / ".claude"), (Path(codex) if codex else base / ".codex")
    return Path(home) / ".claude", Path(home) / ".codex"


def _project_variants(project: Path) -> list[Path]:
    variants = [Path(os.path.normpath(project))]
    try:
        resolved = project.resolve()
    except OSError:
        return variants
    if resolved not in variants:
        variants.append(resolved)
    return variants


def _inside(cwd: str, roots: list[Path]) -> bool:
    path = Path(os.path.normpath(cwd))
    return any(path == root or root in path.parents for root in roots)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _fmt(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _read_jsonl(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError as exc:
        raise _Skip(f"unreadable ({exc.strerror or exc})") from exc
    objects: list[dict[str, Any]] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(obj, dict):
            objects.append(obj)
        else:
            bad += 1
    if bad and not objects:
        raise _Skip(f"not a JSONL transcript ({bad} malformed line(s))")
    if bad:
        _note(notes, f"{path}: skipped {bad} malformed line(s)")
    return objects


def _times(objects: list[dict[str, Any]], path: Path) -> tuple[datetime | None, datetime | None]:
    stamps = [ts for obj in objects if (ts := _parse_ts(obj.get("timestamp"))) is not None]
    if not stamps:
        try:
            return None, _mtime(path)
        except OSError:
            return None, None
    return min(stamps), max(stamps)


# --- Claude Code --------------------------------------------------------------------------------------------

_WRAPPER_TAGS = (
    "command-name",
    "command-message",
    "command-args",
    "command-contents",
    "local-command-stdout",
    "local-command-stderr",
    "bash-input",
    "bash-stdout",
    "bash-stderr",
    "user-memory-input",
    "system-reminder",
)
_WRAPPER_RE = re.compile(r"^\s*<(" + "|".join(_WRAPPER_TAGS) + r")\b")
_REMINDER_RE = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
_CLAUDE_NOISE = ("Caveat: The messages below were generated by the user", "[Request interrupted by user")


def claude_dir_name(project: Path) -> str:
    """Claude Code's folder name for a project: the absolute path with every non-alphanumeric character as '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(project))


def _claude_candidates(claude_dir: Path, roots: list[Path], notes: list[str]) -> Iterator[_Candidate]:
    base = claude_dir / "projects"
    if not base.is_dir():
        log.debug("chat digest: no Claude Code transcripts at %s", base)
        return
    names = {claude_dir_name(root) for root in roots} | {
        str(root).replace("/", "-").replace(".", "-") for root in roots
    }
    try:
        folders = [
            d for d in base.iterdir() if d.name in names or any(d.name.startswith(n + "-") for n in names)
        ]
    except OSError as exc:
        _note(notes, f"skipped {base}: unreadable ({exc.strerror or exc})")
        return
    for folder in folders:
        for path in sorted(folder.glob("*.jsonl")):
            try:
                yield _Candidate(path, "claude", _mtime(path), exact=folder.name in names)
            except OSError as exc:
                _note(notes, f"skipped {path}: missing or unreadable ({exc.strerror or exc})")


def _claude_user_text(content: Any) -> str:
    blocks = [content] if isinstance(content, str) else content if isinstance(content, list) else []
    texts: list[str] = []
    for block in blocks:
        if isinstance(block, dict):
            if block.get("type") != "text":  # tool_result, image, document: not something the user typed
                continue
            block = block.get("text")
        if not isinstance(block, str):
            continue
        text = _REMINDER_RE.sub("", block).strip()
        if not text or _WRAPPER_RE.match(text) or text.startswith(_CLAUDE_NOISE):
            continue
        texts.append(text)
    return "\n\n".join(texts)


def _claude_assistant_text(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, list):
        return ""
    parts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def _parse_claude(
    path: Path, notes: list[str], *, roots: list[Path] | None = None, exact: bool = True
) -> list[_RawSession]:
    objects = _read_jsonl(path, notes)
    if roots is not None:
        cwds = {obj["cwd"] for obj in objects if isinstance(obj.get("cwd"), str)}
        if cwds and not any(_inside(cwd, roots) for cwd in cwds):
            log.debug("chat digest: %s belongs to %s, not this project", path, sorted(cwds))
            return []
        if not cwds and not exact:
            raise _Skip("no working directory recorded, cannot tell whether it belongs to this project")
    session = _RawSession("claude", str(path))
    session.started_at, session.updated_at = _times(objects, path)
    for obj in objects:
        message = obj.get("message")
        if obj.get("isSidechain") or not isinstance(message, dict):
            continue  # sidechains are prompts the agent wrote for its sub-agents
        if obj.get("type") == "user" and message.get("role", "user") == "user":
            if obj.get("isMeta") or obj.get("isCompactSummary"):
                continue
            text = _claude_user_text(message.get("content"))
            if text:
                session.turns.append(("user", text))
        elif obj.get("type") == "assistant":
            text = _claude_assistant_text(message.get("content"))
            if text:
                session.turns.append(("assistant", text))
    return [session]


# --- Codex ------------------------------------------------------------------------------------------------

_CODEX_NOISE = (
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<INSTRUCTIONS>",
    "<user_shell_command>",
    "<turn_aborted>",
)
_ENV_CWD_RE = re.compile(r"<cwd>(.*?)</cwd>", re.DOTALL)


def _codex_candidates(codex_dir: Path, notes: list[str]) -> Iterator[_Candidate]:
    base = codex_dir / "sessions"
    if not base.is_dir():
        log.debug("chat digest: no Codex sessions at %s", base)
        return
    for path in base.rglob("rollout-*.jsonl"):
        try:
            yield _Candidate(path, "codex", _mtime(path))
        except OSError as exc:
            _note(notes, f"skipped {path}: missing or unreadable ({exc.strerror or exc})")


def _codex_first_cwd(path: Path) -> str | None:
    """The cwd of a rollout's session_meta line, read without loading the (possibly large) rest of the file."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            first = json.loads(fh.readline() or "null")
    except (OSError, ValueError):
        return None
    if (
        isinstance(first, dict)
        and first.get("type") == "session_meta"
        and isinstance(first.get("payload"), dict)
    ):
        cwd = first["payload"].get("cwd")
        return cwd if isinstance(cwd, str) else None
    return None


def _codex_cwd(objects: list[dict[str, Any]]) -> str | None:
    for obj in objects:
        payload = obj.get("payload") if isinstance(obj.get("payload"), dict) else obj
        if obj.get("type") in ("session_meta", "turn_context") and isinstance(payload.get("cwd"), str):
            return payload["cwd"]
        if isinstance(obj.get("cwd"), str):
            return obj["cwd"]
        for text in _codex_texts(payload.get("content")):
            match = _ENV_CWD_RE.search(text) if text.lstrip().startswith("<environment_context>") else None
            if match:
                return match.group(1).strip()
    return None


def _codex_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]


def _codex_user_text(texts: list[str]) -> str:
    kept = [t.strip() for t in texts if t.strip() and not t.lstrip().startswith(_CODEX_NOISE)]
    return "\n\n".join(kept)


def _parse_codex(path: Path, notes: list[str], *, roots: list[Path] | None = None) -> list[_RawSession]:
    if roots is not None:
        quick = _codex_first_cwd(path)
        if quick is not None and not _inside(quick, roots):
            return []  # another project's session: not ours to read, not worth a note
    objects = _read_jsonl(path, notes)
    if roots is not None:
        cwd = _codex_cwd(objects)
        if cwd is None or not _inside(cwd, roots):
            log.debug("chat digest: %s is not a session of this project (cwd %s)", path, cwd)
            return []
    session = _RawSession("codex", str(path))
    session.started_at, session.updated_at = _times(objects, path)
    # Codex records each message twice (response_item and event_msg); take one channel per role, the event one
    # when present because it carries exactly what the user typed.
    entries: list[tuple[str, str, str]] = []  # (channel, role, text)
    for obj in objects:
        payload = obj.get("payload") if isinstance(obj.get("payload"), dict) else None
        if obj.get("type") == "event_msg" and payload:
            message = payload.get("message")
            if payload.get("type") == "user_message" and isinstance(message, str):
                entries.append(("event", "user", _codex_user_text([message])))
            elif payload.get("type") == "agent_message" and isinstance(message, str):
                entries.append(("event", "assistant", message.strip()))
            continue
        item = (
            payload if obj.get("type") == "response_item" and payload else obj
        )  # legacy: items at top level
        if item.get("type") != "message":
            continue
        texts = _codex_texts(item.get("content"))
        if item.get("role") == "user":
            entries.append(("item", "user", _codex_user_text(texts)))
        elif item.get("role") == "assistant":
            entries.append(("item", "assistant", "\n\n".join(t.strip() for t in texts if t.strip())))
    channel = {
        role: "event" if any(c == "event" and r == role for c, r, _ in entries) else "item"
        for role in ("user", "assistant")
    }
    session.turns = [(role, text) for c, role, text in entries if text and channel[role] == c]
    return [session]


# --- aider ------------------------------------------------------------------------------------------------

_AIDER_HEADER = re.compile(r"^# aider chat started at (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\s*$")
_AIDER_PROMPT_COMMANDS = ("/ask", "/code", "/architect", "/context")


def _aider_candidates(project: Path, notes: list[str]) -> Iterator[_Candidate]:
    path = project / AIDER_HISTORY
    if not path.exists() and not path.is_symlink():
        return
    try:
        yield _Candidate(path, "aider", _mtime(path))
    except OSError as exc:
        _note(notes, f"skipped {path}: missing or unreadable ({exc.strerror or exc})")


def _aider_prompt(text: str) -> str:
    """aider commands are not prompts, except the chat-mode ones whose argument is a prompt."""
    if not text.startswith("/"):
        return text
    command, _, rest = text.partition(" ")
    return rest.strip() if command in _AIDER_PROMPT_COMMANDS else ""


def _parse_aider(path: Path, notes: list[str]) -> list[_RawSession]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _Skip(f"unreadable ({exc.strerror or exc})") from exc
    sessions: list[_RawSession] = []
    current: _RawSession | None = None
    role: str | None = None
    buffer: list[str] = []

    def flush() -> None:
        nonlocal role, buffer
        body = "\n".join(buffer).strip()
        if current is not None and role and body:
            body = _aider_prompt(body) if role == "user" else body
            if body:
                current.turns.append((role, body))
        role, buffer = None, []

    for line in text.splitlines():
        header = _AIDER_HEADER.match(line)
        if header:
            flush()
            try:
                started = datetime.strptime(header.group(1), "%Y-%m-%d %H:%M:%S").astimezone()  # local time
            except ValueError:
                started = None
            current = _RawSession("aider", str(path), part=len(sessions), started_at=started)
            sessions.append(current)
            continue
        if current is None:
            if line.strip():
                current = _RawSession("aider", str(path), part=0)  # history without a header: one session
                sessions.append(current)
            else:
                continue
        if line.startswith("####"):
            if role != "user":
                flush()
                role = "user"
            buffer.append(line[5:] if line.startswith("#### ") else line[4:])
        elif line.startswith(">"):
            flush()  # aider's own output (commands, edits applied, warnings)
        elif not line.strip() and role == "user":
            flush()
        else:
            if role != "assistant":
                flush()
                role = "assistant"
            buffer.append(line)
    flush()
    if text.strip() and not any(s.started_at for s in sessions) and not any(s.prompts for s in sessions):
        raise _Skip("no aider sessions or prompts found")
    if sessions:
        try:
            sessions[-1].updated_at = _mtime(path)
        except OSError:
            pass
    return sessions


# --- transcripts ------------------------------------------------------------------------------------------


def _reparse(session: DigestSession) -> _RawSession | None:
    path = Path(session.path)
    notes: list[str] = []
    try:
        if session.source == "claude":
            found = _parse_claude(path, notes)
        elif session.source == "codex":
            found = _parse_codex(path, notes)
        else:
            found = _parse_aider(path, notes)
    except _Skip as skip:
        log.debug("chat digest: cannot re-read %s: %s", path, skip)
        return None
    return next((s for s in found if s.part == session.part), None)


def _render_turn(role: str, text: str) -> str:
    label = "User" if role == "user" else "Assistant"
    return f"## {label}\n\n{_truncate(text.strip(), _TURN_MAX_CHARS.get(role, 2_000))}\n"


def _keep_tail(blocks: list[str], limit: int) -> str:
    """Whole turns, newest kept: the end of a conversation says most about where the user is now."""
    kept: list[str] = []
    size = 0
    for block in reversed(blocks):
        if size + len(block) + 1 > limit and kept:
            break
        kept.append(block if len(block) < limit else _truncate(block, limit))
        size += len(block) + 1
    omitted = len(blocks) - len(kept)
    head = [f"[… {omitted} earlier message(s) omitted …]\n"] if omitted else []
    if not blocks:
        head = ["(no messages)\n"]
    return "\n".join(head + kept[::-1])

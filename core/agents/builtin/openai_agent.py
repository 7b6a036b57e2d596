"""The built-in `openai` agent: a tool-calling loop against any OpenAI-compatible chat-completions endpoint.

Configuration, from the environment (the runtime sets these from the agents table):
- ``ALWAYS_ON_OPENAI_BASE_URL`` — API base URL; default ``http://127.0.0.1:11434/v1`` (Ollama). Requests go to
  ``{base}/chat/completions`` with ``stream: false``.
- ``ALWAYS_ON_OPENAI_MODEL`` — the model name (required).
- ``ALWAYS_ON_OPENAI_API_KEY_ENV`` — the NAME of the variable holding the API key (default ``OPENAI_API_KEY``),
  sent as ``Authorization: Bearer``. The runtime passes the variable a configured agent names in ``api_key_env``
  to this process only (its terminals get the scrubbed environment). No key set → no header (local servers).
- ``ALWAYS_ON_OPENAI_MAX_TURNS`` — chat-completions requests per prompt turn (default 30).
- ``ALWAYS_ON_OPENAI_TIMEOUT`` — seconds per HTTP request (default 300).

Tools offered to the model: ``read_file``, ``write_file``, ``list_dir``, ``search`` and ``run_command``, all carried
out through the ACP client (fs methods and terminals, so the runtime's permission policy applies), plus every tool of
the session's MCP servers (the always-on tools), called through an MCP client session. A refused or failed action
goes back to the model as a tool result starting with ``ERROR:`` so it can adapt.

Failure choice: missing configuration or an unusable endpoint (unreachable, HTTP error status, an answer that is not
a chat completion) ends the turn with an agent message saying what happened *and* an ACP error response (JSON-RPC
-32603 carrying that message), so the runtime records the phase as failed, not as an empty success. The message
starts with a stable error code and the error's ``data`` carries it as ``errorCode`` (with ``endpoint`` and
``reason``), so the runtime can map it without parsing prose:
- ``agent_auth_required: http://host/v1 answered HTTP 401 Unauthorized: <body>; <which variable to set>``
- ``model_unreachable: http://host/v1 — ReadTimeout after 30 s`` (or ``ConnectError: ...``, or
  ``HTTP 500 Internal Server Error: <body>``, or ``the answer is not a chat completion ...``)
Reaching the turn limit ends with a message and stop reason ``max_turn_requests``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx  # httpx's successor, already a dependency of mcp
from acp import RequestError

from always_on.core.agents.builtin.common import (
    BuiltinAgent,
    CommandResult,
    McpTools,
    ToolOutcome,
    Turn,
    clip,
    command_argv,
    with_bundled_tools,
)
from always_on.core.errors import ErrorCode

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"
MAX_TOOL_RESULT = 20_000
MAX_SEARCH_LINES = 200


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str
    model: str
    api_key: str | None
    max_turns: int
    timeout: float
    api_key_env: str = "OPENAI_API_KEY"  # the variable's name, for messages (never its value)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OpenAIConfig:
        """Read the ALWAYS_ON_OPENAI_* variables; raise ValueError naming the variable that is wrong."""
        env = dict(os.environ if env is None else env)
        model = env.get("ALWAYS_ON_OPENAI_MODEL", "").strip()
        if not model:
            raise ValueError(
                "ALWAYS_ON_OPENAI_MODEL is not set; configure the model name for the openai agent"
            )
        key_var = env.get("ALWAYS_ON_OPENAI_API_KEY_ENV", "").strip() or "OPENAI_API_KEY"
        try:
            max_turns = int(env.get("ALWAYS_ON_OPENAI_MAX_TURNS", "30"))
            timeout = float(env.get("ALWAYS_ON_OPENAI_TIMEOUT", "300"))
        except ValueError as exc:
            raise ValueError(
                f"ALWAYS_ON_OPENAI_MAX_TURNS / ALWAYS_ON_OPENAI_TIMEOUT must be numbers: {exc}"
            ) from None
        if max_turns < 1:
            raise ValueError("ALWAYS_ON_OPENAI_MAX_TURNS must be at least 1")
        return cls(
            base_url=(env.get("ALWAYS_ON_OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL).rstrip("/"),
            model=model,
            api_key=env.get(key_var) or None,
            max_turns=max_turns,
            timeout=timeout,
            api_key_env=key_var,
        )


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_PATH = {
    "type": "string",
    "description": "File or directory path, relative to the working directory or absolute",
}
BUILTIN_TOOLS = [
    _fn(
        "read_file",
        "Read a text file.",
        {
            "path": _PATH,
            "line": {"type": "integer", "description": "1-based first line to read (optional)"},
            "limit": {"type": "integer", "description": "maximum number of lines (optional)"},
        },
        ["path"],
    ),
    _fn(
        "write_file",
        "Create or overwrite a text file with the full new content.",
        {"path": _PATH, "content": {"type": "string"}},
        ["path", "content"],
    ),
    _fn("list_dir", "List a directory's entries (directories end with /).", {"path": _PATH}, []),
    _fn(
        "search",
        "Search file contents recursively for a regular expression (grep -rn); returns file:line: text.",
        {"pattern": {"type": "string"}, "path": _PATH},
        ["pattern"],
    ),
    _fn(
        "run_command",
        "Run a shell command in the working directory; returns its exit code and output.",
        {"command": {"type": "string"}},
        ["command"],
    ),
]
_KINDS = {
    "read_file": "read",
    "write_file": "edit",
    "list_dir": "read",
    "search": "search",
    "run_command": "execute",
}


def system_prompt(cwd: str, mcp_names: list[str]) -> str:
    extra = f" Task tools: {', '.join(mcp_names)}." if mcp_names else ""
    return (
        f"You are always-on's built-in coding agent, working unattended in {cwd}. Use the tools to read, search and "
        "edit files and to run commands; relative paths are taken from that directory. Every action passes a "
        "permission policy: a refused action returns a result starting with ERROR — adapt instead of repeating it. "
        "Follow the task in the user message exactly; when it asks you to call an always_on_* tool, call it with "
        "complete arguments and correct any validation error it returns."
        + extra
        + " When you are done, reply "
        "with a short plain-text summary and no tool call."
    )


def _function_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def _text_content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class ModelError(Exception):
    """The endpoint could not give a usable chat completion; `code` is the stable error code the message starts
    with (`model_unreachable` or `agent_auth_required`), `reason` the short cause (`ReadTimeout after 30 s`)."""

    def __init__(self, code: ErrorCode, endpoint: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.endpoint = endpoint
        self.reason = reason

    def request_error(self) -> RequestError:
        data = {
            "errorCode": str(self.code),
            "endpoint": self.endpoint,
            "reason": self.reason,
            "details": str(self),
        }
        return RequestError(-32603, str(self), data)


def _body_excerpt(response: httpx.Response) -> str:
    """The error an OpenAI-compatible server explains itself with (`error.message`), else the body's start."""
    text = response.text.strip()
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message.strip():
            text = message.strip()
    except (ValueError, AttributeError):
        pass
    text = " ".join(text.split())
    return (text[:297] + "...") if len(text) > 300 else (text or "(empty body)")


def http_error(config: OpenAIConfig, response: httpx.Response) -> ModelError:
    """An HTTP error status as a ModelError: 401/403 → agent_auth_required naming the key variable."""
    status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    excerpt = _body_excerpt(response)
    if response.status_code in (401, 403):
        if config.api_key:
            hint = f"the key in {config.api_key_env} was refused; check it, or set api_key_env to the right variable"
        else:
            hint = (
                f"{config.api_key_env} is not set in always-on's environment; export the API key there "
                "(or name another variable with api_key_env)"
            )
        return ModelError(
            ErrorCode.AGENT_AUTH_REQUIRED,
            config.base_url,
            status,
            f"{ErrorCode.AGENT_AUTH_REQUIRED}: {config.base_url} answered {status}: {excerpt}; {hint}",
        )
    return ModelError(
        ErrorCode.MODEL_UNREACHABLE,
        config.base_url,
        status,
        f"{ErrorCode.MODEL_UNREACHABLE}: {config.base_url} — {status}: {excerpt}",
    )


def transport_error(config: OpenAIConfig, exc: httpx.HTTPError) -> ModelError:
    """No answer at all: a timeout names its kind and the configured limit, other failures their cause."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        reason = f"{kind} after {config.timeout:g} s"
    else:
        detail = str(exc).strip() or str(exc.__cause__ or "").strip()
        reason = f"{kind}: {detail}" if detail else kind
    message = f"{ErrorCode.MODEL_UNREACHABLE}: {config.base_url} — {reason}"
    return ModelError(ErrorCode.MODEL_UNREACHABLE, config.base_url, reason, message)


class OpenAIAgent(BuiltinAgent):
    name = "openai"
    title = "openai — tool-calling loop against an OpenAI-compatible endpoint"

    async def turn(self, turn: Turn, text: str) -> str:
        try:
            config = OpenAIConfig.from_env()
        except ValueError as exc:
            await turn.say(f"The openai agent is not configured: {exc}.")
            raise RequestError(-32603, f"openai agent: {exc}", {"details": str(exc)}) from None
        async with McpTools(turn.session.mcp_servers) as mcp:
            mcp_functions = {_function_name(n): n for n in mcp.tools}
            tools = list(BUILTIN_TOOLS) + [
                {
                    "type": "function",
                    "function": {
                        "name": fname,
                        "description": mcp.tools[n][1].description or n,
                        "parameters": mcp.tools[n][1].input_schema or {"type": "object", "properties": {}},
                    },
                }
                for fname, n in mcp_functions.items()
            ]
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": system_prompt(turn.session.cwd, list(mcp.tools))},
                {"role": "user", "content": text},
            ]
            async with httpx.AsyncClient(timeout=config.timeout) as http:
                for _ in range(config.max_turns):
                    try:
                        message = await self._complete(http, config, messages, tools)
                    except ModelError as exc:
                        await turn.say(f"Model request failed: {exc}")
                        raise exc.request_error() from None
                    content = _text_content(message.get("content"))
                    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
                    if content.strip():
                        await turn.say(content)
                    if not calls:
                        return "end_turn"
                    messages.append({"role": "assistant", "content": content or None, "tool_calls": calls})
                    for call in calls:
                        result = await self._tool(turn, mcp, mcp_functions, call)
                        messages.append(
                            {"role": "tool", "tool_call_id": call.get("id", ""), "content": result}
                        )
        await turn.say(
            f"Stopped after {config.max_turns} model requests (ALWAYS_ON_OPENAI_MAX_TURNS) while the model was "
            "still calling tools; the work may be incomplete."
        )
        return "max_turn_requests"

    async def _complete(
        self,
        http: httpx.AsyncClient,
        config: OpenAIConfig,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> dict[str, Any]:
        url = f"{config.base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        payload = {
            "model": config.model,
            "messages": messages,
            "tools": tools,
            "tool_choice": "auto",
            "stream": False,
        }
        try:
            response = await http.post(url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise transport_error(config, exc) from None
        if response.status_code >= 400:
            raise http_error(config, response)
        try:
            data = response.json()
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            reason = f"the answer is not a chat completion ({type(exc).__name__}: {exc})"
            raise ModelError(
                ErrorCode.MODEL_UNREACHABLE,
                config.base_url,
                reason,
                f"{ErrorCode.MODEL_UNREACHABLE}: {config.base_url} — {reason}: {clip(response.text.strip(), 400)}",
            ) from None
        return message

    async def _tool(
        self, turn: Turn, mcp: McpTools, mcp_functions: dict[str, str], call: dict[str, Any]
    ) -> str:
        """Run one tool call, reported as an ACP tool call; the text goes back to the model."""
        fn = call.get("function") or {}
        name = str(fn.get("name") or "")
        raw = fn.get("arguments")
        try:
            args = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or {})
            if not isinstance(args, dict):
                raise TypeError("arguments must be a JSON object")
        except (ValueError, TypeError) as exc:
            args, bad = {}, f"the arguments of {name} are not a valid JSON object ({exc}): {str(raw)[:200]}"
        else:
            bad = None
        kind = _KINDS.get(name, "other")
        path = args.get("path") if isinstance(args.get("path"), str) else None
        title = f"{name} {args.get('command') or path or args.get('pattern') or ''}".strip()
        call_id = await turn.tool_start(
            title,
            kind,
            raw_input={"tool": name, "arguments": args},
            paths=[turn.path(path)] if path else None,
        )
        if bad is not None:
            outcome = ToolOutcome(False, bad)
        elif name in mcp_functions:
            outcome = await mcp.call(mcp_functions[name], args)
        else:
            try:
                outcome = await self._builtin(turn, name, args)
            except (KeyError, TypeError, ValueError) as exc:
                outcome = ToolOutcome(False, f"bad arguments for {name}: {exc}")
        text = clip(outcome.text, MAX_TOOL_RESULT)
        await turn.tool_end(call_id, outcome.ok, text)
        return text if outcome.ok else f"ERROR: {text}"

    async def _builtin(self, turn: Turn, name: str, args: dict[str, Any]) -> ToolOutcome:
        if name == "read_file":
            line, limit = args.get("line"), args.get("limit")
            return await turn.read_text(
                str(args["path"]), int(line) if line else None, int(limit) if limit else None
            )
        if name == "write_file":
            return await turn.write_text(str(args["path"]), str(args["content"]))
        if name == "list_dir":
            result = await turn.run_quiet(["ls", "-1Ap", "--", turn.path(str(args.get("path") or "."))])
            return _command_outcome(result)
        if name == "search":
            argv = [
                "grep",
                "-rnI",
                "--exclude-dir=.git",
                "-e",
                str(args["pattern"]),
                "--",
                turn.path(str(args.get("path") or ".")),
            ]
            result = await turn.run_quiet(argv)
            if result.error is None and result.exit_code == 1:
                return ToolOutcome(True, "no matches")
            if result.error is None and result.exit_code == 0:
                lines = result.output.splitlines()
                more = (
                    f"\n… {len(lines) - MAX_SEARCH_LINES} more matching lines"
                    if len(lines) > MAX_SEARCH_LINES
                    else ""
                )
                return ToolOutcome(True, "\n".join(lines[:MAX_SEARCH_LINES]) + more)
            return _command_outcome(result)
        if name == "run_command":
            line = str(args["command"])
            argv = with_bundled_tools(command_argv(line))  # `ruff` from always-on's env when not on PATH
            return _command_outcome(await turn.run_quiet(argv, display=line))
        return ToolOutcome(False, f"unknown tool '{name}'")


def _command_outcome(result: CommandResult) -> ToolOutcome:
    if result.error is not None:
        return ToolOutcome(False, f"`{result.command}` was not run: {result.error}")
    truncated = " (output truncated)" if result.truncated else ""
    return ToolOutcome(
        True, f"{result.status()}{truncated}\n{result.output}"
    )  # it ran: the model reads the code

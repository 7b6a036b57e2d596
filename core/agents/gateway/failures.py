"""What an agent's failure means and what the user should do about it: the `ErrorInfo` (code, message naming the
agent, hint) of an error answer, an authentication the agent asks for, an unreachable model API, a stall.

The codes (DESIGN §4): `agent_auth_required` (the agent wants credentials it does not have: the hint names the
variable to set or the login command), `model_unreachable` (the agent could not reach its model API: endpoint and
reason), `agent_stalled` (no update, tool call or terminal output for `stall_seconds`), `agent_error` (any other
error answer: the protocol was followed, the agent failed). `agent_protocol_error` is not made here: it is kept
for real protocol violations (garbage on stdout, answers that do not follow ACP).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from acp import RequestError

from always_on.core.agents.spec import AgentSpec
from always_on.core.errors import ErrorCode
from always_on.core.records import ErrorInfo

#: JSON-RPC error code ACP gives "authentication required" (`RequestError.auth_required`).
AUTH_REQUIRED_RPC_CODE = -32000

# Words agents and their HTTP stacks use when the model API could not be reached (Rust reqwest, Node fetch/undici,
# Python httpx, gRPC); matched in the error's message and data.
_NETWORK_RE = re.compile(
    r"error sending request|stream disconnected|failed to lookup address|getaddrinfo|ENOTFOUND|EAI_AGAIN"
    r"|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|connection refused|connection reset"
    r"|connection error|connect error|could not resolve|name or service not known|network is unreachable"
    r"|fetch failed|socket hang up|timed out|APIConnectionError|dns error",
    re.IGNORECASE,
)
_URL_RE = re.compile(r"(?:https?|wss?)://[^\s)\"'<>,]+")
_LOG_PREFIX_RE = re.compile(r"^\S*\d{4}-\d\d-\d\d[T ]\S+\s+(?:ERROR|WARN|WARNING|INFO|DEBUG)?\s*")


def answer_error(spec: AgentSpec, exc: RequestError, what: str, offered: Sequence[Any] = ()) -> ErrorInfo:
    """The error an agent's JSON-RPC error answer to `what` stands for."""
    data = exc.data if isinstance(exc.data, dict) else {}
    said = detail(exc)
    own_code = data.get("errorCode")  # the built-in openai agent says it outright
    if own_code == ErrorCode.MODEL_UNREACHABLE:
        endpoint = str(data.get("endpoint") or "")
        full = _strip_code(str(exc), own_code)  # "{endpoint} — {reason}: {what the server said}"
        reason = full[len(endpoint) + 3 :] if endpoint and full.startswith(f"{endpoint} — ") else ""
        return model_unreachable(spec, endpoint, reason or str(data.get("reason") or said))
    if own_code == ErrorCode.AGENT_AUTH_REQUIRED:
        return auth_required(spec, what, _strip_code(str(exc), own_code), offered)
    if exc.code == AUTH_REQUIRED_RPC_CODE:
        return auth_required(spec, what, said, offered)
    text = f"{exc} {json.dumps(exc.data, default=str) if exc.data else ''}"
    if _NETWORK_RE.search(text):
        urls = _URL_RE.findall(text)
        return model_unreachable(spec, urls[0] if urls else "", said)
    if data.get("startupFailureReason") == "bypass_root":
        return ErrorInfo(
            code=ErrorCode.AGENT_ERROR,
            message=f"agent '{spec.name}' refused to start a session as root: {said}",
            hint="remove IS_SANDBOX from the agent's `env` (claude-agent-acp then runs as root in its default "
            "mode, asking permission through always-on), or set it to exactly 1",
        )
    return ErrorInfo(
        code=ErrorCode.AGENT_ERROR, message=f"agent '{spec.name}' answered {what} with an error: {said}"
    )


def is_auth_answer(exc: BaseException | None) -> bool:
    """An answer `authenticate` may fix (ACP's auth-required code), as opposed to a key the endpoint refused."""
    return isinstance(exc, RequestError) and exc.code == AUTH_REQUIRED_RPC_CODE


def auth_required(
    spec: AgentSpec,
    what: str,
    detail: str,
    offered: Sequence[Any] = (),
    *,
    tried: str | None = None,
) -> ErrorInfo:
    """`agent_auth_required`: what the agent said, the methods it offers, and what to set or run."""
    methods = describe_methods(offered)
    message = f"agent '{spec.name}' needs authentication: it answered {what} with “{detail}”"
    if tried:
        message += f" even after `authenticate` with {tried}"
    message += f"; it offers {methods}" if methods else ""
    return ErrorInfo(code=ErrorCode.AGENT_AUTH_REQUIRED, message=message, hint=auth_hint(spec, tried=tried))


def auth_hint(spec: AgentSpec, *, tried: str | None = None) -> str:
    """The next step: the variable to set (or the one that was not accepted), or the login command to run."""
    present = spec.present_credentials()
    names = spec.credentials
    if present and tried:
        first = f"check the key in {present[0]}: the agent did not accept it"
    elif present:
        first = f"{present[0]} is set but the agent did not accept it: check the key"
    elif names:
        others = f" (or {', '.join(names[1:3])})" if len(names) > 1 else ""
        first = f"export {names[0]}{others} in the environment always-on runs in"
    else:
        first = f"pass the agent its credential: name the variable in `pass_env` in [agents.{spec.name}]"
    if spec.login_hint:
        first += f", or log in once by running `{spec.login_hint}` in a terminal"
    return first


def describe_methods(offered: Sequence[Any]) -> str:
    """`chatgpt, openai-api-key (OPENAI_API_KEY)` from initialize's authMethods."""
    parts = []
    for method in offered:
        ident = getattr(method, "id", None) or (method.get("id") if isinstance(method, dict) else None)
        if not ident:
            continue
        names = [v.name for v in getattr(method, "vars", None) or []]
        parts.append(f"{ident} ({', '.join(names)})" if names else str(ident))
    return ", ".join(parts)


def model_unreachable(spec: AgentSpec, endpoint: str, reason: str) -> ErrorInfo:
    """`model_unreachable`: the endpoint (when known) and why."""
    where = endpoint or _configured_endpoint(spec) or "its model API"
    at = f" at {where}" if where != "its model API" else ""
    host = urlsplit(where).netloc if where.startswith("http") else ""
    base_var = next((v for v in spec.pass_env if v.endswith(("BASE_URL", "_HOST"))), None)
    hint = (
        f"check that {host or 'the model API'} is reachable from this machine (network, proxy: HTTPS_PROXY)"
    )
    if base_var:
        hint += f", or point {base_var} at an endpoint that is"
    return ErrorInfo(
        code=ErrorCode.MODEL_UNREACHABLE,
        message=f"agent '{spec.name}' could not reach its model API{at}: {reason}",
        hint=hint,
    )


def stalled(spec: AgentSpec, phase: str, seconds: float, recent_stderr: Sequence[str] = ()) -> ErrorInfo:
    """Silent for `seconds` in `phase`: `model_unreachable` when what it wrote on stderr meanwhile says it could
    not reach its model API (codex-acp retries and logs there), else `agent_stalled` with those lines."""
    network = [line for line in recent_stderr if _NETWORK_RE.search(line)]
    if network:
        line = _LOG_PREFIX_RE.sub("", network[-1]).strip()
        urls = _URL_RE.findall(" ".join(network))
        reason = (line if len(line) <= 300 else line[:297] + "...") + f" (then nothing for {seconds:g} s)"
        return model_unreachable(spec, urls[-1] if urls else "", reason)
    said = " | ".join(line.strip()[:200] for line in recent_stderr[-3:])
    stderr_tail = f"; its last words on stderr: {said}" if said else ""
    creds = spec.present_credentials()
    reach = "its model API may be unreachable or slow"
    if creds:
        reach += f", or the key in {creds[0]} not accepted"
    return ErrorInfo(
        code=ErrorCode.AGENT_STALLED,
        message=f"agent '{spec.name}' stalled: no update, tool call or terminal output for {seconds:g} s in the "
        f"{phase} phase{stderr_tail}",
        hint=f"{reach}: check the network and the key (`always-on doctor --agent {spec.name}`); if it "
        f"legitimately needs longer, raise `stall_seconds` in [limits] or [agents.{spec.name}]",
    )


def detail(exc: RequestError) -> str:
    """The agent's own words: its message, and the data's message or details when they add to it."""
    message = str(exc).strip() or f"error {exc.code}"
    data = exc.data
    extra = ""
    if isinstance(data, dict):
        for key in ("message", "details", "reason", "error"):
            value = data.get(key)
            if isinstance(value, str) and value.strip() and value.strip() not in message:
                extra = value.strip()
                break
    elif isinstance(data, str) and data.strip() and data.strip() not in message:
        extra = data.strip()
    text = f"{message}: {extra}" if extra else message
    return text if len(text) <= 600 else text[:597] + "..."


def _strip_code(text: str, code: str) -> str:
    prefix = f"{code}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _configured_endpoint(spec: AgentSpec) -> str:
    import os

    for name in spec.pass_env:
        if name.endswith("BASE_URL") and os.environ.get(name):
            return os.environ[name]
    return spec.env.get("ALWAYS_ON_OPENAI_BASE_URL", "")

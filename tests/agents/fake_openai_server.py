"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 (real HTTP, stdlib, in a thread).

Each POST to /v1/chat/completions gets the next scripted answer; the last one repeats when the script runs out.
Every request body and its headers are recorded for the test to inspect. A `Hold()` step answers nothing until
the test calls `release()` (how a model that does not answer within the client's timeout is played).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str = "call_1") -> dict[str, Any]:
    """A chat completion whose message asks for one function call."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}],
    }
    return {
        "id": "cmpl",
        "object": "chat.completion",
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
    }


def text(content: str) -> dict[str, Any]:
    """A chat completion with plain text and no tool call (the end of the loop)."""
    message = {"role": "assistant", "content": content}
    return {
        "id": "cmpl",
        "object": "chat.completion",
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


class Hold:
    """A script step that keeps the request open until `release()`; `reached` is set when a request arrives."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()


class FakeOpenAI:
    """Context manager: `with FakeOpenAI([answer, (500, body), ...]) as api: api.base_url ...`."""

    def __init__(self, script: list[dict[str, Any] | tuple[int, Any] | Hold]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, answer = fake._answer(self.path, body, dict(self.headers))
                if isinstance(answer, Hold):
                    answer.reached.set()
                    answer.released.wait()
                    status, answer = 200, text("too late")
                data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout) and closed the connection
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _answer(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            if path != "/v1/chat/completions":
                return 404, {"error": {"message": f"no route {path}"}}
            self.requests.append(body)
            self.headers.append(headers)
            step = self.script[min(len(self.requests), len(self.script)) - 1]
        return step if isinstance(step, tuple) else (200, step)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for step in self.script:
            if isinstance(step, Hold):
                step.release()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

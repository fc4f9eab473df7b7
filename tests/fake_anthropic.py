"""A Messages-API server on 127.0.0.1, scripted turn by turn, recording every request.

The real ``anthropic`` SDK talks to it over HTTP, so its retries, error mapping
and our tool loop all run for real.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count(1)


@dataclass
class Turn:
    """One scripted response: a message, or an HTTP error."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    status: int = 200
    error_type: str = ""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 1200,
                                                           "output_tokens": 150})


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{next(_ids):04d}", "name": name, "input": tool_input}


def bash(command: str) -> dict[str, Any]:
    return tool_use("bash", {"command": command})


def create(path: str, content: str) -> dict[str, Any]:
    return tool_use("str_replace_based_edit_tool",
                    {"command": "create", "path": path, "file_text": content})


def submit(**fields: Any) -> dict[str, Any]:
    base = {"summary": "done", "env": [], "hosts": [], "dependencies": [], "entry_points": []}
    return tool_use("submit_integration", {**base, **fields})


def reply(*blocks: dict[str, Any], usage: dict[str, int] | None = None) -> Turn:
    has_tool = any(b["type"] == "tool_use" for b in blocks)
    turn = Turn(list(blocks), "tool_use" if has_tool else "end_turn")
    if usage:
        turn.usage = usage
    return turn


def error(status: int, error_type: str, message: str = "scripted error") -> Turn:
    return Turn(status=status, error_type=error_type, message=message,
                headers={"retry-after-ms": "20", "x-should-retry": "true"}
                if status in (429, 529) else {})


Script = list[Turn | Callable[[dict[str, Any]], Turn]]


class FakeMessagesAPI:
    """Serves ``POST /v1/messages`` from a script; ``requests`` holds what the SDK sent."""

    def __init__(self, script: Script, repeat_last: bool = False) -> None:
        self.script = list(script)
        self.repeat_last = repeat_last
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"{}")
                api.requests.append({"path": self.path,
                                     "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": body, "raw": raw.decode()})
                status, payload, headers = api._respond(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeMessagesAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not self.script:
            return 500, {"type": "error", "error": {"type": "api_error",
                                                    "message": "script exhausted"}}, {}
        step = self.script[0] if self.repeat_last and len(self.script) == 1 else self.script.pop(0)
        turn = step(body) if callable(step) else step
        if turn.status != 200:
            return turn.status, {"type": "error", "error": {"type": turn.error_type,
                                                            "message": turn.message}}, turn.headers
        return 200, {"id": f"msg_{next(_ids):04d}", "type": "message", "role": "assistant",
                     "model": body.get("model", "claude-test"), "content": turn.blocks,
                     "stop_reason": turn.stop_reason, "stop_sequence": None,
                     "usage": {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                               **turn.usage}}, {}

    def message_requests(self) -> list[dict[str, Any]]:
        """Bodies of the /v1/messages requests, in order."""
        return [r["body"] for r in self.requests if r["path"].startswith("/v1/messages")]
